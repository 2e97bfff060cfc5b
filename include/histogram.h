/* histogram.h - a log-linear latency histogram in the spirit of HdrHistogram.
 *
 * Values are durations in nanoseconds. Every power of two is split into
 * HISTOGRAM_SUB_BUCKETS linear buckets, so a recorded value is known to
 * within 1/HISTOGRAM_SUB_BUCKETS (0.8%) of itself at any magnitude: 1 ns
 * resolution below 256 ns, 4 ns around 1 us, 0.27 s around 60 s. Values up to
 * HISTOGRAM_MAX_NS (about 68.7 s) are bucketed; larger ones are counted in the
 * top bucket, while min, max and mean stay exact.
 *
 * The histogram is a fixed-size struct (about 30 KiB) with no allocation:
 * recording is a few instructions and can never fail.
 *
 * Threads: one thread records into a histogram (histogram_record and
 * histogram_record_n are not safe against each other); any number of other
 * threads may read it at the same time with histogram_merge(), without a
 * lock. Every field is a relaxed atomic that only its one writer stores to,
 * so recording costs what plain loads and stores cost, and a reader sees
 * each value either recorded or not yet, never a torn field. This is how
 * nbad's workers time every decision while a status request merges their
 * histograms. Every other call needs the histogram to itself.
 */
#ifndef NBA_HISTOGRAM_H
#define NBA_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#define HISTOGRAM_SUB_BITS    7
#define HISTOGRAM_SUB_BUCKETS (1u << HISTOGRAM_SUB_BITS)
#define HISTOGRAM_MAX_BITS    36 /* values below 2^36 ns (68.7 s) are bucketed */
#define HISTOGRAM_MAX_NS      ((UINT64_C(1) << HISTOGRAM_MAX_BITS) - 1)
/* One linear run of SUB_BUCKETS for the values below SUB_BUCKETS, then one
 * run per power of two up to 2^MAX_BITS. */
#define HISTOGRAM_BUCKETS ((HISTOGRAM_MAX_BITS - HISTOGRAM_SUB_BITS + 1) * HISTOGRAM_SUB_BUCKETS)

typedef struct histogram {
    _Atomic uint64_t count; /* values recorded */
    _Atomic uint64_t min;   /* smallest value recorded (UINT64_MAX when empty) */
    _Atomic uint64_t max;   /* largest value recorded (0 when empty) */
    _Atomic double sum;     /* sum of the values, for the mean */
    _Atomic uint64_t buckets[HISTOGRAM_BUCKETS];
} histogram;

/* Empties h. A histogram must be initialised before any other call. */
void histogram_init(histogram *h);

/* Records one value of ns nanoseconds. */
void histogram_record(histogram *h, uint64_t ns);

/* Records n values of ns nanoseconds each (n may be 0). */
void histogram_record_n(histogram *h, uint64_t ns, uint64_t n);

/* Adds every value recorded in src to dst. src is unchanged and may be
 * recorded into by its writer meanwhile (see Threads above); dst's count is
 * then the sum of the buckets read, so that the percentiles of dst agree
 * with its count. */
void histogram_merge(histogram *dst, const histogram *src);

/* The value at percentile p (0..100; out-of-range p is clamped): the
 * smallest recorded value v such that at least p% of the values are <= v, up
 * to the bucket precision. The bucket's highest value is reported, clamped to
 * the exact min and max, so p=0 gives min and p=100 gives max. 0 when the
 * histogram is empty. */
uint64_t histogram_percentile(const histogram *h, double p);

/* Number of values recorded. */
uint64_t histogram_count(const histogram *h);

/* Smallest and largest values recorded, exact; 0 when empty. */
uint64_t histogram_min(const histogram *h);
uint64_t histogram_max(const histogram *h);

/* Mean of the values recorded, exact up to double rounding; 0 when empty. */
double histogram_mean(const histogram *h);

#endif
