/* ISO dates, times and timestamps as int64 microseconds, the same as lakeformat.temporal. */
#include "airbyte_records.h"

/* ------------------------------------------------------------------------------ time */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static inline int digits(const uchar *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

static int parse_date(const uchar *s, int64_t *days) {
    int y, m, d;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) || s[7] != '-' || !digits(s + 8, 2, &d)) return 0;
    if (y < 1 || m < 1 || m > 12 || d < 1) return 0;
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > dim[m - 1] + (m == 2 && leap)) return 0;
    *days = days_from_civil(y, (unsigned)m, (unsigned)d);
    return 1;
}

/* HH:MM:SS[.f{1,6}] at s (n bytes available): microseconds since midnight, bytes used. */
static int parse_clock(const uchar *s, size_t n, int64_t *us, size_t *used) {
    int h, mi, se;
    if (n < 8 || !digits(s, 2, &h) || s[2] != ':' || !digits(s + 3, 2, &mi) || s[5] != ':' || !digits(s + 6, 2, &se)) return 0;
    if (h > 23 || mi > 59 || se > 59) return 0;
    size_t i = 8;
    int64_t frac = 0;
    if (i < n && s[i] == '.') {
        i++;
        int k = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (++k > 6) return 0;
            frac = frac * 10 + (s[i] - '0');
            i++;
        }
        if (k == 0) return 0;
        for (; k < 6; k++) frac *= 10;
    }
    *us = ((int64_t)h * 3600 + mi * 60 + se) * 1000000 + frac;
    *used = i;
    return 1;
}

LF_REC_INTERNAL int parse_time_value(int kind, const uchar *s, size_t n, int64_t *out) {
    const int64_t DAY = 86400LL * 1000000;
    if (kind == K_DATE) {
        int64_t days;
        if (n != 10 || !parse_date(s, &days)) return 0;
        *out = days * DAY;
        return 1;
    }
    if (kind == K_TIME) {
        int64_t us;
        size_t used;
        if (!parse_clock(s, n, &us, &used) || used != n) return 0;
        *out = us;
        return 1;
    }
    int64_t days, us;
    size_t used;
    if (n < 19 || !parse_date(s, &days) || (s[10] != 'T' && s[10] != ' ')) return 0;
    if (!parse_clock(s + 11, n - 11, &us, &used)) return 0;
    size_t i = 11 + used;
    int64_t offset = 0;
    if (i < n) {
        if (s[i] == 'Z' && i + 1 == n) {
            offset = 0;
        } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n && s[i + 3] == ':') {
            int oh, om;
            if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59) return 0;
            offset = ((int64_t)oh * 3600 + om * 60) * 1000000;
            if (s[i] == '-') offset = -offset;
        } else {
            return 0;
        }
    }
    /* with time zone: the instant (a value without offset is read as UTC); without: the
     * wall-clock value, whatever offset it carries */
    *out = days * DAY + us - (kind == K_TS_TZ ? offset : 0);
    return 1;
}
