/*-------------------------------------------------------------------------
 *
 * dumpfilter.c
 *	  The plain-dump filter of backup verification.
 *
 * psql itself enforces that a dump runs no meta-command: the worker writes
 * "\restrict KEY" with a key of its own (random, never in the dump, on no
 * command line) into psql's stdin before the dump, and psql then refuses
 * every backslash command, \! and \connect included, whatever quoting,
 * encoding or settings the dump plays with.  pg_dump (15.14 and later)
 * brackets its output with its own \restrict and \unrestrict lines, which
 * psql would refuse in turn: the filter removes exactly two lines and
 * streams everything else unchanged:
 *   - the "\restrict KEY" line when it is the first line that is neither
 *     blank nor a "--" comment (no statement, so no COPY data, precedes it);
 *   - the "\unrestrict KEY" line with that same KEY when it is the last
 *     line that is not blank (held back until the end of the stream).
 * The restore runs as a role that owns what it creates and is a member of
 * no other role, so outside COPY data the filter also removes, like
 * pg_restore --no-owner, the lines of pg_dump that only a superuser could
 * run: "ALTER ... OWNER TO role;" and "COMMENT ON EXTENSION ...;" (the
 * worker created the extensions), and the lines the caller names
 * (AdrDumpFilterRules: "CREATE SCHEMA s;" for a schema the worker made for
 * an extension, the setval() of an extension's sequence, the COPY of an
 * extension's configuration table with its data).  COPY data starts after
 * a line "COPY ... FROM stdin;" and ends at "\.".  (A function body with
 * such a line at the start of a line would lose it: pg_dump cannot tell.)
 * A line that starts with \connect or \c is rejected before psql sees it,
 * for a clear reason (pg_dump --create writes one); psql would refuse it
 * anyway.
 *
 * Only the start of a line is ever buffered: ADR_DUMP_FILTER_HEAD_MAX
 * bytes, or ADR_DUMP_FILTER_LINE_MAX for a line that starts with ALTER,
 * COPY or COMMENT ON EXTENSION outside COPY data.  A line that long or
 * longer (its line end not counted) is a long line: it passes unchanged
 * (or goes with the data of a removed COPY), and is neither a \restrict,
 * an \unrestrict, a blank nor a removed line.  The output does not depend
 * on how the input is cut into chunks.
 *
 * Design: this file includes no PostgreSQL header, so that it can be
 * fuzzed and tested on its own (fuzz/).  The character classes are ASCII
 * and written out here, as in cron.c, rather than taken from <ctype.h>,
 * whose answers for bytes above 0x7F depend on the backend's locale.
 * t/fixtures/dump_filter_cases.txt is the table of cases that defines the
 * rule; scripts/adr-verify-backup has the same rule in awk, tested
 * against the same table.
 *
 * IDENTIFICATION
 *	  src/dumpfilter.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dumpfilter.h"

#define DF_MIN(a, b)	((a) < (b) ? (a) : (b))

static bool
df_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool
df_is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
df_is_highbit(char c)
{
	return ((unsigned char) c & 0x80) != 0;
}

/* Append to a buffer; false when malloc failed. */
static bool
df_append(AdrDumpFilterBuf *b, const char *data, size_t len)
{
	if (b->len + len + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 1024;
		char	   *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (p == NULL)
			return false;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return true;
}

static void
df_reset(AdrDumpFilterBuf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static void
df_emit(AdrDumpFilter *f, const char *data, size_t len)
{
	if (len > 0)
		f->emit(f->emit_arg, data, len);
}

/* Emit the held lines, and forget them. */
static void
df_flush_held(AdrDumpFilter *f)
{
	df_emit(f, f->held.data, f->held.len);
	df_reset(&f->held);
}

/* Is the line (with its end) "<cmd> KEY", KEY alphanumeric?  Sets key. */
static bool
df_key_line(const char *line, size_t len, const char *cmd, char *key)
{
	size_t		clen = strlen(cmd);
	size_t		i,
				start;

	if (len < clen + 2 || strncmp(line, cmd, clen) != 0 || line[clen] != ' ')
		return false;
	start = i = clen + 1;
	while (i < len && df_is_alnum(line[i]))
		i++;
	if (i == start || i - start >= ADR_DUMP_FILTER_HEAD_MAX)
		return false;
	memcpy(key, line + start, i - start);
	key[i - start] = '\0';
	if (i < len && line[i] == '\r')
		i++;
	if (i < len && line[i] == '\n')
		i++;
	return i == len;
}

static bool
df_blank(const char *line, size_t len)
{
	size_t		i;

	for (i = 0; i < len; i++)
		if (!df_is_space(line[i]))
			return false;
	return true;
}

/* Does the line start with the psql command \connect or \c? */
static bool
df_is_connect(const char *line, size_t len)
{
	size_t		n;

	if (len >= 8 && strncmp(line, "\\connect", 8) == 0)
		n = 8;
	else if (len >= 2 && strncmp(line, "\\c", 2) == 0)
		n = 2;
	else
		return false;
	return len == n || df_is_space(line[n]);
}

static AdrDumpFilterResult
df_reject_connect(AdrDumpFilter *f)
{
	snprintf(f->error, sizeof(f->error),
			 "line %lld: the dump connects to another database with \\connect "
			 "(pg_dump --create or pg_dumpall output), which a verification does not run; "
			 "verify a dump made without --create",
			 (long long) f->lineno);
	return ADR_DUMP_FILTER_REJECTED;
}

/* The line without its line end. */
static size_t
df_line_len(const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

/* Is the line (length len, no line end) an owner change of pg_dump? */
static bool
df_is_owner_line(const char *line, size_t len)
{
	const char *to = NULL;
	const char *p;
	size_t		i;

	if (len < 16 || strncmp(line, "ALTER ", 6) != 0 || line[len - 1] != ';')
		return false;
	for (p = line; p + 10 <= line + len; p++)
		if (strncmp(p, " OWNER TO ", 10) == 0)
			to = p + 10;
	if (to == NULL)
		return false;
	/* one role name: bare, or double-quoted */
	i = to - line;
	if (line[i] == '"')
	{
		for (i++; i < len - 1; i++)
		{
			if (line[i] == '"')
			{
				if (line[i + 1] == '"')
					i++;
				else
					break;
			}
		}
		return i == len - 2;
	}
	for (; i < len - 1; i++)
		if (!(df_is_alnum(line[i]) || line[i] == '_' || line[i] == '$' ||
			  df_is_highbit(line[i])))
			return false;
	return (size_t) (to - line) < len - 1;
}

/* Does the line (with its end) go, outside COPY data? */
static bool
df_drop_line(AdrDumpFilter *f, const char *line, size_t len)
{
	size_t		n = df_line_len(line, len);
	size_t		k;

	if (df_is_owner_line(line, n))
		return true;
	if (n > 22 && strncmp(line, "COMMENT ON EXTENSION ", 21) == 0 && line[n - 1] == ';')
		return true;
	for (k = 0; k < f->rules.ndrop_lines; k++)
	{
		const char *d = f->rules.drop_lines[k];

		if (strlen(d) == n && strncmp(line, d, n) == 0)
			return true;
	}
	for (k = 0; k < f->rules.ndrop_prefixes; k++)
	{
		const char *d = f->rules.drop_prefixes[k];

		if (strncmp(line, d, DF_MIN(strlen(d), n)) == 0 && n >= strlen(d))
			return true;
	}
	return false;
}

/* How much of the start of a line the filter buffers. */
static size_t
df_head_limit(AdrDumpFilter *f)
{
	const char *h = f->head.data;

	if (f->in_copy || f->head.len < 6)
		return ADR_DUMP_FILTER_HEAD_MAX;
	if (strncmp(h, "ALTER ", 6) == 0 || strncmp(h, "COPY ", 5) == 0 ||
		strncmp(h, "COMMENT ON EXTENSION", DF_MIN(f->head.len, 20)) == 0)
		return ADR_DUMP_FILTER_LINE_MAX;
	return ADR_DUMP_FILTER_HEAD_MAX;
}

/* A complete line of at most df_head_limit() bytes (or the last one). */
static AdrDumpFilterResult
df_filter_line(AdrDumpFilter *f, const char *line, size_t len)
{
	char		key[ADR_DUMP_FILTER_HEAD_MAX];

	if (df_is_connect(line, len))
		return df_reject_connect(f);
	if (f->in_header)
	{
		if (df_blank(line, len) || strncmp(line, "--", 2) == 0)
		{
			df_emit(f, line, len);
			return ADR_DUMP_FILTER_OK;
		}
		f->in_header = false;
		if (df_key_line(line, len, "\\restrict", key))
		{
			memcpy(f->key, key, strlen(key) + 1);
			return ADR_DUMP_FILTER_OK;	/* removed */
		}
	}
	if (f->held.len > 0)
	{
		if (df_blank(line, len))
			return df_append(&f->held, line, len) ? ADR_DUMP_FILTER_OK : ADR_DUMP_FILTER_NOMEM;
		df_flush_held(f);
	}
	if (f->key[0] != '\0' && df_key_line(line, len, "\\unrestrict", key) &&
		strcmp(key, f->key) == 0)
		return df_append(&f->held, line, len) ? ADR_DUMP_FILTER_OK : ADR_DUMP_FILTER_NOMEM;
	if (f->in_copy)
	{
		size_t		n = df_line_len(line, len);
		bool		skip = f->skip_copy;

		if (n == 2 && line[0] == '\\' && line[1] == '.')
			f->in_copy = f->skip_copy = false;
		if (skip)
			return ADR_DUMP_FILTER_OK;	/* removed */
	}
	else
	{
		size_t		n = df_line_len(line, len);

		if (df_drop_line(f, line, len))
			return ADR_DUMP_FILTER_OK;	/* removed */
		if (n > 17 && strncmp(line, "COPY ", 5) == 0 &&
			strncmp(line + n - 12, " FROM stdin;", 12) == 0)
		{
			size_t		k;

			f->in_copy = true;
			for (k = 0; k < f->rules.nskip_copies; k++)
				if (strncmp(line, f->rules.skip_copies[k], strlen(f->rules.skip_copies[k])) == 0)
					f->skip_copy = true;
			if (f->skip_copy)
				return ADR_DUMP_FILTER_OK;	/* removed, with its data */
		}
	}
	df_emit(f, line, len);
	return ADR_DUMP_FILTER_OK;
}

void
adr_dump_filter_init(AdrDumpFilter *f, const AdrDumpFilterRules *rules,
					 AdrDumpFilterEmit emit, void *emit_arg)
{
	memset(f, 0, sizeof(*f));
	if (rules)
		f->rules = *rules;
	f->emit = emit;
	f->emit_arg = emit_arg;
	f->in_header = true;
	f->at_bol = true;
}

/*
 * Filter a chunk of the plain dump; eof: it is the last.  On
 * ADR_DUMP_FILTER_REJECTED the reason is in f->error; after anything but
 * ADR_DUMP_FILTER_OK the filter must not be fed again.
 */
AdrDumpFilterResult
adr_dump_filter(AdrDumpFilter *f, const char *buf, size_t n, bool eof)
{
	size_t		i = 0;
	AdrDumpFilterResult r;

	while (i < n)
	{
		if (!f->at_bol)
		{
			/* the rest of a long line passes unchanged (or goes with it) */
			const char *nl = memchr(buf + i, '\n', n - i);
			size_t		take = nl ? (size_t) (nl - (buf + i)) + 1 : n - i;

			if (!f->skip_copy)
				df_emit(f, buf + i, take);
			i += take;
			if (nl)
				f->at_bol = true;
			continue;
		}
		else
		{
			size_t		limit = df_head_limit(f);
			size_t		avail = DF_MIN(limit - f->head.len, n - i);
			const char *nl = memchr(buf + i, '\n', avail);
			size_t		take = nl ? (size_t) (nl - (buf + i)) + 1 : avail;

			if (!df_append(&f->head, buf + i, take))
				return ADR_DUMP_FILTER_NOMEM;
			i += take;
			if (nl)
			{
				f->lineno++;
				if ((r = df_filter_line(f, f->head.data, f->head.len)) != ADR_DUMP_FILTER_OK)
					return r;
				df_reset(&f->head);
			}
			else if (f->head.len >= df_head_limit(f))
			{
				/* a long line: neither a \restrict nor an \unrestrict line */
				f->lineno++;
				if (df_is_connect(f->head.data, f->head.len))
					return df_reject_connect(f);
				f->in_header = false;
				df_flush_held(f);
				if (!f->skip_copy)
					df_emit(f, f->head.data, f->head.len);
				df_reset(&f->head);
				f->at_bol = false;
			}
		}
	}
	if (eof)
	{
		if (f->head.len > 0)
		{
			f->lineno++;
			if ((r = df_filter_line(f, f->head.data, f->head.len)) != ADR_DUMP_FILTER_OK)
				return r;
			df_reset(&f->head);
		}
		/* pg_dump's trailing \unrestrict line and the blank lines after it */
		df_reset(&f->held);
	}
	return ADR_DUMP_FILTER_OK;
}

/* Free the filter's buffers (on every path, after any result). */
void
adr_dump_filter_free(AdrDumpFilter *f)
{
	free(f->head.data);
	free(f->held.data);
	f->head.data = f->held.data = NULL;
	f->head.len = f->head.cap = f->held.len = f->held.cap = 0;
}
