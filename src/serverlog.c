/*-------------------------------------------------------------------------
 *
 * serverlog.c
 *	  Read the entries of the current server log: the runbook's
 *	  `grep ERROR postgresql.log`, without a shell on the database host.
 *
 * The logging collector names its current files in $PGDATA/current_logfiles,
 * the file behind pg_current_logfile().  adr_log_lines() reads the newest
 * one, preferring jsonlog, then csvlog, then stderr, because the structured
 * formats need no guessing.  It reads at most adr_ops.log_scan_limit bytes
 * from the end, streaming one record at a time, so memory stays bounded
 * whatever the log's size.  Asked for the entries since a time, it also
 * reads the files of the same directory and format that the collector has
 * rotated away and that were written to since then, newest first within the
 * same limit, so a rotation does not reset what it sees.
 *
 * Any role that can connect controls text that lands in the log (a
 * failing statement, its error message), and that text may hold newlines
 * followed by something that looks like an entry.  The reader therefore
 * never takes a continuation line for an entry, in each format:
 *
 * - stderr: the server writes a TAB after every newline inside an entry
 *	 (message, DETAIL, STATEMENT...), so a line that starts with a TAB
 *	 continues the previous entry and is never one.  Other lines are
 *	 recognised by their first "SEVERITY:  " or "LABEL:  " marker (a
 *	 "STATEMENT:  " line is followed by a client's text, which may hold
 *	 "PANIC:  ": it is not an entry); an entry's time is the first
 *	 "YYYY-MM-DD HH:MM:SS[.fff] [zone]" before that marker, as %m and %t
 *	 write it in log_line_prefix.
 * - csvlog: newlines occur only inside quoted fields, and a quote inside a
 *	 field is doubled, so whether a newline ends a record depends on the
 *	 number of quotes before it in the file.  The reader counts them from
 *	 the start of the file: when it reads only the end of a large file, it
 *	 counts the quotes of the part it skips (a sequential scan, no parsing)
 *	 and starts at the first newline outside quotes.  A record is the lines
 *	 up to the next such newline; one that does not have the shape of a
 *	 record, or is cut off by the end of the file, is dropped whole.
 * - jsonlog: the server escapes newlines inside strings, so every line is
 *	 one whole record; a line that is not a JSON object is not an entry.
 *	 Every quote inside a value is escaped, so a key is found exactly.
 *
 * NB: the log_line_prefix escapes %u and %d write the names a client sent
 * in its startup packet as they are (only application_name is cleaned): a
 * user name with a newline can still start a stderr line that looks like
 * an entry.  csvlog and jsonlog quote those fields; prefer them where the
 * log is read for alerts.
 *
 * adr_slow_log() reads the same files for the "duration: N ms" entries
 * (log_min_duration_statement, log_duration, auto_explain) with their
 * user, database, application, pid, parameters and query id; see
 * sl_slow_put() for how each field is found.
 *
 * Reading the server log needs the privileges of pg_read_server_files, as
 * pg_read_file() does: it holds other sessions' statements and errors.
 *
 * IDENTIFICATION
 *	  src/serverlog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>

#include "catalog/pg_authid_d.h"
#include "catalog/pg_type_d.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/syslogger.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "pgtime.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"

#include "adr_ops.h"
#include "compat.h"
#include "serverlog.h"

PG_FUNCTION_INFO_V1(adr_log_lines);
PG_FUNCTION_INFO_V1(adr_slow_log);

/* How much of the end of the server log adr_log_lines() reads, in kB. */
int			adr_ops_log_scan_limit = 64 * 1024;

/* The setting of the log reader; called from _PG_init. */
void
adr_serverlog_init(void)
{
	DefineCustomIntVariable("adr_ops.log_scan_limit",
							"Sets how much of the end of the current server log adr_ops reads.",
							"adr_log_lines() and the recent_errors health check read at most "
							"this much of the newest log file.",
							&adr_ops_log_scan_limit,
							64 * 1024,
							1024,
							1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

#define LOG_LINES_COLS	3
#define SLOW_LOG_COLS	10
#define CSV_MIN_FIELDS	14		/* adr_log_lines needs fields 0, 11 and 13 */
#define CSV_FIELDS		26		/* the slow log: user, database, pid, detail,
								 * application and query_id too (15 and later) */

typedef enum LogFormat
{
	LOGFMT_STDERR,
	LOGFMT_CSV,
	LOGFMT_JSON
} LogFormat;

/* One parsed log entry; the strings point into the reader's buffers. */
typedef struct LogEntry
{
	bool		has_time;
	TimestampTz time;
	const char *severity;
	const char *message;
	/* the slow log's fields; NULL or 0 where the format does not give them */
	const char *user;
	const char *database;
	const char *application;
	const char *detail;
	int			pid;
	int64		query_id;
} LogEntry;

static const char *const sl_severities[] = {
	"DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "LOG", "INFO",
	"NOTICE", "WARNING", "ERROR", "FATAL", "PANIC"
};

/* The labels of the lines that follow an entry in the stderr format. */
static const char *const sl_labels[] = {
	"DETAIL", "HINT", "QUERY", "CONTEXT", "LOCATION", "STATEMENT"
};

/*
 * Find the current log file from current_logfiles.  Returns its path
 * (palloc'd; relative paths are relative to DataDir, the working directory)
 * and sets *format, preferring structured formats.
 */
static char *
sl_current_logfile(LogFormat *format)
{
	FILE	   *f;
	char		line[MAXPGPATH + 32];
	char	   *best = NULL;
	int			best_rank = -1;

	f = AllocateFile(LOG_METAINFO_DATAFILE, "r");
	if (f == NULL)
	{
		if (errno == ENOENT)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("could not find the current server log file"),
					 errdetail("The file \"%s\" does not exist: the logging collector is not running, or writes no stderr, csvlog or jsonlog file.",
							   LOG_METAINFO_DATAFILE),
					 errhint("Set \"logging_collector\" to on and include stderr, csvlog or jsonlog in \"log_destination\".")));
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", LOG_METAINFO_DATAFILE)));
	}

	while (fgets(line, sizeof(line), f) != NULL)
	{
		char	   *sp = strchr(line, ' ');
		int			rank;
		LogFormat	fmt;

		if (sp == NULL)
			continue;
		*sp++ = '\0';
		sp[strcspn(sp, "\r\n")] = '\0';
		if (strcmp(line, "jsonlog") == 0)
			fmt = LOGFMT_JSON, rank = 2;
		else if (strcmp(line, "csvlog") == 0)
			fmt = LOGFMT_CSV, rank = 1;
		else if (strcmp(line, "stderr") == 0)
			fmt = LOGFMT_STDERR, rank = 0;
		else
			continue;
		if (rank > best_rank && *sp != '\0')
		{
			best = pstrdup(sp);
			best_rank = rank;
			*format = fmt;
		}
	}
	FreeFile(f);

	if (best == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not find the current server log file"),
				 errdetail("\"%s\" names no stderr, csvlog or jsonlog file.",
						   LOG_METAINFO_DATAFILE),
				 errhint("Include stderr, csvlog or jsonlog in \"log_destination\".")));
	return best;
}

/*
 * Read one line into buf (without its newline).  Returns false at end of
 * file with nothing read.  *consumed grows by the bytes read.
 */
static bool
sl_read_line(FILE *f, StringInfo buf, off_t *consumed)
{
	char		chunk[8192];
	bool		any = false;

	resetStringInfo(buf);
	while (fgets(chunk, sizeof(chunk), f) != NULL)
	{
		size_t		n = strlen(chunk);

		any = true;
		*consumed += n;
		if (n > 0 && chunk[n - 1] == '\n')
		{
			appendBinaryStringInfo(buf, chunk, n - 1);
			return true;
		}
		appendBinaryStringInfo(buf, chunk, n);
	}
	return any;
}

/* Does s start with "YYYY-MM-DD HH:MM:SS"? */
static bool
sl_at_timestamp(const char *s, size_t len)
{
	static const char pattern[] = "dddd-dd-dd dd:dd:dd";
	size_t		i;

	if (len < sizeof(pattern) - 1)
		return false;
	for (i = 0; i < sizeof(pattern) - 1; i++)
	{
		if (pattern[i] == 'd' ? !isdigit((unsigned char) s[i]) : s[i] != pattern[i])
			return false;
	}
	return true;
}

/*
 * Parse the first timestamp found in s[0..len), as %m, %t, csvlog and
 * jsonlog write it: "YYYY-MM-DD HH:MM:SS", optional fraction, optional zone.
 * Uses the datetime parser's error-code interface, so a malformed stamp
 * returns false instead of throwing.
 *
 * NB: a zone abbreviation is resolved in log_timezone, the zone the server
 * wrote it in, not through timezone_abbreviations: "CST" is China Standard
 * Time in Asia/Shanghai's log but Central Standard Time in the default
 * abbreviation set.
 */
static bool
sl_parse_time(const char *s, size_t len, TimestampTz *result)
{
	size_t		start;

	for (start = 0; start < len; start++)
	{
		char		text[64];
		char		abbr[16] = "";
		char		workbuf[MAXDATELEN + 1];
		char	   *field[MAXDATEFIELDS];
		int			ftype[MAXDATEFIELDS];
		int			nf,
					dtype,
					tz = 0;
		struct pg_tm tm;
		fsec_t		fsec;
		size_t		end,
					zone;

		if (!sl_at_timestamp(s + start, len - start))
			continue;

		end = start + 19;
		if (end < len && s[end] == '.')
			for (end++; end < len && isdigit((unsigned char) s[end]); end++);
		zone = end + 1;
		if (zone < len && s[end] == ' ' &&
			(isalpha((unsigned char) s[zone]) || s[zone] == '+' || s[zone] == '-'))
			for (end = zone; end < len && (isalnum((unsigned char) s[end]) ||
										   strchr("+-:", s[end]) != NULL); end++);
		else
			zone = end;
		if (end - start >= sizeof(text))
			return false;

		/* An abbreviation is resolved below; a numeric offset by the parser. */
		if (zone < end && isalpha((unsigned char) s[zone]))
		{
			if (end - zone >= sizeof(abbr))
				return false;
			memcpy(abbr, s + zone, end - zone);
			abbr[end - zone] = '\0';
			end = zone - 1;
		}
		memcpy(text, s + start, end - start);
		text[end - start] = '\0';

		if (ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf) != 0 ||
			adr_decode_datetime(field, ftype, nf, &dtype, &tm, &fsec, &tz) != 0 ||
			dtype != DTK_DATE)
			return false;
		if (abbr[0] != '\0')
			tz = DetermineTimeZoneAbbrevOffset(&tm, abbr, log_timezone);
		return tm2timestamp(&tm, fsec, &tz, result) == 0;
	}
	return false;
}

/* Is word[0..len) one of the n strings of list? */
static bool
sl_word_in(const char *word, size_t len, const char *const *list, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (strlen(list[i]) == len && strncmp(word, list[i], len) == 0)
			return true;
	return false;
}

/*
 * Parse a stderr line.  Returns false when the line is a continuation line
 * or carries no "SEVERITY:  " marker.  The first marker that is a severity
 * or a label decides: after "STATEMENT:  " (or DETAIL, HINT...) comes a
 * client's text, which may hold "PANIC:  " too.
 */
static bool
sl_parse_stderr(char *line, LogEntry *entry)
{
	char	   *p = line;

	/* A continuation line of a multi-line entry: never an entry. */
	if (line[0] == '\t')
		return false;

	while ((p = strstr(p, ":  ")) != NULL)
	{
		char	   *word = p;
		int			i;

		while (word > line && isalnum((unsigned char) word[-1]))
			word--;
		for (i = 0; i < lengthof(sl_severities); i++)
		{
			size_t		n = strlen(sl_severities[i]);

			if ((size_t) (p - word) == n && strncmp(word, sl_severities[i], n) == 0)
			{
				entry->severity = sl_severities[i];
				entry->message = p + 3;
				entry->has_time = sl_parse_time(line, word - line, &entry->time);
				return true;
			}
		}
		if (sl_word_in(word, p - word, sl_labels, lengthof(sl_labels)))
			return false;
		p += 3;
	}
	return false;
}

/*
 * Split one csvlog record in place.  fields[] receives up to CSV_FIELDS
 * NUL-terminated, unquoted fields.  Returns the number of fields found.
 */
static int
sl_split_csv(char *rec, char **fields)
{
	char	   *src = rec;
	int			n = 0;

	while (n < CSV_FIELDS)
	{
		char	   *dst = src;

		fields[n++] = dst;
		if (*src == '"')
		{
			src++;
			for (;;)
			{
				if (*src == '\0')
					break;
				if (*src == '"')
				{
					if (src[1] != '"')
					{
						src++;
						break;
					}
					src++;
				}
				*dst++ = *src++;
			}
		}
		else
		{
			while (*src != '\0' && *src != ',')
				*dst++ = *src++;
		}
		if (*src != ',')
		{
			*dst = '\0';
			break;
		}
		src++;
		*dst = '\0';
	}
	return n;
}

/* The integer value of "key" in a jsonlog line (the server writes numbers unquoted). */
static bool
sl_json_int(const char *line, const char *key, int64 *out)
{
	char		pattern[64];
	const char *p;
	char	   *end;

	snprintf(pattern, sizeof(pattern), "\"%s\":", key);
	p = strstr(line, pattern);
	if (p == NULL)
		return false;
	p += strlen(pattern);
	errno = 0;
	*out = strtoll(p, &end, 10);
	return end != p && errno == 0;
}

/*
 * Copy the JSON string value of "key" in a jsonlog line into out.  The
 * server writes each key once, unescaped, so a plain search for "key":" is
 * exact: inside values every quote is escaped.
 */
static bool
sl_json_string(const char *line, const char *key, StringInfo out)
{
	char		pattern[64];
	const char *p;

	snprintf(pattern, sizeof(pattern), "\"%s\":", key);
	p = strstr(line, pattern);
	if (p == NULL)
		return false;
	p += strlen(pattern);
	/* jsonlog writes no space after the colon, EXPLAIN's JSON one */
	while (*p == ' ')
		p++;
	if (*p++ != '"')
		return false;

	resetStringInfo(out);
	for (; *p != '\0' && *p != '"'; p++)
	{
		if (*p != '\\' || p[1] == '\0')
		{
			appendStringInfoChar(out, *p);
			continue;
		}
		p++;
		switch (*p)
		{
			case 'n':
				appendStringInfoChar(out, '\n');
				break;
			case 't':
				appendStringInfoChar(out, '\t');
				break;
			case 'r':
				appendStringInfoChar(out, '\r');
				break;
			case 'b':
				appendStringInfoChar(out, '\b');
				break;
			case 'f':
				appendStringInfoChar(out, '\f');
				break;
			case 'u':
				/* the server escapes only control characters this way */
				if (strspn(p + 1, "0123456789abcdefABCDEF") >= 4)
				{
					char		hex[5];

					memcpy(hex, p + 1, 4);
					hex[4] = '\0';
					appendStringInfoChar(out, (char) strtol(hex, NULL, 16));
					p += 4;
				}
				break;
			default:
				appendStringInfoChar(out, *p);
				break;
		}
	}
	return true;
}

/* The number of double quotes in s[0..len). */
static uint64
sl_count_quotes(const char *s, size_t len)
{
	uint64		n = 0;
	const char *end = s + len;

	while ((s = memchr(s, '"', end - s)) != NULL)
	{
		n++;
		s++;
	}
	return n;
}

/*
 * Position a csvlog file at the first record boundary at or after start:
 * count the quotes before start, then read on to the first newline that is
 * outside quotes.  *consumed grows by the bytes read after start.
 */
static void
sl_csv_seek(FILE *f, const char *path, off_t start, off_t *consumed, StringInfo line)
{
	char		block[65536];
	off_t		left = start;
	uint64		quotes = 0;

	if (fseeko(f, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not seek in server log file \"%s\": %m", path)));
	while (left > 0)
	{
		size_t		want = Min((off_t) sizeof(block), left);
		size_t		got = fread(block, 1, want, f);

		CHECK_FOR_INTERRUPTS();
		if (got == 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read server log file \"%s\": %m", path)));
		quotes += sl_count_quotes(block, got);
		left -= got;
	}

	/* Finish the line start falls in, and any lines still inside quotes. */
	do
	{
		if (!sl_read_line(f, line, consumed))
			break;
		quotes += sl_count_quotes(line->data, line->len);
	} while (quotes % 2 != 0);
}

/* Is severity among the wanted ones?  wanted == NULL means all. */
static bool
sl_wanted(const char *severity, char **wanted, int nwanted)
{
	int			i;

	if (wanted == NULL)
		return true;
	for (i = 0; i < nwanted; i++)
		if (pg_strcasecmp(severity, wanted[i]) == 0)
			return true;
	return false;
}

/* What one call reads: the filter, and counts across files. */
typedef struct LogScan
{
	ReturnSetInfo *rsinfo;
	bool		have_since;
	TimestampTz since;
	char	  **wanted;
	int			nwanted;
	LogFormat	format;
	uint64		untimed;
	uint64		timed;
	StringInfoData line,
				rec,
				sev,
				msg,
				ts;
	/* adr_slow_log(): the duration entries instead of adr_log_lines' rows */
	bool		slow;
	StringInfoData user,
				db,
				app,
				detail,
				plantext;
	/* each backend's statement logged by log_statement, until its duration */
	HTAB	   *statements;
	/* stderr: the duration entry waiting for its continuation lines */
	bool		pending;
	LogEntry	pend;
	StringInfoData pmsg,
				puser,
				pdb,
				papp,
				pdetail;
} LogScan;

/* A statement logged by log_statement, waiting for its duration entry. */
typedef struct SlowStatement
{
	int			pid;
	char	   *text;
} SlowStatement;

/* A copy of s, or NULL for NULL or an empty string. */
static Datum
sl_text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL || *s == '\0');
	return *isnull ? (Datum) 0 : CStringGetTextDatum(s);
}

/*
 * Put one "duration: N ms ..." entry into adr_slow_log()'s result; other
 * entries are ignored.  The message is one of
 *	 duration: N ms  statement: TEXT			(log_min_duration_statement)
 *	 duration: N ms  execute|parse|bind NAME: TEXT	(extended protocol;
 *		the DETAIL "parameters: $1 = ..." holds the values when logged)
 *	 duration: N ms  plan:\n{JSON}			(auto_explain, log_format = json)
 *	 duration: N ms								(log_duration alone)
 * The query id is the plan's "Query Identifier" (auto_explain.log_verbose
 * with compute_query_id on), else the entry's query_id (csvlog and jsonlog
 * with compute_query_id on), else NULL: stderr carries none unless
 * log_line_prefix has %Q, which is not parsed.
 */
static void
sl_slow_put(LogScan *scan, const LogEntry *entry)
{
	Datum		values[SLOW_LOG_COLS];
	bool		nulls[SLOW_LOG_COLS] = {0};
	const char *m = entry->message;
	const char *rest;
	char	   *end;
	double		ms;
	const char *statement = NULL;
	const char *plan = NULL;
	int64		qid = entry->query_id;
	bool		have_qid = qid != 0;

	if (entry->severity == NULL || strcmp(entry->severity, "LOG") != 0)
		return;

	/*
	 * With log_statement, the statement is logged when it starts ("statement:
	 * TEXT", "execute NAME: TEXT") and its duration entry carries no text:
	 * keep each backend's last one until its duration comes.
	 */
	if ((strncmp(m, "statement: ", 11) == 0 || strncmp(m, "execute ", 8) == 0) &&
		entry->pid != 0 && strstr(m, ": ") != NULL)
	{
		SlowStatement *st;
		bool		found;

		if (scan->statements == NULL)
		{
			HASHCTL		ctl = {0};

			ctl.keysize = sizeof(int);
			ctl.entrysize = sizeof(SlowStatement);
			ctl.hcxt = CurrentMemoryContext;
			scan->statements = hash_create("adr_slow_log statements", 64, &ctl,
										   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		}
		st = hash_search(scan->statements, &entry->pid, HASH_ENTER, &found);
		if (found)
			pfree(st->text);
		st->text = pstrdup(strstr(m, ": ") + 2);
		return;
	}
	if (strncmp(m, "duration: ", 10) != 0)
		return;
	ms = strtod(m + 10, &end);
	if (end == m + 10 || strncmp(end, " ms", 3) != 0)
		return;
	rest = end + 3;
	while (*rest == ' ')
		rest++;
	if (strncmp(rest, "plan:", 5) == 0)
	{
		const char *q;

		plan = rest + 5;
		while (*plan == ' ' || *plan == '\n' || *plan == '\t')
			plan++;
		if (*plan == '{')
		{
			JsonLexContext *lex;

			/*
			 * An entry still being written, or cut off by the reading limit,
			 * holds part of a plan: no plan then (the collector reads it
			 * again, whole, next time).
			 */
			lex = makeJsonLexContextCstringLen((char *) plan, strlen(plan),
											   GetDatabaseEncoding(), false);
			if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
				plan = NULL;
		}
		if (plan != NULL && *plan == '{')
		{
			/* keys are exact in EXPLAIN's JSON: quotes in values are escaped */
			if (sl_json_string(plan, "Query Text", &scan->plantext))
				statement = scan->plantext.data;
			q = strstr(plan, "\"Query Identifier\": ");
			if (q != NULL)
			{
				int64		v;

				errno = 0;
				v = strtoll(q + 20, &end, 10);
				if (end != q + 20 && errno == 0)
					qid = v, have_qid = true;
			}
		}
	}
	else if (*rest != '\0')
	{
		const char *colon = strstr(rest, ": ");

		statement = colon ? colon + 2 : rest;
	}
	else if (entry->pid != 0 && scan->statements != NULL)
	{
		SlowStatement *st = hash_search(scan->statements, &entry->pid, HASH_FIND, NULL);

		/* only log_statement's text of the same backend: it is used once */
		if (st != NULL)
		{
			statement = pstrdup(st->text);
			pfree(st->text);
			hash_search(scan->statements, &entry->pid, HASH_REMOVE, NULL);
		}
	}

	if (scan->have_since && (!entry->has_time || entry->time < scan->since))
		return;

	if (entry->has_time)
		values[0] = TimestampTzGetDatum(entry->time);
	else
		nulls[0] = true;
	values[1] = Float8GetDatum(ms);
	values[2] = Int32GetDatum(entry->pid);
	nulls[2] = entry->pid == 0;
	values[3] = sl_text_or_null(entry->database, &nulls[3]);
	values[4] = sl_text_or_null(entry->user, &nulls[4]);
	values[5] = sl_text_or_null(entry->application, &nulls[5]);
	values[6] = sl_text_or_null(statement, &nulls[6]);
	if (entry->detail != NULL && strncmp(entry->detail, "parameters: ", 12) == 0)
		values[7] = sl_text_or_null(entry->detail + 12, &nulls[7]);
	else
		nulls[7] = true;
	values[8] = Int64GetDatum(qid);
	nulls[8] = !have_qid;
	values[9] = sl_text_or_null(plan, &nulls[9]);
	tuplestore_putvalues(scan->rsinfo->setResult, scan->rsinfo->setDesc, values, nulls);
}

/* Copy the value after "key=" in a stderr prefix, up to a comma, space or bracket. */
static void
sl_prefix_value(const char *prefix, size_t len, const char *key, StringInfo out)
{
	const char *p = prefix;
	const char *end = prefix + len;
	size_t		klen = strlen(key);

	resetStringInfo(out);
	for (; p + klen <= end; p++)
	{
		if (strncmp(p, key, klen) != 0 || (p > prefix && isalnum((unsigned char) p[-1])))
			continue;
		for (p += klen; p < end && *p != ',' && *p != ' ' && *p != ']' && *p != '@'; p++)
			appendStringInfoChar(out, *p);
		return;
	}
}

/* Emit the pending stderr duration entry, if any. */
static void
sl_slow_flush(LogScan *scan)
{
	if (!scan->pending)
		return;
	scan->pending = false;
	scan->pend.message = scan->pmsg.data;
	scan->pend.user = scan->puser.data;
	scan->pend.database = scan->pdb.data;
	scan->pend.application = scan->papp.data;
	scan->pend.detail = scan->pdetail.data;
	sl_slow_put(scan, &scan->pend);
}

/*
 * The slow log in the stderr format: an entry's statement or plan goes on
 * in the continuation lines (each starts with a TAB), its parameters in a
 * following "DETAIL:  parameters: " line, so a duration entry waits for
 * the next entry.  The prefix gives what log_line_prefix put there: the
 * pid as "[%p]", and "user=%u", "db=%d", "app=%a" written that way (the
 * names are not quoted: a name holding a comma or a space is cut there).
 * Returns true when the line was taken here.
 */
static bool
sl_slow_stderr(LogScan *scan, char *line, bool is_entry, const LogEntry *entry)
{
	if (!is_entry)
	{
		char	   *d;

		if (!scan->pending)
			return true;
		if (line[0] == '\t')
		{
			appendStringInfoChar(&scan->pmsg, '\n');
			appendStringInfoString(&scan->pmsg, line + 1);
		}
		else if ((d = strstr(line, "DETAIL:  ")) != NULL && scan->pdetail.len == 0)
			appendStringInfoString(&scan->pdetail, d + 9);
		return true;
	}

	sl_slow_flush(scan);
	if (strcmp(entry->severity, "LOG") == 0 &&
		(strncmp(entry->message, "duration: ", 10) == 0 ||
		 strncmp(entry->message, "statement: ", 11) == 0 ||
		 strncmp(entry->message, "execute ", 8) == 0))
	{
		size_t		plen = entry->message - line - strlen(entry->severity) - 3;
		const char *br;

		scan->pending = true;
		scan->pend = *entry;
		resetStringInfo(&scan->pmsg);
		appendStringInfoString(&scan->pmsg, entry->message);
		resetStringInfo(&scan->pdetail);
		sl_prefix_value(line, plen, "user=", &scan->puser);
		sl_prefix_value(line, plen, "db=", &scan->pdb);
		sl_prefix_value(line, plen, "app=", &scan->papp);
		scan->pend.pid = 0;
		br = memchr(line, '[', plen);
		if (br != NULL && isdigit((unsigned char) br[1]))
			scan->pend.pid = atoi(br + 1);
	}
	return true;
}

/* A log file of the current one's directory and format. */
typedef struct LogFile
{
	char	   *path;
	time_t		mtime;
	off_t		size;
	off_t		budget;			/* bytes to read from its end */
} LogFile;

/*
 * Read the last budget bytes of one log file, as it was when opened, and
 * put the wanted entries into the result.
 */
static void
sl_read_file(LogScan *scan, const char *path, off_t budget)
{
	FILE	   *f;
	struct stat st;
	off_t		start,
				consumed = 0;

	f = AllocateFile(path, "r");
	if (f == NULL)
	{
		/* a rotated file removed meanwhile holds nothing any more */
		if (errno == ENOENT)
			return;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open server log file \"%s\": %m", path)));
	}
	if (fstat(fileno(f), &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat server log file \"%s\": %m", path)));

	start = st.st_size > budget ? st.st_size - budget : 0;
	if (start > 0 && fseeko(f, start, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not seek in server log file \"%s\": %m", path)));

	/* After a seek we are inside a record: skip to the start of the next. */
	if (start > 0 && scan->format == LOGFMT_CSV)
		sl_csv_seek(f, path, start, &consumed, &scan->line);
	else if (start > 0)
		(void) sl_read_line(f, &scan->line, &consumed);

	while (start + consumed < st.st_size && sl_read_line(f, &scan->line, &consumed))
	{
		StringInfo	line = &scan->line;
		LogEntry	entry = {0};
		Datum		values[LOG_LINES_COLS];
		bool		nulls[LOG_LINES_COLS] = {0};

		CHECK_FOR_INTERRUPTS();

		switch (scan->format)
		{
			case LOGFMT_STDERR:
				{
					bool		is_entry = sl_parse_stderr(line->data, &entry);

					if (scan->slow)
					{
						if (is_entry && entry.has_time)
							scan->timed++;
						else if (is_entry)
							scan->untimed++;
						(void) sl_slow_stderr(scan, line->data, is_entry, &entry);
						continue;
					}
					if (!is_entry)
						continue;
				}
				break;

			case LOGFMT_JSON:
				if (line->data[0] != '{' ||
					!sl_json_string(line->data, "error_severity", &scan->sev) ||
					!sl_json_string(line->data, "message", &scan->msg))
					continue;
				entry.severity = scan->sev.data;
				entry.message = scan->msg.data;
				entry.has_time = sl_json_string(line->data, "timestamp", &scan->ts) &&
					sl_parse_time(scan->ts.data, scan->ts.len, &entry.time);
				if (scan->slow)
				{
					int64		v;

					if (strncmp(entry.message, "duration: ", 10) != 0 &&
						strncmp(entry.message, "statement: ", 11) != 0 &&
						strncmp(entry.message, "execute ", 8) != 0)
					{
						entry.has_time ? scan->timed++ : scan->untimed++;
						continue;
					}
					if (sl_json_string(line->data, "user", &scan->user))
						entry.user = scan->user.data;
					if (sl_json_string(line->data, "dbname", &scan->db))
						entry.database = scan->db.data;
					if (sl_json_string(line->data, "application_name", &scan->app))
						entry.application = scan->app.data;
					if (sl_json_string(line->data, "detail", &scan->detail))
						entry.detail = scan->detail.data;
					if (sl_json_int(line->data, "pid", &v))
						entry.pid = (int) v;
					if (sl_json_int(line->data, "query_id", &v))
						entry.query_id = v;
				}
				break;

			case LOGFMT_CSV:
				{
					StringInfo	rec = &scan->rec;
					char	   *fields[CSV_FIELDS];
					int			nfields;
					uint64		quotes;

					/*
					 * We are at a record boundary.  Quoted fields may hold
					 * newlines: the record runs to the first newline with
					 * the quotes balanced, whatever its lines look like.
					 */
					resetStringInfo(rec);
					appendBinaryStringInfo(rec, line->data, line->len);
					quotes = sl_count_quotes(line->data, line->len);
					while (quotes % 2 != 0 && start + consumed < st.st_size &&
						   sl_read_line(f, line, &consumed))
					{
						appendStringInfoChar(rec, '\n');
						appendBinaryStringInfo(rec, line->data, line->len);
						quotes += sl_count_quotes(line->data, line->len);
					}
					/* cut off by the end of the file, or not a record */
					if (quotes % 2 != 0 ||
						!sl_at_timestamp(rec->data, rec->len) ||
						(nfields = sl_split_csv(rec->data, fields)) < CSV_MIN_FIELDS)
						continue;
					entry.severity = fields[11];
					entry.message = fields[13];
					entry.has_time = sl_parse_time(fields[0], strlen(fields[0]),
												   &entry.time);
					if (scan->slow)
					{
						entry.user = fields[1];
						entry.database = fields[2];
						entry.pid = atoi(fields[3]);
						if (nfields > 14)
							entry.detail = fields[14];
						if (nfields > 22)
							entry.application = fields[22];
						if (nfields > 25)
							entry.query_id = strtoll(fields[25], NULL, 10);
					}
				}
				break;
		}

		if (!sl_wanted(entry.severity, scan->wanted, scan->nwanted))
			continue;
		if (entry.has_time)
			scan->timed++;
		else
			scan->untimed++;
		if (scan->slow)
		{
			/* it applies since itself: an earlier statement may be needed */
			sl_slow_put(scan, &entry);
			continue;
		}
		if (scan->have_since && (!entry.has_time || entry.time < scan->since))
			continue;

		if (entry.has_time)
			values[0] = TimestampTzGetDatum(entry.time);
		else
			nulls[0] = true;
		values[1] = CStringGetTextDatum(entry.severity);
		values[2] = CStringGetTextDatum(entry.message);
		tuplestore_putvalues(scan->rsinfo->setResult, scan->rsinfo->setDesc, values, nulls);
	}
	if (scan->slow)
		sl_slow_flush(scan);
	FreeFile(f);
}

static int
sl_file_cmp(const void *a, const void *b)
{
	const LogFile *x = a;
	const LogFile *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->path, y->path);
}

/*
 * The files to read, oldest first: the current one, and with since, the
 * files of its directory with the same extension (the same format) written
 * to at or after since, which the collector has rotated away.  A file last
 * written before since holds no entry after it.  The byte budget,
 * adr_ops.log_scan_limit, goes to the newest files first.
 */
static LogFile *
sl_files(const char *current, bool have_since, TimestampTz since, int *nfiles)
{
	char	   *dir = pstrdup(current);
	char	   *slash = strrchr(dir, '/');
	const char *base = last_dir_separator(current) ? last_dir_separator(current) + 1 : current;
	const char *ext = strrchr(base, '.');
	pg_time_t	since_t = have_since ? timestamptz_to_time_t(since) : 0;
	off_t		left = (off_t) adr_ops_log_scan_limit * 1024;
	LogFile    *files;
	int			n = 0,
				cap = 8,
				i;
	struct stat st;

	files = palloc(sizeof(LogFile) * cap);
	if (stat(current, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat server log file \"%s\": %m", current)));
	files[n].path = pstrdup(current);
	files[n].mtime = st.st_mtime;
	files[n].size = st.st_size;
	n++;

	if (have_since)
	{
		DIR		   *d;
		struct dirent *de;

		if (slash)
			*slash = '\0';
		else
			dir = ".";
		d = AllocateDir(dir);
		while ((de = ReadDir(d, dir)) != NULL)
		{
			const char *e = strrchr(de->d_name, '.');
			char	   *path;

			CHECK_FOR_INTERRUPTS();
			if (strcmp(de->d_name, base) == 0 || de->d_name[0] == '.' ||
				(ext == NULL ? e != NULL : (e == NULL || strcmp(e, ext) != 0)))
				continue;
			path = psprintf("%s/%s", dir, de->d_name);
			if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_mtime < since_t)
			{
				pfree(path);
				continue;
			}
			if (n == cap)
			{
				cap *= 2;
				files = repalloc(files, sizeof(LogFile) * cap);
			}
			files[n].path = path;
			files[n].mtime = st.st_mtime;
			files[n].size = st.st_size;
			n++;
		}
		FreeDir(d);
	}

	qsort(files, n, sizeof(LogFile), sl_file_cmp);
	for (i = n - 1; i >= 0; i--)
	{
		files[i].budget = Min(files[i].size, left);
		left -= files[i].budget;
	}
	*nfiles = n;
	return files;
}

/* Only superusers and roles with pg_read_server_files read the log's texts. */
static void
sl_check_privileges(void)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read the server log"),
				 errdetail("Only roles with privileges of the \"%s\" role may read the server log.",
						   "pg_read_server_files")));
}

/* Read the files of the scan into the materialized result. */
static void
sl_run(FunctionCallInfo fcinfo, LogScan *scan)
{
	char	   *path;
	LogFile    *files;
	int			nfiles,
				i;
	uint64		untimed = 0,
				timed = 0;

	InitMaterializedSRF(fcinfo, 0);
	initStringInfo(&scan->line);
	initStringInfo(&scan->rec);
	initStringInfo(&scan->sev);
	initStringInfo(&scan->msg);
	initStringInfo(&scan->ts);
	initStringInfo(&scan->user);
	initStringInfo(&scan->db);
	initStringInfo(&scan->app);
	initStringInfo(&scan->detail);
	initStringInfo(&scan->plantext);
	initStringInfo(&scan->pmsg);
	initStringInfo(&scan->puser);
	initStringInfo(&scan->pdb);
	initStringInfo(&scan->papp);
	initStringInfo(&scan->pdetail);

	path = sl_current_logfile(&scan->format);
	files = sl_files(path, scan->have_since, scan->since, &nfiles);
	for (i = 0; i < nfiles; i++)
	{
		bool		current = strcmp(files[i].path, path) == 0;

		if (files[i].budget == 0)
			continue;
		if (current)
			scan->timed = scan->untimed = 0;
		sl_read_file(scan, files[i].path, files[i].budget);
		if (current)
			untimed = scan->untimed, timed = scan->timed;
	}

	/*
	 * Entries whose time cannot be read cannot be placed after "since":
	 * when the current file has only such entries, say so rather than
	 * count nothing.
	 */
	if (scan->have_since && untimed > 0 && timed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not read timestamps from server log file \"%s\"", path),
				 errdetail_plural("%llu entry has no time stamp that adr_ops can parse.",
								  "%llu entries have no time stamp that adr_ops can parse.",
								  (unsigned long) untimed,
								  (unsigned long long) untimed),
				 errhint("Begin \"log_line_prefix\" with %%m or %%t, or log to csvlog or jsonlog.")));
}

/*
 * adr_log_lines(since timestamptz, severities text[])
 *		returns (log_time timestamptz, severity text, message text)
 *
 * The entries of the server log at or after since (all read entries when
 * NULL) whose severity is in severities (all when NULL), oldest first.
 * With since, the files the collector rotated away since then are read
 * too, newest first within adr_ops.log_scan_limit.
 */
Datum
adr_log_lines(PG_FUNCTION_ARGS)
{
	LogScan		scan = {0};
	int			i;

	sl_check_privileges();

	scan.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	scan.have_since = !PG_ARGISNULL(0);
	scan.since = scan.have_since ? PG_GETARG_TIMESTAMPTZ(0) : 0;
	if (!PG_ARGISNULL(1))
	{
		Datum	   *elems;
		bool	   *elem_nulls;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &elem_nulls, &scan.nwanted);
		scan.wanted = palloc(sizeof(char *) * Max(scan.nwanted, 1));
		for (i = 0; i < scan.nwanted; i++)
			scan.wanted[i] = elem_nulls[i] ? "" : TextDatumGetCString(elems[i]);
	}
	sl_run(fcinfo, &scan);
	return (Datum) 0;
}

/*
 * adr_slow_log(since timestamptz)
 *		returns (log_time, duration_ms, pid, database, user_name, application,
 *				 statement, parameters, queryid, plan)
 *
 * The "duration: N ms" entries of the server log at or after since (all
 * read ones when NULL), oldest first: those of log_min_duration_statement,
 * log_duration and auto_explain.  Same files, limits and privileges as
 * adr_log_lines().
 */
Datum
adr_slow_log(PG_FUNCTION_ARGS)
{
	LogScan		scan = {0};

	sl_check_privileges();

	scan.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	scan.have_since = !PG_ARGISNULL(0);
	scan.since = scan.have_since ? PG_GETARG_TIMESTAMPTZ(0) : 0;
	scan.slow = true;
	sl_run(fcinfo, &scan);
	return (Datum) 0;
}
