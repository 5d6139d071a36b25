/*-------------------------------------------------------------------------
 *
 * cron.h
 *	  Cron schedule parser and next-time evaluator, free of PostgreSQL
 *	  headers.
 *
 * The parser and the evaluator use only the C library: no palloc, no
 * ereport.  They report failure through a return value and a message
 * buffer, and the glue in the extension turns that into an ereport.
 * Times are wall-clock civil times without a zone; the caller
 * converts to and from timestamptz in the zone it schedules in.
 *
 * IDENTIFICATION
 *	  src/cron.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_CRON_H
#define ADR_OPS_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A parsed schedule.  Either an interval ("10 seconds"), when
 * interval_seconds > 0, or a five-field cron schedule held as bit sets.
 * Day of week 7 (Sunday) is folded into bit 0.
 */
typedef struct AdrCronSchedule
{
	int			interval_seconds;	/* > 0 for an "N seconds" schedule; then
									 * the rest is unused */
	uint64_t	minutes;		/* bit m set: minute m (0-59) matches */
	uint32_t	hours;			/* bit h: hour 0-23 */
	uint32_t	days;			/* bit d: day of month 1-31 */
	uint16_t	months;			/* bit m: month 1-12 */
	uint8_t		weekdays;		/* bit w: 0 = Sunday .. 6 = Saturday */
	bool		days_star;		/* day-of-month field began with '*' */
	bool		weekdays_star;	/* day-of-week field began with '*' */
} AdrCronSchedule;

typedef struct AdrCivilTime		/* wall-clock time, no zone */
{
	int			year;
	int			month;			/* 1-12 */
	int			day;			/* 1-31 */
	int			hour;			/* 0-23 */
	int			minute;			/* 0-59 */
	int			second;			/* 0-60 (60: a leap second) */
} AdrCivilTime;

/* Longest schedule text accepted, in characters. */
#define ADR_CRON_MAXLEN 256

/* A message buffer of this size always holds the whole message. */
#define ADR_CRON_ERRLEN 160

/* adr_cron_next looks this many years past the start, no further. */
#define ADR_CRON_SEARCH_YEARS 30

/*
 * Parse text; on failure return false, write a message (lower case, no
 * period, PostgreSQL style, e.g. "minute value 61 is out of range 0-59")
 * into err and the 1-based character position of the offending token into
 * *errpos.
 *
 * text must be NUL-terminated; at most ADR_CRON_MAXLEN + 1 bytes of it are
 * read before a too-long schedule is refused.  err may be NULL or errlen 0,
 * and errpos may be NULL.  On success err is set to "" and *errpos to 0; on
 * failure *out is zeroed.
 *
 * NB: the schedule grammar is ASCII only, and every non-ASCII byte is
 * refused where it first appears, before anything else is looked at.  So
 * every byte before *errpos is ASCII and *errpos counts characters as well
 * as bytes in any server encoding (all are ASCII supersets).
 */
extern bool adr_cron_parse(const char *text, AdrCronSchedule *out,
						   char *err, size_t errlen, int *errpos);

/*
 * The first civil time strictly after *after, on a whole minute (second =
 * 0), that the schedule matches.  false when none within 30 years (e.g.
 * "0 0 30 2 *").  Not for interval schedules: false for those too, and for
 * an *after that is not a valid civil time.
 */
extern bool adr_cron_next(const AdrCronSchedule *s, const AdrCivilTime *after,
						  AdrCivilTime *next);

/* Day of week, 0 = Sunday, of a proleptic Gregorian date. */
extern int	adr_cron_weekday(int year, int month, int day);

/* Days in a month of a year; 0 if month is not 1-12. */
extern int	adr_cron_days_in_month(int year, int month);

/* Days from 1970-01-01 to a proleptic Gregorian date. */
extern int64_t adr_cron_days_from_civil(int64_t y, int64_t m, int64_t d);

#endif							/* ADR_OPS_CRON_H */
