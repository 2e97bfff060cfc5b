/* histogram.c - see histogram.h.
 *
 * Bucket index of a value v: with e the position of v's highest set bit and
 * shift = max(0, e - SUB_BITS), the index is shift * SUB_BUCKETS + (v >> shift).
 * Values below 2 * SUB_BUCKETS land in their own bucket (shift 0); above,
 * each power of two [2^e, 2^(e+1)) maps onto SUB_BUCKETS consecutive buckets
 * of width 2^shift, so the indexes are contiguous and a bucket is never wider
 * than 1/SUB_BUCKETS of the values in it. */
#include "histogram.h"

#include <string.h>

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
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void histogram_record_n(histogram *h, uint64_t ns, uint64_t n)
{
    if (n == 0)
        return;
    h->buckets[bucket_of(ns)] += n;
    h->count += n;
    h->sum += (double)ns * (double)n;
    if (ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
}

void histogram_record(histogram *h, uint64_t ns)
{
    histogram_record_n(h, ns, 1);
}

void histogram_merge(histogram *dst, const histogram *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t histogram_percentile(const histogram *h, double p)
{
    if (h->count == 0)
        return 0;
    if (!(p > 0)) /* also catches NaN */
        return h->min;
    if (p >= 100)
        return h->max;
    /* The rank of the value asked for, 1-based: ceil(p% of count). */
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max;
}

uint64_t histogram_count(const histogram *h)
{
    return h->count;
}

uint64_t histogram_min(const histogram *h)
{
    return h->count ? h->min : 0;
}

uint64_t histogram_max(const histogram *h)
{
    return h->max;
}

double histogram_mean(const histogram *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
