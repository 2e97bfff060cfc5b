/* clock.c - see include/clock.h. */
#include "clock.h"

#include <errno.h>
#include <stdbool.h>
#include <time.h>

int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Reads exactly n decimal digits at *p, advancing it. */
static bool read_digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static bool expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return false;
    (*p)++;
    return true;
}

/* Days from 1970-01-01 to year-month-day in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil), so no time zone or locale is involved. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int clock_parse_iso8601(const char *text, size_t len, int64_t *out_ms)
{
    const char *p = text, *end = text + len;
    int year, month, day, hour = 0, min = 0, sec = 0, ms = 0;

    if (!read_digits(&p, end, 4, &year) || !expect(&p, end, '-') ||
        !read_digits(&p, end, 2, &month) || !expect(&p, end, '-') || !read_digits(&p, end, 2, &day))
        return -EINVAL;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        return -EINVAL;

    int64_t offset_min = 0;
    if (p < end) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -EINVAL;
        p++;
        if (!read_digits(&p, end, 2, &hour) || !expect(&p, end, ':') ||
            !read_digits(&p, end, 2, &min))
            return -EINVAL;
        if (p < end && *p == ':') {
            p++;
            if (!read_digits(&p, end, 2, &sec))
                return -EINVAL;
            if (p < end && (*p == '.' || *p == ',')) {
                p++;
                int digits = 0, frac = 0;
                while (p < end && *p >= '0' && *p <= '9') {
                    if (digits < 3)
                        frac = frac * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (digits == 0)
                    return -EINVAL;
                for (int i = digits; i < 3; i++)
                    frac *= 10;
                ms = frac;
            }
        }
        if (hour > 23 || min > 59 || sec > 60)
            return -EINVAL;
        if (p >= end)
            return -EINVAL; /* a time needs its zone: Z or an offset */
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (!read_digits(&p, end, 2, &oh))
                return -EINVAL;
            if (p < end && *p == ':')
                p++;
            if (p < end && !read_digits(&p, end, 2, &om))
                return -EINVAL;
            if (oh > 23 || om > 59)
                return -EINVAL;
            offset_min = sign * (oh * 60 + om);
        } else {
            return -EINVAL;
        }
    }
    if (p != end)
        return -EINVAL;

    int64_t secs =
        days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec - offset_min * 60;
    *out_ms = secs * 1000 + ms;
    return 0;
}
