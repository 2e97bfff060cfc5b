/* fuzz_csv - the warehouse extracts: the CSV reader and the loader.
 *
 * The whole input is read as one CSV file with csv_open()/csv_next() to the
 * end. Then it is split at its first 0xFF byte (never part of UTF-8 text, so
 * the split marker cannot be mistaken for data) into a customers file and an
 * incidents file (none when there is no 0xFF), which loader_load() loads
 * into a scratch store created once.
 *
 * Checked: every field the reader returns is a C string of the length it
 * reports; lines never go backwards; after the end the reader keeps saying
 * so, after a record that is not UTF-8 it reads on, after any other error
 * it keeps failing; a load that succeeds leaves exactly the counted records
 * in the store, and a load that fails leaves the store as it was, with a
 * message. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "fuzz_util.h"
#include "loader.h"
#include "store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char db_dir[256];
static store *db;

static void cleanup(void)
{
    store_close(db);
    if (db_dir[0])
        fuzz_rmdir(db_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    nba_error err;
    if (fuzz_mkdtemp(db_dir, sizeof db_dir, "fuzz_csv") != 0)
        fuzz_fail("cannot create a scratch directory");
    atexit(cleanup);
    if (store_open(db_dir, STORE_CREATE, (size_t)64 << 20, 0, &db, &err) != 0)
        fuzz_fail("%s", err.msg);
    return 0;
}

/* csv.h: a record that is not UTF-8 (a NUL byte is not text either) was
 * read to its end, so the reader goes on with the next one; after any other
 * error it no longer knows where records start and stops for good. */
static bool reads_on_after(const char *msg)
{
    return strstr(msg, "invalid UTF-8") != NULL || strstr(msg, "NUL byte") != NULL;
}

static void read_csv(const uint8_t *data, size_t size)
{
    fuzz_file f;
    if (fuzz_file_open(&f, "fuzz.csv", data, size) != 0)
        fuzz_fail("cannot make an in-memory file");
    csv_reader *r;
    nba_error err;
    int rc = csv_open(f.path, &r, &err);
    FUZZ_CHECK(rc == 0, "csv_open: %s", err.msg);

    /* Each record ends at a line break or at the end: a reader that goes
     * on after errors still meets at most this many. */
    size_t max_records = 1;
    for (size_t i = 0; i < size; i++)
        max_records += data[i] == '\n' || data[i] == '\r';
    csv_record rec;
    size_t last_line = 0, skipped = 0;
    for (;;) {
        rc = csv_next(r, &rec, &err);
        if (rc == 1) {
            FUZZ_CHECK(rec.count >= 1, "a record without fields");
            for (size_t i = 0; i < rec.count; i++)
                FUZZ_CHECK(strlen(rec.fields[i]) == rec.lengths[i],
                           "field %zu: %zu bytes reported, %zu in the string", i, rec.lengths[i],
                           strlen(rec.fields[i]));
            FUZZ_CHECK(csv_line(r) > last_line, "record on line %zu after one on line %zu",
                       csv_line(r), last_line);
            last_line = csv_line(r);
            continue;
        }
        if (rc == 0) {
            FUZZ_CHECK(csv_next(r, &rec, &err) == 0, "a record after the end");
            break;
        }
        FUZZ_CHECK(rc == -EINVAL, "csv_next: %d", rc);
        FUZZ_CHECK(strncmp(err.msg, f.path, strlen(f.path)) == 0, "an error without the file: %s",
                   err.msg);
        if (!reads_on_after(err.msg)) {
            FUZZ_CHECK(csv_next(r, &rec, &err) < 0, "reading went on after an error");
            break;
        }
        FUZZ_CHECK(++skipped <= max_records, "%zu records skipped of at most %zu", skipped,
                   max_records);
    }
    csv_close(r);
    fuzz_file_close(&f);
}

static void load(const uint8_t *data, size_t size)
{
    const uint8_t *mark = memchr(data, 0xFF, size);
    size_t customers_size = mark ? (size_t)(mark - data) : size;
    fuzz_file customers, incidents = {.fd = -1};
    if (fuzz_file_open(&customers, "customers.csv", data, customers_size) != 0)
        fuzz_fail("cannot make an in-memory file");
    if (mark && fuzz_file_open(&incidents, "incidents.csv", mark + 1, size - customers_size - 1))
        fuzz_fail("cannot make an in-memory file");

    store_stats before, after;
    FUZZ_CHECK(store_get_stats(db, &before) == 0, "cannot count the store");
    loader_stats stats = {0};
    nba_error err;
    err.msg[0] = '\0';
    int rc = loader_load(db, customers.path, mark ? incidents.path : NULL, &stats, &err);
    FUZZ_CHECK(store_get_stats(db, &after) == 0, "cannot count the store");
    if (rc == 0) {
        FUZZ_CHECK(after.customers == stats.customers && after.incidents == stats.incidents,
                   "loaded %zu customers and %zu incidents, the store holds %zu and %zu",
                   stats.customers, stats.incidents, after.customers, after.incidents);
    } else {
        FUZZ_CHECK(rc < 0 && err.msg[0], "a failed load (rc %d) without a message", rc);
        FUZZ_CHECK(rc != -ENOSPC && rc != -EIO && rc != -ENOMEM, "load failed: %s", err.msg);
        FUZZ_CHECK(after.customers == before.customers && after.incidents == before.incidents,
                   "a failed load changed the store: %s", err.msg);
    }
    fuzz_file_close(&customers);
    fuzz_file_close(&incidents);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_csv(data, size);
    load(data, size);
    return 0;
}
