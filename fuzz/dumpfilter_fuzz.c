/*-------------------------------------------------------------------------
 *
 * dumpfilter_fuzz.c
 *	  libFuzzer target for the plain-dump filter of backup verification.
 *
 * The first byte of an input picks which of the caller's rules apply (a
 * schema of an extension, its sequence, its table), the second seeds the
 * chunk sizes, and the rest is the dump.  The dump is filtered twice: in
 * one piece, and cut into chunks of pseudo-random sizes around the
 * filter's 256-byte head.  Both runs must agree on the result, the
 * output and the message, since the output must not depend on where the
 * reads end.  Then:
 *   - the output is the dump with whole lines removed, nothing else: its
 *     lines are a subsequence of the dump's, in order;
 *   - no line of the output starts with \connect or \c as a command;
 *   - a rejection comes with a terminated message that names the line.
 *
 * Run it with "make -C fuzz dumpfilter-run".
 *
 * IDENTIFICATION
 *	  fuzz/dumpfilter_fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dumpfilter.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct FuzzBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} FuzzBuf;

static const char *const fuzz_drop_lines[] = {"CREATE SCHEMA s;"};
static const char *const fuzz_drop_prefixes[] = {"SELECT pg_catalog.setval('s.q', "};
static const char *const fuzz_skip_copies[] = {"COPY s.t "};

static void
fuzz_emit(void *arg, const char *data, size_t len)
{
	FuzzBuf    *b = arg;

	if (b->len + len > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 256;

		while (cap < b->len + len)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (b->data == NULL)
			abort();
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

/* Filter the dump in chunks (chunk seed 0: in one piece). */
static AdrDumpFilterResult
fuzz_run(const AdrDumpFilterRules *rules, const char *dump, size_t size,
		 unsigned seed, FuzzBuf *out, char *error)
{
	AdrDumpFilter f;
	AdrDumpFilterResult r = ADR_DUMP_FILTER_OK;
	size_t		off = 0;
	uint32_t	x = seed * 2654435761u + 1;

	adr_dump_filter_init(&f, rules, fuzz_emit, out);
	do
	{
		size_t		n = size - off;

		if (seed != 0)
		{
			/* xorshift: mostly short chunks, some across the head limit */
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			n = (x % 4 == 0) ? 250 + x % 12 : 1 + x % 40;
			if (n > size - off)
				n = size - off;
		}
		r = adr_dump_filter(&f, dump + off, n, off + n == size && seed % 2 == 0);
		off += n;
		if (r == ADR_DUMP_FILTER_OK && off == size && seed % 2 == 1)
			r = adr_dump_filter(&f, "", 0, true);
	} while (r == ADR_DUMP_FILTER_OK && off < size);
	memcpy(error, f.error, ADR_DUMP_FILTER_ERRLEN);
	adr_dump_filter_free(&f);
	return r;
}

/* The length of the line at p (with its "\n"), within end. */
static size_t
fuzz_line(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', end - p);

	return nl ? (size_t) (nl - p) + 1 : (size_t) (end - p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	AdrDumpFilterRules rules = {0};
	FuzzBuf		one = {0},
				many = {0};
	char		error_one[ADR_DUMP_FILTER_ERRLEN];
	char		error_many[ADR_DUMP_FILTER_ERRLEN];
	AdrDumpFilterResult r_one,
				r_many;
	const char *dump;
	size_t		dump_len;
	const char *p,
			   *q;

	if (size < 2)
		return 0;
	if (data[0] & 1)
	{
		rules.drop_lines = fuzz_drop_lines;
		rules.ndrop_lines = 1;
	}
	if (data[0] & 2)
	{
		rules.drop_prefixes = fuzz_drop_prefixes;
		rules.ndrop_prefixes = 1;
	}
	if (data[0] & 4)
	{
		rules.skip_copies = fuzz_skip_copies;
		rules.nskip_copies = 1;
	}
	dump = (const char *) data + 2;
	dump_len = size - 2;

	r_one = fuzz_run(&rules, dump, dump_len, 0, &one, error_one);
	r_many = fuzz_run(&rules, dump, dump_len, data[1] + 1u, &many, error_many);
	if (r_one == ADR_DUMP_FILTER_NOMEM || r_many == ADR_DUMP_FILTER_NOMEM)
		abort();
	if (r_one != r_many || one.len != many.len ||
		(one.len > 0 && memcmp(one.data, many.data, one.len) != 0))
		abort();
	if (r_one == ADR_DUMP_FILTER_REJECTED)
	{
		if (memchr(error_one, '\0', sizeof(error_one)) == NULL ||
			strncmp(error_one, "line ", 5) != 0 || strcmp(error_one, error_many) != 0)
			abort();
	}

	/* the output's lines are the dump's, in order, some left out */
	p = one.data;
	q = dump;
	while (one.len > 0 && p < one.data + one.len)
	{
		size_t		len = fuzz_line(p, one.data + one.len);

		for (;;)
		{
			size_t		qlen;

			if (q >= dump + dump_len)
				abort();
			qlen = fuzz_line(q, dump + dump_len);
			q += qlen;
			if (qlen == len && memcmp(p, q - qlen, len) == 0)
				break;
		}
		/* no \connect or \c command gets through */
		if ((len >= 8 && memcmp(p, "\\connect", 8) == 0 &&
			 (len == 8 || (p[8] != '\0' && strchr(" \t\n\v\f\r", p[8]) != NULL))) ||
			(len >= 2 && memcmp(p, "\\c", 2) == 0 &&
			 (len == 2 || (p[2] != '\0' && strchr(" \t\n\v\f\r", p[2]) != NULL))))
			abort();
		p += len;
	}

	free(one.data);
	free(many.data);
	return 0;
}
