/*-------------------------------------------------------------------------
 *
 * http.c
 *	  The HTTP engine of the probes and alerts: one batch of requests run
 *	  concurrently with the libcurl multi interface.
 *
 * libcurl only: requests and results are plain structs (http.h), settings
 * come in as AdrHttpLimits, and nothing here touches SPI or the catalogs.
 * A single probe is a batch of one.
 *
 * Safety, on every transfer:
 *	- only http and https, for the first URL and for every redirect
 *	  (CURLOPT_PROTOCOLS_STR / CURLOPT_REDIR_PROTOCOLS_STR, or the bitmask
 *	  forms before libcurl 7.85), at most max_redirects redirects, and none
 *	  for a POST (a 3xx answer to a webhook is a failed delivery);
 *	- the destination is checked on the address libcurl is about to connect
 *	  to (CURLOPT_OPENSOCKETFUNCTION), so neither a DNS name nor a redirect
 *	  can reach an address outside adr_ops.http_allowed_hosts; an empty list
 *	  allows loopback only.  Proxies from the environment are ignored, so
 *	  the checked address is the one the request goes to;
 *	- the timeout bounds the whole transfer (resolution, connection,
 *	  redirects, body);
 *	- the body is counted and kept up to max_body, then the transfer stops;
 *	- header values (the bearer token) with CR or LF are refused;
 *	- error text is made valid in the database encoding before it returns.
 *
 * Interrupts: the batch is driven by curl_multi_poll() in slices of at most
 * HT_SLICE_MS, with CHECK_FOR_INTERRUPTS() between them, so a cancel,
 * statement_timeout or SIGTERM stops it promptly.  The ERROR that follows
 * unwinds through PG_FINALLY, which frees every curl handle: nothing of
 * libcurl outlives the call.
 *
 * A failed request is a result with ok = false and a readable error, one
 * kind per cause (refused, DNS, TLS, timeout, status, not allowed), never
 * an ERROR: a dashboard query that probes ten URLs gets ten rows.
 *
 * libcurl is opened on first use (ht_curl_load: dlopen of ADR_CURL_LIB),
 * not linked: linked, it and the six libraries only it needs were mapped
 * into the postmaster and so into every backend, whose exit ran their
 * destructors, faulting their pages in, although almost no backend ever
 * makes a request.  Only a process that probes, delivers an alert or asks
 * adr_version() for the libcurl version loads it.
 *
 * Locking: none; all state is local to the call.
 *
 * IDENTIFICATION
 *	  src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/inet.h"

#include "adr_ops.h"
#include "http.h"

/* The longest wait between two checks for interrupts. */
#define HT_SLICE_MS 100

/* First size of a kept body buffer. */
#define HT_BODY_CHUNK 8192

/* One allowed network: an address and a prefix length. */
typedef struct HtNet
{
	int			family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int			bits;
} HtNet;

typedef struct HtAllow
{
	int			n;
	int			cap;
	HtNet	   *nets;
} HtAllow;

/* One transfer of the batch. */
typedef struct HtXfer
{
	CURL	   *easy;
	const AdrHttpRequest *req;
	AdrHttpResult *res;
	struct curl_slist *headers;
	const HtAllow *allow;
	int64		max_body;
	int64		bytes;
	bool		capped;
	bool		oom;
	char	   *buf;			/* kept body, not palloc'd in callbacks */
	size_t		buflen;
	size_t		bufcap;
	bool		refused;		/* an address was not allowed */
	char		refused_addr[INET6_ADDRSTRLEN];
	bool		done;
	char		errbuf[CURL_ERROR_SIZE];
} HtXfer;

/* The soname opened; the Makefile's ADR_CURL_LIB. */
#ifndef ADR_CURL_LIB
#define ADR_CURL_LIB "libcurl.so.4"
#endif

/*
 * The libcurl functions used here, once: the struct of pointers with
 * curl.h's types, and ht_curl_load() resolving them, are both made from it.
 */
#define HT_FUNCS(X) \
	X(global_init) \
	X(global_cleanup) \
	X(easy_init) \
	X(easy_setopt) \
	X(easy_getinfo) \
	X(easy_cleanup) \
	X(easy_strerror) \
	X(free) \
	X(multi_init) \
	X(multi_add_handle) \
	X(multi_remove_handle) \
	X(multi_perform) \
	X(multi_poll) \
	X(multi_info_read) \
	X(multi_cleanup) \
	X(multi_strerror) \
	X(slist_append) \
	X(slist_free_all) \
	X(url) \
	X(url_cleanup) \
	X(url_get) \
	X(url_set) \
	X(url_strerror) \
	X(version_info)

#define HT_FIELD(name) __typeof__(&curl_##name) name;
static struct
{
	HT_FUNCS(HT_FIELD)
}			ht_lib;
#undef HT_FIELD

static bool ht_lib_loaded = false;

/*
 * Open libcurl and resolve every function above, once per process; ERROR
 * when it cannot (nothing is resolved then, and the next call tries again).
 */
static void
ht_curl_load(void)
{
	void	   *h;
	const char *missing = NULL;

	if (ht_lib_loaded)
		return;
	h = dlopen(ADR_CURL_LIB, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not load libcurl, which the HTTP probes and alerts need"),
				 errdetail("%s", dlerror()),
				 errhint("Install libcurl (Debian: libcurl4).")));
#define HT_SYM(name) \
	do { \
		ht_lib.name = (__typeof__(ht_lib.name)) dlsym(h, "curl_" #name); \
		if (ht_lib.name == NULL && missing == NULL) \
			missing = "curl_" #name; \
	} while (0);
	HT_FUNCS(HT_SYM)
#undef HT_SYM
	if (missing != NULL)
	{
		memset(&ht_lib, 0, sizeof(ht_lib));
		dlclose(h);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("libcurl \"%s\" has no function %s", ADR_CURL_LIB, missing),
				 errhint("Install libcurl 7.66 or later.")));
	}
	ht_lib_loaded = true;
}

static bool ht_curl_ready = false;

/* Every curl_easy_setopt goes through this: a refusal is a bug here. */
#define HT_SETOPT(h, opt, val) \
	do { \
		CURLcode	ht_rc_ = ht_lib.easy_setopt((h), (opt), (val)); \
		if (ht_rc_ != CURLE_OK) \
			elog(ERROR, "could not set libcurl option %s: %s", #opt, \
				 ht_lib.easy_strerror(ht_rc_)); \
	} while (0)

static void
ht_on_exit(int code, Datum arg)
{
	ht_lib.global_cleanup();
}

/* curl_global_init once per process; curl_global_cleanup at exit. */
static void
ht_curl_init(void)
{
	CURLcode	rc;

	if (ht_curl_ready)
		return;
	ht_curl_load();
	rc = ht_lib.global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl"),
				 errdetail("%s", ht_lib.easy_strerror(rc))));
	on_proc_exit(ht_on_exit, (Datum) 0);
	ht_curl_ready = true;
}

/* The versions of the libcurl loaded and of its TLS library (loads it). */
void
adr_http_versions(const char **curl, const char **tls)
{
	curl_version_info_data *v;

	ht_curl_load();
	v = ht_lib.version_info(CURLVERSION_NOW);
	*curl = v->version;
	*tls = v->ssl_version;
}

bool
adr_http_has_crlf(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") != NULL;
}

/*
 * Text from the network (libcurl's error buffer, a label value) as valid
 * text of the database encoding: when it is not, every non-ASCII byte is
 * replaced by '?' in place.  Returns s.
 */
char *
adr_http_valid_text(char *s)
{
	unsigned char *p;

	if (s == NULL || pg_verifymbstr(s, strlen(s), true))
		return s;
	for (p = (unsigned char *) s; *p; p++)
		if (IS_HIGHBIT_SET(*p))
			*p = '?';
	return s;
}

/* ---- allowed destinations ---- */

static void
ht_allow_add(HtAllow *a, int family, const void *addr, int bits)
{
	/*
	 * An IPv4-mapped IPv6 entry (::ffff:a.b.c.d, or a range of them) is
	 * kept as the IPv4 network it maps, since ht_address_allowed() checks a
	 * mapped connect address as IPv4.
	 */
	if (family == AF_INET6 && bits >= 96 &&
		IN6_IS_ADDR_V4MAPPED((const struct in6_addr *) addr))
	{
		family = AF_INET;
		addr = (const unsigned char *) addr + 12;
		bits -= 96;
	}
	if (a->n == a->cap)
	{
		a->cap = a->cap ? a->cap * 2 : 8;
		a->nets = a->nets ? repalloc(a->nets, sizeof(HtNet) * a->cap)
			: palloc(sizeof(HtNet) * a->cap);
	}
	a->nets[a->n].family = family;
	memset(a->nets[a->n].addr, 0, 16);
	memcpy(a->nets[a->n].addr, addr, family == AF_INET ? 4 : 16);
	a->nets[a->n].bits = bits;
	a->n++;
}

static bool
ht_hostname_ok(const char *s)
{
	if (*s == '\0' || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char) *s) || *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

/*
 * Parse one entry of the list: an address, a CIDR range or a host name.
 * With resolve, a host name adds every address it resolves to (a name that
 * does not resolve adds none).  Returns false when the entry is malformed.
 */
static bool
ht_allow_entry(HtAllow *a, char *entry, bool resolve)
{
	unsigned char addr[16];
	char	   *slash = strchr(entry, '/');
	int			family;

	if (slash)
	{
		char	   *end;
		long		b;

		*slash = '\0';
		if (inet_pton(AF_INET, entry, addr) == 1)
			family = AF_INET;
		else if (inet_pton(AF_INET6, entry, addr) == 1)
			family = AF_INET6;
		else
			return false;
		errno = 0;
		b = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || errno != 0 || b < 0 ||
			b > (family == AF_INET ? 32 : 128))
			return false;
		if (a)
			ht_allow_add(a, family, addr, (int) b);
		return true;
	}
	if (inet_pton(AF_INET, entry, addr) == 1)
	{
		if (a)
			ht_allow_add(a, AF_INET, addr, 32);
		return true;
	}
	if (inet_pton(AF_INET6, entry, addr) == 1)
	{
		if (a)
			ht_allow_add(a, AF_INET6, addr, 128);
		return true;
	}
	if (!ht_hostname_ok(entry))
		return false;
	if (a && resolve)
	{
		struct addrinfo hints = {0};
		struct addrinfo *ai = NULL;
		struct addrinfo *p;

		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(entry, NULL, &hints, &ai) == 0)
		{
			for (p = ai; p; p = p->ai_next)
			{
				if (p->ai_family == AF_INET)
					ht_allow_add(a, AF_INET,
								 &((struct sockaddr_in *) p->ai_addr)->sin_addr, 32);
				else if (p->ai_family == AF_INET6)
					ht_allow_add(a, AF_INET6,
								 &((struct sockaddr_in6 *) p->ai_addr)->sin6_addr, 128);
			}
			freeaddrinfo(ai);
		}
	}
	return true;
}

/*
 * Walk a list of entries separated by commas or white space.  With a,
 * fill it in; returns false and the first bad entry in *bad otherwise.
 */
static bool
ht_allow_parse(const char *list, HtAllow *a, bool resolve, char **bad)
{
	char	   *copy = pstrdup(list ? list : "");
	char	   *save = NULL;
	char	   *tok;
	int			entries = 0;

	for (tok = strtok_r(copy, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save))
	{
		char	   *orig = pstrdup(tok);

		/*
		 * A host name is resolved with getaddrinfo(), which blocks and
		 * cannot be interrupted: a cancel is seen between entries.
		 */
		if (resolve)
			CHECK_FOR_INTERRUPTS();

		if (!ht_allow_entry(a, tok, resolve))
		{
			if (bad)
				*bad = orig;
			return false;
		}
		entries++;
	}
	if (entries == 0 && a)
	{
		unsigned char lo4[4] = {127, 0, 0, 0};
		unsigned char lo6[16] = {0};

		lo6[15] = 1;
		ht_allow_add(a, AF_INET, lo4, 8);
		ht_allow_add(a, AF_INET6, lo6, 128);
	}
	return true;
}

/* Check hook helper: is the list well formed?  (No name is resolved.) */
bool
adr_http_hosts_parse_ok(const char *list, char **bad)
{
	return ht_allow_parse(list, NULL, false, bad);
}

static bool
ht_net_match(const HtNet *net, const unsigned char *addr)
{
	return bitncmp(net->addr, addr, net->bits) == 0;
}

/*
 * Is this socket address allowed?  An IPv4-mapped IPv6 address counts as
 * the IPv4 address it maps.  Fills text with the address for messages.
 */
static bool
ht_address_allowed(const HtAllow *a, const struct sockaddr *sa, char *text)
{
	unsigned char addr[16];
	int			family;
	int			i;

	if (sa->sa_family == AF_INET)
	{
		family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
	}
	else if (sa->sa_family == AF_INET6)
	{
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *) sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6))
		{
			family = AF_INET;
			memcpy(addr, &a6->s6_addr[12], 4);
		}
		else
		{
			family = AF_INET6;
			memcpy(addr, a6->s6_addr, 16);
		}
	}
	else
	{
		strlcpy(text, "a non-IP address", INET6_ADDRSTRLEN);
		return false;
	}
	if (inet_ntop(family, addr, text, INET6_ADDRSTRLEN) == NULL)
		strlcpy(text, "?", INET6_ADDRSTRLEN);

	for (i = 0; i < a->n; i++)
		if (a->nets[i].family == family && ht_net_match(&a->nets[i], addr))
			return true;
	return false;
}

/* ---- libcurl callbacks: no palloc, no ereport, no longjmp ---- */

static curl_socket_t
ht_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	HtXfer	   *x = (HtXfer *) clientp;
	char		text[INET6_ADDRSTRLEN];

	if (!ht_address_allowed(x->allow, &address->addr, text))
	{
		x->refused = true;
		strlcpy(x->refused_addr, text, sizeof(x->refused_addr));
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

static size_t
ht_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HtXfer	   *x = (HtXfer *) userdata;
	size_t		n = size * nmemb;
	size_t		take = n;

	if (x->bytes + (int64) n > x->max_body)
	{
		take = (size_t) (x->max_body - x->bytes);
		x->capped = true;
	}
	if (x->req->keep_body && take > 0)
	{
		if (x->buflen + take + 1 > x->bufcap)
		{
			size_t		newcap = Max(x->bufcap * 2, x->buflen + take + 1);
			char	   *nb = realloc(x->buf, newcap);

			if (nb == NULL)
			{
				x->oom = true;
				return 0;
			}
			x->buf = nb;
			x->bufcap = newcap;
		}
		memcpy(x->buf + x->buflen, ptr, take);
		x->buflen += take;
		x->buf[x->buflen] = '\0';
	}
	x->bytes += take;
	/* Returning less than n stops the transfer. */
	return x->capped ? 0 : n;
}

/* ---- the batch ---- */

static bool
ht_is_tls_error(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ENGINE_NOTFOUND:
		case CURLE_SSL_ENGINE_SETFAILED:
		case CURLE_SSL_ENGINE_INITFAILED:
		case CURLE_SSL_SHUTDOWN_FAILED:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_USE_SSL_FAILED:
			return true;
		default:
			return false;
	}
}

static const char *
ht_detail(HtXfer *x, CURLcode rc)
{
	return x->errbuf[0] ? x->errbuf : ht_lib.easy_strerror(rc);
}

/* Turn the outcome of a finished transfer into its result. */
static void
ht_finish(HtXfer *x, CURLcode rc, const AdrHttpLimits *limits)
{
	AdrHttpResult *res = x->res;
	long		code = 0;
	curl_off_t	total = 0;

	ht_lib.easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	if (ht_lib.easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total) == CURLE_OK)
		res->latency_ms = total / 1000.0;
	res->status_code = (int) code;
	res->bytes = x->bytes;
	res->truncated = x->capped;
	if (x->req->keep_body)
		res->body = pnstrdup(x->buf ? x->buf : "", x->buflen);

	/* A body cut at the cap is a complete answer for a probe. */
	if (rc == CURLE_WRITE_ERROR && x->capped && !x->oom)
		rc = CURLE_OK;

	if (rc == CURLE_OK)
	{
		bool		status_ok = x->req->expect_status == 0
			? (code >= 200 && code < 300)
			: code == x->req->expect_status;

		res->ok = status_ok;
		if (!status_ok)
		{
			if (x->req->post_json && code >= 300 && code < 400)
				res->error = psprintf("unexpected status: got %ld, expected 2xx (a POST follows no redirect)",
									  code);
			else if (x->req->expect_status == 0)
				res->error = psprintf("unexpected status: got %ld, expected 2xx", code);
			else
				res->error = psprintf("unexpected status: got %ld, expected %d",
									  code, x->req->expect_status);
		}
		else if (x->capped)
			res->error = psprintf("body capped: stopped reading at %lld bytes (adr_ops.http_max_body)",
								  (long long) x->max_body);
		return;
	}

	res->ok = false;
	/* A refused address fails the connection; other failures say more. */
	if (x->refused && rc == CURLE_COULDNT_CONNECT)
		res->error = psprintf("destination not allowed: address %s is not in adr_ops.http_allowed_hosts",
							  x->refused_addr);
	else if (x->oom)
		res->error = pstrdup("out of memory while reading the response body");
	else if (rc == CURLE_COULDNT_RESOLVE_HOST)
		res->error = psprintf("DNS failure: %s", ht_detail(x, rc));
	else if (rc == CURLE_COULDNT_CONNECT)
		res->error = psprintf("connection refused: %s", ht_detail(x, rc));
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		res->error = psprintf("timeout: no complete response within %d ms",
							  x->req->timeout_ms);
	else if (ht_is_tls_error(rc))
		res->error = psprintf("TLS failure: %s", ht_detail(x, rc));
	else if (rc == CURLE_UNSUPPORTED_PROTOCOL)
		res->error = psprintf("protocol not allowed: %s; only http and https",
							  ht_detail(x, rc));
	else if (rc == CURLE_TOO_MANY_REDIRECTS)
		res->error = psprintf("too many redirects: more than %d (adr_ops.http_max_redirects)",
							  limits->max_redirects);
	else
		res->error = psprintf("transfer failed: %s", ht_detail(x, rc));
}

/*
 * Check the URL before any transfer: it must parse, and its scheme must be
 * http or https.  Returns the error, or NULL.
 */
static char *
ht_url_error(const char *url)
{
	CURLU	   *u;
	CURLUcode	uc;
	char	   *scheme = NULL;
	char	   *err = NULL;

	if (url == NULL || *url == '\0')
		return pstrdup("invalid URL: empty");
	if (adr_http_has_crlf(url))
		return pstrdup("invalid URL: contains a line break");
	u = ht_lib.url();
	if (u == NULL)
		return pstrdup("out of memory");
	uc = ht_lib.url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (uc != CURLUE_OK)
		err = psprintf("invalid URL: %s", ht_lib.url_strerror(uc));
	else if (ht_lib.url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || scheme == NULL)
		err = pstrdup("invalid URL: no scheme");
	else if (pg_strcasecmp(scheme, "http") != 0 && pg_strcasecmp(scheme, "https") != 0)
		err = psprintf("scheme not allowed: \"%s\"; only http and https", scheme);
	if (scheme)
		ht_lib.free(scheme);
	ht_lib.url_cleanup(u);
	return err;
}

static void
ht_setup(HtXfer *x, const AdrHttpLimits *limits)
{
	CURL	   *h = x->easy;

	HT_SETOPT(h, CURLOPT_URL, x->req->url);
	HT_SETOPT(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500		/* 7.85.0 */
	HT_SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
	HT_SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	HT_SETOPT(h, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
	HT_SETOPT(h, CURLOPT_REDIR_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/*
	 * A POST follows no redirect: libcurl re-issues a POST answered with
	 * 301/302/303 as a GET, whose 2xx would count as a delivery though
	 * nothing was posted.  A 3xx is then a failed delivery.
	 */
	HT_SETOPT(h, CURLOPT_FOLLOWLOCATION, x->req->post_json ? 0L : 1L);
	HT_SETOPT(h, CURLOPT_MAXREDIRS, (long) limits->max_redirects);
	HT_SETOPT(h, CURLOPT_TIMEOUT_MS, (long) x->req->timeout_ms);
	HT_SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, (long) x->req->timeout_ms);
	/* The checked address must be the one the request goes to. */
	HT_SETOPT(h, CURLOPT_PROXY, "");
	HT_SETOPT(h, CURLOPT_OPENSOCKETFUNCTION, ht_opensocket);
	HT_SETOPT(h, CURLOPT_OPENSOCKETDATA, x);
	HT_SETOPT(h, CURLOPT_WRITEFUNCTION, ht_write);
	HT_SETOPT(h, CURLOPT_WRITEDATA, x);
	HT_SETOPT(h, CURLOPT_ERRORBUFFER, x->errbuf);
	HT_SETOPT(h, CURLOPT_USERAGENT, "adr_ops/" ADR_OPS_VERSION);
	HT_SETOPT(h, CURLOPT_PRIVATE, x);

	if (x->req->bearer_token)
	{
		x->headers = ht_lib.slist_append(x->headers,
									   psprintf("Authorization: Bearer %s", x->req->bearer_token));
		if (x->headers == NULL)
			elog(ERROR, "out of memory");
	}
	if (x->req->post_json)
	{
		struct curl_slist *l = ht_lib.slist_append(x->headers,
												 "Content-Type: application/json");

		if (l == NULL)
			elog(ERROR, "out of memory");
		x->headers = l;
		HT_SETOPT(h, CURLOPT_POSTFIELDS, x->req->post_json);
	}
	if (x->headers)
		HT_SETOPT(h, CURLOPT_HTTPHEADER, x->headers);
}

/*
 * Run n requests at once and fill in results[0..n-1].  Returns when every
 * transfer is done; an interrupt raises its ERROR after freeing every curl
 * handle.  The caller's memory context holds the results.
 */
void
adr_http_perform(const AdrHttpRequest *reqs, AdrHttpResult *results, int n,
				 const AdrHttpLimits *limits)
{
	HtXfer	   *xfers;
	HtAllow    *allow;
	CURLM	   *multi;
	int			i;

	ht_curl_init();
	memset(results, 0, sizeof(AdrHttpResult) * n);

	allow = palloc0(sizeof(HtAllow));
	if (!ht_allow_parse(limits->allowed_hosts, allow, true, NULL))
	{
		/* The GUC check hook keeps this from happening. */
		for (i = 0; i < n; i++)
			results[i].error = pstrdup("destination not allowed: adr_ops.http_allowed_hosts is malformed");
		return;
	}

	xfers = palloc0(sizeof(HtXfer) * n);
	multi = ht_lib.multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));

	PG_TRY();
	{
		int			running = 0;
		CURLMcode	mc;

		for (i = 0; i < n; i++)
		{
			HtXfer	   *x = &xfers[i];
			char	   *err;

			x->req = &reqs[i];
			x->res = &results[i];
			x->allow = allow;
			x->max_body = limits->max_body;
			results[i].ok = false;

			err = ht_url_error(reqs[i].url);
			if (err == NULL && adr_http_has_crlf(reqs[i].bearer_token))
				err = pstrdup("invalid header: the bearer token contains CR or LF");
			if (err != NULL)
			{
				results[i].error = err;
				x->done = true;
				continue;
			}
			x->easy = ht_lib.easy_init();
			if (x->easy == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("could not create a libcurl handle")));
			ht_setup(x, limits);
			mc = ht_lib.multi_add_handle(multi, x->easy);
			if (mc != CURLM_OK)
				elog(ERROR, "could not add a libcurl handle: %s", ht_lib.multi_strerror(mc));
		}

		for (;;)
		{
			CURLMsg    *msg;
			int			left;

			mc = ht_lib.multi_perform(multi, &running);
			if (mc != CURLM_OK)
				elog(ERROR, "libcurl multi transfer broke: %s", ht_lib.multi_strerror(mc));
			while ((msg = ht_lib.multi_info_read(multi, &left)) != NULL)
			{
				HtXfer	   *x = NULL;

				if (msg->msg != CURLMSG_DONE)
					continue;
				ht_lib.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
				if (x == NULL || x->done)
					continue;
				ht_finish(x, msg->data.result, limits);
				x->done = true;
			}
			if (running == 0)
				break;
			mc = ht_lib.multi_poll(multi, NULL, 0, HT_SLICE_MS, NULL);
			if (mc != CURLM_OK)
				elog(ERROR, "libcurl multi poll broke: %s", ht_lib.multi_strerror(mc));
			CHECK_FOR_INTERRUPTS();
		}
		/* Anything libcurl did not report is a failure, not a silent OK. */
		for (i = 0; i < n; i++)
			if (!xfers[i].done)
				ht_finish(&xfers[i], CURLE_GOT_NOTHING, limits);
		/* The errors quote libcurl, which quotes the network. */
		for (i = 0; i < n; i++)
			adr_http_valid_text(results[i].error);
	}
	PG_FINALLY();
	{
		for (i = 0; i < n; i++)
		{
			if (xfers[i].easy)
			{
				ht_lib.multi_remove_handle(multi, xfers[i].easy);
				ht_lib.easy_cleanup(xfers[i].easy);
			}
			if (xfers[i].headers)
				ht_lib.slist_free_all(xfers[i].headers);
			if (xfers[i].buf)
				free(xfers[i].buf);
		}
		ht_lib.multi_cleanup(multi);
	}
	PG_END_TRY();
}
