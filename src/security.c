/*-------------------------------------------------------------------------
 *
 * security.c
 *	  The IP blocklist, auto-ban after failed authentications and
 *	  maintenance mode, enforced in ClientAuthentication_hook.
 *
 * The tables adr_ops.blocklist and adr_ops.maintenance_state (in the
 * database named by adr_ops.database) are the source of truth; shared
 * memory holds the live copy the hook reads, because the hook runs before
 * the backend is connected to a database and can read nothing else.
 *
 * Keeping the copy in step with the tables:
 *	- every function that changes them calls _security_stage(), which reads
 *	  both tables (with the latest snapshot, so it sees concurrent commits
 *	  and the caller's own changes) into backend memory; a transaction
 *	  callback copies that into shared memory at COMMIT and drops it at
 *	  ABORT.  The SQL callers lock adr_ops.blocklist in SHARE ROW EXCLUSIVE
 *	  mode first, so that two changers cannot each stage a list missing the
 *	  other's change (the callback runs before the lock is released);
 *	- the scheduler launcher stages the tables on its first pass after
 *	  start-up (and on every pass on a standby, where changes arrive by
 *	  replay).  Until then, the copy is empty and maintenance mode off:
 *	  see docs/security.md.  When the launcher finds the extension gone
 *	  (DROP EXTENSION), it empties the copy and reads the tables again
 *	  once the extension is back.
 *
 * Auto-bans: the hook cannot write SQL during authentication, so a ban is
 * entered in shared memory at once, marked pending with a sequence number,
 * and the launcher is woken.  The next _security_stage() -- the launcher's
 * or any changing function's -- inserts the pending bans into the table;
 * once its transaction commits, the bans it wrote stop being pending.
 * Failures are counted, and banned, per IPv4 address and per IPv6 /64.
 * Auto-bans hold at most adr_ops.auth_ban_share of the entries and replace
 * their own oldest when that is full, so that manual ranges always fit
 * (sec_count_failure); the writer deletes the replaced rows.
 *
 * Untrusted input: the hook runs for any client that can open a
 * connection, before it authenticated.  Its address is only compared and
 * stored as an address; the names of its startup packet are stored and
 * logged only cleaned to printable ASCII (sec_clean_name), valid in every
 * database encoding that later reads shared memory or the tables.
 *
 * Locking: SecShared.lock (an LWLock of tranche "adr_ops_security")
 * protects all of SecShared.  The hook takes it LW_SHARED to look up the
 * blocklist and the maintenance flag, and LW_EXCLUSIVE only to count a
 * failed authentication (a few hundred nanoseconds: a scan of a fixed
 * table); nothing that can fail or sleep runs while it is held.  It is
 * never taken together with AdrShared.lock.
 *
 * IDENTIFICATION
 *	  src/security.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type_d.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "mb/pg_wchar.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "adr_ops.h"
#include "compat.h"
#include "scheduler.h"
#include "security.h"

PG_FUNCTION_INFO_V1(adr_security_stage);
PG_FUNCTION_INFO_V1(adr_security_state);
PG_FUNCTION_INFO_V1(adr_security_state_1_1);
PG_FUNCTION_INFO_V1(adr_auth_failures);
PG_FUNCTION_INFO_V1(adr_security_blocked);
PG_FUNCTION_INFO_V1(adr_security_stage_trigger);
PG_FUNCTION_INFO_V1(adr_maintenance_admits);

#define SEC_FAILURE_SLOTS	512		/* addresses whose failures are counted */
#define SEC_USERS_PER_ADDR	4		/* user names remembered per address */
#define SEC_MESSAGE_LEN		512
#define SEC_V6_GROUP_BITS	64		/* IPv6 failures and auto-bans: per /64 */
#define SEC_AUTO_BAN		"adr_ops auto-ban"	/* blocklist.blocked_by of auto-bans */

/* One blocked range.  family is PGSQL_AF_INET or PGSQL_AF_INET6. */
typedef struct SecEntry
{
	uint8		family;
	uint8		bits;
	uint8		addr[16];
	bool		autoban;		/* blocked_by is SEC_AUTO_BAN */
	TimestampTz blocked_at;
	TimestampTz expires;		/* 0: never */
	uint64		pending_seq;	/* > 0: an auto-ban not yet in the table */
	int			failures;		/* for the reason of an auto-ban */
} SecEntry;

/*
 * Failures are counted per group: an IPv4 address, or an IPv6 /64 (one
 * host usually holds a whole /64, so counting its addresses one by one
 * would let it fail 2^64 times as often).  The user names are cleaned
 * (sec_clean_name).
 */
typedef struct SecFailure
{
	uint8		family;			/* 0: free slot */
	uint8		bits;			/* 32, or SEC_V6_GROUP_BITS */
	uint8		addr[16];		/* the group's first address */
	int			count;			/* failures since first_seen */
	int64		total;			/* failures ever (while the slot lived) */
	TimestampTz first_seen;
	TimestampTz last_seen;
	int			nusers;
	char		users[SEC_USERS_PER_ADDR][NAMEDATALEN];
} SecFailure;

typedef struct SecShared
{
	LWLock	   *lock;
	bool		loaded;			/* staged from the tables at least once */
	uint64		generation;		/* bumped at every apply */
	uint64		last_seq;		/* last pending_seq handed out */
	bool		maintenance;
	char		message[SEC_MESSAGE_LEN];
	SecFailure	failures[SEC_FAILURE_SLOTS];
	int			capacity;		/* adr_ops.max_blocked at start-up */
	int			auto_capacity;	/* how many of them auto-bans may hold */
	int			nentries;
	SecEntry	entries[FLEXIBLE_ARRAY_MEMBER];
} SecShared;

/* What a transaction staged, applied at its commit. */
typedef struct SecStaged
{
	int			nentries;
	SecEntry   *entries;
	bool		maintenance;
	char		message[SEC_MESSAGE_LEN];
	uint64		persisted_seq;	/* pending bans up to this one are now rows */
	uint64		generation;		/* SecShared.generation when the tables were read */
	int			nest_level;		/* the (sub)transaction level that staged it */
} SecStaged;

/* Settings. */
int			adr_ops_max_blocked = 1024;
int			adr_ops_auth_failure_limit = 0;
int			adr_ops_auth_failure_window = 600;
int			adr_ops_auth_ban_duration = 3600;
bool		adr_ops_auth_ban_loopback = false;
int			adr_ops_auth_ban_share = 50;
char	   *adr_ops_maintenance_allow_roles = NULL;

static SecShared *sec = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static SecStaged *sec_staged = NULL;
static bool sec_callback_registered = false;

/*
 * A subtransaction that staged was rolled back: what it read may include
 * its own undone changes, and the tables cannot be read again at commit.
 * The commit then hands the reload to the launcher instead.
 */
static bool sec_reload_at_commit = false;

/* Inside sec_stage(): its own INSERTs must not stage again (the trigger). */
static bool sec_in_stage = false;

static Size
sec_shmem_size(void)
{
	return add_size(offsetof(SecShared, entries),
					mul_size(sizeof(SecEntry), adr_ops_max_blocked));
}

/* This module's shared memory: its own hooks, chained to the others'. */
static void
sec_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sec_shmem_size()));
	RequestNamedLWLockTranche("adr_ops_security", 1);
}

static void
sec_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sec = ShmemInitStruct("adr_ops_security", sec_shmem_size(), &found);
	if (!found)
	{
		memset(sec, 0, sec_shmem_size());
		sec->lock = &(GetNamedLWLockTranche("adr_ops_security"))->lock;
		sec->capacity = adr_ops_max_blocked;
		sec->auto_capacity = (int) ((int64) adr_ops_max_blocked * adr_ops_auth_ban_share / 100);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ERROR unless this module's shared memory exists (adr_ops was preloaded). */
static void
sec_require_preload(const char *what)
{
	if (sec == NULL)
		adr_preload_error(what);
}

/* ---------- addresses ---------- */

/*
 * An IPv4-mapped IPv6 address or range (::ffff:0:0/96 and narrower) as the
 * IPv4 address or range it stands for: the hook matches such clients as
 * IPv4, so a mapped entry would never match.  adr_block_ip() stores the
 * IPv4 form (adr_ops._ipv4_unmapped()); rows written otherwise are
 * converted when loaded.  Returns the family; *bits is converted with it.
 */
static int
sec_unmap(int family, uint8 *addr, int *bits)
{
	static const uint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8		v4[4];

	if (family != PGSQL_AF_INET6 || *bits < 96 || memcmp(addr, mapped, 12) != 0)
		return family;
	memcpy(v4, addr + 12, 4);
	memset(addr, 0, 16);
	memcpy(addr, v4, 4);
	*bits -= 96;
	return PGSQL_AF_INET;
}

/*
 * The client's address as (family, 16 bytes); 0 for a Unix socket or
 * anything else that is not IP.  An IPv4-mapped IPv6 address counts as IPv4.
 */
static int
sec_port_addr(const Port *port, uint8 *addr)
{
	const struct sockaddr_storage *ss = &port->raddr.addr;
	int			bits = 128;

	memset(addr, 0, 16);
	if (ss->ss_family == AF_INET)
	{
		memcpy(addr, &((const struct sockaddr_in *) ss)->sin_addr, 4);
		return PGSQL_AF_INET;
	}
	if (ss->ss_family == AF_INET6)
	{
		memcpy(addr, &((const struct sockaddr_in6 *) ss)->sin6_addr, 16);
		return sec_unmap(PGSQL_AF_INET6, addr, &bits);
	}
	return 0;
}

/*
 * The group an address's failures and auto-ban belong to: an IPv4 address
 * itself, an IPv6 address's /64.  Returns the prefix length; *group gets
 * the group's first address.
 */
static int
sec_group(int family, const uint8 *addr, uint8 *group)
{
	memset(group, 0, 16);
	if (family == PGSQL_AF_INET)
	{
		memcpy(group, addr, 4);
		return 32;
	}
	memcpy(group, addr, SEC_V6_GROUP_BITS / 8);
	return SEC_V6_GROUP_BITS;
}

/*
 * A string from the startup packet, which anyone who can open a connection
 * writes before authenticating, made fit to be stored and shown: printable
 * ASCII stays, every other byte (and the backslash, so that the result
 * reads back unambiguously) becomes \xNN, and the result is cut at a whole
 * character to fit in len bytes.  Printable ASCII is valid in every server
 * encoding, whatever database reads it later (as core does for
 * application_name).
 */
static void
sec_clean_name(const char *in, char *out, size_t len)
{
	size_t		n = 0;

	Assert(len > 0);
	for (; in != NULL && *in != '\0'; in++)
	{
		unsigned char c = (unsigned char) *in;

		if (c >= 0x20 && c < 0x7f && c != '\\')
		{
			if (n + 1 >= len)
				break;
			out[n++] = (char) c;
		}
		else
		{
			if (n + 4 >= len)
				break;
			snprintf(out + n, 5, "\\x%02x", c);
			n += 4;
		}
	}
	out[n] = '\0';
}

static bool
sec_match(const SecEntry *e, int family, const uint8 *addr)
{
	return e->family == family && bitncmp(e->addr, addr, e->bits) == 0;
}

static bool
sec_is_loopback(int family, const uint8 *addr)
{
	static const uint8 v6loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

	if (family == PGSQL_AF_INET)
		return addr[0] == 127;
	return memcmp(addr, v6loop, 16) == 0;
}

static void
sec_addr_string(int family, const uint8 *addr, int bits, char *buf, size_t len)
{
	inet_ntop(family == PGSQL_AF_INET ? AF_INET : AF_INET6, addr, buf, len);
	if (bits >= 0 && bits != (family == PGSQL_AF_INET ? 32 : 128))
		snprintf(buf + strlen(buf), len - strlen(buf), "/%d", bits);
}

static Datum
sec_inet_datum(int family, const uint8 *addr, int bits)
{
	inet	   *ip = (inet *) palloc0(sizeof(inet));

	ip_family(ip) = family;
	ip_bits(ip) = bits;
	memcpy(ip_addr(ip), addr, family == PGSQL_AF_INET ? 4 : 16);
	SET_INET_VARSIZE(ip);
	return InetPGetDatum(ip);
}

/* ---------- the authentication hook ---------- */

/*
 * Count a failed authentication from an address (user: cleaned); ban its
 * group (sec_group) if the group reached the limit within the window.
 * Returns the failure count of a new ban, -1 when there was no room for
 * it, else 0.  *group and *gbits get the group; evicted->family is
 * non-zero when the ban took the place of the oldest auto-ban.
 *
 * Auto-bans hold at most sec->auto_capacity entries
 * (adr_ops.auth_ban_share of adr_ops.max_blocked), and never take the
 * place of a manual entry: when their share is full, or the copy is full,
 * a new ban replaces the oldest auto-ban (the launcher deletes its row,
 * sec_persist_pending).  adr_block_ip() admits manual ranges up to the
 * rest, so that an address that fails, or a /64 full of them, can never
 * crowd out the operator's own blocks.
 */
static int
sec_count_failure(int family, const uint8 *addr, const char *user,
				  uint8 *group, int *gbits, SecEntry *evicted)
{
	TimestampTz now = GetCurrentTimestamp();
	SecFailure *f = NULL;
	SecFailure *oldest = NULL;
	int			banned = 0;
	int			i;

	*gbits = sec_group(family, addr, group);
	evicted->family = 0;

	LWLockAcquire(sec->lock, LW_EXCLUSIVE);
	for (i = 0; i < SEC_FAILURE_SLOTS; i++)
	{
		SecFailure *s = &sec->failures[i];

		if (s->family == family && memcmp(s->addr, group, 16) == 0)
		{
			f = s;
			break;
		}
		if (oldest == NULL || s->family == 0 ||
			(oldest->family != 0 && s->last_seen < oldest->last_seen))
			oldest = s;
	}
	if (f == NULL)
	{
		/* A new group takes a free slot, or the one idle the longest. */
		f = oldest;
		memset(f, 0, sizeof(SecFailure));
		f->family = family;
		f->bits = *gbits;
		memcpy(f->addr, group, 16);
		f->first_seen = now;
	}
	if (f->count == 0 ||
		now - f->first_seen > (int64) adr_ops_auth_failure_window * USECS_PER_SEC)
	{
		f->count = 0;
		f->first_seen = now;
	}
	f->count++;
	f->total++;
	f->last_seen = now;
	if (user && user[0])
	{
		bool		known = false;

		for (i = 0; i < f->nusers; i++)
			if (strncmp(f->users[i], user, NAMEDATALEN) == 0)
				known = true;
		if (!known && f->nusers < SEC_USERS_PER_ADDR)
			strlcpy(f->users[f->nusers++], user, NAMEDATALEN);
	}

	if (adr_ops_auth_failure_limit > 0 && f->count >= adr_ops_auth_failure_limit &&
		(adr_ops_auth_ban_loopback || !sec_is_loopback(family, addr)))
	{
		SecEntry   *slot = NULL;
		SecEntry   *oldest_auto = NULL;
		int			nauto = 0;
		bool		blocked = false;

		/*
		 * A group blocked already (a blocked client can still fail to
		 * authenticate: the hook refuses it only after authentication) gets
		 * no second entry.  An expired entry's slot is reused (the table
		 * keeps its row).
		 */
		for (i = 0; i < sec->nentries; i++)
		{
			SecEntry   *e = &sec->entries[i];

			if (e->expires != 0 && e->expires <= now)
			{
				if (slot == NULL)
					slot = e;
				continue;
			}
			if (e->bits <= *gbits && sec_match(e, family, group))
				blocked = true;
			if (e->autoban)
			{
				nauto++;
				if (oldest_auto == NULL || e->blocked_at < oldest_auto->blocked_at)
					oldest_auto = e;
			}
		}
		if (!blocked)
		{
			if (nauto >= sec->auto_capacity ||
				(slot == NULL && sec->nentries >= sec->capacity))
			{
				/* no room of their own: the oldest auto-ban makes room */
				slot = oldest_auto;
				if (slot != NULL)
					*evicted = *slot;
			}
			else if (slot == NULL)
				slot = &sec->entries[sec->nentries++];
			if (slot != NULL)
			{
				memset(slot, 0, sizeof(SecEntry));
				slot->family = family;
				slot->bits = *gbits;
				memcpy(slot->addr, group, 16);
				slot->autoban = true;
				slot->blocked_at = now;
				slot->expires = now + (int64) adr_ops_auth_ban_duration * USECS_PER_SEC;
				slot->pending_seq = ++sec->last_seq;
				slot->failures = f->count;
				banned = f->count;
			}
			else
				banned = -1;
		}
		f->count = 0;
	}
	LWLockRelease(sec->lock);
	return banned;
}

/*
 * May this role connect during maintenance?  Superusers, and members of a
 * role named in adr_ops.maintenance_allow_roles (parsed as identifiers:
 * unquoted names are folded to lower case, quoted ones kept).  The hook
 * calls it inside InitPostgres' transaction, where the shared catalogs'
 * caches can be read; adr_maintenance_mode() calls it through
 * adr_ops._maintenance_admits(), so both agree on who is admitted.
 */
static bool
sec_maintenance_admits(const char *user)
{
	HeapTuple	tup;
	Oid			roleid;
	bool		super;
	char	   *list;
	List	   *names;
	ListCell   *lc;
	bool		admitted = false;

	if (user == NULL)
		return false;
	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(user));
	if (!HeapTupleIsValid(tup))
		return false;
	super = ((Form_pg_authid) GETSTRUCT(tup))->rolsuper;
	roleid = ((Form_pg_authid) GETSTRUCT(tup))->oid;
	ReleaseSysCache(tup);
	if (super)
		return true;

	if (adr_ops_maintenance_allow_roles == NULL || adr_ops_maintenance_allow_roles[0] == '\0')
		return false;
	list = pstrdup(adr_ops_maintenance_allow_roles);
	if (!SplitIdentifierString(list, ',', &names))
		return false;			/* the check hook makes this unreachable */
	foreach(lc, names)
	{
		Oid			allowed = get_role_oid((char *) lfirst(lc), true);

		if (OidIsValid(allowed) && is_member_of_role(roleid, allowed))
		{
			admitted = true;
			break;
		}
	}
	list_free(names);
	pfree(list);
	return admitted;
}

/*
 * Is the address in an unexpired range?  If so, *hit gets the entry.
 * Takes the lock LW_SHARED for one scan of the copy.
 */
static bool
sec_lookup(int family, const uint8 *addr, SecEntry *hit)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		blocked = false;
	int			i;

	LWLockAcquire(sec->lock, LW_SHARED);
	for (i = 0; i < sec->nentries; i++)
	{
		const SecEntry *e = &sec->entries[i];

		if ((e->expires == 0 || e->expires > now) && sec_match(e, family, addr))
		{
			*hit = *e;
			blocked = true;
			break;
		}
	}
	LWLockRelease(sec->lock);
	return blocked;
}

static void
sec_client_auth(Port *port, int status)
{
	uint8		addr[16];
	int			family;
	char		client[INET6_ADDRSTRLEN + 8];
	char		user[NAMEDATALEN];

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (sec == NULL)
		return;

	family = sec_port_addr(port, addr);

	/* The name as the client sent it, unauthenticated: never stored raw. */
	sec_clean_name(port->user_name, user, sizeof(user));

	if (status != STATUS_OK)
	{
		int			banned;
		uint8		group[16];
		int			gbits;
		SecEntry	evicted;
		char		range[INET6_ADDRSTRLEN + 8];

		/* STATUS_EOF is a client that hung up to ask for a password. */
		if (status != STATUS_ERROR || family == 0)
			return;
		banned = sec_count_failure(family, addr, user, group, &gbits, &evicted);
		sec_addr_string(family, addr, -1, client, sizeof(client));
		ereport(LOG,
				(errmsg("adr_ops counted a failed authentication from host \"%s\" for user \"%s\"",
						client, user)));
		if (banned > 0)
		{
			sec_addr_string(family, group, gbits, range, sizeof(range));
			ereport(LOG,
					(errmsg("adr_ops blocked host \"%s\" after %d failed authentications",
							client, banned),
					 errdetail("The ban of \"%s\" lasts %d seconds (adr_ops.auth_ban_duration).",
							   range, adr_ops_auth_ban_duration)));
			if (evicted.family != 0)
			{
				sec_addr_string(evicted.family, evicted.addr, evicted.bits, range, sizeof(range));
				ereport(LOG,
						(errmsg("adr_ops lifted the oldest auto-ban, of \"%s\", to make room",
								range),
						 errdetail("Auto-bans may hold %d of the %d entries of the blocklist (adr_ops.auth_ban_share).",
								   sec->auto_capacity, sec->capacity)));
			}
			adr_wake_launcher();
		}
		else if (banned < 0)
			ereport(WARNING,
					(errmsg("adr_ops could not block host \"%s\": there is no room for auto-bans", client),
					 errdetail("Auto-bans may hold %d of the %d entries of the blocklist (adr_ops.auth_ban_share).",
							   sec->auto_capacity, sec->capacity),
					 errhint("Raise \"adr_ops.max_blocked\" or \"adr_ops.auth_ban_share\".")));
		return;
	}

	/* Unix-socket connections are never blocked: the operator's way in. */
	if (family != 0)
	{
		SecEntry	hit;

		if (sec_lookup(family, addr, &hit))
		{
			char		range[INET6_ADDRSTRLEN + 8];

			sec_addr_string(family, addr, -1, client, sizeof(client));
			sec_addr_string(hit.family, hit.addr, hit.bits, range, sizeof(range));
			ereport(LOG,
					(errmsg("adr_ops refused a connection from host \"%s\" for user \"%s\": blocked range \"%s\"",
							client, user, range)));
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("connection refused by adr_ops blocklist"),
					 errdetail_log("Host \"%s\" is in the blocked range \"%s\".", client, range)));
		}
	}

	/*
	 * Maintenance mode; standbys' (physical) walsenders keep streaming.  A
	 * logical walsender (replication=database) runs as a role like any
	 * other session and is refused.
	 */
	if (sec->maintenance && !(am_walsender && !am_db_walsender))
	{
		char		message[SEC_MESSAGE_LEN];
		bool		on;

		LWLockAcquire(sec->lock, LW_SHARED);
		on = sec->maintenance;
		strlcpy(message, sec->message, sizeof(message));
		LWLockRelease(sec->lock);

		if (on && !sec_maintenance_admits(port->user_name))
			ereport(FATAL,
					(errcode(ERRCODE_CANNOT_CONNECT_NOW),
					 errmsg("the database system is in maintenance mode"),
					 message[0] ? errdetail("%s", message) : 0,
					 errhint("Only superusers and members of the roles in \"adr_ops.maintenance_allow_roles\" may connect now.")));
	}
}

/* ---------- keeping shared memory in step with the tables ---------- */

static void
sec_drop_staged(void)
{
	if (sec_staged)
	{
		pfree(sec_staged->entries);
		pfree(sec_staged);
		sec_staged = NULL;
	}
}

static void
sec_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (sec_staged == NULL || sec_staged->nest_level < level)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
		sec_staged->nest_level = level - 1;
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		sec_drop_staged();
		sec_reload_at_commit = true;
	}
}

/*
 * Drop the oldest auto-bans of a list until they fit in their share; returns
 * the new length.  An apply merges the table as read with the bans entered
 * since, which may have replaced entries of what was read.
 */
static int
sec_trim_auto(SecEntry *entries, int n)
{
	TimestampTz now = GetCurrentTimestamp();

	for (;;)
	{
		int			nauto = 0;
		int			oldest = -1;
		int			i;

		for (i = 0; i < n; i++)
			if (entries[i].autoban && (entries[i].expires == 0 || entries[i].expires > now))
			{
				nauto++;
				if (oldest < 0 || entries[i].blocked_at < entries[oldest].blocked_at)
					oldest = i;
			}
		if (nauto <= sec->auto_capacity)
			return n;
		memmove(&entries[oldest], &entries[oldest + 1], sizeof(SecEntry) * (n - oldest - 1));
		n--;
	}
}

static void
sec_xact_callback(XactEvent event, void *arg)
{
	SecStaged  *st = sec_staged;
	int			n;
	int			i;

	/*
	 * A transaction that staged cannot be prepared: its change would reach
	 * shared memory at no commit.  Also when what it staged was dropped by
	 * ROLLBACK TO a savepoint (sec_reload_at_commit): its own changes
	 * outside the savepoint may remain.
	 */
	if (event == XACT_EVENT_PRE_PREPARE && (st != NULL || sec_reload_at_commit))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot prepare a transaction that changed the adr_ops blocklist or maintenance mode")));

	if (sec_reload_at_commit && st == NULL &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT))
	{
		sec_reload_at_commit = false;
		if (event == XACT_EVENT_COMMIT)
		{
			LWLockAcquire(sec->lock, LW_EXCLUSIVE);
			sec->loaded = false;
			LWLockRelease(sec->lock);
			adr_wake_launcher();
		}
		return;
	}
	if (st == NULL)
		return;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			LWLockAcquire(sec->lock, LW_EXCLUSIVE);
			if (sec->generation != st->generation)
			{
				/*
				 * Another transaction applied its copy after we read the
				 * tables: ours may lack its change (direct DML takes no lock
				 * that serializes the changers).  The launcher reads the
				 * tables again instead.
				 */
				sec->loaded = false;
				LWLockRelease(sec->lock);
				adr_wake_launcher();
				break;
			}
			/* Auto-bans written after this transaction read the table stay. */
			n = 0;
			for (i = 0; i < sec->nentries; i++)
				if (sec->entries[i].pending_seq > st->persisted_seq)
					st->entries[st->nentries + n++] = sec->entries[i];
			n = sec_trim_auto(st->entries, st->nentries + n);
			n = Min(n, sec->capacity);
			memcpy(sec->entries, st->entries, sizeof(SecEntry) * n);
			sec->nentries = n;
			sec->maintenance = st->maintenance;
			memcpy(sec->message, st->message, SEC_MESSAGE_LEN);
			sec->loaded = true;
			sec->generation++;
			LWLockRelease(sec->lock);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			break;
		default:
			return;
	}
	sec_drop_staged();
	sec_reload_at_commit = false;
}

/* ERROR unless preloaded and in the database that holds the tables. */
static void
sec_check_database(void)
{
	char	   *db;

	sec_require_preload("The adr_ops authentication hook");
	db = get_database_name(MyDatabaseId);
	if (db == NULL || strcmp(db, adr_ops_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the adr_ops blocklist and maintenance mode are kept in database \"%s\"",
						adr_ops_database),
				 errdetail("The current database is \"%s\".", db ? db : "?"),
				 errhint("Connect to database \"%s\", or change \"adr_ops.database\".",
						 adr_ops_database)));
}

/*
 * Write pending auto-bans newer than "after" into adr_ops.blocklist, then
 * delete the active auto-bans beyond the auto-ban share, oldest first (the
 * hook replaced them already; sec_count_failure); returns the sequence
 * number up to which they are written.  "after" is what this transaction
 * wrote already: a ban written and then unblocked in the same transaction
 * is still pending in shared memory until the commit, and must not be
 * written again.  SPI must be connected.
 */
static uint64
sec_persist_pending(uint64 after)
{
	SecEntry   *pending;
	int			npending = 0;
	uint64		upto;
	TimestampTz now = GetCurrentTimestamp();
	Oid			argtypes[4] = {CIDROID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Oid			limittype[1] = {INT4OID};
	Datum		limit[1];
	int			i;

	pending = palloc(sizeof(SecEntry) * sec->capacity);
	LWLockAcquire(sec->lock, LW_SHARED);
	upto = sec->last_seq;
	for (i = 0; i < sec->nentries; i++)
		if (sec->entries[i].pending_seq > after)
			pending[npending++] = sec->entries[i];
	LWLockRelease(sec->lock);
	upto = Max(upto, after);

	for (i = 0; i < npending; i++)
	{
		Datum		values[4];
		char		nulls[4] = {' ', ' ', ' ', ' '};

		if (pending[i].expires <= now)
			continue;			/* expired before it was written */
		values[0] = sec_inet_datum(pending[i].family, pending[i].addr, pending[i].bits);
		values[1] = CStringGetTextDatum(psprintf("auto: %d failed authentications",
												 pending[i].failures));
		values[2] = TimestampTzGetDatum(pending[i].expires);
		values[3] = TimestampTzGetDatum(pending[i].blocked_at);

		/*
		 * An expired row of the same range (the table keeps them) becomes
		 * this ban; an active one (a race with a change of the table) stays
		 * as it is, only its expiry may grow.
		 */
		if (SPI_execute_with_args(
								  "INSERT INTO adr_ops.blocklist AS b (client, reason, expires_at, blocked_at, blocked_by) "
								  "VALUES ($1, $2, $3, $4, '" SEC_AUTO_BAN "') "
								  "ON CONFLICT (client) DO UPDATE SET "
								  "  reason = CASE WHEN b.expires_at IS NULL "
								  "                  OR b.expires_at OPERATOR(pg_catalog.>) pg_catalog.now() "
								  "                THEN b.reason ELSE excluded.reason END, "
								  "  blocked_at = CASE WHEN b.expires_at IS NULL "
								  "                      OR b.expires_at OPERATOR(pg_catalog.>) pg_catalog.now() "
								  "                    THEN b.blocked_at ELSE excluded.blocked_at END, "
								  "  blocked_by = CASE WHEN b.expires_at IS NULL "
								  "                      OR b.expires_at OPERATOR(pg_catalog.>) pg_catalog.now() "
								  "                    THEN b.blocked_by ELSE excluded.blocked_by END, "
								  "  expires_at = CASE WHEN b.expires_at IS NULL THEN NULL "
								  "                    ELSE GREATEST(b.expires_at, excluded.expires_at) END",
								  4, argtypes, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record an auto-ban");
	}
	pfree(pending);

	limit[0] = Int32GetDatum(sec->auto_capacity);
	if (SPI_execute_with_args(
							  "DELETE FROM adr_ops.blocklist d USING ("
							  "  SELECT k.client, pg_catalog.row_number() OVER "
							  "           (ORDER BY k.blocked_at DESC, k.client DESC) AS n "
							  "    FROM adr_ops.blocklist k "
							  "   WHERE k.blocked_by OPERATOR(pg_catalog.=) '" SEC_AUTO_BAN "' "
							  "     AND (k.expires_at IS NULL "
							  "          OR k.expires_at OPERATOR(pg_catalog.>) pg_catalog.now())) o "
							  " WHERE d.client OPERATOR(pg_catalog.=) o.client "
							  "   AND o.n OPERATOR(pg_catalog.>) $1",
							  1, limittype, limit, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not remove the oldest auto-bans");
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("adr_ops removed the %d oldest auto-bans from adr_ops.blocklist",
						(int) SPI_processed),
				 errdetail("Auto-bans may hold %d of the %d entries of the blocklist (adr_ops.auth_ban_share).",
						   sec->auto_capacity, sec->capacity)));
	return upto;
}

/*
 * Read the tables into a SecStaged that the commit callback applies.
 * With persist, pending auto-bans are written first.  SPI must be
 * connected.
 *
 * Manual entries are loaded first (those that expire last first), up to
 * adr_ops.max_blocked; then the newest auto-bans, up to their share and
 * what room is left.  More rows than fit (after adr_ops.max_blocked was
 * lowered, or a longer list restored or inserted directly): the first are
 * loaded with a WARNING, so that the launcher, adr_unblock_ip() and
 * adr_maintenance_mode() still work; adr_block_ip() refuses a manual range
 * beyond the manual share itself.  IPv4-mapped ranges are loaded as the
 * IPv4 ranges they stand for (sec_unmap).
 */
static void
sec_stage_body(bool persist)
{
	MemoryContext old;
	SecStaged  *st;
	uint64		persisted = sec_staged ? sec_staged->persisted_seq : 0;
	uint64		generation;
	SPIPlanPtr	plan;
	int			n;
	int			nauto;
	int			total;
	int			i;

	if (persist)
		persisted = sec_persist_pending(persisted);

	/* Read before the snapshot: an apply after it is seen at commit. */
	LWLockAcquire(sec->lock, LW_SHARED);
	generation = sec->generation;
	LWLockRelease(sec->lock);

	/* The latest snapshot: commits that happened while we waited for the lock. */
	CommandCounterIncrement();
	plan = SPI_prepare("SELECT client, expires_at, blocked_by OPERATOR(pg_catalog.=) '" SEC_AUTO_BAN "' AS auto, "
					   "       blocked_at "
					   "  FROM adr_ops.blocklist "
					   " WHERE expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) pg_catalog.now() "
					   " ORDER BY 3, CASE WHEN blocked_by OPERATOR(pg_catalog.=) '" SEC_AUTO_BAN "' "
					   "                  THEN blocked_at END DESC, "
					   "          expires_at DESC NULLS FIRST, client",
					   0, NULL);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read adr_ops.blocklist");
	total = (int) SPI_processed;

	old = MemoryContextSwitchTo(TopMemoryContext);
	st = palloc0(sizeof(SecStaged));
	/* room for the rows that fit and every entry shared memory may hold */
	st->entries = palloc0(sizeof(SecEntry) * (Min(total, sec->capacity) + sec->capacity));
	MemoryContextSwitchTo(old);
	st->persisted_seq = persisted;
	st->generation = generation;

	n = 0;
	nauto = 0;
	for (i = 0; i < total && n < sec->capacity; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		inet	   *ip = DatumGetInetPP(SPI_getbinval(tup, desc, 1, &isnull));
		Datum		exp = SPI_getbinval(tup, desc, 2, &isnull);
		bool		expnull = isnull;
		bool		autoban = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		Datum		at = SPI_getbinval(tup, desc, 4, &isnull);
		SecEntry   *e = &st->entries[n];
		int			bits = ip_bits(ip);

		if (autoban && nauto >= sec->auto_capacity)
			continue;
		memset(e, 0, sizeof(SecEntry));
		memcpy(e->addr, ip_addr(ip), ip_family(ip) == PGSQL_AF_INET ? 4 : 16);
		e->family = sec_unmap(ip_family(ip), e->addr, &bits);
		e->bits = bits;
		e->expires = expnull ? 0 : DatumGetTimestampTz(exp);
		e->autoban = autoban;
		e->blocked_at = isnull ? 0 : DatumGetTimestampTz(at);
		if (autoban)
			nauto++;
		n++;
	}
	st->nentries = n;
	if (total > sec->capacity)
		ereport(WARNING,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the adr_ops blocklist holds more ranges than \"adr_ops.max_blocked\": %d are not enforced",
						total - n),
				 errdetail("%d ranges are blocked in adr_ops.blocklist; \"adr_ops.max_blocked\" is %d.  Manual entries are enforced first, then the newest auto-bans.",
						   total, sec->capacity),
				 errhint("Unblock ranges with adr_unblock_ip(), block wider ranges, or raise \"adr_ops.max_blocked\" and restart the server.")));
	else if (n < total)
		ereport(LOG,
				(errmsg("adr_ops enforces the %d newest auto-bans of adr_ops.blocklist: %d older ones are not enforced",
						nauto, total - n),
				 errdetail("Auto-bans may hold %d of the %d entries of the blocklist (adr_ops.auth_ban_share).",
						   sec->auto_capacity, sec->capacity)));

	plan = SPI_prepare("SELECT enabled, message FROM adr_ops.maintenance_state", 0, NULL);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 0) != SPI_OK_SELECT)
	{
		pfree(st->entries);
		pfree(st);
		elog(ERROR, "could not read adr_ops.maintenance_state");
	}
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		char	   *msg;

		st->maintenance = !isnull && DatumGetBool(d);
		msg = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		/* whole characters only (the table may have been written directly) */
		if (msg)
			memcpy(st->message, msg, pg_mbcliplen(msg, strlen(msg), SEC_MESSAGE_LEN - 1));
	}

	if (!sec_callback_registered)
	{
		RegisterXactCallback(sec_xact_callback, NULL);
		RegisterSubXactCallback(sec_subxact_callback, NULL);
		sec_callback_registered = true;
	}
	/* A later call in the same transaction replaces the earlier one. */
	sec_drop_staged();
	st->nest_level = GetCurrentTransactionNestLevel();
	sec_staged = st;
	sec_reload_at_commit = false;
}

static void
sec_stage(bool persist)
{
	sec_in_stage = true;
	PG_TRY();
	{
		sec_stage_body(persist);
	}
	PG_FINALLY();
	{
		sec_in_stage = false;
	}
	PG_END_TRY();
}

/*
 * _security_stage(): called by the functions that change the tables, after
 * the change.  The copy in shared memory changes when the caller commits.
 */
Datum
adr_security_stage(PG_FUNCTION_ARGS)
{
	sec_check_database();
	SPI_connect();
	sec_stage(!RecoveryInProgress());
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * _security_stage_trigger(): AFTER ... FOR EACH STATEMENT on
 * adr_ops.blocklist and adr_ops.maintenance_state, so that changes not made
 * through the functions (direct DML, pg_restore) reach shared memory at
 * commit too.  Without preloading, outside adr_ops.database, and for
 * sec_stage()'s own writes it does nothing.
 */
Datum
adr_security_stage_trigger(PG_FUNCTION_ARGS)
{
	char	   *db;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "adr_ops._security_stage_trigger() must be called as a trigger");
	if (sec == NULL || sec_in_stage || RecoveryInProgress())
		return PointerGetDatum(NULL);
	db = get_database_name(MyDatabaseId);
	if (db == NULL || strcmp(db, adr_ops_database) != 0)
		return PointerGetDatum(NULL);
	SPI_connect();
	sec_stage(false);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * _maintenance_admits(role name): whether the role may connect in
 * maintenance mode, decided as the hook decides it.
 */
Datum
adr_maintenance_admits(PG_FUNCTION_ARGS)
{
	Name		role = PG_GETARG_NAME(0);

	PG_RETURN_BOOL(sec_maintenance_admits(NameStr(*role)));
}

/*
 * From the launcher's pass (a transaction, SPI connected): load the tables
 * after start-up, write pending auto-bans, and on a standby re-read them
 * every pass.  A failure is logged and retried on the next pass; it never
 * fails the launcher's pass.
 */
static void
sec_launcher_sync(bool in_recovery, bool extension_ready)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		needed;
	int			i;

	if (sec == NULL)
		return;

	/*
	 * Without the extension (dropped, or not created yet) there are no
	 * tables: nothing is blocked but pending auto-bans, maintenance is off,
	 * and the tables are read again once the extension is back.
	 */
	if (!extension_ready)
	{
		int			n = 0;

		LWLockAcquire(sec->lock, LW_EXCLUSIVE);
		if (sec->loaded)
		{
			for (i = 0; i < sec->nentries; i++)
				if (sec->entries[i].pending_seq > 0)
					sec->entries[n++] = sec->entries[i];
			sec->nentries = n;
			sec->maintenance = false;
			sec->message[0] = '\0';
			sec->loaded = false;
			sec->generation++;
		}
		LWLockRelease(sec->lock);
		return;
	}
	LWLockAcquire(sec->lock, LW_SHARED);
	needed = !sec->loaded || in_recovery;
	for (i = 0; i < sec->nentries && !needed; i++)
		if (sec->entries[i].pending_seq > 0)
			needed = true;
	LWLockRelease(sec->lock);
	if (!needed)
		return;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		Oid			nsp = get_namespace_oid("adr_ops", true);
		Oid			blocklist = OidIsValid(nsp) ? get_relname_relid("blocklist", nsp) : InvalidOid;

		/*
		 * On a primary, the lock the changing functions take: a changer
		 * that runs now (an unblock of a pending ban, say) must not have
		 * its change overwritten by our older copy.  Never wait for it:
		 * the next pass tries again.
		 */
		if (in_recovery || !OidIsValid(blocklist) ||
			ConditionalLockRelationOid(blocklist, ShareRowExclusiveLock))
		{
			SPI_connect();
			sec_stage(!in_recovery);
			SPI_finish();
		}
		else
			elog(DEBUG1, "adr_ops launcher: adr_ops.blocklist is locked; staging on a later pass");
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		/* the subtransaction callback dropped what it staged */
		sec_reload_at_commit = false;
	}
	PG_END_TRY();
}

/* ---------- reports ---------- */

/*
 * _security_state(): what the hook sees now.  adr_security_state_1_1 has
 * two more columns (auto_bans, auto_ban_capacity); the 1.0 symbol serves
 * the 1.0 SQL definition, whose row type has the first seven only.
 */
static Datum
sec_state(FunctionCallInfo fcinfo)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9] = {0};
	TimestampTz now = GetCurrentTimestamp();
	int			active = 0;
	int			pending = 0;
	int			nauto = 0;
	int			i;

	sec_require_preload("The adr_ops authentication hook");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (tupdesc->natts > lengthof(values))
		elog(ERROR, "return type has too many columns");

	LWLockAcquire(sec->lock, LW_SHARED);
	for (i = 0; i < sec->nentries; i++)
	{
		if (sec->entries[i].expires == 0 || sec->entries[i].expires > now)
		{
			active++;
			if (sec->entries[i].autoban)
				nauto++;
		}
		if (sec->entries[i].pending_seq > 0)
			pending++;
	}
	values[0] = BoolGetDatum(sec->loaded);
	values[1] = Int64GetDatum((int64) sec->generation);
	values[2] = Int32GetDatum(active);
	values[3] = Int32GetDatum(pending);
	values[4] = Int32GetDatum(sec->capacity);
	values[5] = BoolGetDatum(sec->maintenance);
	values[6] = CStringGetTextDatum(sec->message);
	if (!sec->message[0])
		nulls[6] = true;
	values[7] = Int32GetDatum(nauto);
	values[8] = Int32GetDatum(sec->auto_capacity);
	LWLockRelease(sec->lock);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

Datum
adr_security_state(PG_FUNCTION_ARGS)
{
	return sec_state(fcinfo);
}

Datum
adr_security_state_1_1(PG_FUNCTION_ARGS)
{
	return sec_state(fcinfo);
}

/*
 * adr_auth_failures(): the failed authentications counted per address
 * (IPv6: per /64).  count is the number within the current window (reset
 * by a ban).  The user names were cleaned when counted.
 */
Datum
adr_auth_failures(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SecFailure *copy;
	int			n = 0;
	int			i;
	int			j;

	sec_require_preload("Counting failed authentications");
	InitMaterializedSRF(fcinfo, 0);

	copy = palloc(sizeof(SecFailure) * SEC_FAILURE_SLOTS);
	LWLockAcquire(sec->lock, LW_SHARED);
	for (i = 0; i < SEC_FAILURE_SLOTS; i++)
		if (sec->failures[i].family != 0)
			copy[n++] = sec->failures[i];
	LWLockRelease(sec->lock);

	for (i = 0; i < n; i++)
	{
		Datum		values[6];
		bool		nulls[6] = {0};
		Datum	   *users = palloc(sizeof(Datum) * SEC_USERS_PER_ADDR);

		for (j = 0; j < copy[i].nusers; j++)
			users[j] = CStringGetTextDatum(copy[i].users[j]);
		values[0] = sec_inet_datum(copy[i].family, copy[i].addr, copy[i].bits);
		values[1] = PointerGetDatum(construct_array(users, copy[i].nusers, TEXTOID, -1, false, TYPALIGN_INT));
		values[2] = Int64GetDatum(copy[i].total);
		values[3] = Int32GetDatum(copy[i].count);
		values[4] = TimestampTzGetDatum(copy[i].first_seen);
		values[5] = TimestampTzGetDatum(copy[i].last_seen);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * _security_blocked(client inet): the range that refuses the address now,
 * looked up as the hook does, or NULL.  For the access review and
 * bench/auth (which times the lookup).
 */
Datum
adr_security_blocked(PG_FUNCTION_ARGS)
{
	inet	   *ip = PG_GETARG_INET_PP(0);
	uint8		addr[16] = {0};
	int			bits = ip_family(ip) == PGSQL_AF_INET ? 32 : 128;
	int			family;
	SecEntry	hit;

	sec_require_preload("The adr_ops authentication hook");
	memcpy(addr, ip_addr(ip), ip_family(ip) == PGSQL_AF_INET ? 4 : 16);
	/* an IPv4-mapped address is looked up as the hook sees it: IPv4 */
	family = sec_unmap(ip_family(ip), addr, &bits);
	if (!sec_lookup(family, addr, &hit))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(sec_inet_datum(hit.family, hit.addr, hit.bits));
}

/* ---------- settings and start-up ---------- */

static bool
sec_roles_check(char **newval, void **extra, GucSource source)
{
	char	   *list = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitIdentifierString(list, ',', &names);

	list_free(names);
	pfree(list);
	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	return ok;
}

/* Called from _PG_init. */
void
adr_security_init(void)
{
	/* Shared memory is sized by it: a postmaster setting, only when preloading. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("adr_ops.max_blocked",
								"Sets how many ranges the adr_ops blocklist can hold.",
								"adr_block_ip() refuses more manual ranges than the part that auto-bans may not hold (adr_ops.auth_ban_share).",
								&adr_ops_max_blocked,
								1024,
								1,
								1000000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	/* Splits the same shared memory: fixed at start-up too. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("adr_ops.auth_ban_share",
								"Sets the percentage of adr_ops.max_blocked that auto-bans may hold.",
								"The rest is kept for adr_block_ip(); when their share is full, a new auto-ban replaces the oldest one.",
								&adr_ops_auth_ban_share,
								50,
								0,
								90,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	DefineCustomIntVariable("adr_ops.auth_failure_limit",
							"Sets after how many failed authentications within adr_ops.auth_failure_window an address is blocked.",
							"0 turns auto-ban off.",
							&adr_ops_auth_failure_limit,
							0,
							0,
							INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("adr_ops.auth_failure_window",
							"Sets the time within which failed authentications count towards an auto-ban.",
							NULL,
							&adr_ops_auth_failure_window,
							600,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("adr_ops.auth_ban_duration",
							"Sets how long an auto-banned address stays blocked.",
							NULL,
							&adr_ops_auth_ban_duration,
							3600,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("adr_ops.auth_ban_loopback",
							 "Allows auto-ban of loopback addresses.",
							 "Off: failures from 127.0.0.0/8 and ::1 are counted but never banned.",
							 &adr_ops_auth_ban_loopback,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("adr_ops.maintenance_allow_roles",
							   "Sets the roles, besides superusers, that may connect in maintenance mode.",
							   "A comma-separated list; members of these roles are admitted too.",
							   &adr_ops_maintenance_allow_roles,
							   "",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   sec_roles_check, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
	{
#if PG_VERSION_NUM >= 150000
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = sec_shmem_request;
#else
		sec_shmem_request();
#endif
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = sec_shmem_startup;
	}
	if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade)
	{
		prev_client_auth_hook = ClientAuthentication_hook;
		ClientAuthentication_hook = sec_client_auth;
	}
	adr_launcher_pass_register(sec_launcher_sync);
}
