/*-------------------------------------------------------------------------
 *
 * cron.c
 *	  Cron schedule parser and next-time evaluator.
 *
 * A schedule is one of:
 *
 *	- five cron fields, "minute hour day-of-month month day-of-week", each a
 *	  comma list of "*", "n" or "a-b", any of which may end in "/s" to take
 *	  every s-th value ("a/s" runs from a to the field's end: 7, Sunday,
 *	  for day of week, so "6/1" is Saturday and Sunday), with month
 *	  names JAN-DEC and day names SUN-SAT in any case, and day of week 7
 *	  meaning Sunday;
 *	- a macro: @hourly, @daily, @midnight, @weekly, @monthly, @yearly,
 *	  @annually;
 *	- an interval, "N seconds" or "N second" with N from 1 to 59.
 *
 * Days follow Vixie cron: when the day-of-month or the day-of-week field
 * begins with "*", a day matches if both fields match it; otherwise if
 * either does.  So "0 0 13 * 5" runs on the 13th and on every Friday, and
 * "0 0 1-31/2 * 5" on odd days and on Fridays; but the same step written
 * on "*" (a "*" followed by "/2") runs only on Fridays that fall on an odd
 * day of month.
 *
 * Design: this file includes no PostgreSQL header and allocates nothing, so
 * that it can be fuzzed and tested on its own (fuzz/).  Errors come back as
 * a message in the caller's buffer plus the 1-based position of the
 * offending token; the glue in maint_schedule.c turns them into an
 * ereport.  The character classes are ASCII and written out here rather
 * than taken from <ctype.h>, whose answers for bytes above 0x7F depend on
 * the backend's LC_CTYPE.  Numbers saturate instead of overflowing, and
 * the text is read no further than its terminator or ADR_CRON_MAXLEN + 1
 * bytes.
 *
 * adr_cron_next searches forward from the minute after the start, skipping
 * a whole year, month, day or hour as soon as it cannot match, so a search
 * costs at most one step a day over the 31 calendar years it looks at, and
 * far fewer in practice, even when it fails.
 *
 * Nothing here keeps state between calls; it is safe in any process and
 * takes no locks.
 *
 * IDENTIFICATION
 *	  src/cron.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include "cron.h"

/* Numbers saturate here; anything at or above it is out of every range. */
#define CRON_NUMBER_CAP		1000000

/* Longest piece of input quoted back in a message, in characters. */
#define CRON_QUOTE_MAX		40

/* One of the five fields. */
typedef struct CronField
{
	const char *label;			/* for messages: "day of month" */
	int			min;			/* smallest value accepted */
	int			max;			/* largest value accepted */
	int			max_step;		/* number of distinct values */
	const char *const *names;	/* three-letter names, or NULL */
	int			name_base;		/* value of names[0] */
	const char *name_kind;		/* for messages: "month" */
} CronField;

static const char *const cron_month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL
};

static const char *const cron_day_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

enum
{
	CRON_MINUTE,
	CRON_HOUR,
	CRON_DAY,
	CRON_MONTH,
	CRON_WEEKDAY,
	CRON_NFIELDS
};

static const CronField cron_fields[CRON_NFIELDS] = {
	{"minute", 0, 59, 60, NULL, 0, NULL},
	{"hour", 0, 23, 24, NULL, 0, NULL},
	{"day of month", 1, 31, 31, NULL, 0, NULL},
	{"month", 1, 12, 12, cron_month_names, 1, "month"},
	{"day of week", 0, 7, 7, cron_day_names, 0, "day"},
};

/* The macros and the five fields each stands for. */
typedef struct CronMacro
{
	const char *name;			/* lower case, with the '@' */
	const char *fields;
} CronMacro;

static const CronMacro cron_macros[] = {
	{"@hourly", "0 * * * *"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@weekly", "0 0 * * 0"},
	{"@monthly", "0 0 1 * *"},
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
	{NULL, NULL}
};

/* Where a parse writes its error. */
typedef struct CronParseState
{
	const char *text;			/* the whole text, for positions */
	char	   *err;			/* NULL when errlen is 0 */
	size_t		errlen;
	int			errpos;
} CronParseState;

/* A schedule split into whitespace-separated fields. */
typedef struct CronSplit
{
	int			nfields;		/* all of them, even past the fifth */
	const char *begin[CRON_NFIELDS];
	const char *end[CRON_NFIELDS];
	const char *sixth;			/* start of the sixth field, or NULL */
} CronSplit;

static bool cron_is_space(char c);
static bool cron_is_digit(char c);
static bool cron_is_alpha(char c);
static char cron_to_lower(char c);
static bool cron_all(const char *b, const char *e, bool (*pred) (char));
static bool cron_equal_ci(const char *b, const char *e, const char *lower);
static int	cron_number(const char *b, const char *e);
static void cron_quote(char *buf, size_t buflen, const char *b, const char *e);
static bool cron_fail(CronParseState *ps, const char *at);
static void cron_split(const char *text, CronSplit *sp);
static bool cron_parse_text(CronParseState *ps, const char *text,
							AdrCronSchedule *out);
static bool cron_parse_macro(CronParseState *ps, const CronSplit *sp,
							 AdrCronSchedule *out);
static bool cron_parse_interval(CronParseState *ps, const CronSplit *sp,
								AdrCronSchedule *out, bool *matched);
static bool cron_parse_field(CronParseState *ps, int field,
							 const char *b, const char *e, uint64_t *bits);
static bool cron_parse_value(CronParseState *ps, const CronField *f,
							 const char **pp, const char *e, int *value);
static bool cron_parse_step(CronParseState *ps, const CronField *f,
							const char **pp, const char *e, int *step);
static bool cron_is_leap(int year);
static int	cron_next_bit(uint64_t bits, int from, int to);
static bool cron_day_matches(const AdrCronSchedule *s, const AdrCivilTime *t);
static void cron_next_day(AdrCivilTime *t);
static bool cron_civil_valid(const AdrCivilTime *t);

/* ----------------------------------------------------------------
 *		Character classes (ASCII, independent of the locale)
 * ----------------------------------------------------------------
 */

static bool
cron_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\v' || c == '\f';
}

static bool
cron_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
cron_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
cron_to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* Whether [b, e) is not empty and every character satisfies pred. */
static bool
cron_all(const char *b, const char *e, bool (*pred) (char))
{
	if (b == e)
		return false;
	for (; b < e; b++)
		if (!pred(*b))
			return false;
	return true;
}

/* Whether [b, e) equals the lower-case word, ignoring ASCII case. */
static bool
cron_equal_ci(const char *b, const char *e, const char *lower)
{
	size_t		n = (size_t) (e - b);

	if (strlen(lower) != n)
		return false;
	for (; b < e; b++, lower++)
		if (cron_to_lower(*b) != *lower)
			return false;
	return true;
}

/*
 * The value of the digits [b, e), saturating at CRON_NUMBER_CAP so that no
 * input can overflow.
 */
static int
cron_number(const char *b, const char *e)
{
	int			v = 0;

	for (; b < e; b++)
	{
		v = v * 10 + (*b - '0');
		if (v >= CRON_NUMBER_CAP)
			return CRON_NUMBER_CAP;
	}
	return v;
}

/*
 * Copy [b, e) into buf for quoting in a message, cut at CRON_QUOTE_MAX
 * characters with "..." appended.  buf must hold CRON_QUOTE_MAX + 4 bytes.
 */
static void
cron_quote(char *buf, size_t buflen, const char *b, const char *e)
{
	size_t		n = (size_t) (e - b);

	if (n > CRON_QUOTE_MAX)
		snprintf(buf, buflen, "%.*s...", CRON_QUOTE_MAX, b);
	else
		snprintf(buf, buflen, "%.*s", (int) n, b);
}

/*
 * Record the position of the offending token, whose message the caller has
 * already written, and return false for the caller to pass up.
 */
static bool
cron_fail(CronParseState *ps, const char *at)
{
	ps->errpos = (int) (at - ps->text) + 1;
	return false;
}

/* ----------------------------------------------------------------
 *		Parsing
 * ----------------------------------------------------------------
 */

bool
adr_cron_parse(const char *text, AdrCronSchedule *out,
			   char *err, size_t errlen, int *errpos)
{
	CronParseState ps;
	AdrCronSchedule sched;
	bool		ok = true;
	size_t		i;

	ps.text = text;
	ps.err = (err != NULL && errlen > 0) ? err : NULL;
	ps.errlen = (ps.err != NULL) ? errlen : 0;
	ps.errpos = 0;
	if (ps.err != NULL)
		ps.err[0] = '\0';
	memset(&sched, 0, sizeof(sched));

	if (text == NULL)
	{
		snprintf(ps.err, ps.errlen, "schedule is empty");
		ps.errpos = 1;
		ok = false;
	}

	/*
	 * Refuse overlong text and anything outside printable ASCII and white
	 * space before looking at the grammar.  Reading stops at the terminator
	 * or one byte past the longest text accepted.
	 */
	for (i = 0; ok && text[i] != '\0'; i++)
	{
		unsigned char c = (unsigned char) text[i];

		if (i >= ADR_CRON_MAXLEN)
		{
			snprintf(ps.err, ps.errlen,
					 "schedule is longer than %d characters",
					 ADR_CRON_MAXLEN);
			ok = cron_fail(&ps, text + i);
		}
		else if (c >= 0x80)
		{
			snprintf(ps.err, ps.errlen, "invalid non-ASCII character");
			ok = cron_fail(&ps, text + i);
		}
		else if ((c < 0x20 && !cron_is_space((char) c)) || c == 0x7F)
		{
			snprintf(ps.err, ps.errlen, "invalid control character 0x%02X",
					 (unsigned int) c);
			ok = cron_fail(&ps, text + i);
		}
	}

	if (ok)
		ok = cron_parse_text(&ps, text, &sched);

	if (!ok)
	{
		memset(&sched, 0, sizeof(sched));
		if (ps.errpos < 1)
			ps.errpos = 1;		/* cannot happen; keep callers safe */
	}
	else if (ps.err != NULL)
		ps.err[0] = '\0';

	if (out != NULL)
		*out = sched;
	if (errpos != NULL)
		*errpos = ok ? 0 : ps.errpos;
	return ok;
}

/* Split text at white space, remembering the first five fields. */
static void
cron_split(const char *text, CronSplit *sp)
{
	const char *p = text;

	memset(sp, 0, sizeof(*sp));
	for (;;)
	{
		const char *start;

		while (cron_is_space(*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && !cron_is_space(*p))
			p++;
		if (sp->nfields < CRON_NFIELDS)
		{
			sp->begin[sp->nfields] = start;
			sp->end[sp->nfields] = p;
		}
		else if (sp->nfields == CRON_NFIELDS)
			sp->sixth = start;
		sp->nfields++;
	}
}

/*
 * Parse text that has passed the character checks: a macro, an interval or
 * five fields.  Positions are taken against ps->text, which is text except
 * for a macro's expansion (and that cannot fail).
 */
static bool
cron_parse_text(CronParseState *ps, const char *text, AdrCronSchedule *out)
{
	CronSplit	sp;
	uint64_t	bits[CRON_NFIELDS];
	bool		matched;
	int			i;

	cron_split(text, &sp);

	if (sp.nfields == 0)
	{
		snprintf(ps->err, ps->errlen, "schedule is empty");
		return cron_fail(ps, text);
	}

	if (sp.begin[0][0] == '@')
		return cron_parse_macro(ps, &sp, out);

	if (!cron_parse_interval(ps, &sp, out, &matched))
		return false;
	if (matched)
		return true;

	if (sp.nfields != CRON_NFIELDS)
	{
		snprintf(ps->err, ps->errlen, "expected %d fields but found %d",
				 CRON_NFIELDS, sp.nfields);
		/* too many: point at the sixth; too few: just past the last */
		if (sp.nfields > CRON_NFIELDS)
			return cron_fail(ps, sp.sixth);
		return cron_fail(ps, sp.end[sp.nfields - 1]);
	}

	for (i = 0; i < CRON_NFIELDS; i++)
		if (!cron_parse_field(ps, i, sp.begin[i], sp.end[i], &bits[i]))
			return false;

	out->interval_seconds = 0;
	out->minutes = bits[CRON_MINUTE];
	out->hours = (uint32_t) bits[CRON_HOUR];
	out->days = (uint32_t) bits[CRON_DAY];
	out->months = (uint16_t) bits[CRON_MONTH];
	out->weekdays = (uint8_t) bits[CRON_WEEKDAY];
	out->days_star = (sp.begin[CRON_DAY][0] == '*');
	out->weekdays_star = (sp.begin[CRON_WEEKDAY][0] == '*');
	return true;
}

/* "@daily" and friends: one word, nothing after it. */
static bool
cron_parse_macro(CronParseState *ps, const CronSplit *sp, AdrCronSchedule *out)
{
	const CronMacro *m;
	char		quoted[CRON_QUOTE_MAX + 4];

	cron_quote(quoted, sizeof(quoted), sp->begin[0], sp->end[0]);
	for (m = cron_macros; m->name != NULL; m++)
		if (cron_equal_ci(sp->begin[0], sp->end[0], m->name))
			break;
	if (m->name == NULL)
	{
		snprintf(ps->err, ps->errlen, "unrecognized macro \"%s\"", quoted);
		return cron_fail(ps, sp->begin[0]);
	}
	if (sp->nfields > 1)
	{
		snprintf(ps->err, ps->errlen, "unexpected text after \"%s\"", quoted);
		return cron_fail(ps, sp->begin[1]);
	}
	return cron_parse_text(ps, m->fields, out);
}

/*
 * "N seconds" or "N second".  Sets *matched when the text has the shape of
 * an interval (a number and a word), and then either fills *out or fails.
 * A lone "10seconds" fails with a message saying what is missing, since it
 * would otherwise read as a one-field cron schedule.
 */
static bool
cron_parse_interval(CronParseState *ps, const CronSplit *sp,
					AdrCronSchedule *out, bool *matched)
{
	const char *nb = sp->begin[0];
	const char *ne;
	const char *ub;
	const char *ue;
	char		qnum[CRON_QUOTE_MAX + 4];
	char		qunit[CRON_QUOTE_MAX + 4];
	int			n;

	*matched = false;
	if (sp->nfields == 2)
	{
		ne = sp->end[0];
		ub = sp->begin[1];
		ue = sp->end[1];
		if (!cron_all(nb, ne, cron_is_digit) ||
			!cron_all(ub, ue, cron_is_alpha))
			return true;
	}
	else if (sp->nfields == 1)
	{
		for (ne = nb; ne < sp->end[0] && cron_is_digit(*ne); ne++)
			;
		ub = ne;
		ue = sp->end[0];
		if (ne == nb ||
			!(cron_equal_ci(ub, ue, "second") ||
			  cron_equal_ci(ub, ue, "seconds")))
			return true;
		*matched = true;
		cron_quote(qnum, sizeof(qnum), nb, ne);
		cron_quote(qunit, sizeof(qunit), ub, ue);
		snprintf(ps->err, ps->errlen, "missing space between %s and \"%s\"",
				 qnum, qunit);
		return cron_fail(ps, ub);
	}
	else
		return true;

	*matched = true;
	cron_quote(qnum, sizeof(qnum), nb, ne);
	cron_quote(qunit, sizeof(qunit), ub, ue);
	if (!cron_equal_ci(ub, ue, "second") && !cron_equal_ci(ub, ue, "seconds"))
	{
		snprintf(ps->err, ps->errlen, "unrecognized interval unit \"%s\"",
				 qunit);
		return cron_fail(ps, ub);
	}
	n = cron_number(nb, ne);
	if (n < 1 || n > 59)
	{
		snprintf(ps->err, ps->errlen,
				 "interval %s seconds is out of range 1-59", qnum);
		return cron_fail(ps, nb);
	}
	memset(out, 0, sizeof(*out));
	out->interval_seconds = n;
	return true;
}

/*
 * One field, [b, e): a comma list of "*", "n", "a-b", each optionally
 * followed by "/step".  Sets the bit of every value matched in *bits; day
 * of week 7 sets bit 0.
 */
static bool
cron_parse_field(CronParseState *ps, int field,
				 const char *b, const char *e, uint64_t *bits)
{
	const CronField *f = &cron_fields[field];
	const char *p = b;

	*bits = 0;
	for (;;)
	{
		const char *elem = p;
		bool		star = false;
		bool		ranged = false;
		int			lo;
		int			hi;
		int			step = 1;
		int			v;

		if (p == e || *p == ',')
		{
			snprintf(ps->err, ps->errlen, "empty element in %s list",
					 f->label);
			return cron_fail(ps, p);
		}

		if (*p == '*')
		{
			star = true;
			lo = f->min;
			hi = f->max;
			p++;
		}
		else
		{
			if (!cron_parse_value(ps, f, &p, e, &lo))
				return false;
			hi = lo;
			if (p < e && *p == '-')
			{
				p++;
				if (p == e || *p == ',')
				{
					snprintf(ps->err, ps->errlen,
							 "missing value after \"-\" in %s field",
							 f->label);
					return cron_fail(ps, p);
				}
				if (!cron_parse_value(ps, f, &p, e, &hi))
					return false;
				if (lo > hi)
				{
					char		quoted[CRON_QUOTE_MAX + 4];

					cron_quote(quoted, sizeof(quoted), elem, p);
					snprintf(ps->err, ps->errlen, "range %s is reversed",
							 quoted);
					return cron_fail(ps, elem);
				}
				ranged = true;
			}
		}

		if (p < e && *p == '/')
		{
			p++;
			if (!cron_parse_step(ps, f, &p, e, &step))
				return false;
			/* "a/s" runs from a to the end of the field (day of week: 7) */
			if (!star && !ranged)
				hi = f->max;
		}

		if (p < e && *p != ',')
		{
			snprintf(ps->err, ps->errlen,
					 "invalid character \"%c\" in %s field", *p, f->label);
			return cron_fail(ps, p);
		}

		for (v = lo; v <= hi; v += step)
			*bits |= (uint64_t) 1 << (field == CRON_WEEKDAY ? v % 7 : v);

		if (p == e)
			return true;
		p++;					/* past the ',' */
	}
}

/*
 * A value at *pp: digits, or a name where the field has names.  Advances
 * *pp past it.  The caller has made sure *pp is not at the end of the
 * field or at a ','.
 */
static bool
cron_parse_value(CronParseState *ps, const CronField *f,
				 const char **pp, const char *e, int *value)
{
	const char *b = *pp;
	const char *p = b;
	char		quoted[CRON_QUOTE_MAX + 4];

	while (p < e && (cron_is_digit(*p) || cron_is_alpha(*p)))
		p++;
	if (p == b)
	{
		snprintf(ps->err, ps->errlen, "invalid character \"%c\" in %s field",
				 *b, f->label);
		return cron_fail(ps, b);
	}
	cron_quote(quoted, sizeof(quoted), b, p);

	if (cron_all(b, p, cron_is_digit))
	{
		int			v = cron_number(b, p);

		if (v < f->min || v > f->max)
		{
			snprintf(ps->err, ps->errlen,
					 "%s value %s is out of range %d-%d",
					 f->label, quoted, f->min, f->max);
			return cron_fail(ps, b);
		}
		*value = v;
	}
	else if (f->names != NULL && cron_all(b, p, cron_is_alpha))
	{
		int			i;

		for (i = 0; f->names[i] != NULL; i++)
			if (cron_equal_ci(b, p, f->names[i]))
				break;
		if (f->names[i] == NULL)
		{
			snprintf(ps->err, ps->errlen, "unrecognized %s name \"%s\"",
					 f->name_kind, quoted);
			return cron_fail(ps, b);
		}
		*value = f->name_base + i;
	}
	else
	{
		snprintf(ps->err, ps->errlen, "invalid %s value \"%s\"",
				 f->label, quoted);
		return cron_fail(ps, b);
	}

	*pp = p;
	return true;
}

/*
 * A step at *pp, just past the '/': 1 up to the number of values in the
 * field.  Advances *pp past it.
 */
static bool
cron_parse_step(CronParseState *ps, const CronField *f,
				const char **pp, const char *e, int *step)
{
	const char *b = *pp;
	const char *p = b;
	char		quoted[CRON_QUOTE_MAX + 4];
	int			n;

	while (p < e && (cron_is_digit(*p) || cron_is_alpha(*p)))
		p++;
	if (p == b)
	{
		if (b == e || *b == ',')
			snprintf(ps->err, ps->errlen,
					 "missing step after \"/\" in %s field", f->label);
		else
			snprintf(ps->err, ps->errlen,
					 "invalid character \"%c\" in %s field", *b, f->label);
		return cron_fail(ps, b);
	}
	cron_quote(quoted, sizeof(quoted), b, p);
	if (!cron_all(b, p, cron_is_digit))
	{
		snprintf(ps->err, ps->errlen, "invalid step \"%s\"", quoted);
		return cron_fail(ps, b);
	}
	n = cron_number(b, p);
	if (n == 0)
	{
		snprintf(ps->err, ps->errlen, "invalid step %s", quoted);
		return cron_fail(ps, b);
	}
	if (n > f->max_step)
	{
		snprintf(ps->err, ps->errlen, "%s step %s is out of range 1-%d",
				 f->label, quoted, f->max_step);
		return cron_fail(ps, b);
	}
	*step = n;
	*pp = p;
	return true;
}

/* ----------------------------------------------------------------
 *		Calendar and evaluation
 * ----------------------------------------------------------------
 */

static bool
cron_is_leap(int year)
{
	/* C99 '%' truncates toward zero, which is still right for year <= 0 */
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int
adr_cron_days_in_month(int year, int month)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	if (month < 1 || month > 12)
		return 0;
	if (month == 2 && cron_is_leap(year))
		return 29;
	return days[month - 1];
}

/*
 * Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * days_from_civil).  64-bit throughout, so no int argument can overflow.
 */
int64_t
adr_cron_days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t		era;
	int64_t		yoe;
	int64_t		doy;
	int64_t		doe;

	y -= (m <= 2);
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * Day of week, 0 = Sunday.  A day outside the month counts on from its
 * start (day 0 is the last of the previous month); -1 if month is not 1-12.
 */
int
adr_cron_weekday(int year, int month, int day)
{
	int64_t		w;

	if (month < 1 || month > 12)
		return -1;
	/* 1970-01-01 was a Thursday */
	w = (adr_cron_days_from_civil(year, month, day) + 4) % 7;
	return (int) (w < 0 ? w + 7 : w);
}

/* The lowest set bit of bits in from..to (both within 0-63), or -1. */
static int
cron_next_bit(uint64_t bits, int from, int to)
{
	int			i;

	for (i = from; i <= to; i++)
		if (bits & ((uint64_t) 1 << i))
			return i;
	return -1;
}

/* The Vixie rule: AND when either day field began with '*', else OR. */
static bool
cron_day_matches(const AdrCronSchedule *s, const AdrCivilTime *t)
{
	int			wday = adr_cron_weekday(t->year, t->month, t->day);
	bool		dom = (s->days >> t->day) & 1;
	bool		dow = (s->weekdays >> wday) & 1;

	if (s->days_star || s->weekdays_star)
		return dom && dow;
	return dom || dow;
}

/* Midnight of the next day. */
static void
cron_next_day(AdrCivilTime *t)
{
	t->hour = 0;
	t->minute = 0;
	if (++t->day > adr_cron_days_in_month(t->year, t->month))
	{
		t->day = 1;
		if (++t->month > 12)
		{
			t->month = 1;
			t->year++;
		}
	}
}

/*
 * Whether t is a real civil time, with room to search ADR_CRON_SEARCH_YEARS
 * past its year without overflow.
 */
static bool
cron_civil_valid(const AdrCivilTime *t)
{
	return t->year <= INT32_MAX - ADR_CRON_SEARCH_YEARS - 2 &&
		t->month >= 1 && t->month <= 12 &&
		t->day >= 1 && t->day <= adr_cron_days_in_month(t->year, t->month) &&
		t->hour >= 0 && t->hour <= 23 &&
		t->minute >= 0 && t->minute <= 59 &&
		t->second >= 0 && t->second <= 60;
}

bool
adr_cron_next(const AdrCronSchedule *s, const AdrCivilTime *after,
			  AdrCivilTime *next)
{
	AdrCivilTime t;
	int			last_year;
	int			i;

	if (s == NULL || after == NULL || next == NULL ||
		s->interval_seconds > 0 || !cron_civil_valid(after))
		return false;

	/* the whole minute after *after */
	t = *after;
	t.second = 0;
	if (++t.minute > 59)
	{
		t.minute = 0;
		if (++t.hour > 23)
			cron_next_day(&t);
	}
	last_year = after->year + ADR_CRON_SEARCH_YEARS;

	/*
	 * Each pass either returns or moves t forward to the start of the next
	 * hour, day, month or year that might match, so the loop ends.
	 */
	while (t.year <= last_year)
	{
		i = cron_next_bit(s->months, t.month, 12);
		if (i < 0)
		{
			t.year++;
			t.month = 1;
			t.day = 1;
			t.hour = 0;
			t.minute = 0;
			continue;
		}
		if (i != t.month)
		{
			t.month = i;
			t.day = 1;
			t.hour = 0;
			t.minute = 0;
		}

		if (!cron_day_matches(s, &t))
		{
			cron_next_day(&t);
			continue;
		}

		i = cron_next_bit(s->hours, t.hour, 23);
		if (i < 0)
		{
			cron_next_day(&t);
			continue;
		}
		if (i != t.hour)
		{
			t.hour = i;
			t.minute = 0;
		}

		i = cron_next_bit(s->minutes, t.minute, 59);
		if (i < 0)
		{
			t.minute = 0;
			if (++t.hour > 23)
				cron_next_day(&t);
			continue;
		}
		t.minute = i;
		t.second = 0;
		*next = t;
		return true;
	}
	return false;
}
