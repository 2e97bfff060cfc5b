/* Unit tests of the external sort: order and stability in memory and across
 * runs on disk (many runs, merged in groups), input already in order,
 * reading again, records larger than a run buffer, nothing left behind. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sorter.h"

typedef struct fixture {
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/nba-sorter-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    /* Runs go to an unlinked file: the directory is empty again. */
    int rc = rmdir(f->dir);
    free(f);
    return rc;
}

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Key i of a data set of n: ids from a few thousand distinct values (so
 * that many are equal), of varying lengths, some a prefix of others. */
static size_t make_key(char *buf, uint64_t r)
{
    unsigned v = (unsigned)(r % 5000);
    switch (r >> 40 & 3) {
    case 0:
        return (size_t)sprintf(buf, "C%u", v);
    case 1:
        return (size_t)sprintf(buf, "C%u%c", v, 0);
    case 2:
        return (size_t)sprintf(buf, "C%07u-long-key-beyond-sixteen-bytes", v);
    default:
        return (size_t)sprintf(buf, "C%u%cI%u", v, 0, (unsigned)(r >> 20 & 7));
    }
}

static int cmp_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* Adds n random records (value: the sequence number as text, tag0: the
 * sequence number), then checks the order, stability and contents, twice
 * (the second time after a rewind). */
static void sort_and_check(const char *dir, size_t n, size_t memory, bool in_order,
                           size_t *runs_out, size_t *spilled)
{
    sorter *s;
    nba_error err;
    assert_int_equal(sorter_new(dir, memory, &s, &err), 0);
    uint64_t seed = 88172645463325252ULL;
    char key[96], val[32];
    for (size_t i = 0; i < n; i++) {
        size_t klen;
        if (in_order)
            klen = (size_t)sprintf(key, "K%012zu", i);
        else
            klen = make_key(key, next_random(&seed));
        size_t vlen = (size_t)sprintf(val, "v%zu", i);
        assert_int_equal(sorter_add(s, key, klen, val, vlen, i, i * 3, &err), 0);
    }
    assert_int_equal(sorter_count(s), n);
    if (spilled)
        *spilled = sorter_runs(s);
    assert_int_equal(sorter_finish(s, &err), 0);
    *runs_out = sorter_runs(s);
    for (int pass = 0; pass < 2; pass++) {
        sorter_record r;
        uint8_t prev[96];
        size_t prev_len = 0, count = 0;
        uint64_t prev_seq = 0;
        int rc;
        while ((rc = sorter_next(s, &r, &err)) == 1) {
            if (count) {
                int c = cmp_bytes(prev, prev_len, r.key, r.key_len);
                assert_true(c <= 0);
                if (c == 0)
                    assert_true(r.tag[0] > prev_seq); /* stable */
            }
            assert_int_equal(r.tag[1], r.tag[0] * 3);
            char want[32];
            size_t wlen = (size_t)sprintf(want, "v%llu", (unsigned long long)r.tag[0]);
            assert_int_equal(r.val_len, wlen);
            assert_memory_equal(r.val, want, wlen);
            memcpy(prev, r.key, r.key_len);
            prev_len = r.key_len;
            prev_seq = r.tag[0];
            count++;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(count, n);
        assert_int_equal(sorter_rewind(s, &err), 0);
    }
    sorter_free(s);
}

static void sorts_in_memory(void **state)
{
    fixture *f = *state;
    size_t runs;
    sort_and_check(f->dir, 100000, 0, false, &runs, NULL);
    assert_int_equal(runs, 0);
    sort_and_check(f->dir, 0, 0, false, &runs, NULL);
    sort_and_check(f->dir, 1, 0, false, &runs, NULL);
}

/* 1 MiB of memory for about 8 MiB of records: runs on disk, merged. */
static void sorts_in_runs(void **state)
{
    fixture *f = *state;
    size_t runs;
    sort_and_check(f->dir, 150000, 1 << 20, false, &runs, NULL);
    assert_true(runs > 1);
}

/* More runs than are merged at once: merged in groups first. */
static void merges_many_runs_in_groups(void **state)
{
    fixture *f = *state;
    size_t runs, spilled;
    sort_and_check(f->dir, 1300000, 1 << 20, false, &runs, &spilled);
    assert_true(spilled > 64);
    assert_true(runs > 1 && runs <= 64);
}

static void input_in_order(void **state)
{
    fixture *f = *state;
    size_t runs;
    sort_and_check(f->dir, 200000, 1 << 20, true, &runs, NULL);
    sort_and_check(f->dir, 200000, 0, true, &runs, NULL);
}

/* A record larger than a run's read buffer comes back whole. */
static void large_records(void **state)
{
    fixture *f = *state;
    sorter *s;
    nba_error err;
    size_t big = 3 << 20;
    char *val = malloc(big);
    assert_non_null(val);
    memset(val, 'x', big);
    assert_int_equal(sorter_new(f->dir, 1 << 20, &s, &err), 0);
    for (int i = 9; i >= 0; i--) {
        char key[16];
        val[0] = (char)('0' + i);
        assert_int_equal(sorter_add(s, key, (size_t)sprintf(key, "k%d", i), val, big, 0, 0, &err),
                         0);
    }
    assert_int_equal(sorter_finish(s, &err), 0);
    assert_true(sorter_runs(s) > 1);
    sorter_record r;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sorter_next(s, &r, &err), 1);
        assert_int_equal(r.val_len, big);
        assert_int_equal(r.val[0], '0' + i);
        assert_int_equal(r.val[big - 1], 'x');
    }
    assert_int_equal(sorter_next(s, &r, &err), 0);
    sorter_free(s);
    free(val);
}

static void errors(void **state)
{
    fixture *f = *state;
    sorter *s;
    nba_error err;
    sorter_record r;
    assert_int_equal(sorter_new(f->dir, 0, &s, &err), 0);
    assert_int_equal(sorter_next(s, &r, &err), -EINVAL);
    static char key[70000];
    assert_int_equal(sorter_add(s, key, sizeof key, "", 0, 0, 0, &err), -EINVAL);
    sorter_free(s);
    sorter_free(NULL);

    /* Runs cannot be written where there is no directory. */
    assert_int_equal(sorter_new("/nonexistent/nba-sorter", 1 << 20, &s, &err), 0);
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++)
        rc = sorter_add(s, "key", 3, "value", 5, 0, 0, &err);
    assert_true(rc < 0);
    assert_non_null(strstr(err.msg, "/nonexistent/nba-sorter"));
    sorter_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sorts_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(sorts_in_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(merges_many_runs_in_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(input_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(large_records, setup, teardown),
        cmocka_unit_test_setup_teardown(errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
