/*-------------------------------------------------------------------------
 *
 * http.h
 *	  The HTTP engine of adr_ops (http.c): libcurl only, plain structs in
 *	  and out, no SPI.
 *
 * IDENTIFICATION
 *	  src/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_HTTP_H
#define ADR_OPS_HTTP_H

/* What to fetch. */
typedef struct AdrHttpRequest
{
	const char *url;
	const char *post_json;		/* POST this body as application/json; NULL
								 * for GET */
	const char *bearer_token;	/* Authorization: Bearer ..., or NULL */
	int			timeout_ms;		/* bounds the whole transfer, redirects
								 * included */
	int			expect_status;	/* 0: any 2xx */
	bool		keep_body;		/* keep the body (up to max_body) */
} AdrHttpRequest;

/* What happened.  A failure is ok = false with error set, never an ERROR. */
typedef struct AdrHttpResult
{
	bool		ok;
	int			status_code;	/* 0 when no response came */
	double		latency_ms;
	int64		bytes;			/* body bytes received */
	bool		truncated;		/* stopped reading at max_body */
	char	   *error;			/* NULL when ok (or a note when truncated) */
	char	   *body;			/* keep_body: NUL-terminated, else NULL */
} AdrHttpResult;

/* The limits every request of a batch obeys. */
typedef struct AdrHttpLimits
{
	int			max_redirects;
	int64		max_body;
	const char *allowed_hosts;	/* adr_ops.http_allowed_hosts */
} AdrHttpLimits;

extern void adr_http_perform(const AdrHttpRequest *reqs, AdrHttpResult *results,
							 int n, const AdrHttpLimits *limits);
extern bool adr_http_hosts_parse_ok(const char *list, char **bad);
extern bool adr_http_has_crlf(const char *s);
extern void adr_http_versions(const char **curl, const char **tls);
extern char *adr_http_valid_text(char *s);

#endif							/* ADR_OPS_HTTP_H */
