/* Unit tests of the loader: a good load read back through a store reader, a
 * table of bad rows each named by file and line, and the promise that a
 * failed load leaves the database exactly as it was. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <lmdb.h>

#include "arena.h"
#include "clock.h"
#include "facts_load.h"
#include "loader.h"
#include "store.h"

typedef struct fixture {
    char dir[64];
    char db[96];
    char customers[96];
    char incidents[96];
    store *st;
} fixture;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->dir, "/tmp/test_loader.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->db, sizeof fx->db, "%s/db", fx->dir);
    snprintf(fx->customers, sizeof fx->customers, "%s/customers.csv", fx->dir);
    snprintf(fx->incidents, sizeof fx->incidents, "%s/incidents.csv", fx->dir);
    nba_error err;
    if (store_open(fx->db, STORE_CREATE, (size_t)256 << 20, 0, &fx->st, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[128];
    store_close(fx->st);
    /* Only ever our own mkdtemp directory. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc;
}

/* ---- the reference data ---- */

static const char good_customers[] =
    "customer_id,home_airport,name,tier,lifetime_value,predicted_ltv,language,birth_date,"
    "miles\r\n"
    "C1,FCO,Giulia Rossi,platinum,81000.50,48000,it,1984-05-17,120000\r\n"
    "C2,TPE,陳志明,gold,30000,45000,zh-Hant,1979-11-02,-3.5e2\r\n"
    "C3,,\"Low, Tom \"\"Tommy\"\"\",none,0,120,en,,\r\n"
    "C4,PEK,王秀英,silver,1200,9000,zh-Hans,1990-01-30,7\r\n";

static const char good_incidents[] =
    "incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note\n"
    "I1,C1,ife_broken,3,2026-11-01T08:30:00Z,AZ611,0,\"Seat 32C, screen dead; "
    "said \"\"unacceptable\"\"\"\n"
    "I2,C2,delay,2,2026-10-01,BR87,1,\n"
    "I0,C1,lost_baggage,5,2026-11-01T10:30:00.250+02:00,,1,\"two lines\n"
    "of note\"\n";

static void load_good(fixture *fx)
{
    nba_error err = {{0}};
    loader_stats stats = {0};
    write_file(fx->customers, good_customers);
    write_file(fx->incidents, good_incidents);
    int rc = loader_load(fx->st, fx->customers, fx->incidents, &stats, &err);
    if (rc)
        fail_msg("load failed: %s", err.msg);
    assert_int_equal(stats.customers, 4);
    assert_int_equal(stats.incidents, 3);
}

static const Nba__V1__Attribute *find_attr(const Nba__V1__Customer *c, const char *name)
{
    for (size_t i = 0; i < c->n_attributes; i++)
        if (strcmp(c->attributes[i]->name, name) == 0)
            return c->attributes[i];
    return NULL;
}

/* Checks that the store holds exactly the reference data. */
static void verify_good(fixture *fx)
{
    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    Nba__V1__Incident **incs;
    size_t n;

    store_stats ss;
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.customers, 4);
    assert_int_equal(ss.incidents, 3);

    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(fx->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);

    assert_int_equal(store_get_customer(r, "C1", &a, &c), 0);
    assert_string_equal(c->customer_id, "C1");
    assert_string_equal(c->name, "Giulia Rossi");
    assert_string_equal(c->tier, "platinum");
    assert_true(c->lifetime_value == 81000.5);
    assert_true(c->predicted_ltv == 48000);
    assert_string_equal(c->language, "it");
    /* The extra columns, sorted by name and typed. */
    assert_int_equal(c->n_attributes, 3);
    assert_string_equal(c->attributes[0]->name, "birth_date");
    assert_string_equal(c->attributes[1]->name, "home_airport");
    assert_string_equal(c->attributes[2]->name, "miles");
    assert_string_equal(c->attributes[0]->text, "1984-05-17");
    assert_false(c->attributes[0]->has_number);
    assert_string_equal(c->attributes[1]->text, "FCO");
    assert_false(c->attributes[1]->has_number);
    assert_string_equal(c->attributes[2]->text, "120000");
    assert_true(c->attributes[2]->has_number);
    assert_true(c->attributes[2]->number == 120000);

    assert_int_equal(store_get_incidents(r, "C1", &a, &incs, &n), 0);
    assert_int_equal(n, 2);
    /* In incident_id order. */
    assert_string_equal(incs[0]->incident_id, "I0");
    assert_string_equal(incs[0]->kind, "lost_baggage");
    assert_int_equal(incs[0]->severity, 5);
    assert_int_equal(incs[0]->occurred_at_ms, 1793521800250LL);
    assert_string_equal(incs[0]->flight, "");
    assert_true(incs[0]->resolved);
    assert_string_equal(incs[0]->note, "two lines\nof note");
    assert_string_equal(incs[1]->incident_id, "I1");
    assert_string_equal(incs[1]->customer_id, "C1");
    assert_string_equal(incs[1]->kind, "ife_broken");
    assert_int_equal(incs[1]->severity, 3);
    assert_int_equal(incs[1]->occurred_at_ms, 1793521800000LL);
    assert_string_equal(incs[1]->flight, "AZ611");
    assert_false(incs[1]->resolved);
    assert_string_equal(incs[1]->note, "Seat 32C, screen dead; said \"unacceptable\"");

    assert_int_equal(store_get_customer(r, "C2", &a, &c), 0);
    assert_string_equal(c->name, "陳志明");
    assert_string_equal(c->language, "zh-Hant");
    const Nba__V1__Attribute *miles = find_attr(c, "miles");
    assert_non_null(miles);
    assert_true(miles->has_number);
    assert_true(miles->number == -350);
    assert_int_equal(store_get_incidents(r, "C2", &a, &incs, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(incs[0]->occurred_at_ms, 1790812800000LL);

    assert_int_equal(store_get_customer(r, "C3", &a, &c), 0);
    assert_string_equal(c->name, "Low, Tom \"Tommy\"");
    assert_true(c->lifetime_value == 0);
    const Nba__V1__Attribute *empty = find_attr(c, "home_airport");
    assert_non_null(empty);
    assert_string_equal(empty->text, "");
    assert_false(empty->has_number);
    assert_int_equal(store_get_incidents(r, "C3", &a, &incs, &n), 0);
    assert_int_equal(n, 0);

    assert_int_equal(store_get_customer(r, "C4", &a, &c), 0);
    assert_string_equal(c->name, "王秀英");
    assert_string_equal(c->language, "zh-Hans");

    assert_int_equal(store_get_customer(r, "C9", &a, &c), -ENOENT);

    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

static void good_load_reads_back(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    verify_good(fx);
    /* Loading the same files again replaces, it does not add up. */
    load_good(fx);
    verify_good(fx);
}

/* ---- bad rows ---- */

#define CUSTOMERS_HEADER "customer_id,name,tier,lifetime_value,predicted_ltv,language\n"
#define INCIDENTS_HEADER "incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note\n"
#define OK_CUSTOMERS     CUSTOMERS_HEADER "K1,Ann,gold,100,200,en\nK2,Bob,none,1,2,de\n"

typedef struct bad_case {
    const char *name;
    const char *customers;
    const char *incidents; /* NULL: load without incidents */
    bool in_incidents;     /* the error is in the incidents file */
    size_t line;
    const char *text; /* expected in the message after "path:line: " */
} bad_case;

static const bad_case bad_cases[] = {
    {"empty customers file", "", NULL, false, 1, "the file is empty"},
    {"missing column", "customer_id,name,tier,lifetime_value,language\nK1,Ann,gold,1,en\n", NULL,
     false, 1, "no column 'predicted_ltv'"},
    {"duplicate column",
     "customer_id,name,tier,lifetime_value,predicted_ltv,language,name\nK1,A,g,1,2,en,B\n", NULL,
     false, 1, "column 'name' appears twice"},
    {"too few fields", OK_CUSTOMERS "K3,Cid,gold,100,200\n", NULL, false, 4,
     "5 fields, but the header has 6 columns"},
    {"too many fields", OK_CUSTOMERS "K3,Cid,gold,100,200,en,x\n", NULL, false, 4,
     "7 fields, but the header has 6 columns"},
    {"empty customer_id", CUSTOMERS_HEADER "K1,Ann,gold,100,200,en\n,Bob,none,1,2,de\n", NULL,
     false, 3, "empty customer_id (column 'customer_id': value '')"},
    {"customer_id too long",
     CUSTOMERS_HEADER "K1,Ann,gold,100,200,en\n"
                      "K12345678901234567890123456789012345678901234567890123456789012345678901"
                      "23456789012345678901234567890123456789012345678901234567890123456789012"
                      "34567890123456789012345678901234567890123456789012345678901234567890,"
                      "Bob,none,1,2,de\n",
     NULL, false, 3, "customer_id longer than 200 bytes (column 'customer_id': value 'K123"},
    {"lifetime_value not a number", OK_CUSTOMERS "K3,Cid,gold,lots,200,en\n", NULL, false, 4,
     "lifetime_value is not a decimal number (e.g. 1234.50) (column 'lifetime_value': value "
     "'lots')"},
    {"lifetime_value with a decimal comma", OK_CUSTOMERS "K3,Cid,gold,\"12,5\",200,en\n", NULL,
     false, 4, "(column 'lifetime_value': value '12,5')"},
    {"empty predicted_ltv", OK_CUSTOMERS "K3,Cid,gold,1,,en\n", NULL, false, 4,
     "empty predicted_ltv; write 0 when there is no value (column 'predicted_ltv': value '')"},
    {"predicted_ltv out of range", OK_CUSTOMERS "K3,Cid,gold,1,1e999,en\n", NULL, false, 4,
     "(column 'predicted_ltv': value '1e999')"},
    {"predicted_ltv inf", OK_CUSTOMERS "K3,Cid,gold,1,inf,en\n", NULL, false, 4,
     "(column 'predicted_ltv': value 'inf')"},
    {"predicted_ltv with spaces", OK_CUSTOMERS "K3,Cid,gold,1, 200,en\n", NULL, false, 4,
     "(column 'predicted_ltv': value ' 200')"},
    {"language a word", OK_CUSTOMERS "K3,Cid,gold,1,2,english\n", NULL, false, 4,
     "not a BCP 47 language tag (e.g. en, it, zh-Hant, pt-BR) (column 'language': value "
     "'english')"},
    {"language with underscore", OK_CUSTOMERS "K3,Cid,gold,1,2,zh_Hant\n", NULL, false, 4,
     "(column 'language': value 'zh_Hant')"},
    {"language with an empty subtag", OK_CUSTOMERS "K3,Cid,gold,1,2,en-\n", NULL, false, 4,
     "(column 'language': value 'en-')"},
    {"a bad field after a multi-line field is on its own line",
     OK_CUSTOMERS "K3,\"Cid\nthe second\",gold,bad,2,en\n", NULL, false, 5,
     "(column 'lifetime_value': value 'bad')"},
    {"duplicate customer_id names both lines",
     OK_CUSTOMERS "K3,Cid,gold,1,2,en\nK2,Bob again,none,1,2,de\n", NULL, false, 5,
     "duplicate customer_id, first on line 3 (column 'customer_id': value 'K2')"},
    {"broken csv in the customers file", OK_CUSTOMERS "K3,\"Cid\"x,gold,1,2,en\n", NULL, false, 4,
     "text after the closing quote"},
    {"missing incidents column", OK_CUSTOMERS,
     "incident_id,customer_id,kind,severity,occurred_at,flight,resolved\n", true, 1,
     "no column 'note'"},
    {"empty incident_id", OK_CUSTOMERS,
     INCIDENTS_HEADER "J1,K1,delay,2,2026-01-01,AZ1,0,\n,K1,delay,2,2026-01-01,AZ1,0,\n", true, 3,
     "empty incident_id (column 'incident_id': value '')"},
    {"empty incident customer_id", OK_CUSTOMERS, INCIDENTS_HEADER "J1,,delay,2,2026-01-01,AZ1,0,\n",
     true, 2, "empty customer_id (column 'customer_id': value '')"},
    {"empty kind", OK_CUSTOMERS, INCIDENTS_HEADER "J1,K1,,2,2026-01-01,AZ1,0,\n", true, 2,
     "empty kind (column 'kind': value '')"},
    {"severity 0", OK_CUSTOMERS, INCIDENTS_HEADER "J1,K1,delay,0,2026-01-01,AZ1,0,\n", true, 2,
     "severity is not a whole number from 1 to 5 (column 'severity': value '0')"},
    {"severity 6", OK_CUSTOMERS, INCIDENTS_HEADER "J1,K1,delay,6,2026-01-01,AZ1,0,\n", true, 2,
     "(column 'severity': value '6')"},
    {"severity 3.0", OK_CUSTOMERS, INCIDENTS_HEADER "J1,K1,delay,3.0,2026-01-01,AZ1,0,\n", true, 2,
     "(column 'severity': value '3.0')"},
    {"severity empty", OK_CUSTOMERS, INCIDENTS_HEADER "J1,K1,delay,,2026-01-01,AZ1,0,\n", true, 2,
     "(column 'severity': value '')"},
    {"occurred_at impossible date", OK_CUSTOMERS,
     INCIDENTS_HEADER "J1,K1,delay,2,2026-02-30T10:00:00Z,AZ1,0,\n", true, 2,
     "occurred_at is not an ISO 8601 UTC time (e.g. 2026-11-01T08:30:00Z) (column "
     "'occurred_at': value '2026-02-30T10:00:00Z')"},
    {"occurred_at without a zone", OK_CUSTOMERS,
     INCIDENTS_HEADER "J1,K1,delay,2,2026-02-03T10:00:00,AZ1,0,\n", true, 2,
     "(column 'occurred_at': value '2026-02-03T10:00:00')"},
    {"resolved yes", OK_CUSTOMERS, INCIDENTS_HEADER "J1,K1,delay,2,2026-01-01,AZ1,yes,\n", true, 2,
     "resolved is not 0 (open) or 1 (resolved) (column 'resolved': value 'yes')"},
    {"incident of an unknown customer", OK_CUSTOMERS,
     INCIDENTS_HEADER "J1,K1,delay,2,2026-01-01,AZ1,0,\nJ2,K7,delay,2,2026-01-01,AZ1,0,\n", true, 3,
     "incident of a customer that is not in the customers file (column 'customer_id': value "
     "'K7')"},
    {"duplicate incident_id across customers names both lines", OK_CUSTOMERS,
     INCIDENTS_HEADER "J1,K1,delay,2,2026-01-01,AZ1,0,\nJ2,K1,delay,2,2026-01-01,AZ1,0,\n"
                      "J1,K2,delay,2,2026-01-01,AZ1,0,\n",
     true, 4, "duplicate incident_id, first on line 2 (column 'incident_id': value 'J1')"},
    {"wrong field count in incidents", OK_CUSTOMERS,
     INCIDENTS_HEADER "J1,K1,delay,2,2026-01-01,AZ1,0\n", true, 2,
     "7 fields, but the header has 8 columns"},
    {"invalid utf-8 in incidents", OK_CUSTOMERS,
     INCIDENTS_HEADER "J1,K1,delay,2,2026-01-01,AZ1,0,\"fine\"\nJ2,K1,delay,2,2026-01-01,AZ1,0,"
                      "\"caf\xE9\"\n",
     true, 3, "invalid UTF-8"},
    {"long values are cut in the message",
     OK_CUSTOMERS "K3,Cid,gold,1,2,"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "\n",
     NULL, false, 4, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...')"},
};

static void bad_rows_are_named_and_change_nothing(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    char bad_customers[128], bad_incidents[128];
    snprintf(bad_customers, sizeof bad_customers, "%s/bad_customers.csv", fx->dir);
    snprintf(bad_incidents, sizeof bad_incidents, "%s/bad_incidents.csv", fx->dir);

    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *bc = &bad_cases[i];
        print_message("case: %s\n", bc->name);
        write_file(bad_customers, bc->customers);
        if (bc->incidents)
            write_file(bad_incidents, bc->incidents);
        nba_error err = {{0}};
        loader_stats stats = {.customers = 99, .incidents = 99};
        int rc =
            loader_load(fx->st, bad_customers, bc->incidents ? bad_incidents : NULL, &stats, &err);
        assert_int_equal(rc, -EINVAL);
        /* Stats are only written on success. */
        assert_int_equal(stats.customers, 99);
        print_message("  %s\n", err.msg);
        char want[256];
        snprintf(want, sizeof want, "%s:%zu: ", bc->in_incidents ? bad_incidents : bad_customers,
                 bc->line);
        if (strncmp(err.msg, want, strlen(want)) != 0 || !strstr(err.msg, bc->text))
            fail_msg("case '%s':\n got  %s\n want %s...%s", bc->name, err.msg, want, bc->text);
    }
    /* After all of that, the database still holds the good load. */
    verify_good(fx);
}

static void header_column_without_a_name(void **state)
{
    fixture *fx = *state;
    write_file(fx->customers, "customer_id,name,,tier,lifetime_value,predicted_ltv,language\n");
    nba_error err = {{0}};
    assert_int_equal(loader_load(fx->st, fx->customers, NULL, NULL, &err), -EINVAL);
    char want[160];
    snprintf(want, sizeof want, "%s:1: column 3 of the header has no name", fx->customers);
    assert_string_equal(err.msg, want);
}

/* The failing row comes late: thousands of puts (and the clear) happened in
 * the transaction before it, and none of it may show. */
static void failed_load_leaves_old_data(void **state)
{
    fixture *fx = *state;
    load_good(fx);

    char path_c[128], path_i[128];
    snprintf(path_c, sizeof path_c, "%s/new_customers.csv", fx->dir);
    snprintf(path_i, sizeof path_i, "%s/new_incidents.csv", fx->dir);
    FILE *f = fopen(path_c, "w");
    assert_non_null(f);
    fputs(CUSTOMERS_HEADER, f);
    /* C1 again, changed: a successful load would overwrite it. */
    fputs("C1,Someone Else,none,1,1,en\n", f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "N%d,New %d,gold,%d,%d,fr\n", i, i, i, i * 2);
    assert_int_equal(fclose(f), 0);
    f = fopen(path_i, "w");
    assert_non_null(f);
    fputs(INCIDENTS_HEADER, f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "NI%d,N%d,delay,2,2026-01-01T00:00:00Z,AZ%d,0,\n", i, i, i);
    fputs("NIX,N1,delay,9,2026-01-01T00:00:00Z,AZ1,0,\n", f);
    assert_int_equal(fclose(f), 0);

    nba_error err = {{0}};
    assert_int_equal(loader_load(fx->st, path_c, path_i, NULL, &err), -EINVAL);
    char want[160];
    snprintf(want, sizeof want, "%s:5002: ", path_i);
    assert_non_null(strstr(err.msg, want));
    verify_good(fx);

    /* A missing file changes nothing either. */
    assert_int_equal(loader_load(fx->st, path_c, "/nonexistent/incidents.csv", NULL, &err),
                     -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/incidents.csv"));
    verify_good(fx);

    /* And the same new data without the bad row loads, replacing the old. */
    f = fopen(path_i, "w");
    assert_non_null(f);
    fputs(INCIDENTS_HEADER, f);
    fputs("NI1,N1,delay,2,2026-01-01T00:00:00Z,AZ1,0,\n", f);
    assert_int_equal(fclose(f), 0);
    loader_stats stats;
    assert_int_equal(loader_load(fx->st, path_c, path_i, &stats, &err), 0);
    assert_int_equal(stats.customers, 5001);
    assert_int_equal(stats.incidents, 1);
    store_stats ss;
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.customers, 5001);
    assert_int_equal(ss.incidents, 1);
    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(fx->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_customer(r, "C1", &a, &c), 0);
    assert_string_equal(c->name, "Someone Else");
    assert_int_equal(store_get_customer(r, "C2", &a, &c), -ENOENT);
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

static void load_without_incidents(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    write_file(fx->customers, OK_CUSTOMERS);
    loader_stats stats;
    nba_error err;
    assert_int_equal(loader_load(fx->st, fx->customers, NULL, &stats, &err), 0);
    assert_int_equal(stats.customers, 2);
    assert_int_equal(stats.incidents, 0);
    store_stats ss;
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.customers, 2);
    assert_int_equal(ss.incidents, 0);
}

/* Numbers in customer columns come back exactly as strtod reads them, for
 * every shape of decimal; text that only looks numeric is not a number. */
static void numbers_are_exact(void **state)
{
    fixture *fx = *state;
    static const char *const numeric[] = {
        "0",
        "-0",
        "7",
        "0.1",
        "-3.5e2",
        "1E+3",
        "+42",
        ".5",
        "5.",
        "81000.50",
        "123456789012.345",
        "999999999999999",
        "1234567890123456789",
        "0.000000000000000000000001",
        "4.9e-324",
        "1.7976931348623157e308",
    };
    static const char *const not_numeric[] = {
        "",   "FCO", "1,5", " 1", "1 ",    "0x10",  "inf",        "nan",
        "1e", "1e+", "-",   ".",  "1.2.3", "1e999", "1985-03-12",
    };
    const size_t nn = sizeof numeric / sizeof numeric[0];
    const size_t nt = sizeof not_numeric / sizeof not_numeric[0];
    FILE *f = fopen(fx->customers, "w");
    assert_non_null(f);
    fputs("customer_id,name,tier,lifetime_value,predicted_ltv,language,x\n", f);
    for (size_t i = 0; i < nn; i++)
        fprintf(f, "N%zu,n,none,%s,%s,en,%s\n", i, numeric[i], numeric[i], numeric[i]);
    for (size_t i = 0; i < nt; i++)
        fprintf(f, "T%zu,t,none,0,0,en,\"%s\"\n", i, not_numeric[i]);
    assert_int_equal(fclose(f), 0);
    nba_error err = {{0}};
    int rc = loader_load(fx->st, fx->customers, NULL, NULL, &err);
    if (rc)
        fail_msg("load failed: %s", err.msg);

    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    char id[16];
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(fx->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    for (size_t i = 0; i < nn; i++) {
        snprintf(id, sizeof id, "N%zu", i);
        assert_int_equal(store_get_customer(r, id, &a, &c), 0);
        double want = strtod(numeric[i], NULL);
        const Nba__V1__Attribute *x = find_attr(c, "x");
        assert_non_null(x);
        /* == rather than the bits: proto3 does not store -0 apart from 0. */
        if (!x->has_number || x->number != want || c->lifetime_value != want ||
            c->predicted_ltv != want)
            fail_msg("'%s': got %.17g (has_number %d), want %.17g", numeric[i], x->number,
                     x->has_number, want);
    }
    for (size_t i = 0; i < nt; i++) {
        snprintf(id, sizeof id, "T%zu", i);
        assert_int_equal(store_get_customer(r, id, &a, &c), 0);
        const Nba__V1__Attribute *x = find_attr(c, "x");
        assert_non_null(x);
        assert_string_equal(x->text, not_numeric[i]);
        if (x->has_number)
            fail_msg("'%s' was taken for a number", not_numeric[i]);
    }
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

/* Writes n customers and n incidents (incident i belongs to customer
 * (i * 7919) mod n, so neither file is in key order), for loads that span
 * several batches. */
static void write_many(const char *customers, const char *incidents, int n)
{
    FILE *f = fopen(customers, "w");
    assert_non_null(f);
    fputs("customer_id,name,tier,lifetime_value,predicted_ltv,language,home_airport\n", f);
    for (int i = 0; i < n; i++) {
        int id = (int)(((long)i * 7919) % n);
        fprintf(f, "M%06d,\"Name %d, Jr\",gold,%d.25,%d,en,X%d\n", id, id, id, id * 2, id % 7);
    }
    assert_int_equal(fclose(f), 0);
    f = fopen(incidents, "w");
    assert_non_null(f);
    fputs(INCIDENTS_HEADER, f);
    for (int i = 0; i < n; i++)
        fprintf(f, "MI%06d,M%06d,delay,%d,2026-01-01T00:00:00Z,AZ%d,%d,\"note %d\"\n", i,
                (int)(((long)i * 7919) % n), 1 + i % 5, i % 1000, i % 2, i);
    assert_int_equal(fclose(f), 0);
}

/* More rows than one batch holds, in no key order: everything arrives. */
static void large_load_spans_batches(void **state)
{
    fixture *fx = *state;
    const int n = 150000;
    write_many(fx->customers, fx->incidents, n);
    loader_stats stats;
    nba_error err = {{0}};
    int rc = loader_load(fx->st, fx->customers, fx->incidents, &stats, &err);
    if (rc)
        fail_msg("load failed: %s", err.msg);
    assert_int_equal(stats.customers, n);
    assert_int_equal(stats.incidents, n);
    store_stats ss;
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.customers, n);
    assert_int_equal(ss.incidents, n);

    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    Nba__V1__Incident **incs;
    size_t count;
    char id[16], note[32];
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(fx->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    for (int k = 0; k < n; k += 997) {
        snprintf(id, sizeof id, "M%06d", k);
        assert_int_equal(store_get_customer(r, id, &a, &c), 0);
        snprintf(note, sizeof note, "Name %d, Jr", k);
        assert_string_equal(c->name, note);
        assert_true(c->lifetime_value == k + 0.25);
        assert_int_equal(c->n_attributes, 1);
        /* 7919 is prime to n, so each customer has exactly one incident:
         * number i with i * 7919 = k (mod n). */
        assert_int_equal(store_get_incidents(r, id, &a, &incs, &count), 0);
        assert_int_equal(count, 1);
        assert_string_equal(incs[0]->customer_id, id);
        long i = atol(incs[0]->incident_id + 2);
        assert_int_equal((i * 7919) % n, k);
        snprintf(note, sizeof note, "note %ld", i);
        assert_string_equal(incs[0]->note, note);
        arena_reset(&a);
    }
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

/* A store error while a batch is put (here: the database is full) names
 * the file and a line, and still changes nothing. */
static void full_database_changes_nothing(void **state)
{
    fixture *fx = *state;
    store_close(fx->st);
    nba_error err = {{0}};
    assert_int_equal(store_open(fx->db, 0, (size_t)4 << 20, 0, &fx->st, &err), 0);
    load_good(fx);
    write_many(fx->customers, fx->incidents, 100000);
    assert_int_equal(loader_load(fx->st, fx->customers, fx->incidents, NULL, &err), -ENOSPC);
    char want[160];
    snprintf(want, sizeof want, "%s:", fx->customers);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "full"));
    print_message("  %s\n", err.msg);
    verify_good(fx);
}

/* Loads customers from a FIFO fed by a child process, as from
 * `--customers /dev/stdin`: a file that can be read only once. */
static int load_from_pipe(fixture *fx, const char *text, nba_error *err)
{
    char fifo[128];
    snprintf(fifo, sizeof fifo, "%s/pipe.csv", fx->dir);
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = fopen(fifo, "w");
        int ok = f && fputs(text, f) >= 0 && fclose(f) == 0;
        _exit(ok ? 0 : 1);
    }
    int rc = loader_load(fx->st, fifo, NULL, NULL, err);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* The writer may see EPIPE once the loader stops early on an error. */
    if (rc == 0)
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return rc;
}

static void pipe_input(void **state)
{
    fixture *fx = *state;
    nba_error err = {{0}};
    int rc = load_from_pipe(fx, OK_CUSTOMERS, &err);
    if (rc)
        fail_msg("load from a pipe failed: %s", err.msg);
    store_stats ss;
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.customers, 2);

    /* A duplicate is caught and both lines named: a pipe is sorted, and the
     * sort keeps the lines of its rows. */
    rc = load_from_pipe(fx, OK_CUSTOMERS "K3,Cid,gold,1,2,en\nK1,Ann again,gold,1,2,en\n", &err);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err.msg, "pipe.csv:5: duplicate customer_id, first on line 2 (column "
                                    "'customer_id': value 'K1')"));
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.customers, 2);
}

/* The demo's sample data loads, and holds the scenario it is there for. */
static void sample_data_loads(void **state)
{
    fixture *fx = *state;
    const char *src = getenv("NBA_SOURCE_DIR");
    if (!src)
        skip();
    char customers[512], cmd[1024];
    snprintf(customers, sizeof customers, "%s/deploy/sample/customers.csv", src);
    snprintf(cmd, sizeof cmd, "bash '%s/deploy/sample/incidents.sh' > '%s'", src, fx->incidents);
    assert_int_equal(system(cmd), 0);

    loader_stats stats;
    nba_error err = {{0}};
    int rc = loader_load(fx->st, customers, fx->incidents, &stats, &err);
    if (rc)
        fail_msg("sample data: %s", err.msg);
    assert_true(stats.customers >= 24);
    assert_true(stats.incidents >= 10);

    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    Nba__V1__Incident **incs;
    size_t n;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(fx->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);

    assert_int_equal(store_get_customer(r, "C1001", &a, &c), 0);
    assert_string_equal(c->name, "Giulia Rossi");
    assert_string_equal(c->tier, "platinum");
    assert_string_equal(c->language, "it");
    assert_true(c->predicted_ltv >= 25000);
    assert_non_null(find_attr(c, "home_airport"));
    assert_non_null(find_attr(c, "birth_date"));
    assert_int_equal(store_get_incidents(r, "C1001", &a, &incs, &n), 0);
    bool open_ife = false;
    int64_t now = clock_now_ms();
    for (size_t i = 0; i < n; i++) {
        double days = (double)(now - incs[i]->occurred_at_ms) / 86400000.0;
        if (strcmp(incs[i]->kind, "ife_broken") == 0 && !incs[i]->resolved &&
            incs[i]->severity == 3 && strcmp(incs[i]->flight, "AZ611") == 0 && days > 9 &&
            days < 11)
            open_ife = true;
    }
    assert_true(open_ife);

    /* The low-value passenger with no incidents. */
    assert_int_equal(store_get_customer(r, "C1002", &a, &c), 0);
    assert_true(c->predicted_ltv < 25000);
    assert_int_equal(store_get_incidents(r, "C1002", &a, &incs, &n), 0);
    assert_int_equal(n, 0);

    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

/* ---- at scale, skipping bad rows, sorting, upserts ---- */

/* Writes n customers K0000000.. in key order, each with one incident
 * J0000000.. (so both files stream), with the row on line `bad_line` of
 * the customers file (bad_in_incidents: of the incidents file) broken. */
static void write_sorted(const char *customers, const char *incidents, int n, size_t bad_line,
                         bool bad_in_incidents)
{
    FILE *c = fopen(customers, "w"), *i = fopen(incidents, "w");
    assert_non_null(c);
    assert_non_null(i);
    fputs(CUSTOMERS_HEADER, c);
    fputs(INCIDENTS_HEADER, i);
    for (int k = 0; k < n; k++) {
        size_t line = (size_t)k + 2;
        bool bad_c = !bad_in_incidents && line == bad_line;
        bool bad_i = bad_in_incidents && line == bad_line;
        fprintf(c, "K%07d,Name %d,gold,%s,%d,en\n", k, k, bad_c ? "oops" : "12.5", k);
        fprintf(i, "J%07d,K%07d,delay,%d,2026-01-01T00:00:00Z,AZ%d,0,\n", k, k, bad_i ? 7 : 2,
                k % 100);
    }
    assert_int_equal(fclose(c), 0);
    assert_int_equal(fclose(i), 0);
}

/* The test the issue asks for: a broken row deep in a large file is named
 * by its line, and the database serving is exactly as it was. */
static void broken_row_deep_in_a_large_file(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    char c[128], i[128], want[256];
    snprintf(c, sizeof c, "%s/big_customers.csv", fx->dir);
    snprintf(i, sizeof i, "%s/big_incidents.csv", fx->dir);
    nba_error err = {{0}};

    write_sorted(c, i, 200000, 123457, false);
    assert_int_equal(loader_load(fx->st, c, i, NULL, &err), -EINVAL);
    snprintf(want, sizeof want, "%s:123457: lifetime_value is not a decimal number", c);
    if (!strstr(err.msg, want))
        fail_msg("got %s", err.msg);
    verify_good(fx);

    write_sorted(c, i, 200000, 123457, true);
    assert_int_equal(loader_load(fx->st, c, i, NULL, &err), -EINVAL);
    snprintf(want, sizeof want, "%s:123457: severity is not a whole number from 1 to 5", i);
    if (!strstr(err.msg, want))
        fail_msg("got %s", err.msg);
    verify_good(fx);

    /* Fixed, it loads, streamed: neither file needed sorting. */
    write_sorted(c, i, 200000, 0, false);
    loader_options o = {.customers = c, .incidents = i};
    loader_stats stats;
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), 0);
    assert_int_equal(stats.customers, 200000);
    assert_int_equal(stats.incidents, 200000);
    assert_false(stats.sorted_customers);
    assert_false(stats.sorted_incidents);
    assert_int_equal(stats.attempts, 1);
}

typedef struct rejections {
    char lines[16][512];
    size_t n;
} rejections;

static void on_rejected(void *ctx, const char *msg)
{
    rejections *r = ctx;
    if (r->n < 16)
        snprintf(r->lines[r->n], sizeof r->lines[r->n], "%s", msg);
    r->n++;
}

static bool rejected_has(const rejections *r, const char *path, size_t line, const char *text)
{
    char want[256];
    snprintf(want, sizeof want, "%s:%zu: ", path, line);
    for (size_t k = 0; k < r->n && k < 16; k++)
        if (strncmp(r->lines[k], want, strlen(want)) == 0 && strstr(r->lines[k], text))
            return true;
    return false;
}

/* Up to --max-errors bad rows are skipped, each reported once with its
 * file and line, in files in order and out of order alike; one more fails
 * the load and changes nothing. */
static void max_errors_skips_and_reports(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    static const char *const customer_orders[] = {
        /* in key order */
        CUSTOMERS_HEADER "K1,Ann,gold,100,200,en\n"
                         "K2,Bob,none,x,2,de\n"
                         "K3,Cid,none,1,2,fr\n"
                         "K3,Cid again,none,1,2,fr\n"
                         "K4,Dan,none,1,2,it\n",
        /* out of order */
        CUSTOMERS_HEADER "K4,Dan,none,1,2,it\n"
                         "K2,Bob,none,x,2,de\n"
                         "K3,Cid,none,1,2,fr\n"
                         "K3,Cid again,none,1,2,fr\n"
                         "K1,Ann,gold,100,200,en\n",
    };
    static const size_t bad_field_line[] = {3, 3}, duplicate_line[] = {5, 5};
    static const char incidents[] = INCIDENTS_HEADER "J1,K1,delay,2,2026-01-01,AZ1,0,\n"
                                                     "J2,K2,delay,2,2026-01-01,AZ1,0,\n"
                                                     "J3,K3,delay,2,2026-01-01,AZ1,0,\n"
                                                     "J4,K9,delay,2,2026-01-01,AZ1,0,\n"
                                                     "J1,K4,delay,2,2026-01-01,AZ1,0,\n"
                                                     "J6,K4,delay,9,2026-01-01,AZ1,0,\n";
    char bad_c[128], bad_i[128];
    snprintf(bad_c, sizeof bad_c, "%s/bad_customers.csv", fx->dir);
    snprintf(bad_i, sizeof bad_i, "%s/bad_incidents.csv", fx->dir);
    write_file(bad_i, incidents);
    for (size_t v = 0; v < 2; v++) {
        print_message("customers %s\n", v ? "out of order" : "in key order");
        write_file(bad_c, customer_orders[v]);
        rejections rj = {0};
        loader_options o = {.customers = bad_c,
                            .incidents = bad_i,
                            .max_errors = 6,
                            .rejected = on_rejected,
                            .ctx = &rj};
        loader_stats stats;
        nba_error err = {{0}};
        int rc = loader_run(fx->st, &o, &stats, &err);
        for (size_t k = 0; k < rj.n && k < 16; k++)
            print_message("  skipped %s\n", rj.lines[k]);
        if (rc)
            fail_msg("load failed: %s", err.msg);
        assert_int_equal(rj.n, 6);
        assert_true(rejected_has(&rj, bad_c, bad_field_line[v], "lifetime_value"));
        assert_true(
            rejected_has(&rj, bad_c, duplicate_line[v], "duplicate customer_id, first on line 4"));
        /* K2's row was bad, so its incident has no customer. */
        assert_true(rejected_has(&rj, bad_i, 3, "or whose row was rejected"));
        assert_true(rejected_has(&rj, bad_i, 5, "value 'K9'"));
        assert_true(rejected_has(&rj, bad_i, 6, "duplicate incident_id, first on line 2"));
        assert_true(rejected_has(&rj, bad_i, 7, "severity"));
        assert_int_equal(stats.customers, 3);
        assert_int_equal(stats.incidents, 2);
        assert_int_equal(stats.rejected_customers, 2);
        assert_int_equal(stats.rejected_incidents, 4);
        assert_int_equal(stats.sorted_customers, v == 1);
        store_stats ss;
        assert_int_equal(store_get_stats(fx->st, &ss), 0);
        assert_int_equal(ss.customers, 3);
        assert_int_equal(ss.incidents, 2);

        /* One bad row too many: the load fails, naming it, and the
         * database stays as the last load left it. */
        load_good(fx);
        rj.n = 0;
        o.max_errors = 5;
        assert_int_equal(loader_run(fx->st, &o, NULL, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "more than the 5 bad rows allowed"));
        assert_int_equal(rj.n, 5);
        verify_good(fx);
    }
}

/* Files out of key order are sorted (here in runs on disk), the pass
 * starting again once the disorder shows. */
static void unsorted_files_are_sorted_in_runs(void **state)
{
    fixture *fx = *state;
    const int n = 60000;
    write_many(fx->customers, fx->incidents, n);
    loader_options o = {.customers = fx->customers,
                        .incidents = fx->incidents,
                        .sort_memory = 1 << 20,
                        .fresh = true,
                        .commit_bytes = 1 << 20};
    loader_stats stats;
    nba_error err = {{0}};
    int rc = loader_run(fx->st, &o, &stats, &err);
    if (rc)
        fail_msg("load failed: %s", err.msg);
    assert_int_equal(stats.customers, n);
    assert_int_equal(stats.incidents, n);
    assert_true(stats.sorted_customers);
    assert_true(stats.sorted_incidents);
    assert_true(stats.sort_runs > 2);
    assert_true(stats.attempts > 1);
    store_stats ss;
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.customers, n);
    assert_int_equal(ss.incidents, n);
    /* A duplicate far apart in an unsorted file is still caught. */
    FILE *f = fopen(fx->customers, "a");
    assert_non_null(f);
    fputs("M000017,Again,gold,1,2,en,X\n", f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), -EINVAL);
    char want[160];
    snprintf(want, sizeof want, "%s:%d: duplicate customer_id, first on line", fx->customers,
             n + 2);
    if (!strstr(err.msg, want))
        fail_msg("got %s", err.msg);
}

/* Incident ids given twice under different customers, in files in key
 * order whose incident ids are not: found once the file has been read;
 * with max_errors the later row is taken out again. */
static void incident_id_twice_across_customers(void **state)
{
    fixture *fx = *state;
    write_file(fx->customers, OK_CUSTOMERS "K3,Cid,none,1,2,fr\n");
    write_file(fx->incidents, INCIDENTS_HEADER "J5,K1,delay,2,2026-01-01,AZ1,0,\n"
                                               "J3,K2,delay,2,2026-01-01,AZ1,0,\n"
                                               "J4,K3,delay,2,2026-01-01,AZ1,0,\n"
                                               "J5,K3,delay,2,2026-01-01,AZ1,0,\n");
    nba_error err = {{0}};
    assert_int_equal(loader_load(fx->st, fx->customers, fx->incidents, NULL, &err), -EINVAL);
    char want[200];
    snprintf(want, sizeof want,
             "%s:5: duplicate incident_id, first on line 2 (column 'incident_id': value 'J5')",
             fx->incidents);
    if (!strstr(err.msg, want))
        fail_msg("got %s", err.msg);

    rejections rj = {0};
    loader_options o = {.customers = fx->customers,
                        .incidents = fx->incidents,
                        .max_errors = 1,
                        .rejected = on_rejected,
                        .ctx = &rj};
    loader_stats stats;
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), 0);
    assert_int_equal(rj.n, 1);
    assert_int_equal(stats.incidents, 3);
    assert_false(stats.sorted_incidents);
    store_stats ss;
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.incidents, 3);
    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    Nba__V1__Incident **incs;
    size_t n;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(fx->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_customer(r, "K3", &a, &c), 0);
    assert_int_equal(store_get_incidents(r, "K3", &a, &incs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(incs[0]->incident_id, "J4");
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

/* A delta: customers and incidents inserted or replaced, the rest kept,
 * an incident's customer found in the delta or in the database; an
 * incident of a customer in neither fails it and changes nothing. */
static void upsert_inserts_and_replaces(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    char when[32];
    assert_int_equal(store_get_meta(fx->st, "loaded_at", when, sizeof when), 0);
    write_file(fx->customers, CUSTOMERS_HEADER "C9,New One,gold,1,2,fr\n"
                                               "C1,Giulia Rossi-Bianchi,platinum,1,2,it\n");
    write_file(fx->incidents, INCIDENTS_HEADER "I9,C9,delay,2,2026-01-01,AZ1,0,\n"
                                               "I7,C2,delay,4,2026-01-01,AZ1,0,\n"
                                               "I1,C1,ife_broken,3,2026-11-01T08:30:00Z,AZ611,1,\n"
                                               "I8,C77,delay,2,2026-01-01,AZ1,0,\n");
    loader_options o = {
        .customers = fx->customers, .incidents = fx->incidents, .mode = LOADER_UPSERT};
    loader_stats stats;
    nba_error err = {{0}};
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), -EINVAL);
    char want[320];
    snprintf(want, sizeof want,
             "%s:5: incident of a customer that is not in the customers file or the database "
             "(column 'customer_id': value 'C77')",
             fx->incidents);
    if (!strstr(err.msg, want))
        fail_msg("got %s", err.msg);
    verify_good(fx);

    /* Without the stray incident. */
    write_file(fx->incidents,
               INCIDENTS_HEADER "I9,C9,delay,2,2026-01-01,AZ1,0,\n"
                                "I7,C2,delay,4,2026-01-01,AZ1,0,\n"
                                "I1,C1,ife_broken,3,2026-11-01T08:30:00Z,AZ611,1,\n");
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), 0);
    assert_int_equal(stats.customers, 2);
    assert_int_equal(stats.incidents, 3);
    store_stats ss;
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.customers, 5);
    assert_int_equal(ss.incidents, 5);
    char again[32];
    assert_int_equal(store_get_meta(fx->st, "loaded_at", again, sizeof again), 0);
    assert_string_equal(again, when);
    assert_int_equal(store_get_meta(fx->st, "updated_at", again, sizeof again), 0);

    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    Nba__V1__Incident **incs;
    size_t n;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(fx->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_customer(r, "C1", &a, &c), 0);
    assert_string_equal(c->name, "Giulia Rossi-Bianchi");
    assert_int_equal(c->n_attributes, 0);
    assert_int_equal(store_get_incidents(r, "C1", &a, &incs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(incs[0]->incident_id, "I0");
    assert_true(incs[1]->resolved);
    assert_int_equal(store_get_customer(r, "C3", &a, &c), 0);
    assert_string_equal(c->name, "Low, Tom \"Tommy\"");
    assert_int_equal(store_get_incidents(r, "C2", &a, &incs, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(store_get_customer(r, "C9", &a, &c), 0);
    assert_int_equal(store_get_incidents(r, "C9", &a, &incs, &n), 0);
    assert_int_equal(n, 1);
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

/* An upsert that does not fit in the map grows it and goes in whole. */
static void upsert_grows_the_map(void **state)
{
    fixture *fx = *state;
    store_close(fx->st);
    nba_error err = {{0}};
    assert_int_equal(store_open(fx->db, 0, (size_t)1 << 20, 0, &fx->st, &err), 0);
    load_good(fx);
    write_many(fx->customers, fx->incidents, 20000);
    loader_options o = {
        .customers = fx->customers, .incidents = fx->incidents, .mode = LOADER_UPSERT};
    loader_stats stats;
    int rc = loader_run(fx->st, &o, &stats, &err);
    if (rc)
        fail_msg("upsert failed: %s", err.msg);
    assert_true(stats.attempts > 1);
    assert_true(store_map_size(fx->st) > (size_t)1 << 20);
    store_stats ss;
    assert_int_equal(store_get_stats(fx->st, &ss), 0);
    assert_int_equal(ss.customers, 20004);
    assert_int_equal(ss.incidents, 20003);
}

typedef struct progress_log {
    size_t calls;
    size_t stop_at;
    double last_fraction;
    bool went_back;
} progress_log;

static int on_progress(void *ctx, const loader_progress *p)
{
    progress_log *l = ctx;
    l->calls++;
    if (p->fraction >= 0 && p->fraction + 1e-9 < l->last_fraction && p->attempt == 0)
        l->went_back = true;
    if (p->fraction >= 0)
        l->last_fraction = p->fraction;
    return l->stop_at && l->calls >= l->stop_at;
}

/* Progress comes as the load goes, its fraction only growing; a progress
 * callback that says stop stops the load, which changes nothing. */
static void progress_and_cancel(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    char c[128], i[128];
    snprintf(c, sizeof c, "%s/big_customers.csv", fx->dir);
    snprintf(i, sizeof i, "%s/big_incidents.csv", fx->dir);
    write_sorted(c, i, 200000, 0, false);
    progress_log log = {0};
    loader_options o = {.customers = c, .incidents = i, .progress = on_progress, .ctx = &log};
    nba_error err = {{0}};
    assert_int_equal(loader_run(fx->st, &o, NULL, &err), 0);
    assert_true(log.calls >= 5);
    assert_false(log.went_back);
    assert_true(log.last_fraction > 0.9);

    load_good(fx);
    progress_log stop = {.stop_at = 3};
    o.ctx = &stop;
    assert_int_equal(loader_run(fx->st, &o, NULL, &err), -ECANCELED);
    verify_good(fx);
}

/* What the loader writes is exactly what protobuf-c packs for the same
 * message: unpacked and packed again, every stored value comes out the
 * same, byte for byte. */
static void records_are_packed_as_protobuf_c_packs_them(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, fx->db, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "records", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    size_t records = 0;
    uint8_t again[4096];
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t len;
        if (memchr(k.mv_data, 0, k.mv_size)) {
            Nba__V1__Incident *inc = nba__v1__incident__unpack(NULL, v.mv_size, v.mv_data);
            assert_non_null(inc);
            len = nba__v1__incident__pack(inc, again);
            nba__v1__incident__free_unpacked(inc, NULL);
        } else {
            Nba__V1__Customer *c = nba__v1__customer__unpack(NULL, v.mv_size, v.mv_data);
            assert_non_null(c);
            len = nba__v1__customer__pack(c, again);
            nba__v1__customer__free_unpacked(c, NULL);
        }
        assert_int_equal(len, v.mv_size);
        assert_memory_equal(again, v.mv_data, len);
        records++;
    }
    assert_int_equal(records, 7);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

/* ---- lookup keys ---- */

#define KEYED_HEADER                                                                               \
    "customer_id,name,tier,lifetime_value,predicted_ltv,language,booking_ref,loyalty_card\n"

/* The customer lookup key name = value names, or NULL when none does. */
static const char *key_owner(fixture *fx, const char *name, const char *value, arena *a)
{
    store_reader *r;
    char *id = NULL;
    assert_int_equal(store_reader_new(fx->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    int rc = store_find_key(r, name, value, a, &id);
    store_reader_end(r);
    store_reader_free(r);
    if (rc == -ENOENT)
        return NULL;
    assert_int_equal(rc, 0);
    return id;
}

static void assert_owner(fixture *fx, const char *name, const char *value, const char *want)
{
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    const char *got = key_owner(fx, name, value, &a);
    if (!want && got)
        fail_msg("%s=%s names %s, expected nobody", name, value, got);
    if (want && (!got || strcmp(got, want) != 0))
        fail_msg("%s=%s names %s, expected %s", name, value, got ? got : "nobody", want);
    arena_destroy(&a);
}

/* Entries in the keys table, read with LMDB itself. */
static size_t keys_in_table(fixture *fx)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat ms;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, fx->db, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "keys", 0, &dbi), 0);
    assert_int_equal(mdb_stat(txn, dbi, &ms), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return ms.ms_entries;
}

static void load_keyed(fixture *fx, const char *customers, const char *incidents,
                       loader_stats *stats)
{
    write_file(fx->customers, customers);
    write_file(fx->incidents, incidents ? incidents : INCIDENTS_HEADER);
    loader_options o = {
        .customers = fx->customers, .incidents = fx->incidents, .keys = "booking_ref,loyalty_card"};
    nba_error err = {{0}};
    loader_stats s;
    int rc = loader_run(fx->st, &o, stats ? stats : &s, &err);
    if (rc)
        fail_msg("load failed: %s", err.msg);
}

/* Key columns go into the keys table (several keys to a field, spaces
 * around them dropped, empty ones ignored) and stay attributes; the names
 * are in meta; facts_load() resolves an event's key to its customer in
 * the snapshot it reads them from. */
static void lookup_keys_are_loaded_and_resolved(void **state)
{
    fixture *fx = *state;
    loader_stats stats;
    load_keyed(fx,
               KEYED_HEADER "K1,Ann,gold,100,200,en,X7K2QP; B3RT9Z ,LC-1\n"
                            "K2,Bob,none,1,2,de,,LC-2\n"
                            "K3,Cid,none,1,2,fr,;Q1W2E3;;,\n",
               INCIDENTS_HEADER "J1,K1,delay,2,2026-01-01T00:00:00Z,AZ1,0,\n"
                                "J2,K1,delay,3,2026-01-02T00:00:00Z,AZ1,0,\n",
               &stats);
    assert_int_equal(stats.customers, 3);
    assert_int_equal(stats.keys, 5);
    assert_int_equal(keys_in_table(fx), 5);
    assert_owner(fx, "booking_ref", "X7K2QP", "K1");
    assert_owner(fx, "booking_ref", "B3RT9Z", "K1");
    assert_owner(fx, "loyalty_card", "LC-1", "K1");
    assert_owner(fx, "loyalty_card", "LC-2", "K2");
    assert_owner(fx, "booking_ref", "Q1W2E3", "K3");
    assert_owner(fx, "booking_ref", " B3RT9Z ", NULL);
    assert_owner(fx, "booking_ref", "LC-1", NULL); /* another column's key */
    assert_owner(fx, "pnr", "X7K2QP", NULL);       /* a name never loaded */
    assert_owner(fx, "booking_ref", "", NULL);
    char names[128];
    assert_int_equal(store_get_meta(fx->st, "keys", names, sizeof names), 0);
    assert_string_equal(names, "booking_ref,loyalty_card");

    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(fx->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_customer(r, "K1", &a, &c), 0);
    const Nba__V1__Attribute *ref = find_attr(c, "booking_ref");
    assert_non_null(ref);
    assert_string_equal(ref->text, "X7K2QP; B3RT9Z ");
    store_reader_end(r);

    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    ev.key_name = "booking_ref";
    ev.key_value = "B3RT9Z";
    ev.touchpoint = "checkin";
    facts f;
    assert_int_equal(facts_load(r, &ev, &a, &f), 0);
    assert_ptr_not_equal(f.event, &ev);
    assert_string_equal(f.event->customer_id, "K1");
    assert_string_equal(f.event->touchpoint, "checkin");
    assert_string_equal(ev.customer_id, ""); /* the request itself is left as it came */
    assert_non_null(f.customer);
    assert_string_equal(f.customer->customer_id, "K1");
    assert_int_equal(f.n_incidents, 2);

    ev.key_value = "NOSUCH";
    assert_int_equal(facts_load(r, &ev, &a, &f), 0);
    assert_ptr_equal(f.event, &ev);
    assert_string_equal(f.event->customer_id, "");
    assert_null(f.customer);
    ev.key_name = "pnr";
    ev.key_value = "X7K2QP";
    assert_int_equal(facts_load(r, &ev, &a, &f), 0);
    assert_null(f.customer);

    /* A customer_id wins over a key. */
    ev.customer_id = "K2";
    ev.key_name = "booking_ref";
    assert_int_equal(facts_load(r, &ev, &a, &f), 0);
    assert_ptr_equal(f.event, &ev);
    assert_non_null(f.customer);
    assert_string_equal(f.customer->customer_id, "K2");
    store_reader_free(r);
    arena_destroy(&a);
}

/* At scale, out of order: the keys are sorted in runs on disk and appended
 * across the commits of a fresh load. */
static void lookup_keys_at_scale(void **state)
{
    fixture *fx = *state;
    const int n = 60000;
    FILE *f = fopen(fx->customers, "w");
    assert_non_null(f);
    fputs(KEYED_HEADER, f);
    for (int i = 0; i < n; i++) {
        int id = (int)(((long)i * 7919) % n);
        fprintf(f, "M%06d,Name %d,gold,1,2,en,B%06d;C%06d,L%d\n", id, id, n - id, id, id);
    }
    assert_int_equal(fclose(f), 0);
    write_file(fx->incidents, INCIDENTS_HEADER);
    loader_options o = {.customers = fx->customers,
                        .incidents = fx->incidents,
                        .keys = "loyalty_card,booking_ref",
                        .sort_memory = 1 << 20,
                        .fresh = true,
                        .commit_bytes = 1 << 20};
    loader_stats stats;
    nba_error err = {{0}};
    int rc = loader_run(fx->st, &o, &stats, &err);
    if (rc)
        fail_msg("load failed: %s", err.msg);
    assert_int_equal(stats.customers, n);
    assert_int_equal(stats.keys, 3 * n);
    assert_true(stats.sort_runs > 2);
    assert_int_equal(keys_in_table(fx), 3 * n);
    char id[16], b[16], c[16], l[16];
    for (int i = 0; i < n; i += 997) {
        snprintf(id, sizeof id, "M%06d", i);
        snprintf(b, sizeof b, "B%06d", n - i);
        snprintf(c, sizeof c, "C%06d", i);
        snprintf(l, sizeof l, "L%d", i);
        assert_owner(fx, "booking_ref", b, id);
        assert_owner(fx, "booking_ref", c, id);
        assert_owner(fx, "loyalty_card", l, id);
    }
}

/* Two customers with one key: the later row is bad, named with the line
 * of the first (the lowest line, whatever the file's order); the database
 * stays as it was. With max_errors the row is skipped with its incidents,
 * and the other customer keeps the key. */
static void duplicate_key_names_both_lines(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    static const char *const files[] = {
        KEYED_HEADER "K1,Ann,gold,1,2,en,X1,LC-1\n"
                     "K2,Bob,gold,1,2,en,X2,LC-2\n"
                     "K3,Cid,gold,1,2,en,X3;X1,LC-3\n",
        /* out of key order: K3 (line 2) is put after K1 (line 4) */
        KEYED_HEADER "K3,Cid,gold,1,2,en,X3;X1,LC-3\n"
                     "K2,Bob,gold,1,2,en,X2,LC-2\n"
                     "K1,Ann,gold,1,2,en,X1,LC-1\n",
    };
    static const size_t bad_line[] = {4, 4}, first_line[] = {2, 2}, keys[] = {4, 5};
    static const char *const bad_id[] = {"K3", "K1"}, *const good_id[] = {"K1", "K3"};
    static const char incidents[] = INCIDENTS_HEADER "J1,K1,delay,2,2026-01-01,AZ1,0,\n"
                                                     "J3,K3,delay,2,2026-01-01,AZ1,0,\n";
    for (size_t v = 0; v < 2; v++) {
        write_file(fx->customers, files[v]);
        write_file(fx->incidents, incidents);
        loader_options o = {.customers = fx->customers,
                            .incidents = fx->incidents,
                            .keys = "booking_ref,loyalty_card"};
        nba_error err = {{0}};
        assert_int_equal(loader_run(fx->st, &o, NULL, &err), -EINVAL);
        char want[256];
        snprintf(want, sizeof want,
                 "%s:%zu: duplicate booking_ref, first on line %zu (column 'booking_ref': value "
                 "'X1')",
                 fx->customers, bad_line[v], first_line[v]);
        if (!strstr(err.msg, want))
            fail_msg("got %s", err.msg);
        verify_good(fx);
        assert_int_equal(keys_in_table(fx), 0);

        rejections rj = {0};
        o.max_errors = 2;
        o.rejected = on_rejected;
        o.ctx = &rj;
        loader_stats stats;
        int rc = loader_run(fx->st, &o, &stats, &err);
        if (rc)
            fail_msg("load failed: %s", err.msg);
        assert_int_equal(rj.n, 2);
        assert_true(rejected_has(&rj, fx->customers, bad_line[v], "duplicate booking_ref"));
        assert_true(rejected_has(&rj, fx->incidents, strcmp(bad_id[v], "K1") ? 3 : 2,
                                 "or whose row was rejected"));
        assert_int_equal(stats.customers, 2);
        assert_int_equal(stats.rejected_customers, 1);
        assert_int_equal(stats.rejected_incidents, 1);
        assert_int_equal(stats.keys, keys[v]);
        assert_int_equal(keys_in_table(fx), keys[v]);
        assert_owner(fx, "booking_ref", "X1", good_id[v]);
        assert_owner(fx, "booking_ref", "X3", strcmp(bad_id[v], "K3") ? "K3" : NULL);
        assert_owner(fx, "loyalty_card", "LC-2", "K2");
        store_stats ss;
        assert_int_equal(store_get_stats(fx->st, &ss), 0);
        assert_int_equal(ss.customers, 2);

        /* One bad row too many. */
        load_good(fx);
        write_file(fx->customers, files[v]);
        write_file(fx->incidents, incidents);
        o.max_errors = 1;
        rj.n = 0;
        assert_int_equal(loader_run(fx->st, &o, NULL, &err), -EINVAL);
        if (!strstr(err.msg, "more than the 1 bad rows allowed"))
            fail_msg("got %s", err.msg);
        verify_good(fx);
    }
}

/* An upsert keeps the keys of the full load right: a customer's old keys
 * go, its new ones come, a key may move to another customer of the delta
 * (sorting before or after it); one a customer outside the delta holds is
 * a bad row. */
static void upsert_moves_a_key(void **state)
{
    fixture *fx = *state;
    load_keyed(fx,
               KEYED_HEADER "K1,Ann,gold,1,2,en,X1;X9,LC-1\n"
                            "K2,Bob,gold,1,2,en,X2,LC-2\n"
                            "K3,Cid,gold,1,2,en,X3,LC-3\n",
               NULL, NULL);
    write_file(fx->customers, KEYED_HEADER "K0,Dee,gold,1,2,en,X1,LC-0\n"
                                           "K1,Ann,gold,1,2,en,X9,LC-1\n"
                                           "K2,Bob,gold,1,2,en,X22,LC-2\n"
                                           "K4,Eve,gold,1,2,en,,\n");
    write_file(fx->incidents, INCIDENTS_HEADER);
    /* No --keys: those the database was loaded with. */
    loader_options o = {
        .customers = fx->customers, .incidents = fx->incidents, .mode = LOADER_UPSERT};
    loader_stats stats;
    nba_error err = {{0}};
    int rc = loader_run(fx->st, &o, &stats, &err);
    if (rc)
        fail_msg("upsert failed: %s", err.msg);
    assert_int_equal(stats.customers, 4);
    assert_owner(fx, "booking_ref", "X1", "K0");
    assert_owner(fx, "booking_ref", "X9", "K1");
    assert_owner(fx, "booking_ref", "X2", NULL);
    assert_owner(fx, "booking_ref", "X22", "K2");
    assert_owner(fx, "booking_ref", "X3", "K3");
    assert_owner(fx, "loyalty_card", "LC-0", "K0");
    assert_owner(fx, "loyalty_card", "LC-1", "K1");
    assert_int_equal(keys_in_table(fx), 8);

    /* The key back to its first customer, the other way round. */
    write_file(fx->customers, KEYED_HEADER "K0,Dee,gold,1,2,en,,LC-0\n"
                                           "K1,Ann,gold,1,2,en,X1;X9,LC-1\n");
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), 0);
    assert_owner(fx, "booking_ref", "X1", "K1");
    assert_owner(fx, "loyalty_card", "LC-0", "K0");
    assert_int_equal(keys_in_table(fx), 8);

    /* A key a customer outside the delta holds. */
    write_file(fx->customers, KEYED_HEADER "K4,Eve,gold,1,2,en,X3,LC-4\n");
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), -EINVAL);
    char want[256];
    snprintf(want, sizeof want,
             "%s:2: duplicate booking_ref, held by customer_id 'K3' in the database (column "
             "'booking_ref': value 'X3')",
             fx->customers);
    if (!strstr(err.msg, want))
        fail_msg("got %s", err.msg);
    assert_owner(fx, "booking_ref", "X3", "K3");
    assert_owner(fx, "loyalty_card", "LC-4", NULL);
    /* Skipped, the rest of the delta goes in. */
    write_file(fx->customers, KEYED_HEADER "K4,Eve,gold,1,2,en,X3,LC-4\n"
                                           "K5,Fay,gold,1,2,en,X5,LC-5\n");
    rejections rj = {0};
    o.max_errors = 1;
    o.rejected = on_rejected;
    o.ctx = &rj;
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), 0);
    assert_int_equal(rj.n, 1);
    assert_int_equal(stats.customers, 1);
    assert_owner(fx, "booking_ref", "X5", "K5");
    assert_owner(fx, "loyalty_card", "LC-4", NULL);
    o.max_errors = 0;
    o.rejected = NULL;

    /* The same names in another order are the same keys; others are not. */
    write_file(fx->customers, KEYED_HEADER "K2,Bob,gold,1,2,en,X2,LC-2\n");
    o.keys = "loyalty_card,booking_ref";
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), 0);
    assert_owner(fx, "booking_ref", "X2", "K2");
    o.keys = "booking_ref";
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "loaded with lookup keys 'booking_ref,loyalty_card'"));
    /* A delta without a key column would drop the keys of its customers. */
    o.keys = NULL;
    write_file(fx->customers, CUSTOMERS_HEADER "K2,Bob,gold,1,2,en\n");
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), -EINVAL);
    snprintf(want, sizeof want, "%s:1: the header has no column 'booking_ref'", fx->customers);
    if (!strstr(err.msg, want))
        fail_msg("got %s", err.msg);
    assert_owner(fx, "booking_ref", "X2", "K2");

    /* A database loaded without keys takes none from an upsert. */
    load_good(fx);
    write_file(fx->customers, KEYED_HEADER "K2,Bob,gold,1,2,en,X2,LC-2\n");
    o.keys = "booking_ref";
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "loaded without lookup keys"));
    o.keys = NULL;
    assert_int_equal(loader_run(fx->st, &o, &stats, &err), 0);
    assert_int_equal(stats.keys, 0);
    assert_int_equal(keys_in_table(fx), 0);
}

/* A load without keys is what it always was, and one after a keyed load
 * leaves no keys and no key names behind; wrong key columns and keys too
 * long are reported. */
static void keyless_loads_and_bad_keys(void **state)
{
    fixture *fx = *state;
    load_good(fx);
    char names[128];
    assert_int_equal(store_get_meta(fx->st, "keys", names, sizeof names), -ENOENT);
    assert_int_equal(keys_in_table(fx), 0);
    load_keyed(fx, KEYED_HEADER "K1,Ann,gold,1,2,en,X1,LC-1\n", NULL, NULL);
    assert_int_equal(keys_in_table(fx), 2);
    load_good(fx);
    verify_good(fx);
    assert_int_equal(store_get_meta(fx->st, "keys", names, sizeof names), -ENOENT);
    assert_int_equal(keys_in_table(fx), 0);
    assert_owner(fx, "booking_ref", "X1", NULL);

    static const struct {
        const char *keys, *customers, *text;
        size_t line; /* 0: a message without a file */
    } cases[] = {
        {"pnr", KEYED_HEADER "K1,Ann,gold,1,2,en,X1,LC-1\n", "the header has no column 'pnr'", 1},
        {"tier", KEYED_HEADER "K1,Ann,gold,1,2,en,X1,LC-1\n", "'tier' is a required column", 0},
        {"booking_ref,,loyalty_card", KEYED_HEADER "K1,Ann,gold,1,2,en,X1,LC-1\n",
         "an empty column name", 0},
        {"booking_ref,booking_ref", KEYED_HEADER "K1,Ann,gold,1,2,en,X1,LC-1\n", "given twice", 0},
        {"booking_ref",
         KEYED_HEADER "K1,Ann,gold,1,2,en,X1,LC-1\nK2,Bob,gold,1,2,en,"
                      "X2;XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
                      "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
                      "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
                      "XXXXXXXXXXXXXXXXXXXXXXXXXX,LC-2\n",
         "a booking_ref longer than 200 bytes (column 'booking_ref'", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(fx->customers, cases[i].customers);
        loader_options o = {
            .customers = fx->customers, .incidents = fx->incidents, .keys = cases[i].keys};
        nba_error err = {{0}};
        assert_int_equal(loader_run(fx->st, &o, NULL, &err), -EINVAL);
        char want[160];
        snprintf(want, sizeof want, "%s:%zu: ", fx->customers, cases[i].line);
        if (!strstr(err.msg, cases[i].text) || (cases[i].line && !strstr(err.msg, want)))
            fail_msg("case %zu: got %s", i, err.msg);
        verify_good(fx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(good_load_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_rows_are_named_and_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(header_column_without_a_name, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_load_leaves_old_data, setup, teardown),
        cmocka_unit_test_setup_teardown(load_without_incidents, setup, teardown),
        cmocka_unit_test_setup_teardown(numbers_are_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(large_load_spans_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(full_database_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(pipe_input, setup, teardown),
        cmocka_unit_test_setup_teardown(sample_data_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(broken_row_deep_in_a_large_file, setup, teardown),
        cmocka_unit_test_setup_teardown(max_errors_skips_and_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(unsorted_files_are_sorted_in_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(incident_id_twice_across_customers, setup, teardown),
        cmocka_unit_test_setup_teardown(upsert_inserts_and_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(upsert_grows_the_map, setup, teardown),
        cmocka_unit_test_setup_teardown(progress_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(records_are_packed_as_protobuf_c_packs_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lookup_keys_are_loaded_and_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(lookup_keys_at_scale, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_key_names_both_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(upsert_moves_a_key, setup, teardown),
        cmocka_unit_test_setup_teardown(keyless_loads_and_bad_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
