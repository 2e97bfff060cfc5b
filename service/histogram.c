/* histogram.c - see histogram.h.
 *
 * Bucket index of a value v: with e the position of v's highest set bit and
 * shift = max(0, e - SUB_BITS), the index is shift * SUB_BUCKETS + (v >> shift).
 * Values below 2 * SUB_BUCKETS land in their own bucket (shift 0); above,
 * each power of two [2^e, 2^(e+1)) maps onto SUB_BUCKETS consecutive buckets
 * of width 2^shift, so the indexes are contiguous and a bucket is never wider
 * than 1/SUB_BUCKETS of the values in it.
 *
 * Every field is read with load() and written with store(): relaxed atomics,
 * which on the machines nbad runs on are the plain moves a non-atomic field
 * would get. The writer updates with a load and a store rather than an
 * atomic add because it is the only writer (see histogram.h): no locked
 * instruction on the recording path. */
#include "histogram.h"

#include <string.h>

#define load(field)       atomic_load_explicit(field, memory_order_relaxed)
#define store(field, val) atomic_store_explicit(field, val, memory_order_relaxed)

static unsigned bucket_of(uint64_t v)
{
    if (v > HISTOGRAM_MAX_NS)
        return HISTOGRAM_BUCKETS - 1;
    unsigned e = 63u - (unsigned)__builtin_clzll(v | 1u);
    unsigned shift = e > HISTOGRAM_SUB_BITS ? e - HISTOGRAM_SUB_BITS : 0;
    return shift * HISTOGRAM_SUB_BUCKETS + (unsigned)(v >> shift);
}

/* The highest value that lands in bucket i. */
static uint64_t bucket_high(unsigned i)
{
    if (i < 2 * HISTOGRAM_SUB_BUCKETS)
        return i;
    unsigned shift = i / HISTOGRAM_SUB_BUCKETS - 1;
    uint64_t low = (uint64_t)(i - shift * HISTOGRAM_SUB_BUCKETS) << shift;
    return low + (UINT64_C(1) << shift) - 1;
}

void histogram_init(histogram *h)
{
    /* Lock-free atomics have the representation of the plain type, so zero
     * bytes are zero values. */
    memset(h, 0, sizeof *h);
    store(&h->min, UINT64_MAX);
}

void histogram_record_n(histogram *h, uint64_t ns, uint64_t n)
{
    if (n == 0)
        return;
    _Atomic uint64_t *b = &h->buckets[bucket_of(ns)];
    store(b, load(b) + n);
    store(&h->count, load(&h->count) + n);
    store(&h->sum, load(&h->sum) + (double)ns * (double)n);
    if (ns < load(&h->min))
        store(&h->min, ns);
    if (ns > load(&h->max))
        store(&h->max, ns);
}

void histogram_record(histogram *h, uint64_t ns)
{
    histogram_record_n(h, ns, 1);
}

void histogram_merge(histogram *dst, const histogram *src)
{
    if (load(&src->count) == 0)
        return;
    uint64_t count = 0;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
        uint64_t n = load(&src->buckets[i]);
        if (n) {
            store(&dst->buckets[i], load(&dst->buckets[i]) + n);
            count += n;
        }
    }
    store(&dst->count, load(&dst->count) + count);
    store(&dst->sum, load(&dst->sum) + load(&src->sum));
    uint64_t min = load(&src->min), max = load(&src->max);
    if (min < load(&dst->min))
        store(&dst->min, min);
    if (max > load(&dst->max))
        store(&dst->max, max);
}

uint64_t histogram_percentile(const histogram *h, double p)
{
    uint64_t count = load(&h->count), min = load(&h->min), max = load(&h->max);
    if (count == 0)
        return 0;
    if (!(p > 0)) /* also catches NaN */
        return min;
    if (p >= 100)
        return max;
    /* The rank of the value asked for, 1-based: ceil(p% of count). */
    double want = p / 100.0 * (double)count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += load(&h->buckets[i]);
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            if (v < min)
                v = min;
            if (v > max)
                v = max;
            return v;
        }
    }
    return max;
}

uint64_t histogram_count(const histogram *h)
{
    return load(&h->count);
}

uint64_t histogram_min(const histogram *h)
{
    return load(&h->count) ? load(&h->min) : 0;
}

uint64_t histogram_max(const histogram *h)
{
    return load(&h->max);
}

double histogram_mean(const histogram *h)
{
    uint64_t count = load(&h->count);
    return count ? load(&h->sum) / (double)count : 0.0;
}
