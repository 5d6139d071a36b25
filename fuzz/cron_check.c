/*-------------------------------------------------------------------------
 *
 * cron_check.c
 *	  Table-driven tests of the cron parser and next-time evaluator.
 *
 * Plain C, no framework: each table row is one case, and the program
 * prints every failure, then "N passed, N failed", and exits 1 if any
 * failed.  Expected times were worked out by hand and checked against a
 * calendar; the last group compares adr_cron_next with a slow day-by-day
 * search, written here without the library's calendar code, from many
 * pseudo-random starts.
 *
 * Run it with "make -C fuzz check".
 *
 * IDENTIFICATION
 *	  fuzz/cron_check.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include "cron.h"

/* A schedule, a start and the expected next time (found = false: none). */
typedef struct NextCase
{
	const char *schedule;
	AdrCivilTime start;
	bool		found;
	AdrCivilTime want;
} NextCase;

/* A schedule that must be refused, with the exact message and position. */
typedef struct BadCase
{
	const char *schedule;
	const char *message;
	int			errpos;
} BadCase;

static const NextCase next_cases[] = {
	/* steps, and "strictly after" */
	{"*/5 * * * *", {2024, 3, 10, 10, 2, 30}, true, {2024, 3, 10, 10, 5, 0}},
	{"*/5 * * * *", {2024, 3, 10, 10, 5, 0}, true, {2024, 3, 10, 10, 10, 0}},
	{"5/15 * * * *", {2024, 3, 10, 10, 50, 0}, true, {2024, 3, 10, 11, 5, 0}},
	{"0 22/1 * * *", {2024, 3, 10, 23, 0, 0}, true, {2024, 3, 11, 22, 0, 0}},
	{"0 0 1 */3 *", {2024, 4, 2, 0, 0, 0}, true, {2024, 7, 1, 0, 0, 0}},
	{"15 10 * * 1-5/2", {2024, 1, 1, 10, 15, 0}, true, {2024, 1, 3, 10, 15, 0}},
	/* "a/s" on day of week runs to 7: Sunday */
	{"0 0 * * 1/2", {2024, 1, 5, 0, 0, 0}, true, {2024, 1, 7, 0, 0, 0}},
	{"0 0 * * 6/1", {2024, 1, 6, 0, 0, 0}, true, {2024, 1, 7, 0, 0, 0}},
	{"0 0 * * 6-7/1", {2024, 1, 6, 0, 0, 0}, true, {2024, 1, 7, 0, 0, 0}},
	{"0 0 * * */2", {2024, 1, 6, 0, 0, 0}, true, {2024, 1, 7, 0, 0, 0}},
	/* year, month and day ends */
	{"* * * * *", {2023, 12, 31, 23, 59, 59}, true, {2024, 1, 1, 0, 0, 0}},
	{"* * * * *", {2016, 12, 31, 23, 59, 60}, true, {2017, 1, 1, 0, 0, 0}},
	{"0 0 1 1 *", {2023, 12, 31, 23, 59, 0}, true, {2024, 1, 1, 0, 0, 0}},
	{"59 23 31 12 *", {2024, 12, 31, 23, 59, 0}, true, {2025, 12, 31, 23, 59, 0}},
	{"0 0 31 * *", {2024, 4, 1, 0, 0, 0}, true, {2024, 5, 31, 0, 0, 0}},
	{"0 0 31 */2 *", {2024, 1, 31, 0, 0, 0}, true, {2024, 3, 31, 0, 0, 0}},
	{"0 0 31 4,6,9,11 *", {2024, 1, 1, 0, 0, 0}, false, {0, 0, 0, 0, 0, 0}},
	/* February in leap and common years */
	{"0 0 * 2 *", {2023, 2, 28, 0, 0, 0}, true, {2024, 2, 1, 0, 0, 0}},
	{"0 0 * 2 *", {2024, 2, 28, 0, 0, 0}, true, {2024, 2, 29, 0, 0, 0}},
	{"59 23 28-31 2 *", {2023, 2, 28, 23, 59, 0}, true, {2024, 2, 28, 23, 59, 0}},
	{"0 0 29 2 *", {2023, 3, 1, 0, 0, 0}, true, {2024, 2, 29, 0, 0, 0}},
	{"0 0 29 2 *", {2024, 2, 29, 0, 0, 0}, true, {2028, 2, 29, 0, 0, 0}},
	{"0 0 29 2 *", {2096, 3, 1, 0, 0, 0}, true, {2104, 2, 29, 0, 0, 0}},
	{"0 0 29 2 *", {1999, 3, 1, 0, 0, 0}, true, {2000, 2, 29, 0, 0, 0}},
	{"0 0 30 2 *", {2024, 1, 1, 0, 0, 0}, false, {0, 0, 0, 0, 0, 0}},
	/* Feb 29 on a Sunday: 2004, 2032, 2060, 2088, then 2128 (> 30 years) */
	{"0 0 29 2 */7", {2004, 3, 1, 0, 0, 0}, true, {2032, 2, 29, 0, 0, 0}},
	{"0 0 29 2 */7", {2060, 2, 29, 0, 0, 0}, true, {2088, 2, 29, 0, 0, 0}},
	{"0 0 29 2 */7", {2088, 3, 1, 0, 0, 0}, false, {0, 0, 0, 0, 0, 0}},
	/* Vixie day matching: OR unless a day field begins with '*' */
	{"0 0 13 * 5", {2024, 9, 1, 0, 0, 0}, true, {2024, 9, 6, 0, 0, 0}},
	{"0 0 13 * 5", {2024, 10, 11, 0, 0, 0}, true, {2024, 10, 13, 0, 0, 0}},
	{"0 0 */2 * 5", {2024, 10, 11, 0, 0, 0}, true, {2024, 10, 25, 0, 0, 0}},
	{"0 0 1-31/2 * 5", {2024, 10, 11, 0, 0, 0}, true, {2024, 10, 13, 0, 0, 0}},
	{"0 0 1-31/2 * 5", {2024, 10, 13, 0, 0, 0}, true, {2024, 10, 15, 0, 0, 0}},
	{"0 0 1-31/2 * 5", {2024, 10, 17, 0, 0, 0}, true, {2024, 10, 18, 0, 0, 0}},
	{"0 0 1 * 1", {2024, 1, 1, 0, 0, 0}, true, {2024, 1, 8, 0, 0, 0}},
	{"0 0 29 2 1", {2023, 2, 28, 0, 0, 0}, true, {2024, 2, 5, 0, 0, 0}},
	/* names, 7 = Sunday */
	{"0 3 * * SUN", {2024, 3, 10, 3, 0, 0}, true, {2024, 3, 17, 3, 0, 0}},
	{"0 3 * * 7", {2024, 3, 10, 3, 0, 0}, true, {2024, 3, 17, 3, 0, 0}},
	{"0 3 * * sun", {2024, 3, 9, 3, 0, 0}, true, {2024, 3, 10, 3, 0, 0}},
	{"0 0 * * 5-7", {2024, 3, 10, 0, 0, 0}, true, {2024, 3, 15, 0, 0, 0}},
	{"0 0 * * Sat-7", {2024, 3, 9, 0, 0, 0}, true, {2024, 3, 10, 0, 0, 0}},
	{"0 0 1 JAN-MAR *", {2024, 3, 1, 0, 0, 0}, true, {2025, 1, 1, 0, 0, 0}},
	{"1-5/2,30 0-23/6 1,15 JAN-MAR MON-FRI", {2024, 1, 1, 0, 0, 0}, true,
	{2024, 1, 1, 0, 1, 0}},
	{"1-5/2,30 0-23/6 1,15 JAN-MAR MON-FRI", {2024, 1, 1, 0, 30, 0}, true,
	{2024, 1, 1, 6, 1, 0}},
	{"1-5/2,30 0-23/6 1,15 jan-mar mon-fri", {2024, 3, 31, 18, 30, 0}, true,
	{2025, 1, 1, 0, 1, 0}},
	/* macros */
	{"@hourly", {2024, 3, 10, 10, 59, 59}, true, {2024, 3, 10, 11, 0, 0}},
	{"@daily", {2024, 2, 28, 12, 0, 0}, true, {2024, 2, 29, 0, 0, 0}},
	{"@midnight", {2023, 2, 28, 23, 59, 59}, true, {2023, 3, 1, 0, 0, 0}},
	{"@Weekly", {2024, 1, 1, 0, 0, 0}, true, {2024, 1, 7, 0, 0, 0}},
	{"@monthly", {2024, 1, 31, 0, 0, 0}, true, {2024, 2, 1, 0, 0, 0}},
	{"@YEARLY", {2024, 1, 1, 0, 0, 0}, true, {2025, 1, 1, 0, 0, 0}},
	{"  @annually\t", {1999, 12, 31, 23, 59, 59}, true, {2000, 1, 1, 0, 0, 0}},
	/* white space and far years */
	{"\t0  0\t1 1   *  ", {9999, 6, 1, 0, 0, 0}, true, {10000, 1, 1, 0, 0, 0}},
	{"0 12 * * *", {-1, 12, 31, 12, 0, 0}, true, {0, 1, 1, 12, 0, 0}},
	{NULL, {0, 0, 0, 0, 0, 0}, false, {0, 0, 0, 0, 0, 0}}
};

static const BadCase bad_cases[] = {
	{"61 * * * *", "minute value 61 is out of range 0-59", 1},
	{"* 24 * * *", "hour value 24 is out of range 0-23", 3},
	{"* * 0 * *", "day of month value 0 is out of range 1-31", 5},
	{"* * 32 * *", "day of month value 32 is out of range 1-31", 5},
	{"* * * 13 *", "month value 13 is out of range 1-12", 7},
	{"* * * * 8", "day of week value 8 is out of range 0-7", 9},
	{"99999999999999999999 * * * *",
	"minute value 99999999999999999999 is out of range 0-59", 1},
	{"* * * *", "expected 5 fields but found 4", 8},
	{"* * * *   ", "expected 5 fields but found 4", 8},
	{"* * * * * *", "expected 5 fields but found 6", 11},
	{"* *", "expected 5 fields but found 2", 4},
	{"*/5", "expected 5 fields but found 1", 4},
	{"5 seconds x", "expected 5 fields but found 3", 12},
	{"*/0 * * * *", "invalid step 0", 3},
	{"1-5/0 * * * *", "invalid step 0", 5},
	{"*/61 * * * *", "minute step 61 is out of range 1-60", 3},
	{"* */25 * * *", "hour step 25 is out of range 1-24", 5},
	{"* * * */13 *", "month step 13 is out of range 1-12", 9},
	{"*/5x * * * *", "invalid step \"5x\"", 3},
	{"*/-5 * * * *", "invalid character \"-\" in minute field", 3},
	{"10-5 * * * *", "range 10-5 is reversed", 1},
	{"* * * * FRI-MON", "range FRI-MON is reversed", 9},
	{"* * * FOO *", "unrecognized month name \"FOO\"", 7},
	{"* * * FRI *", "unrecognized month name \"FRI\"", 7},
	{"* * * * MON-FOO", "unrecognized day name \"FOO\"", 13},
	{"* * * * monday", "unrecognized day name \"monday\"", 9},
	{"* * * abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz *",
	"unrecognized month name \"abcdefghijklmnopqrstuvwxyzabcdefghijklmn...\"", 7},
	{"JAN * * * *", "invalid minute value \"JAN\"", 1},
	{"5x * * * *", "invalid minute value \"5x\"", 1},
	{"* * L * *", "invalid day of month value \"L\"", 5},
	{"1,,2 * * * *", "empty element in minute list", 3},
	{"1, * * * *", "empty element in minute list", 3},
	{"* * * * ,1", "empty element in day of week list", 9},
	{"1- * * * *", "missing value after \"-\" in minute field", 3},
	{"*/ * * * *", "missing step after \"/\" in minute field", 3},
	{"1-2-3 * * * *", "invalid character \"-\" in minute field", 4},
	{"*x * * * *", "invalid character \"x\" in minute field", 2},
	{"? * * * *", "invalid character \"?\" in minute field", 1},
	{"* * * * *\x01", "invalid control character 0x01", 10},
	{"* * * * \xc3\xa9", "invalid non-ASCII character", 9},
	{"@foo", "unrecognized macro \"@foo\"", 1},
	{"@", "unrecognized macro \"@\"", 1},
	{"  @daily x", "unexpected text after \"@daily\"", 10},
	{"60 seconds", "interval 60 seconds is out of range 1-59", 1},
	{" 0 second", "interval 0 seconds is out of range 1-59", 2},
	{"10 minutes", "unrecognized interval unit \"minutes\"", 4},
	{"10seconds", "missing space between 10 and \"seconds\"", 3},
	{"", "schedule is empty", 1},
	{" \t ", "schedule is empty", 1},
	{NULL, NULL, 0}
};

static int	n_passed;
static int	n_failed;

static void check_fail(const char *what, const char *schedule,
					   const char *detail);
static bool civil_equal(const AdrCivilTime *a, const AdrCivilTime *b);
static void format_civil(char *buf, size_t len, const AdrCivilTime *t);
static void run_next_cases(void);
static void run_bad_cases(void);
static void run_calendar_cases(void);
static void run_field_cases(void);
static void run_long_cases(void);
static int	oracle_weekday(int y, int m, int d);
static int	oracle_days_in_month(int y, int m);
static bool oracle_next(const AdrCronSchedule *s, const AdrCivilTime *after,
						AdrCivilTime *next);
static uint32_t lcg(uint32_t *state);
static void run_differential_cases(void);

static void
check_fail(const char *what, const char *schedule, const char *detail)
{
	n_failed++;
	printf("FAIL %s \"%s\": %s\n", what, schedule, detail);
}

static bool
civil_equal(const AdrCivilTime *a, const AdrCivilTime *b)
{
	return a->year == b->year && a->month == b->month && a->day == b->day &&
		a->hour == b->hour && a->minute == b->minute && a->second == b->second;
}

static void
format_civil(char *buf, size_t len, const AdrCivilTime *t)
{
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d",
			 t->year, t->month, t->day, t->hour, t->minute, t->second);
}

static void
run_next_cases(void)
{
	const NextCase *c;

	for (c = next_cases; c->schedule != NULL; c++)
	{
		AdrCronSchedule s;
		AdrCivilTime got;
		char		err[ADR_CRON_ERRLEN];
		char		detail[256];
		char		a[40];
		char		b[40];
		int			errpos;
		bool		found;

		if (!adr_cron_parse(c->schedule, &s, err, sizeof(err), &errpos))
		{
			snprintf(detail, sizeof(detail), "parse failed at %d: %s",
					 errpos, err);
			check_fail("next", c->schedule, detail);
			continue;
		}
		memset(&got, 0, sizeof(got));
		found = adr_cron_next(&s, &c->start, &got);
		format_civil(a, sizeof(a), &c->want);
		format_civil(b, sizeof(b), &got);
		if (found != c->found || (found && !civil_equal(&got, &c->want)))
		{
			snprintf(detail, sizeof(detail), "want %s, got %s",
					 c->found ? a : "none", found ? b : "none");
			check_fail("next", c->schedule, detail);
		}
		else
			n_passed++;
	}
}

static void
run_bad_cases(void)
{
	const BadCase *c;

	for (c = bad_cases; c->schedule != NULL; c++)
	{
		AdrCronSchedule s;
		char		err[ADR_CRON_ERRLEN];
		char		detail[512];
		int			errpos = -1;

		if (adr_cron_parse(c->schedule, &s, err, sizeof(err), &errpos))
		{
			check_fail("bad", c->schedule, "parsed");
			continue;
		}
		if (strcmp(err, c->message) != 0 || errpos != c->errpos)
		{
			snprintf(detail, sizeof(detail),
					 "want \"%s\" at %d, got \"%s\" at %d",
					 c->message, c->errpos, err, errpos);
			check_fail("bad", c->schedule, detail);
		}
		else
			n_passed++;
	}
}

/* Weekdays and month lengths, against known dates. */
static void
run_calendar_cases(void)
{
	static const int weekdays[][4] = {
		{1970, 1, 1, 4}, {2000, 1, 1, 6}, {2024, 2, 29, 4}, {2023, 1, 1, 0},
		{1, 1, 1, 1}, {1600, 3, 1, 3}, {2100, 3, 1, 1}, {0, 2, 29, 2},
		{2024, 3, 0, 4}, {2024, 0, 1, -1}, {2024, 13, 1, -1}
	};
	static const int lengths[][3] = {
		{1900, 2, 28}, {2000, 2, 29}, {2024, 2, 29}, {2023, 2, 28},
		{2100, 2, 28}, {2024, 4, 30}, {2024, 12, 31}, {0, 2, 29},
		{-4, 2, 29}, {-100, 2, 28}, {2024, 0, 0}, {2024, 13, 0}
	};
	size_t		i;
	char		detail[80];

	for (i = 0; i < sizeof(weekdays) / sizeof(weekdays[0]); i++)
	{
		int			w = adr_cron_weekday(weekdays[i][0], weekdays[i][1],
										 weekdays[i][2]);

		if (w != weekdays[i][3])
		{
			snprintf(detail, sizeof(detail), "%d-%d-%d: want %d, got %d",
					 weekdays[i][0], weekdays[i][1], weekdays[i][2],
					 weekdays[i][3], w);
			check_fail("weekday", "", detail);
		}
		else
			n_passed++;
	}
	for (i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
	{
		int			n = adr_cron_days_in_month(lengths[i][0], lengths[i][1]);

		if (n != lengths[i][2])
		{
			snprintf(detail, sizeof(detail), "%d-%d: want %d, got %d",
					 lengths[i][0], lengths[i][1], lengths[i][2], n);
			check_fail("days_in_month", "", detail);
		}
		else
			n_passed++;
	}
}

/* The parsed bit sets and flags themselves. */
static void
run_field_cases(void)
{
	AdrCronSchedule s;
	AdrCivilTime start = {2024, 1, 1, 0, 0, 0};
	AdrCivilTime got;
	char		err[ADR_CRON_ERRLEN];
	int			errpos;
	bool		ok;

	ok = adr_cron_parse("1-5/2,30 0-23/6 1,15 JAN-MAR MON-FRI", &s,
						err, sizeof(err), &errpos) &&
		s.interval_seconds == 0 &&
		s.minutes == ((1ULL << 1) | (1ULL << 3) | (1ULL << 5) | (1ULL << 30)) &&
		s.hours == ((1U << 0) | (1U << 6) | (1U << 12) | (1U << 18)) &&
		s.days == ((1U << 1) | (1U << 15)) &&
		s.months == ((1U << 1) | (1U << 2) | (1U << 3)) &&
		s.weekdays == 0x3E && !s.days_star && !s.weekdays_star;
	if (ok)
		n_passed++;
	else
		check_fail("fields", "1-5/2,30 0-23/6 1,15 JAN-MAR MON-FRI", "bits");

	ok = adr_cron_parse("* * * * *", &s, err, sizeof(err), &errpos) &&
		s.minutes == 0x0FFFFFFFFFFFFFFFULL && s.hours == 0x00FFFFFF &&
		s.days == 0xFFFFFFFE && s.months == 0x1FFE && s.weekdays == 0x7F &&
		s.days_star && s.weekdays_star;
	if (ok)
		n_passed++;
	else
		check_fail("fields", "* * * * *", "bits");

	ok = adr_cron_parse("@weekly", &s, err, sizeof(err), &errpos) &&
		s.days_star && !s.weekdays_star && s.weekdays == 1 &&
		s.minutes == 1 && s.hours == 1;
	if (ok)
		n_passed++;
	else
		check_fail("fields", "@weekly", "bits");

	ok = adr_cron_parse("0 0 * * 0,7", &s, err, sizeof(err), &errpos) &&
		s.weekdays == 1;
	if (ok)
		n_passed++;
	else
		check_fail("fields", "0 0 * * 0,7", "bits");

	ok = adr_cron_parse(" 10 seconds ", &s, err, sizeof(err), &errpos) &&
		s.interval_seconds == 10 && err[0] == '\0' && errpos == 0 &&
		!adr_cron_next(&s, &start, &got);
	if (ok)
		n_passed++;
	else
		check_fail("interval", " 10 seconds ", "not an interval of 10");

	ok = adr_cron_parse("1 SECOND", &s, NULL, 0, NULL) &&
		s.interval_seconds == 1 &&
		adr_cron_parse("59 Seconds", &s, NULL, 0, NULL) &&
		s.interval_seconds == 59;
	if (ok)
		n_passed++;
	else
		check_fail("interval", "1 SECOND / 59 Seconds", "not parsed");

	/* a short buffer is truncated but terminated, and NULLs are allowed */
	ok = !adr_cron_parse("61 * * * *", &s, err, 8, &errpos) &&
		strcmp(err, "minute ") == 0 && errpos == 1 &&
		!adr_cron_parse("61 * * * *", NULL, NULL, 0, NULL) &&
		!adr_cron_parse(NULL, &s, err, sizeof(err), &errpos);
	if (ok)
		n_passed++;
	else
		check_fail("buffers", "61 * * * *", "short or NULL buffers");

	/* invalid starts */
	{
		static const AdrCivilTime bad_starts[] = {
			{2023, 2, 29, 0, 0, 0}, {2024, 13, 1, 0, 0, 0},
			{2024, 1, 1, 24, 0, 0}, {2024, 1, 1, 0, 60, 0},
			{2024, 1, 1, 0, 0, 61}, {2147483647, 1, 1, 0, 0, 0}
		};
		size_t		i;

		adr_cron_parse("* * * * *", &s, NULL, 0, NULL);
		ok = true;
		for (i = 0; i < sizeof(bad_starts) / sizeof(bad_starts[0]); i++)
			if (adr_cron_next(&s, &bad_starts[i], &got))
				ok = false;
		if (ok)
			n_passed++;
		else
			check_fail("next", "* * * * *", "accepted an invalid start");
	}
}

/* Longest text accepted, and one character more. */
static void
run_long_cases(void)
{
	char		text[ADR_CRON_MAXLEN + 2];
	char		err[ADR_CRON_ERRLEN];
	int			errpos;
	AdrCronSchedule s;

	memset(text, ' ', sizeof(text));
	memcpy(text, "* * * * *", 9);
	text[ADR_CRON_MAXLEN] = '\0';
	if (adr_cron_parse(text, &s, err, sizeof(err), &errpos))
		n_passed++;
	else
		check_fail("long", "256 characters", err);

	text[ADR_CRON_MAXLEN] = ' ';
	text[ADR_CRON_MAXLEN + 1] = '\0';
	if (!adr_cron_parse(text, &s, err, sizeof(err), &errpos) &&
		strcmp(err, "schedule is longer than 256 characters") == 0 &&
		errpos == 257)
		n_passed++;
	else
		check_fail("long", "257 characters", err);
}

/* Zeller's congruence, 0 = Sunday; written apart from the library's. */
static int
oracle_weekday(int y, int m, int d)
{
	int			k;
	int			j;
	int			h;

	if (m < 3)
	{
		m += 12;
		y -= 1;
	}
	k = y % 100;
	j = y / 100;
	h = (d + (13 * (m + 1)) / 5 + k + k / 4 + j / 4 + 5 * j) % 7;
	/* h: 0 = Saturday */
	return (h + 6) % 7;
}

static int
oracle_days_in_month(int y, int m)
{
	if (m == 2)
		return (y % 400 == 0 || (y % 4 == 0 && y % 100 != 0)) ? 29 : 28;
	if (m == 4 || m == 6 || m == 9 || m == 11)
		return 30;
	return 31;
}

/*
 * The slow way: every day from the start for 31 years, every minute of a
 * matching day.  Years are positive here.
 */
static bool
oracle_next(const AdrCronSchedule *s, const AdrCivilTime *after,
			AdrCivilTime *next)
{
	int			y = after->year;
	int			m = after->month;
	int			d = after->day;
	bool		first = true;

	while (y <= after->year + ADR_CRON_SEARCH_YEARS)
	{
		bool		dom = (s->days >> d) & 1;
		bool		dow = (s->weekdays >> oracle_weekday(y, m, d)) & 1;
		bool		day_ok = (s->days_star || s->weekdays_star) ?
			(dom && dow) : (dom || dow);

		if (((s->months >> m) & 1) && day_ok)
		{
			int			hm;

			for (hm = 0; hm < 24 * 60; hm++)
			{
				int			h = hm / 60;
				int			mi = hm % 60;

				if (first && hm <= after->hour * 60 + after->minute)
					continue;
				if (((s->hours >> h) & 1) && ((s->minutes >> mi) & 1))
				{
					AdrCivilTime t = {y, m, d, h, mi, 0};

					*next = t;
					return true;
				}
			}
		}
		first = false;
		if (++d > oracle_days_in_month(y, m))
		{
			d = 1;
			if (++m > 12)
			{
				m = 1;
				y++;
			}
		}
	}
	return false;
}

static uint32_t
lcg(uint32_t *state)
{
	*state = *state * 1664525u + 1013904223u;
	return *state >> 8;
}

/* adr_cron_next against oracle_next from pseudo-random starts. */
static void
run_differential_cases(void)
{
	static const char *const schedules[] = {
		"* * * * *", "*/7 */5 * * *", "0 0 13 * 5", "0 0 */2 * 5",
		"30 4 1,15 * 1-5", "0 0 29 2 *", "0 0 31 * *", "59 23 * 2 *",
		"0 12 * * 0", "1-59/13 3-21/4 10-20 3-11/2 2-6",
		"0 0 29 2 */7", "0 0 */31 2 *", "5 5 L * *", "0 0 1 1 1",
		"0,30 9-17 * * MON-FRI", "0 0 31 4 *", NULL
	};
	int			i;

	for (i = 0; schedules[i] != NULL; i++)
	{
		AdrCronSchedule s;
		uint32_t	state = 12345u + (uint32_t) i;
		int			j;
		int			mismatches = 0;
		char		detail[160];

		if (!adr_cron_parse(schedules[i], &s, NULL, 0, NULL))
		{
			/* "5 5 L * *" is meant to be refused */
			if (strcmp(schedules[i], "5 5 L * *") == 0)
				n_passed++;
			else
				check_fail("differential", schedules[i], "parse failed");
			continue;
		}
		for (j = 0; j < 200; j++)
		{
			AdrCivilTime start;
			AdrCivilTime got;
			AdrCivilTime want;
			bool		f1;
			bool		f2;

			start.year = 1890 + (int) (lcg(&state) % 300);
			start.month = 1 + (int) (lcg(&state) % 12);
			start.day = 1 + (int) (lcg(&state) %
								   (uint32_t) oracle_days_in_month(start.year,
																   start.month));
			start.hour = (int) (lcg(&state) % 24);
			start.minute = (int) (lcg(&state) % 60);
			start.second = (int) (lcg(&state) % 60);
			f1 = adr_cron_next(&s, &start, &got);
			f2 = oracle_next(&s, &start, &want);
			if (f1 != f2 || (f1 && !civil_equal(&got, &want)))
			{
				char		a[40];
				char		b[40];
				char		c[40];

				format_civil(a, sizeof(a), &start);
				format_civil(b, sizeof(b), &want);
				format_civil(c, sizeof(c), &got);
				if (mismatches++ == 0)
				{
					snprintf(detail, sizeof(detail),
							 "from %s want %s got %s",
							 a, f2 ? b : "none", f1 ? c : "none");
					check_fail("differential", schedules[i], detail);
				}
			}
		}
		if (mismatches == 0)
			n_passed++;
	}
}

int
main(void)
{
	run_next_cases();
	run_bad_cases();
	run_calendar_cases();
	run_field_cases();
	run_long_cases();
	run_differential_cases();
	printf("%d passed, %d failed\n", n_passed, n_failed);
	return n_failed == 0 ? 0 : 1;
}
