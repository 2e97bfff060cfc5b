/* Unit tests of the latency histogram (include/histogram.h): percentiles of
 * known distributions within the promised precision, merging, and the edges
 * (empty, zero, the largest values). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "histogram.h"
#include "rng.h"

/* The relative error a bucket allows. */
#define PRECISION (1.0 / HISTOGRAM_SUB_BUCKETS)

static histogram *new_histogram(void)
{
    histogram *h = malloc(sizeof *h);
    assert_non_null(h);
    histogram_init(h);
    return h;
}

static void assert_close(uint64_t got, double want, double rel)
{
    double err = fabs((double)got - want);
    if (err > rel * want + 1e-9)
        fail_msg("got %llu, want %.1f within %.2f%%", (unsigned long long)got, want, rel * 100);
}

static void empty_histogram_reports_zeros(void **state)
{
    (void)state;
    histogram *h = new_histogram();
    assert_int_equal(histogram_count(h), 0);
    assert_int_equal(histogram_min(h), 0);
    assert_int_equal(histogram_max(h), 0);
    assert_true(histogram_mean(h) == 0.0);
    assert_int_equal(histogram_percentile(h, 0), 0);
    assert_int_equal(histogram_percentile(h, 50), 0);
    assert_int_equal(histogram_percentile(h, 100), 0);
    free(h);
}

static void single_value_is_every_percentile(void **state)
{
    (void)state;
    static const uint64_t values[] = {0, 1, 255, 256, 1000, 123456, 60000000000ull};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        histogram *h = new_histogram();
        histogram_record(h, values[i]);
        static const double ps[] = {0, 1, 50, 99, 99.9, 100};
        for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++)
            assert_int_equal(histogram_percentile(h, ps[k]), values[i]);
        assert_int_equal(histogram_min(h), values[i]);
        assert_int_equal(histogram_max(h), values[i]);
        assert_true(histogram_mean(h) == (double)values[i]);
        free(h);
    }
}

static void small_values_are_exact(void **state)
{
    (void)state;
    histogram *h = new_histogram();
    for (uint64_t v = 0; v < 256; v++)
        histogram_record(h, v);
    assert_int_equal(histogram_count(h), 256);
    /* rank ceil(p% of 256); the value at rank r is r - 1 */
    assert_int_equal(histogram_percentile(h, 50), 127);
    assert_int_equal(histogram_percentile(h, 25), 63);
    assert_int_equal(histogram_percentile(h, 100.0 * 200 / 256), 199);
    assert_int_equal(histogram_percentile(h, 0.0001), 0);
    assert_int_equal(histogram_percentile(h, 100), 255);
    assert_true(histogram_mean(h) == 127.5);
    free(h);
}

static void uniform_distribution_percentiles(void **state)
{
    (void)state;
    histogram *h = new_histogram();
    for (uint64_t v = 1; v <= 1000000; v++)
        histogram_record(h, v * 1000); /* 1 us .. 1 s */
    static const struct {
        double p;
        double want;
    } cases[] = {
        {50, 500000e3}, {90, 900000e3}, {99, 990000e3}, {99.9, 999000e3}, {10, 100000e3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_close(histogram_percentile(h, cases[i].p), cases[i].want, PRECISION);
    assert_int_equal(histogram_min(h), 1000);
    assert_int_equal(histogram_max(h), 1000000000);
    assert_close((uint64_t)histogram_mean(h), 500000.5e3, 1e-9);
    free(h);
}

/* Exponential latencies with a mean of 100 us: the p-th percentile is
 * -ln(1 - p) * mean. A million samples keep the sampling error well below
 * the tolerance. */
static void exponential_distribution_percentiles(void **state)
{
    (void)state;
    histogram *h = new_histogram();
    rng r;
    rng_seed(&r, 2026);
    const double mean = 100e3;
    for (int i = 0; i < 1000000; i++)
        histogram_record(h, (uint64_t)(-log(1.0 - rng_double(&r)) * mean));
    static const double ps[] = {50, 90, 99};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        assert_close(histogram_percentile(h, ps[i]), -log(1 - ps[i] / 100) * mean, 0.02);
    assert_close((uint64_t)histogram_mean(h), mean, 0.01);
    free(h);
}

/* Any value is reported within the bucket precision: record it twice and a
 * huge value once, and the median is the value's bucket. */
static void every_magnitude_within_precision(void **state)
{
    (void)state;
    for (double v = 1; v < 6e10; v *= 1.37) {
        histogram *h = new_histogram();
        histogram_record_n(h, (uint64_t)v, 2);
        histogram_record(h, UINT64_MAX);
        uint64_t got = histogram_percentile(h, 50);
        assert_true(got >= (uint64_t)v);
        assert_close(got, (double)(uint64_t)v, PRECISION);
        free(h);
    }
}

static void merge_equals_recording_together(void **state)
{
    (void)state;
    histogram *a = new_histogram(), *b = new_histogram(), *all = new_histogram();
    rng r;
    rng_seed(&r, 7);
    for (int i = 0; i < 100000; i++) {
        uint64_t v = rng_below(&r, 5000000);
        histogram_record(i % 3 ? a : b, v);
        histogram_record(all, v);
    }
    histogram_record(b, 0);
    histogram_record(all, 0);
    histogram_merge(a, b);
    assert_int_equal(histogram_count(a), histogram_count(all));
    assert_int_equal(histogram_min(a), histogram_min(all));
    assert_int_equal(histogram_max(a), histogram_max(all));
    assert_true(fabs(histogram_mean(a) - histogram_mean(all)) < 1e-6);
    assert_memory_equal(a->buckets, all->buckets, sizeof a->buckets);
    for (double p = 0; p <= 100; p += 0.5)
        assert_int_equal(histogram_percentile(a, p), histogram_percentile(all, p));

    /* Merging an empty histogram changes nothing, in either direction. */
    histogram *empty = new_histogram();
    histogram_merge(a, empty);
    assert_int_equal(histogram_count(a), histogram_count(all));
    assert_int_equal(histogram_min(a), histogram_min(all));
    histogram_merge(empty, all);
    assert_int_equal(histogram_min(empty), histogram_min(all));
    assert_int_equal(histogram_max(empty), histogram_max(all));
    assert_int_equal(histogram_percentile(empty, 99), histogram_percentile(all, 99));
    free(a);
    free(b);
    free(all);
    free(empty);
}

static void extreme_values(void **state)
{
    (void)state;
    histogram *h = new_histogram();
    histogram_record(h, 0);
    histogram_record(h, HISTOGRAM_MAX_NS);
    histogram_record(h, HISTOGRAM_MAX_NS + 1);
    histogram_record(h, UINT64_MAX);
    assert_int_equal(histogram_count(h), 4);
    assert_int_equal(histogram_min(h), 0);
    assert_int_equal(histogram_max(h), UINT64_MAX);
    assert_int_equal(histogram_percentile(h, 25), 0);
    assert_int_equal(histogram_percentile(h, 100), UINT64_MAX);
    /* Beyond the bucketed range the top bucket answers, capped by the max. */
    assert_true(histogram_percentile(h, 50) >= HISTOGRAM_MAX_NS - HISTOGRAM_MAX_NS / 128);
    /* Out-of-range percentiles clamp. */
    assert_int_equal(histogram_percentile(h, -5), 0);
    assert_int_equal(histogram_percentile(h, 150), UINT64_MAX);
    assert_int_equal(histogram_percentile(h, NAN), 0);
    free(h);
}

static void record_n_counts_many(void **state)
{
    (void)state;
    histogram *a = new_histogram(), *b = new_histogram();
    histogram_record_n(a, 5000, 0);
    assert_int_equal(histogram_count(a), 0);
    assert_int_equal(histogram_min(a), 0);
    histogram_record_n(a, 5000, 1000);
    histogram_record_n(a, 90000, 10);
    for (int i = 0; i < 1000; i++)
        histogram_record(b, 5000);
    for (int i = 0; i < 10; i++)
        histogram_record(b, 90000);
    assert_memory_equal(a, b, sizeof *a);
    assert_close(histogram_percentile(a, 99), 5000, PRECISION);
    assert_close(histogram_percentile(a, 99.5), 90000, PRECISION);
    free(a);
    free(b);
}

/* One thread records while another merges it again and again, as a status
 * request does with a worker's histogram: every snapshot agrees with itself
 * (its count is its buckets' sum), snapshots only grow, and the last one,
 * after the writer is done, has every value. */
enum { CONCURRENT_VALUES = 200000 };

static void *record_many(void *arg)
{
    histogram *h = arg;
    for (uint64_t i = 0; i < CONCURRENT_VALUES; i++)
        histogram_record(h, 1000 + i % 5000);
    return NULL;
}

static void merge_while_recording(void **state)
{
    (void)state;
    histogram *h = new_histogram(), *snap = new_histogram();
    pthread_t writer;
    assert_int_equal(pthread_create(&writer, NULL, record_many, h), 0);
    uint64_t last = 0;
    for (int k = 0; k < 200; k++) {
        histogram_init(snap);
        histogram_merge(snap, h);
        uint64_t n = histogram_count(snap);
        assert_true(n >= last);
        assert_true(n <= CONCURRENT_VALUES);
        if (n) {
            uint64_t p100 = histogram_percentile(snap, 100), p50 = histogram_percentile(snap, 50);
            assert_true(histogram_min(snap) >= 1000);
            assert_true(p50 <= p100);
            assert_true(p100 <= 6000);
        }
        last = n;
    }
    assert_int_equal(pthread_join(writer, NULL), 0);
    histogram_init(snap);
    histogram_merge(snap, h);
    assert_int_equal(histogram_count(snap), CONCURRENT_VALUES);
    assert_int_equal(histogram_min(snap), 1000);
    assert_int_equal(histogram_max(snap), 5999);
    free(h);
    free(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_histogram_reports_zeros),
        cmocka_unit_test(single_value_is_every_percentile),
        cmocka_unit_test(small_values_are_exact),
        cmocka_unit_test(uniform_distribution_percentiles),
        cmocka_unit_test(exponential_distribution_percentiles),
        cmocka_unit_test(every_magnitude_within_precision),
        cmocka_unit_test(merge_equals_recording_together),
        cmocka_unit_test(extreme_values),
        cmocka_unit_test(record_n_counts_many),
        cmocka_unit_test(merge_while_recording),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
