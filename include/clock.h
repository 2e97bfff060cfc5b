/* clock.h - time sources and the one timestamp format of the data contract. */
#ifndef NBA_CLOCK_H
#define NBA_CLOCK_H

#include <stdint.h>
#include <stddef.h>

/* Wall-clock time in unix milliseconds, to the kernel tick (a few ms:
 * CLOCK_REALTIME_COARSE). Every time nbad gives a decision or an incident
 * comes from here; it is read once a decision, and the coarse clock costs
 * a quarter of the exact one, while the rules count in hours and days. */
int64_t clock_now_ms(void);

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC), for measuring durations. */
uint64_t clock_mono_ns(void);

/* Parses an ISO 8601 UTC timestamp of the forms
 *   2026-11-01T08:30:00Z, 2026-11-01T08:30:00.250Z, 2026-11-01T08:30:00+02:00,
 *   2026-11-01 (midnight UTC)
 * from text[0..len) into unix milliseconds. Returns 0, or -EINVAL when the
 * text is not such a timestamp or names an impossible date. */
int clock_parse_iso8601(const char *text, size_t len, int64_t *out_ms);

#endif
