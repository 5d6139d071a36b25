/*-------------------------------------------------------------------------
 *
 * maint_schedule.c
 *	  Schedules in a time zone: the glue between the zone-free cron
 *	  evaluator (cron.c) and timestamptz, the maintenance window, and the
 *	  SQL functions that parse and evaluate schedules.
 *
 * cron.c works on wall-clock (civil) times.  Here a civil time becomes an
 * instant in adr_ops.timezone, and daylight-saving changes are settled:
 * - a civil time that does not exist (the hour skipped in spring) fires
 *   once, at the instant of the jump;
 * - a civil time that exists twice (the hour repeated in autumn) fires
 *   once, at its first occurrence after the previous fire.
 * Because the search always moves forward in civil time from the previous
 * fire, a job fires once per matching civil minute, never twice.
 *
 * IDENTIFICATION
 *	  src/maint_schedule.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "adr_ops.h"
#include "compat.h"
#include "cron.h"
#include "scheduler.h"

PG_FUNCTION_INFO_V1(adr_next_run);
PG_FUNCTION_INFO_V1(adr_schedule_validate);
PG_FUNCTION_INFO_V1(adr_schedule_valid);

#define SECS_PER_DAY_T ((pg_time_t) 86400)

/* The civil time of an instant in tz. */
static void
ms_to_civil(pg_time_t t, pg_tz *tz, AdrCivilTime *c, long *gmtoff)
{
	struct pg_tm *tm = pg_localtime(&t, tz);

	c->year = tm->tm_year + 1900;
	c->month = tm->tm_mon + 1;
	c->day = tm->tm_mday;
	c->hour = tm->tm_hour;
	c->minute = tm->tm_min;
	c->second = tm->tm_sec;
	if (gmtoff)
		*gmtoff = tm->tm_gmtoff;
}

static bool
ms_civil_equal(const AdrCivilTime *a, const AdrCivilTime *b)
{
	return a->year == b->year && a->month == b->month && a->day == b->day &&
		a->hour == b->hour && a->minute == b->minute && a->second == b->second;
}

/*
 * The earliest instant after "after" whose civil time in tz is c.  Returns
 * false if there is none: c falls in a gap, and *jump is then the instant
 * the clocks jumped over it.
 */
static bool
ms_from_civil(const AdrCivilTime *c, pg_tz *tz, pg_time_t after,
			  pg_time_t *result, pg_time_t *jump)
{
	pg_time_t	base = (pg_time_t) adr_cron_days_from_civil(c->year, c->month, c->day) * SECS_PER_DAY_T +
		c->hour * 3600 + c->minute * 60 + c->second;
	long		off_before,
				off_after;
	AdrCivilTime probe;
	pg_time_t	candidates[2];
	bool		found = false;
	int			i;

	/* The offsets in force a day either side cover any single transition. */
	ms_to_civil(base - SECS_PER_DAY_T, tz, &probe, &off_before);
	ms_to_civil(base + SECS_PER_DAY_T, tz, &probe, &off_after);
	candidates[0] = base - off_before;
	candidates[1] = base - off_after;

	for (i = 0; i < 2; i++)
	{
		ms_to_civil(candidates[i], tz, &probe, NULL);
		if (ms_civil_equal(&probe, c) && candidates[i] > after &&
			(!found || candidates[i] < *result))
		{
			*result = candidates[i];
			found = true;
		}
	}
	if (found || off_after <= off_before)
		return found;

	/*
	 * Neither offset gives c, and the clocks went forward: c was skipped.
	 * Find the first instant with the new offset by bisection.
	 */
	{
		pg_time_t	lo = base - off_after,	/* before the jump */
					hi = base - off_before; /* after it */

		while (hi - lo > 1)
		{
			pg_time_t	mid = lo + (hi - lo) / 2;
			long		off;

			ms_to_civil(mid, tz, &probe, &off);
			if (off == off_after)
				hi = mid;
			else
				lo = mid;
		}
		*jump = hi;
	}
	return false;
}

/*
 * The next fire time strictly after "after".  DT_NOEND if the schedule
 * never fires again (within cron.c's search horizon).
 */
TimestampTz
adr_schedule_next(const AdrCronSchedule *s, TimestampTz after, pg_tz *tz)
{
	pg_time_t	after_t = timestamptz_to_time_t(after);
	AdrCivilTime civil;
	int			guard;

	if (s->interval_seconds > 0)
		return after + (TimestampTz) s->interval_seconds * USECS_PER_SEC;

	ms_to_civil(after_t, tz, &civil, NULL);

	for (guard = 0; guard < 1000; guard++)
	{
		AdrCivilTime next;
		pg_time_t	result = 0,
					jump = 0;

		if (!adr_cron_next(s, &civil, &next))
			return DT_NOEND;
		if (ms_from_civil(&next, tz, after_t, &result, &jump))
			return time_t_to_timestamptz(result);
		if (jump > after_t)
			return time_t_to_timestamptz(jump);
		civil = next;
	}
	return DT_NOEND;
}

/* Parse a schedule, or ERROR with the position of the fault. */
void
adr_schedule_parse(const char *text, AdrCronSchedule *out)
{
	char		err[ADR_CRON_ERRLEN];
	int			pos;

	if (!adr_cron_parse(text, out, err, sizeof(err), &pos))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid schedule \"%s\"", text),
				 errdetail("At character %d: %s.", pos, err),
				 errhint("Use five cron fields (minute hour day-of-month month day-of-week), "
						 "@hourly, @daily, @weekly, @monthly, @yearly, or \"N seconds\" with N from 1 to 59.")));
}

/*
 * The zone schedules are evaluated in: adr_ops.timezone, or the server's
 * TimeZone (its configured value, not a session's SET) when that is empty.
 */
pg_tz *
adr_schedule_tz(void)
{
	const char *name = adr_ops_timezone[0] != '\0' ? adr_ops_timezone :
		GetConfigOptionResetString("TimeZone");
	pg_tz	   *tz = pg_tzset(name);

	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" not recognized", name)));
	return tz;
}

/*
 * Parse "HH:MM-HH:MM" into minutes of the day.  Returns false if malformed.
 */
static bool
ms_parse_window(const char *text, int *start, int *end)
{
	int			h1,
				m1,
				h2,
				m2;
	char		tail;

	if (sscanf(text, "%2d:%2d-%2d:%2d%c", &h1, &m1, &h2, &m2, &tail) != 4)
		return false;
	if (h1 < 0 || h1 > 24 || h2 < 0 || h2 > 24 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59 ||
		(h1 == 24 && m1 != 0) || (h2 == 24 && m2 != 0))
		return false;
	*start = h1 * 60 + m1;
	*end = h2 * 60 + m2;
	return *start != *end;
}

/* GUC check hook of adr_ops.maintenance_window. */
bool
adr_window_check(char **newval, void **extra, GucSource source)
{
	int			start,
				end;

	if (**newval == '\0' || ms_parse_window(*newval, &start, &end))
		return true;
	GUC_check_errdetail("The maintenance window must be empty or look like \"02:00-05:00\" (it may cross midnight).");
	return false;
}

/* GUC check hook of adr_ops.timezone. */
bool
adr_timezone_check(char **newval, void **extra, GucSource source)
{
	if (**newval == '\0' || pg_tzset(*newval) != NULL)
		return true;
	GUC_check_errdetail("Time zone \"%s\" is not recognized.", *newval);
	return false;
}

/* Is t inside adr_ops.maintenance_window (always, when it is empty)? */
bool
adr_window_contains(TimestampTz t, pg_tz *tz)
{
	int			start,
				end,
				now;
	AdrCivilTime c;

	if (adr_ops_maintenance_window[0] == '\0' ||
		!ms_parse_window(adr_ops_maintenance_window, &start, &end))
		return true;
	ms_to_civil(timestamptz_to_time_t(t), tz, &c, NULL);
	now = c.hour * 60 + c.minute;
	if (start < end)
		return now >= start && now < end;
	return now >= start || now < end;	/* crosses midnight */
}

/*
 * adr_next_run(schedule text, after timestamptz, timezone text)
 *		The next fire time of a schedule after a time, in a zone (NULL:
 *		adr_ops.timezone).  What the launcher computes, for tests and
 *		dashboards.
 */
Datum
adr_next_run(PG_FUNCTION_ARGS)
{
	AdrCronSchedule s;
	pg_tz	   *tz;
	TimestampTz next;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();

	adr_schedule_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), &s);
	if (PG_ARGISNULL(2))
		tz = adr_schedule_tz();
	else
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(2));

		tz = pg_tzset(name);
		if (tz == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time zone \"%s\" not recognized", name)));
	}
	next = adr_schedule_next(&s, PG_GETARG_TIMESTAMPTZ(1), tz);
	if (TIMESTAMP_IS_NOEND(next))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(next);
}

/*
 * ERROR unless this session is in adr_ops.database, where the launcher
 * reads schedules and records runs.  Without preloading there is no
 * launcher and no such setting: nothing to check.
 */
void
adr_require_scheduler_database(const char *what)
{
	if (adr_ops_database != NULL && strcmp(get_database_name(MyDatabaseId), adr_ops_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s must be called in database \"%s\"", what, adr_ops_database),
				 errdetail("The adr_ops launcher reads schedules and records runs in the database named by \"adr_ops.database\"."),
				 errhint("Connect to database \"%s\"; the task itself may run in any database.",
						 adr_ops_database)));
}

/*
 * _schedule_validate(schedule text, task text, database name, options jsonb)
 *		ERROR unless the schedule parses and fires, the task exists and the
 *		options are ones it takes, the database exists, and this is the
 *		launcher's database.  Used by adr_schedule().
 */
Datum
adr_schedule_validate(PG_FUNCTION_ARGS)
{
	char	   *expr = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *dbname = NameStr(*PG_GETARG_NAME(2));
	AdrCronSchedule s;

	adr_schedule_parse(expr, &s);
	if (TIMESTAMP_IS_NOEND(adr_schedule_next(&s, GetCurrentTimestamp(), adr_schedule_tz())))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schedule \"%s\" never fires", expr),
				 errdetail("No date in the next %d years matches it.", ADR_CRON_SEARCH_YEARS)));
	adr_task_validate(text_to_cstring(PG_GETARG_TEXT_PP(1)), PG_GETARG_JSONB_P(3));
	if (!OidIsValid(get_database_oid(dbname, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_DATABASE),
				 errmsg("database \"%s\" does not exist", dbname)));
	adr_require_scheduler_database("adr_schedule()");
	if (adr_shared == NULL)
		ereport(WARNING,
				(errmsg("schedules run only when adr_ops is in \"shared_preload_libraries\"")));
	PG_RETURN_VOID();
}

/* _schedule_valid(schedule text): does it parse?  For a CHECK constraint. */
Datum
adr_schedule_valid(PG_FUNCTION_ARGS)
{
	AdrCronSchedule s;

	PG_RETURN_BOOL(adr_cron_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), &s, NULL, 0, NULL));
}
