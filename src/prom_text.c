/*-------------------------------------------------------------------------
 *
 * prom_text.c
 *	  Parser of the Prometheus text exposition format: the samples of one
 *	  metric of a page, as adr_http_metric() returns them.
 *
 * A page is lines.  Blank lines, comments and HELP lines are skipped; a
 * "# TYPE name type" line for the metric asked for declares its family, so
 * that the _bucket, _sum, _count and _created series of a histogram or a
 * summary, and the _total and _created series of a counter, belong to it.
 * A sample line is
 *		name[{label="value"[, ...]}] value [timestamp]
 * and a line that is not a well-formed sample is skipped, never an error.
 * Label values unescape \n, \\ and \"; any other backslash is kept with the
 * character after it.  Values are floats as strtod reads them (NaN, +Inf,
 * -Inf included); one out of range (1e999, 1e-999) is malformed, as for
 * float8in.  The timestamp is not returned.
 *
 * Design: the page comes from the network, so this file is kept apart from
 * the SQL glue and free of PostgreSQL headers, to be fuzzed and tested on
 * its own (fuzz/).  It allocates nothing: it works in place in the page's
 * buffer, which it may rewrite.  Every decoding step writes no further
 * than it has read (a label name and value need at least the '=' and two
 * quotes around them, and an escape is two bytes for one), so the parser
 * never overwrites what it has yet to read.  Character classes are ASCII,
 * written out rather than taken from <ctype.h>, whose answers for bytes
 * above 0x7F depend on the locale.
 *
 * Nothing here keeps state between calls; it is safe in any process and
 * takes no locks.
 *
 * IDENTIFICATION
 *	  src/prom_text.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prom_text.h"

/* Longest value token read; a longer one is malformed, not cut. */
#define PT_VALUE_MAX	64

static bool
pt_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool
pt_name_char(char c)
{
	return pt_name_start(c) || (c >= '0' && c <= '9');
}

static bool
pt_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * strtok_r's contract, which C99 lacks: the next token of s (or, when s is
 * NULL, of what *save holds) separated by any of delims, terminated in
 * place; NULL when none is left.
 */
static char *
pt_token(char *s, const char *delims, char **save)
{
	char	   *tok;

	if (s == NULL)
		s = *save;
	s += strspn(s, delims);
	if (*s == '\0')
	{
		*save = s;
		return NULL;
	}
	tok = s;
	s += strcspn(s, delims);
	if (*s != '\0')
		*s++ = '\0';
	*save = s;
	return tok;
}

/*
 * Parse one sample line (leading blanks already skipped) into out.
 * Returns false for a line that is not a well-formed sample; the line's
 * text may have been rewritten either way.
 */
bool
adr_prom_parse_sample(char *line, AdrPromSample *out)
{
	char	   *p = line;
	char	   *name_end;
	char	   *w;
	char	   *end;
	char		tok[PT_VALUE_MAX];
	int			n = 0;

	if (!pt_name_start(*p))
		return false;
	while (pt_name_char(*p))
		p++;
	name_end = p;
	out->name = line;
	out->nlabels = 0;
	out->labels = p;			/* no labels: an empty list */

	if (*p == '{')
	{
		p++;
		w = p;
		out->labels = w;
		for (;;)
		{
			char	   *ls;
			size_t		llen;

			while (pt_blank(*p))
				p++;
			if (*p == '}')
				break;
			if (!pt_name_start(*p) || *p == ':')
				return false;
			ls = p;
			while (pt_name_char(*p) && *p != ':')
				p++;
			llen = p - ls;
			while (pt_blank(*p))
				p++;
			if (*p++ != '=')
				return false;
			while (pt_blank(*p))
				p++;
			if (*p++ != '"')
				return false;
			/* p is now at least two bytes past the label name's end */
			memmove(w, ls, llen);
			w += llen;
			*w++ = '\0';
			while (*p != '"')
			{
				if (*p == '\0')
					return false;
				if (*p == '\\')
				{
					p++;
					if (*p == 'n')
						*w++ = '\n';
					else if (*p == '\\' || *p == '"')
						*w++ = *p;
					else if (*p == '\0')
						return false;
					else
					{
						*w++ = '\\';
						*w++ = *p;
					}
					p++;
				}
				else
					*w++ = *p++;
			}
			*w++ = '\0';		/* in place of a byte before the quote */
			p++;				/* the closing quote */
			out->nlabels++;
			while (pt_blank(*p))
				p++;
			if (*p == ',')
			{
				p++;
				continue;
			}
			if (*p != '}')
				return false;
			break;
		}
		p++;					/* the closing brace */
	}

	while (pt_blank(*p))
		p++;
	while (*p && !pt_blank(*p))
	{
		if (n >= PT_VALUE_MAX - 1)
			return false;
		tok[n++] = *p++;
	}
	tok[n] = '\0';
	if (n == 0)
		return false;

	/*
	 * strtod reads NaN, Inf, +Inf and -Inf as the format writes them.  A
	 * number out of range is malformed: strtod would make it an infinity
	 * or zero.
	 */
	errno = 0;
	out->value = strtod(tok, &end);
	if (*end != '\0' || (errno == ERANGE && (out->value == 0 || isinf(out->value))))
		return false;
	/* An optional timestamp follows; it is not returned. */

	/*
	 * Last, terminate the name: the byte after it is the '{' already
	 * consumed, or a byte of the value already copied to tok.
	 */
	*name_end = '\0';
	return true;
}

/*
 * Does the sample name belong to the wanted metric?  Its own name always;
 * the _bucket, _sum, _count and _created series of a histogram or summary,
 * and the _total and _created series of a counter, as declared by the
 * page's # TYPE line (type, or NULL when there was none).
 */
static bool
adr_prom_wanted(const char *name, const char *want, const char *type)
{
	size_t		wl = strlen(want);
	const char *suffix;

	if (strcmp(name, want) == 0)
		return true;
	if (type == NULL || strncmp(name, want, wl) != 0)
		return false;
	suffix = name + wl;
	if (strcmp(type, "histogram") == 0 || strcmp(type, "summary") == 0)
		return strcmp(suffix, "_bucket") == 0 || strcmp(suffix, "_sum") == 0 ||
			strcmp(suffix, "_count") == 0 || strcmp(suffix, "_created") == 0;
	if (strcmp(type, "counter") == 0)
		return strcmp(suffix, "_total") == 0 || strcmp(suffix, "_created") == 0;
	return false;
}

/* Start a walk over page (terminated, and rewritten by the walk). */
void
adr_prom_scan_init(AdrPromScan *scan, char *page, const char *want)
{
	scan->next = page;
	scan->want = want;
	scan->type = NULL;
}

/*
 * The next sample of the wanted metric: true with out filled in, or false
 * at the end of the page.
 */
bool
adr_prom_scan_next(AdrPromScan *scan, AdrPromSample *out)
{
	char	   *line;

	while ((line = pt_token(NULL, "\n", &scan->next)) != NULL)
	{
		char	   *p = line;
		size_t		len = strlen(line);

		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		while (pt_blank(*p))
			p++;
		if (*p == '\0')
			continue;
		if (*p == '#')
		{
			/* "# TYPE name type" declares the family of the samples below. */
			char	   *tsave = NULL;
			char	   *w = pt_token(p + 1, " \t", &tsave);

			if (w && strcmp(w, "TYPE") == 0)
			{
				char	   *tname = pt_token(NULL, " \t", &tsave);
				char	   *ttype = pt_token(NULL, " \t", &tsave);

				if (tname && ttype && strcmp(tname, scan->want) == 0)
					scan->type = ttype;
			}
			continue;
		}
		if (!adr_prom_parse_sample(p, out))
			continue;
		if (adr_prom_wanted(out->name, scan->want, scan->type))
			return true;
	}
	return false;
}

/* The label after pair (a label name in AdrPromSample.labels). */
char *
adr_prom_label_next(char *pair)
{
	pair += strlen(pair) + 1;	/* the name */
	return pair + strlen(pair) + 1; /* the value */
}
