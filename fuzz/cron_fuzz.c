/*-------------------------------------------------------------------------
 *
 * cron_fuzz.c
 *	  libFuzzer target for the cron parser and next-time evaluator.
 *
 * Each input is copied into a NUL-terminated buffer of its own size (so
 * that AddressSanitizer catches any read past the terminator) and parsed.
 * A refused input must come back with a terminated message that fits the
 * buffer and a position inside the text or just past it.  A cron schedule
 * is then evaluated from a few fixed starts, chosen around month, year and
 * leap-day ends, and every answer must be a whole minute strictly after
 * its start that the schedule matches, checked here with a calendar of
 * our own rather than the library's.  When the answer is near, every
 * minute between the start and it is checked too, so that a skipped match
 * shows up.
 *
 * Run it with "make -C fuzz run".
 *
 * IDENTIFICATION
 *	  fuzz/cron_fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "cron.h"

/* Minutes scanned one by one before an answer to look for a missed match. */
#define FUZZ_SCAN_MINUTES	(3 * 24 * 60)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const AdrCivilTime fuzz_starts[] = {
	{2024, 2, 28, 23, 59, 30},
	{2023, 12, 31, 23, 59, 0},
	{2000, 2, 29, 12, 0, 0},
	{2100, 2, 28, 23, 59, 59},
	{1999, 1, 1, 0, 0, 0},
	{2025, 6, 30, 23, 0, 0}
};

/* Sakamoto's method, 0 = Sunday; years here are positive. */
static int
fuzz_weekday(int y, int m, int d)
{
	static const int t[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};

	if (m < 3)
		y -= 1;
	return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

static int
fuzz_days_in_month(int y, int m)
{
	static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && (y % 400 == 0 || (y % 4 == 0 && y % 100 != 0)))
		return 29;
	return n[m - 1];
}

static bool
fuzz_matches(const AdrCronSchedule *s, const AdrCivilTime *t)
{
	bool		dom;
	bool		dow;

	if (t->second != 0 ||
		!((s->months >> t->month) & 1) ||
		!((s->hours >> t->hour) & 1) ||
		!((s->minutes >> t->minute) & 1))
		return false;
	dom = (s->days >> t->day) & 1;
	dow = (s->weekdays >> fuzz_weekday(t->year, t->month, t->day)) & 1;
	if (s->days_star || s->weekdays_star)
		return dom && dow;
	return dom || dow;
}

static bool
fuzz_valid(const AdrCivilTime *t)
{
	return t->month >= 1 && t->month <= 12 &&
		t->day >= 1 && t->day <= fuzz_days_in_month(t->year, t->month) &&
		t->hour >= 0 && t->hour <= 23 &&
		t->minute >= 0 && t->minute <= 59;
}

/* -1, 0, 1 as a is before, at or after b (seconds included). */
static int
fuzz_compare(const AdrCivilTime *a, const AdrCivilTime *b)
{
	const int	x[6] = {a->year, a->month, a->day, a->hour, a->minute, a->second};
	const int	y[6] = {b->year, b->month, b->day, b->hour, b->minute, b->second};
	int			i;

	for (i = 0; i < 6; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

static void
fuzz_add_minute(AdrCivilTime *t)
{
	t->second = 0;
	if (++t->minute < 60)
		return;
	t->minute = 0;
	if (++t->hour < 24)
		return;
	t->hour = 0;
	if (++t->day <= fuzz_days_in_month(t->year, t->month))
		return;
	t->day = 1;
	if (++t->month <= 12)
		return;
	t->month = 1;
	t->year++;
}

static void
fuzz_check_next(const AdrCronSchedule *s, const AdrCivilTime *start)
{
	AdrCivilTime next;
	AdrCivilTime t;
	int			i;

	if (!adr_cron_next(s, start, &next))
	{
		/* nothing within the bound: nothing in the next few days either */
		t = *start;
		for (i = 0; i < FUZZ_SCAN_MINUTES; i++)
		{
			fuzz_add_minute(&t);
			if (fuzz_matches(s, &t))
				abort();
		}
		return;
	}

	if (!fuzz_valid(&next) || fuzz_compare(&next, start) <= 0 ||
		!fuzz_matches(s, &next) ||
		next.year > start->year + ADR_CRON_SEARCH_YEARS)
		abort();

	/* no earlier match in the minutes scanned */
	t = *start;
	for (i = 0; i < FUZZ_SCAN_MINUTES; i++)
	{
		fuzz_add_minute(&t);
		if (fuzz_compare(&t, &next) >= 0)
			break;
		if (fuzz_matches(s, &t))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text;
	char		err[ADR_CRON_ERRLEN];
	AdrCronSchedule s;
	int			errpos = -1;
	size_t		i;

	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	memset(err, 'x', sizeof(err));
	if (!adr_cron_parse(text, &s, err, sizeof(err), &errpos))
	{
		/* a message, terminated, and a position in the text or just past */
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0' ||
			errpos < 1 || (size_t) errpos > strlen(text) + 1)
			abort();
		free(text);
		return 0;
	}
	if (err[0] != '\0' || errpos != 0)
		abort();

	if (s.interval_seconds > 0)
	{
		if (s.interval_seconds > 59)
			abort();
	}
	else
	{
		/* every field has a value; nothing outside the fields' ranges */
		if ((s.minutes & ~((1ULL << 60) - 1)) != 0 || s.minutes == 0 ||
			(s.hours & ~((1UL << 24) - 1)) != 0 || s.hours == 0 ||
			(s.days & 1) != 0 || s.days == 0 ||
			(s.months & ~0x1FFEU) != 0 || s.months == 0 ||
			(s.weekdays & 0x80) != 0 || s.weekdays == 0)
			abort();
		for (i = 0; i < sizeof(fuzz_starts) / sizeof(fuzz_starts[0]); i++)
			fuzz_check_next(&s, &fuzz_starts[i]);
	}

	free(text);
	return 0;
}
