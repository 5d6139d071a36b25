/*-------------------------------------------------------------------------
 *
 * dumpfilter_check.c
 *	  Table-driven tests of the plain-dump filter (src/dumpfilter.c).
 *
 * The table is t/fixtures/dump_filter_cases.txt, the cases that define
 * the filter's rule (its header says how they are written); the awk copy
 * of the rule in scripts/adr-verify-backup runs the same table in
 * t/052_dump_filter_rule.pl.  Each case is run with the dump cut into
 * chunks of many sizes, the end of the stream given with the last chunk
 * or after it, and every run must give the expected output: the lines
 * marked "+", in order, and the rejection at the line marked "!".
 *
 * Plain C, no framework: the program prints every failure, then
 * "N passed, N failed", and exits 1 if any failed.
 *
 * Run it with "make -C fuzz dumpfilter-check".
 *
 * IDENTIFICATION
 *	  fuzz/dumpfilter_check.c
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L		/* getline */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dumpfilter.h"

#define CHECK_MAX_RULES 16

/* A growable byte buffer. */
typedef struct CheckBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} CheckBuf;

typedef struct CheckCase
{
	char		name[256];
	int			fixture_line;	/* where it starts in the fixture */
	char	   *drop_lines[CHECK_MAX_RULES];
	size_t		ndrop_lines;
	char	   *drop_prefixes[CHECK_MAX_RULES];
	size_t		ndrop_prefixes;
	char	   *skip_copies[CHECK_MAX_RULES];
	size_t		nskip_copies;
	CheckBuf	input;
	CheckBuf	want;			/* the output (before the rejection) */
	int			nlines;
	int			reject_line;	/* 0: not rejected */
} CheckCase;

static int	passed;
static int	failed;

static void
check_append(CheckBuf *b, const char *data, size_t len)
{
	if (b->len + len + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 256;

		while (cap < b->len + len + 1)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (b->data == NULL)
		{
			perror("realloc");
			exit(2);
		}
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static void
check_emit(void *arg, const char *data, size_t len)
{
	check_append((CheckBuf *) arg, data, len);
}

/*
 * Expand the escapes of the fixture ({cr}, {sp}, {tab}, {vt}, {ff},
 * {C*N}, and {noeol} at the end) of text into out; returns whether the
 * line ends without a line end.
 */
static int
check_expand(const char *text, CheckBuf *out)
{
	const char *p = text;
	int			noeol = 0;

	while (*p)
	{
		static const struct
		{
			const char *name;
			const char *value;
		}			named[] = {
			{"{cr}", "\r"}, {"{sp}", " "}, {"{tab}", "\t"}, {"{vt}", "\v"}, {"{ff}", "\f"}
		};
		size_t		k;
		int			done = 0;
		char		c;
		int			n;
		int			used;

		for (k = 0; k < sizeof(named) / sizeof(named[0]); k++)
		{
			size_t		l = strlen(named[k].name);

			if (strncmp(p, named[k].name, l) == 0)
			{
				check_append(out, named[k].value, 1);
				p += l;
				done = 1;
				break;
			}
		}
		if (done)
			continue;
		if (strcmp(p, "{noeol}") == 0)
		{
			noeol = 1;
			break;
		}
		used = 0;
		if (p[0] == '{' && sscanf(p, "{%c*%d}%n", &c, &n, &used) == 2 && used > 0 && n > 0)
		{
			while (n-- > 0)
				check_append(out, &c, 1);
			p += used;
			continue;
		}
		check_append(out, p, 1);
		p++;
	}
	return noeol;
}

static char *
check_expand_rule(const char *text)
{
	CheckBuf	b = {0};

	check_append(&b, "", 0);
	check_expand(text, &b);
	return b.data;
}

static void
check_fail(const CheckCase *c, const char *how, const char *what)
{
	failed++;
	printf("FAIL: case \"%s\" (fixture line %d), %s: %s\n", c->name, c->fixture_line, how, what);
}

/*
 * Run one case with the dump cut into chunks of size chunk; eof_apart:
 * the end of the stream comes in a call of its own.
 */
static void
check_run(const CheckCase *c, size_t chunk, int eof_apart)
{
	AdrDumpFilter f;
	AdrDumpFilterRules rules;
	CheckBuf	out = {0};
	AdrDumpFilterResult r = ADR_DUMP_FILTER_OK;
	size_t		off = 0;
	char		how[64];
	char		want_error[128];

	snprintf(how, sizeof(how), "chunks of %zu%s", chunk, eof_apart ? ", end apart" : "");
	rules.drop_lines = (const char *const *) c->drop_lines;
	rules.ndrop_lines = c->ndrop_lines;
	rules.drop_prefixes = (const char *const *) c->drop_prefixes;
	rules.ndrop_prefixes = c->ndrop_prefixes;
	rules.skip_copies = (const char *const *) c->skip_copies;
	rules.nskip_copies = c->nskip_copies;
	adr_dump_filter_init(&f, &rules, check_emit, &out);
	check_append(&out, "", 0);
	do
	{
		size_t		n = c->input.len - off < chunk ? c->input.len - off : chunk;
		int			last = off + n == c->input.len;

		r = adr_dump_filter(&f, c->input.data + off, n, last && !eof_apart);
		off += n;
		if (r == ADR_DUMP_FILTER_OK && last && eof_apart)
			r = adr_dump_filter(&f, "", 0, 1);
	} while (r == ADR_DUMP_FILTER_OK && off < c->input.len);

	if (r == ADR_DUMP_FILTER_NOMEM)
		check_fail(c, how, "out of memory");
	else if (c->reject_line == 0 && r == ADR_DUMP_FILTER_REJECTED)
		check_fail(c, how, f.error);
	else if (c->reject_line != 0 && r != ADR_DUMP_FILTER_REJECTED)
		check_fail(c, how, "the dump was not rejected");
	else if (out.len != c->want.len || memcmp(out.data, c->want.data, out.len) != 0)
	{
		printf("  got:  \"%.300s\"\n  want: \"%.300s\"\n", out.data, c->want.data);
		check_fail(c, how, "the output differs");
	}
	else if (c->reject_line != 0 &&
			 (snprintf(want_error, sizeof(want_error),
					   "line %d: the dump connects to another database with \\connect ",
					   c->reject_line),
			  strncmp(f.error, want_error, strlen(want_error)) != 0))
		check_fail(c, how, f.error);
	else
		passed++;
	adr_dump_filter_free(&f);
	free(out.data);
}

static void
check_case(CheckCase *c)
{
	static const size_t chunks[] = {1, 2, 3, 5, 7, 64, 255, 256, 257, 4096, 65535, 65536, 1 << 20};
	size_t		k;

	if (c->name[0] == '\0')
		return;
	check_append(&c->input, "", 0);
	check_append(&c->want, "", 0);
	for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++)
	{
		check_run(c, chunks[k], 0);
		check_run(c, chunks[k], 1);
	}
}

static void
check_clear(CheckCase *c)
{
	size_t		k;

	for (k = 0; k < c->ndrop_lines; k++)
		free(c->drop_lines[k]);
	for (k = 0; k < c->ndrop_prefixes; k++)
		free(c->drop_prefixes[k]);
	for (k = 0; k < c->nskip_copies; k++)
		free(c->skip_copies[k]);
	free(c->input.data);
	free(c->want.data);
	memset(c, 0, sizeof(*c));
}

static void
check_add_rule(char **list, size_t *n, const char *text, int lineno)
{
	if (*n >= CHECK_MAX_RULES)
	{
		fprintf(stderr, "fixture line %d: too many rules\n", lineno);
		exit(2);
	}
	list[(*n)++] = check_expand_rule(text);
}

int
main(int argc, char **argv)
{
	FILE	   *fp;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	int			lineno = 0;
	CheckCase	c;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s CASES\n", argv[0]);
		return 2;
	}
	fp = fopen(argv[1], "r");
	if (fp == NULL)
	{
		perror(argv[1]);
		return 2;
	}
	memset(&c, 0, sizeof(c));
	while ((len = getline(&line, &cap, fp)) >= 0)
	{
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (strncmp(line, "=== ", 4) == 0)
		{
			check_case(&c);
			check_clear(&c);
			snprintf(c.name, sizeof(c.name), "%s", line + 4);
			c.fixture_line = lineno;
		}
		else if (c.name[0] == '\0' || c.reject_line != 0)
		{
			fprintf(stderr, "fixture line %d: outside a case, or after the rejected line\n", lineno);
			return 2;
		}
		else if (strncmp(line, "drop-line ", 10) == 0)
			check_add_rule(c.drop_lines, &c.ndrop_lines, line + 10, lineno);
		else if (strncmp(line, "drop-prefix ", 12) == 0)
			check_add_rule(c.drop_prefixes, &c.ndrop_prefixes, line + 12, lineno);
		else if (strncmp(line, "skip-copy ", 10) == 0)
			check_add_rule(c.skip_copies, &c.nskip_copies, line + 10, lineno);
		else if ((line[0] == '+' || line[0] == '-' || line[0] == '!') &&
				 (line[1] == '\0' || line[1] == ' '))
		{
			CheckBuf	one = {0};
			int			noeol;

			check_append(&one, "", 0);
			noeol = check_expand(line[1] ? line + 2 : "", &one);
			if (!noeol)
				check_append(&one, "\n", 1);
			check_append(&c.input, one.data, one.len);
			c.nlines++;
			if (line[0] == '+')
				check_append(&c.want, one.data, one.len);
			else if (line[0] == '!')
				c.reject_line = c.nlines;
			free(one.data);
		}
		else
		{
			fprintf(stderr, "fixture line %d: not understood: %s\n", lineno, line);
			return 2;
		}
	}
	check_case(&c);
	check_clear(&c);
	free(line);
	fclose(fp);
	printf("%d passed, %d failed\n", passed, failed);
	return failed > 0;
}
