/*-------------------------------------------------------------------------
 *
 * prom_text.h
 *	  Parser of the Prometheus text exposition format (prom_text.c), free
 *	  of PostgreSQL headers.
 *
 * The parser reads a page fetched from the network, in place: it writes
 * terminators and decoded label values into the page's own buffer and
 * allocates nothing.  adr_http_metric() (probe.c) turns the samples into
 * rows; fuzz/ tests and fuzzes the parser on its own.
 *
 * IDENTIFICATION
 *	  src/prom_text.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_PROM_TEXT_H
#define ADR_OPS_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * One sample line.  name is terminated; labels holds nlabels pairs, each a
 * terminated label name followed by its terminated, unescaped value (which
 * may hold any byte but NUL, invalid UTF-8 included: the caller cleans it).
 * All of it points into the parsed buffer.
 */
typedef struct AdrPromSample
{
	const char *name;
	char	   *labels;
	int			nlabels;
	double		value;
} AdrPromSample;

/* A walk over the samples of one metric in a page. */
typedef struct AdrPromScan
{
	char	   *next;			/* where the rest of the page starts */
	const char *want;			/* the metric asked for */
	const char *type;			/* its # TYPE, or NULL */
} AdrPromScan;

extern bool adr_prom_parse_sample(char *line, AdrPromSample *out);
extern void adr_prom_scan_init(AdrPromScan *scan, char *page, const char *want);
extern bool adr_prom_scan_next(AdrPromScan *scan, AdrPromSample *out);
extern char *adr_prom_label_next(char *pair);

#endif							/* ADR_OPS_PROM_TEXT_H */
