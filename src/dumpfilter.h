/*-------------------------------------------------------------------------
 *
 * dumpfilter.h
 *	  The plain-dump filter of backup verification, free of PostgreSQL
 *	  headers.
 *
 * The filter streams a pg_dump plain-text dump to a psql that runs under
 * a "\restrict KEY" of the caller's own.  It removes pg_dump's own
 * "\restrict" and "\unrestrict" lines, and the lines that only a superuser
 * could run; it rejects a dump that connects to another database.  The
 * rule is written out in dumpfilter.c; t/fixtures/dump_filter_cases.txt
 * holds the cases that define it, which fuzz/dumpfilter_check.c runs
 * against this code and t/052_dump_filter_rule.pl against the awk copy in
 * scripts/adr-verify-backup.
 *
 * The code uses only the C library.  Its two buffers (the start of the
 * current line, and the lines held back at the end) come from malloc: the
 * caller that created a filter with adr_dump_filter_init frees it with
 * adr_dump_filter_free, on every path.
 *
 * IDENTIFICATION
 *	  src/dumpfilter.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_DUMPFILTER_H
#define ADR_OPS_DUMPFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How much of the start of an ordinary line the filter buffers. */
#define ADR_DUMP_FILTER_HEAD_MAX	256

/* ... and of a line that starts with ALTER, COPY or COMMENT ON EXTENSION. */
#define ADR_DUMP_FILTER_LINE_MAX	65536

/* A rejection's message always fits a buffer of this size. */
#define ADR_DUMP_FILTER_ERRLEN		320

/*
 * The lines of this dump that only a superuser could run besides those the
 * rule always removes, worked out by the caller: each array has the given
 * number of strings.  The strings are not copied; they must outlive the
 * filter.
 */
typedef struct AdrDumpFilterRules
{
	const char *const *drop_lines;	/* lines removed outside COPY data,
									 * whole (without their line end) */
	size_t		ndrop_lines;
	const char *const *drop_prefixes;	/* ... and lines that start so */
	size_t		ndrop_prefixes;
	const char *const *skip_copies; /* "COPY name " prefixes whose COPY
									 * line and data are removed */
	size_t		nskip_copies;
} AdrDumpFilterRules;

/* Where the filtered dump goes, a piece at a time. */
typedef void (*AdrDumpFilterEmit) (void *arg, const char *data, size_t len);

typedef struct AdrDumpFilterBuf
{
	char	   *data;			/* malloc'd; NULL until first used */
	size_t		len;
	size_t		cap;
} AdrDumpFilterBuf;

typedef enum AdrDumpFilterResult
{
	ADR_DUMP_FILTER_OK,
	ADR_DUMP_FILTER_REJECTED,	/* the reason is in error */
	ADR_DUMP_FILTER_NOMEM		/* malloc failed */
} AdrDumpFilterResult;

typedef struct AdrDumpFilter
{
	AdrDumpFilterRules rules;
	AdrDumpFilterEmit emit;
	void	   *emit_arg;
	bool		in_header;		/* no statement seen yet */
	bool		in_copy;		/* in the data of a COPY ... FROM stdin */
	bool		skip_copy;		/* ... which is removed */
	bool		at_bol;			/* collecting the start of a line */
	char		key[ADR_DUMP_FILTER_HEAD_MAX];	/* pg_dump's \restrict key,
												 * once removed */
	AdrDumpFilterBuf head;		/* the start of the current line */
	AdrDumpFilterBuf held;		/* a trailing \unrestrict line, blank lines */
	int64_t		lineno;
	char		error[ADR_DUMP_FILTER_ERRLEN];	/* why the dump is rejected */
} AdrDumpFilter;

extern void adr_dump_filter_init(AdrDumpFilter *f, const AdrDumpFilterRules *rules,
								 AdrDumpFilterEmit emit, void *emit_arg);
extern AdrDumpFilterResult adr_dump_filter(AdrDumpFilter *f, const char *buf, size_t n,
										   bool eof);
extern void adr_dump_filter_free(AdrDumpFilter *f);

#endif							/* ADR_OPS_DUMPFILTER_H */
