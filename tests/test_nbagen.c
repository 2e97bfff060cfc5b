/* Black-box test of nbagen: the same seed gives the same files, the files
 * have the contract's shape (contract.md section 2) as nbad's own CSV reader
 * sees them, and the loader takes them whole.
 *
 * The binary comes from NBAGEN_BIN; ctest sets it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "csv.h"
#include "loader.h"
#include "store.h"

#define NOW       "2026-11-22T10:00:00Z"
#define CUSTOMERS 400

static char dir[64];

static const char *nbagen_bin(void)
{
    const char *v = getenv("NBAGEN_BIN");
    if (!v) {
        fprintf(stderr, "NBAGEN_BIN is not set (run this test through ctest)\n");
        exit(1);
    }
    return v;
}

/* Runs nbagen with args (NULL-terminated), output to /dev/null; returns its
 * exit status. */
static int nbagen(const char *first, ...)
{
    const char *argv[32] = {nbagen_bin()};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void path(char *out, size_t cap, const char *sub, const char *file)
{
    snprintf(out, cap, "%s/%s/%s", dir, sub, file);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/nba-gen-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void generate(const char *sub, const char *seed)
{
    char out[128], customers[16];
    snprintf(out, sizeof out, "%s/%s", dir, sub);
    snprintf(customers, sizeof customers, "%d", CUSTOMERS);
    assert_int_equal(
        nbagen("--customers", customers, "--seed", seed, "--now", NOW, "--out", out, NULL), 0);
}

static bool same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    bool same = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static void same_seed_same_bytes(void **state)
{
    (void)state;
    generate("a", "42");
    generate("b", "42");
    generate("c", "43");
    static const char *const files[] = {"customers.csv", "incidents.csv"};
    for (int i = 0; i < 2; i++) {
        char a[256], b[256], c[256];
        path(a, sizeof a, "a", files[i]);
        path(b, sizeof b, "b", files[i]);
        path(c, sizeof c, "c", files[i]);
        assert_true(same_file(a, b));
        assert_false(same_file(a, c));
    }
}

static bool one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

static bool is_number(const char *s)
{
    char *end;
    strtod(s, &end);
    return *s && *end == '\0';
}

static void customers_have_the_contract_shape(void **state)
{
    (void)state;
    static const char *const header[] = {"customer_id",    "name",          "tier",
                                         "lifetime_value", "predicted_ltv", "language",
                                         "home_airport",   "birth_date",    "email_opt_in"};
    static const char *const tiers[] = {"none", "silver", "gold", "platinum", NULL};
    static const char *const languages[] = {"en",      "it",      "de",    "fr", "es", "ja",
                                            "zh-Hans", "zh-Hant", "pt-BR", "ko", "ar", NULL};
    char p[256];
    path(p, sizeof p, "a", "customers.csv");
    csv_reader *r;
    nba_error err;
    assert_int_equal(csv_open(p, &r, &err), 0);
    csv_record rec;
    assert_int_equal(csv_next(r, &rec, &err), 1);
    assert_int_equal(rec.count, 9);
    for (size_t i = 0; i < 9; i++)
        assert_string_equal(rec.fields[i], header[i]);

    int rows = 0, rc;
    unsigned seen_lang = 0, tier_count[4] = {0};
    while ((rc = csv_next(r, &rec, &err)) == 1) {
        rows++;
        if (rec.count != 9)
            fail_msg("line %zu has %zu fields", csv_line(r), rec.count);
        char want[16];
        snprintf(want, sizeof want, "C%07d", rows);
        assert_string_equal(rec.fields[0], want); /* sorted, numbered from 1 */
        assert_true(rec.lengths[1] > 0);
        assert_true(one_of(rec.fields[2], tiers));
        for (int t = 0; tiers[t]; t++)
            tier_count[t] += strcmp(rec.fields[2], tiers[t]) == 0;
        assert_true(is_number(rec.fields[3]) && strtod(rec.fields[3], NULL) > 0);
        assert_true(all_digits(rec.fields[4], rec.lengths[4]));
        assert_true(one_of(rec.fields[5], languages));
        for (int l = 0; languages[l]; l++)
            if (strcmp(rec.fields[5], languages[l]) == 0)
                seen_lang |= 1u << l;
        assert_int_equal(rec.lengths[6], 3);
        if (rec.lengths[7]) {
            int64_t ms;
            assert_int_equal(clock_parse_iso8601(rec.fields[7], rec.lengths[7], &ms), 0);
        }
        assert_true(strcmp(rec.fields[8], "0") == 0 || strcmp(rec.fields[8], "1") == 0);
    }
    if (rc < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(rows, CUSTOMERS);
    assert_true(seen_lang & 1u); /* en */
    assert_true(seen_lang & 2u); /* it */
    /* Tiers follow value: most customers have none, platinum is rare. */
    assert_true(tier_count[0] > CUSTOMERS / 2);
    assert_true(tier_count[3] < tier_count[0] / 10);
    csv_close(r);
}

static void incidents_have_the_contract_shape(void **state)
{
    (void)state;
    static const char *const header[] = {"incident_id", "customer_id", "kind",     "severity",
                                         "occurred_at", "flight",      "resolved", "note"};
    static const char *const kinds[] = {"ife_broken", "delay",     "lost_baggage",
                                        "downgrade",  "complaint", NULL};
    int64_t now_ms, oldest_ms;
    assert_int_equal(clock_parse_iso8601(NOW, strlen(NOW), &now_ms), 0);
    oldest_ms = now_ms - 720ll * 86400 * 1000;

    char p[256];
    path(p, sizeof p, "a", "incidents.csv");
    csv_reader *r;
    nba_error err;
    assert_int_equal(csv_open(p, &r, &err), 0);
    csv_record rec;
    assert_int_equal(csv_next(r, &rec, &err), 1);
    assert_int_equal(rec.count, 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(rec.fields[i], header[i]);

    int rows = 0, open = 0, rc;
    char last_customer[32] = "";
    while ((rc = csv_next(r, &rec, &err)) == 1) {
        rows++;
        if (rec.count != 8)
            fail_msg("line %zu has %zu fields", csv_line(r), rec.count);
        char want[24];
        snprintf(want, sizeof want, "INC-%010d", rows);
        assert_string_equal(rec.fields[0], want);
        /* grouped by customer, in customer order, all of them known */
        assert_true(strcmp(rec.fields[1], last_customer) >= 0);
        snprintf(last_customer, sizeof last_customer, "%s", rec.fields[1]);
        assert_int_equal(rec.lengths[1], 8);
        long num = strtol(rec.fields[1] + 1, NULL, 10);
        assert_true(num >= 1 && num <= CUSTOMERS);
        assert_true(one_of(rec.fields[2], kinds));
        assert_int_equal(rec.lengths[3], 1);
        assert_true(rec.fields[3][0] >= '1' && rec.fields[3][0] <= '5');
        int64_t at;
        assert_int_equal(clock_parse_iso8601(rec.fields[4], rec.lengths[4], &at), 0);
        assert_true(at <= now_ms && at >= oldest_ms);
        if (rec.lengths[5]) {
            assert_true(rec.lengths[5] >= 3 && rec.lengths[5] <= 6);
            assert_true(all_digits(rec.fields[5] + 2, rec.lengths[5] - 2));
        }
        assert_true(strcmp(rec.fields[6], "0") == 0 || strcmp(rec.fields[6], "1") == 0);
        open += rec.fields[6][0] == '0';
    }
    if (rc < 0)
        fail_msg("%s", err.msg);
    /* About two per customer, about 30% open. */
    assert_true(rows > CUSTOMERS && rows < CUSTOMERS * 4);
    assert_true(open > rows / 6 && open < rows / 2);
    csv_close(r);
}

/* The loader, which nbactl load runs, takes both files whole. */
static void loader_accepts_the_files(void **state)
{
    (void)state;
    char db[128], customers[256], incidents[256];
    snprintf(db, sizeof db, "%s/db", dir);
    path(customers, sizeof customers, "a", "customers.csv");
    path(incidents, sizeof incidents, "a", "incidents.csv");
    store *st;
    nba_error err;
    if (store_open(db, STORE_CREATE, 64u << 20, 0, &st, &err) != 0)
        fail_msg("%s", err.msg);
    loader_stats stats = {0};
    int rc = loader_load(st, customers, incidents, &stats, &err);
    store_close(st);
    if (rc != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(stats.customers, CUSTOMERS);
    assert_true(stats.incidents > CUSTOMERS);
}

static void bad_arguments_are_usage_errors(void **state)
{
    (void)state;
    char out[128];
    snprintf(out, sizeof out, "%s/bad", dir);
    assert_int_equal(nbagen("--customers", "10", NULL), 64); /* no --out */
    assert_int_equal(nbagen("--customers", "0", "--out", out, NULL), 64);
    assert_int_equal(nbagen("--customers", "ten", "--out", out, NULL), 64);
    assert_int_equal(nbagen("--now", "yesterday", "--out", out, NULL), 64);
    assert_int_equal(nbagen("--incidents-per-customer", "-1", "--out", out, NULL), 64);
    assert_int_equal(access(out, F_OK), -1);
    /* No incidents at all is a valid data set. */
    assert_int_equal(
        nbagen("--customers", "5", "--incidents-per-customer", "0", "--out", out, NULL), 0);
    char p[256];
    path(p, sizeof p, "bad", "incidents.csv");
    size_t len;
    char *text = slurp(p, &len);
    assert_string_equal(text, "incident_id,customer_id,kind,severity,occurred_at,flight,resolved,"
                              "note\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_bytes),
        cmocka_unit_test(customers_have_the_contract_shape),
        cmocka_unit_test(incidents_have_the_contract_shape),
        cmocka_unit_test(loader_accepts_the_files),
        cmocka_unit_test(bad_arguments_are_usage_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
