/*-------------------------------------------------------------------------
 *
 * prom_check.c
 *	  Table-driven tests of the Prometheus text parser (src/prom_text.c).
 *
 * Plain C, no framework: each table row is a page, the metric asked for,
 * and the samples expected, written one per line as
 *		name{label=value,...} value
 * with the label values as the parser unescaped them and the value printed
 * with %.17g.  The program prints every failure, then "N passed, N failed",
 * and exits 1 if any failed.
 *
 * Run it with "make -C fuzz prom-check".
 *
 * IDENTIFICATION
 *	  fuzz/prom_check.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_text.h"

typedef struct PageCase
{
	const char *page;
	const char *want;
	const char *expect;			/* the samples, each line ending in \n */
} PageCase;

static const PageCase cases[] = {
	/* plain samples, labels, the metric asked for only */
	{"up 1\n", "up", "up{} 1\n"},
	{"up 1", "up", "up{} 1\n"},
	{"up 1\r\n", "up", "up{} 1\n"},
	{"up 1\nupper 2\nu 3\n", "up", "up{} 1\n"},
	{"  \t up 1\n", "up", "up{} 1\n"},
	{"up\t1\n", "up", "up{} 1\n"},
	{"up 1 1700000000000\n", "up", "up{} 1\n"},
	{"up{} 1\n", "up", "up{} 1\n"},
	{"up{ } 1\n", "up", "up{} 1\n"},
	{"rt{path=\"/a\"} 0.25\n", "rt", "rt{path=/a} 0.25\n"},
	{"rt{path=\"/a\",code=\"200\"} 0.5\n", "rt", "rt{path=/a,code=200} 0.5\n"},
	{"rt{ path = \"/a\" , code=\"200\" } 2\n", "rt", "rt{path=/a,code=200} 2\n"},
	{"rt{path=\"/a\",} 2\n", "rt", "rt{path=/a} 2\n"},
	{"rt{path=\"/a\"}2\n", "rt", "rt{path=/a} 2\n"},
	{"a:b_c{x=\"1\"} 3\n", "a:b_c", "a:b_c{x=1} 3\n"},
	{"rt 1\nrt 2\n\n\nrt 3\n", "rt", "rt{} 1\nrt{} 2\nrt{} 3\n"},
	/* label value escapes */
	{"m{v=\"a\\nb\"} 1\n", "m", "m{v=a\nb} 1\n"},
	{"m{v=\"a\\\\b\"} 1\n", "m", "m{v=a\\b} 1\n"},
	{"m{v=\"a\\\"b\"} 1\n", "m", "m{v=a\"b} 1\n"},
	{"m{v=\"a\\tb\"} 1\n", "m", "m{v=a\\tb} 1\n"},
	{"m{v=\"\"} 1\n", "m", "m{v=} 1\n"},
	{"m{v=\"x y,z}\"} 1\n", "m", "m{v=x y,z}} 1\n"},
	{"m{v=\"\xc3\xa9\xff\"} 1\n", "m", "m{v=\xc3\xa9\xff} 1\n"},
	/* values */
	{"m NaN\n", "m", "m{} nan\n"},
	{"m +Inf\n", "m", "m{} inf\n"},
	{"m -Inf\n", "m", "m{} -inf\n"},
	{"m 1e3\n", "m", "m{} 1000\n"},
	{"m -0.5\n", "m", "m{} -0.5\n"},
	{"m1 2\n", "m1", "m1{} 2\n"},
	{"m-1\n", "m", "m{} -1\n"},
	{"m 1e308\n", "m", "m{} 1e+308\n"},
	{"m 1e999\n", "m", ""},
	{"m 1e-999\n", "m", ""},
	{"m 0x10\n", "m", "m{} 16\n"},
	{"m 12abc\n", "m", ""},
	{"m 1234567890123456789012345678901234567890123456789012345678901\n", "m",
	"m{} 1.2345678901234568e+60\n"},
	{"m 12345678901234567890123456789012345678901234567890123456789012345\n", "m", ""},
	/* malformed lines are skipped, the rest is read */
	{"m\n", "m", ""},
	{"m \n", "m", ""},
	{"m{\n", "m", ""},
	{"m{v} 1\n", "m", ""},
	{"m{v=1} 1\n", "m", ""},
	{"m{v=\"1} 1\n", "m", ""},
	{"m{v=\"1\\", "m", ""},
	{"m{v=\"1\" w=\"2\"} 1\n", "m", ""},
	{"m{:v=\"1\"} 1\n", "m", ""},
	{"m{1v=\"1\"} 1\n", "m", ""},
	{"m{v=\"1\"\n", "m", ""},
	{"1m 1\n", "1m", ""},
	{"m{v=\"1\"} 1\nbroken{\nm{v=\"2\"} 2\n", "m", "m{v=1} 1\nm{v=2} 2\n"},
	/* comments, HELP and TYPE */
	{"# HELP m help text\n# TYPE m gauge\nm 1\n", "m", "m{} 1\n"},
	{"#m 1\nm 2\n", "m", "m{} 2\n"},
	{"# TYPE\n#\n# TYPE m\nm 2\n", "m", "m{} 2\n"},
	{"# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\nh_created 5\nh_total 9\n",
		"h",
	"h_bucket{le=0.1} 1\nh_bucket{le=+Inf} 2\nh_sum{} 0.29999999999999999\nh_count{} 2\nh_created{} 5\n"},
	{"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\ns_bucket 4\n", "s",
	"s{quantile=0.5} 1\ns_sum{} 2\ns_count{} 3\ns_bucket{} 4\n"},
	{"# TYPE c counter\nc_total 7\nc_created 8\nc_sum 9\n", "c", "c_total{} 7\nc_created{} 8\n"},
	{"# TYPE g gauge\ng_total 1\ng 2\n", "g", "g{} 2\n"},
	{"h_sum 1\n# TYPE h histogram\nh_sum 2\n", "h", "h_sum{} 2\n"},
	{"# TYPE other histogram\nh_sum 1\n", "h", ""},
	{"#\tTYPE\th\tsummary\nh_count 3\n", "h", "h_count{} 3\n"},
	{"# TYPE h histogram\n# TYPE h gauge\nh_sum 1\n", "h", ""},
	{"c_total 1\n", "c", ""},
	/* an empty page */
	{"", "m", ""},
	{"\n\n\r\n", "m", ""},
};

/* Append the samples of page's metric want to out, as the table writes them. */
static void
render(const char *page, const char *want, char *out, size_t outlen)
{
	size_t		len = strlen(page) + 1;
	char	   *buf = malloc(len);
	AdrPromScan scan;
	AdrPromSample s;
	size_t		used = 0;

	if (buf == NULL)
		abort();
	memcpy(buf, page, len);
	out[0] = '\0';
	adr_prom_scan_init(&scan, buf, want);
	while (adr_prom_scan_next(&scan, &s))
	{
		char	   *pair = s.labels;
		int			i;

		used += snprintf(out + used, outlen - used, "%s{", s.name);
		for (i = 0; i < s.nlabels && used < outlen; i++)
		{
			used += snprintf(out + used, outlen - used, "%s%s=%s", i ? "," : "",
							 pair, pair + strlen(pair) + 1);
			pair = adr_prom_label_next(pair);
		}
		if (used < outlen)
			used += snprintf(out + used, outlen - used, "} %.17g\n", s.value);
		if (used >= outlen)
			break;
	}
	free(buf);
}

int
main(void)
{
	int			passed = 0;
	int			failed = 0;
	size_t		i;
	char		got[4096];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		render(cases[i].page, cases[i].want, got, sizeof(got));
		if (strcmp(got, cases[i].expect) == 0)
			passed++;
		else
		{
			failed++;
			printf("FAIL case %zu (want \"%s\"):\n  expected: \"%s\"\n  got:      \"%s\"\n",
				   i, cases[i].want, cases[i].expect, got);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed > 0;
}
