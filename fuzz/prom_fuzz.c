/*-------------------------------------------------------------------------
 *
 * prom_fuzz.c
 *	  libFuzzer target for the Prometheus text parser (src/prom_text.c).
 *
 * The input's first line names the metric asked for ("m" when there is no
 * line break); the rest is the page.  The page is copied into a
 * NUL-terminated buffer of its own size (so that AddressSanitizer catches
 * any read or write past the terminator) and walked.  Every sample must
 * lie inside the buffer, have a well-formed name that belongs to the
 * metric, and well-formed label names.  Each sample is then written back
 * in the exposition format, escapes and all, and parsed again: the second
 * parse must give the same name, labels and value (a round trip).
 *
 * Run it with "make -C fuzz prom-run".
 *
 * IDENTIFICATION
 *	  fuzz/prom_fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_text.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
fuzz_name_ok(const char *s, bool label)
{
	const char *p = s;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
		  (*p == ':' && !label)))
		return false;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			  (*p >= '0' && *p <= '9') || (*p == ':' && !label)))
			return false;
	return true;
}

static bool
fuzz_inside(const char *p, const char *buf, size_t len)
{
	return p >= buf && p < buf + len && memchr(p, '\0', buf + len - p) != NULL;
}

/* Write s back in the exposition format and check that it parses the same. */
static void
fuzz_round_trip(const AdrPromSample *s)
{
	size_t		cap = strlen(s->name) + 64;
	char	   *pair = s->labels;
	char	   *line;
	char	   *w;
	AdrPromSample again;
	char	   *p2;
	int			i;

	for (i = 0; i < s->nlabels; i++)
	{
		cap += 2 * strlen(pair) + 2 * strlen(pair + strlen(pair) + 1) + 8;
		pair = adr_prom_label_next(pair);
	}
	line = malloc(cap);
	if (line == NULL)
		abort();
	w = line + sprintf(line, "%s{", s->name);
	pair = s->labels;
	for (i = 0; i < s->nlabels; i++)
	{
		const char *v = pair + strlen(pair) + 1;

		w += sprintf(w, "%s=\"", pair);
		for (; *v; v++)
		{
			if (*v == '\\' || *v == '"')
				*w++ = '\\';
			if (*v == '\n')
			{
				*w++ = '\\';
				*w++ = 'n';
			}
			else
				*w++ = *v;
		}
		*w++ = '"';
		*w++ = ',';
		pair = adr_prom_label_next(pair);
	}
	sprintf(w, "} %.17g", s->value);

	if (!adr_prom_parse_sample(line, &again) ||
		strcmp(again.name, s->name) != 0 ||
		again.nlabels != s->nlabels ||
		(isnan(s->value) ? !isnan(again.value) : again.value != s->value))
		abort();
	pair = s->labels;
	p2 = again.labels;
	for (i = 0; i < s->nlabels; i++)
	{
		if (strcmp(pair, p2) != 0 ||
			strcmp(pair + strlen(pair) + 1, p2 + strlen(p2) + 1) != 0)
			abort();
		pair = adr_prom_label_next(pair);
		p2 = adr_prom_label_next(p2);
	}
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char		want[65] = "m";
	char	   *buf;
	size_t		len;
	AdrPromScan scan;
	AdrPromSample s;
	/* copies, since the walk rewrites the page */
	char	   *names[4096];
	int			nsamples = 0;

	if (nl != NULL)
	{
		size_t		wl = nl - data;

		if (wl == 0 || wl >= sizeof(want) || memchr(data, '\0', wl) != NULL)
			return 0;
		memcpy(want, data, wl);
		want[wl] = '\0';
		data = nl + 1;
		size -= wl + 1;
	}
	len = size + 1;
	buf = malloc(len);
	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';

	adr_prom_scan_init(&scan, buf, want);
	while (adr_prom_scan_next(&scan, &s))
	{
		char	   *pair = s.labels;
		int			i;

		if (!fuzz_inside(s.name, buf, len) || !fuzz_name_ok(s.name, false) ||
			strncmp(s.name, want, strlen(want)) != 0 || s.nlabels < 0)
			abort();
		for (i = 0; i < s.nlabels; i++)
		{
			if (!fuzz_inside(pair, buf, len) || !fuzz_name_ok(pair, true) ||
				!fuzz_inside(pair + strlen(pair) + 1, buf, len))
				abort();
			pair = adr_prom_label_next(pair);
		}
		fuzz_round_trip(&s);
		if (nsamples < 4096)
			names[nsamples++] = (char *) s.name;
	}
	/* a sample's name stays intact while the walk goes on */
	for (int i = 0; i < nsamples; i++)
		if (!fuzz_name_ok(names[i], false))
			abort();
	free(buf);
	return 0;
}
