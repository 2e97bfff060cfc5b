/* nbaredisload - nbad's warehouse extracts as Redis commands, for the Redis +
 * Lua peer that nbad is compared with (compare.sh).
 *
 *   nbaredisload --customers FILE [--incidents FILE] | redis-cli -p PORT --pipe
 *
 * Reads the same CSV files as `nbactl load` (with the same CSV reader) and
 * writes RESP commands to stdout, in file order, so the same files always
 * give the same bytes:
 *
 *   HSET cust:<customer_id> <column> <value> ...   every column but customer_id
 *   ZADD inc:<customer_id> <occurred_at ms>
 * "<date>|<severity>|<resolved>|<kind>|<flight>|<incident_id>"
 *
 * An incident is one sorted-set member scored by its time, so checkin.lua
 * reads the recent ones, newest first, with one ZREVRANGEBYSCORE. The date
 * is the UTC day of occurred_at (2026-11-01), as nbad's messages print it.
 * The note column is not loaded: no rule reads it.
 *
 * Exit codes: 0 written, 64 usage, 65 a bad row (file:line: what is wrong),
 * 66 a missing file, 74 cannot write.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "csv.h"
#include "error.h"
#include "resp.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_USAGE = 64,
    EXIT_DATAERR = 65,
    EXIT_NOINPUT = 66,
    EXIT_IOERR = 74,
};

#define MAX_COLUMNS 64
#define MAX_COMMAND (1u << 20)

typedef struct writer {
    uint8_t *buf; /* one command */
    size_t commands;
} writer;

/* Writes one command to stdout. Returns 0, -E2BIG (a row beyond 1 MiB) or
 * -EIO. */
static int emit(writer *wr, size_t argc, const char *const *argv, const size_t *lens)
{
    size_t n = resp_command(wr->buf, MAX_COMMAND, argc, argv, lens);
    if (n == 0)
        return -E2BIG;
    if (fwrite(wr->buf, 1, n, stdout) != n)
        return -EIO;
    wr->commands++;
    return 0;
}

/* Opens a CSV file and reads its header into names (copied). */
static int open_with_header(const char *path, csv_reader **r, char **names, size_t *count,
                            nba_error *err)
{
    int rc = csv_open(path, r, err);
    if (rc)
        return rc;
    csv_record rec;
    rc = csv_next(*r, &rec, err);
    if (rc <= 0) {
        csv_close(*r);
        *r = NULL;
        return rc < 0 ? rc : nba_error_set(err, -EINVAL, "%s: no header row", path);
    }
    if (rec.count > MAX_COLUMNS) {
        csv_close(*r);
        *r = NULL;
        return nba_error_set(err, -EINVAL, "%s:1: more than %d columns", path, MAX_COLUMNS);
    }
    for (size_t i = 0; i < rec.count; i++)
        names[i] = strdup(rec.fields[i]);
    *count = rec.count;
    return 0;
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
}

static int find(char *const *names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

static int load_customers(const char *path, writer *wr, nba_error *err)
{
    csv_reader *r = NULL;
    char *names[MAX_COLUMNS];
    size_t count = 0;
    int rc = open_with_header(path, &r, names, &count, err);
    if (rc)
        return rc;
    int id_col = find(names, count, "customer_id");
    if (id_col < 0) {
        rc = nba_error_set(err, -EINVAL, "%s:1: no customer_id column", path);
        goto out;
    }
    csv_record rec;
    while ((rc = csv_next(r, &rec, err)) == 1) {
        if (rec.count != count) {
            rc = nba_error_set(err, -EINVAL, "%s:%zu: %zu fields, the header has %zu", path,
                               csv_line(r), rec.count, count);
            goto out;
        }
        char key[256];
        int klen = snprintf(key, sizeof key, "cust:%s", rec.fields[id_col]);
        if (rec.lengths[id_col] == 0 || klen >= (int)sizeof key) {
            rc = nba_error_set(err, -EINVAL, "%s:%zu: customer_id is empty or too long", path,
                               csv_line(r));
            goto out;
        }
        const char *argv[2 + 2 * MAX_COLUMNS];
        size_t lens[2 + 2 * MAX_COLUMNS], argc = 0;
        argv[argc] = "HSET";
        lens[argc++] = 4;
        argv[argc] = key;
        lens[argc++] = (size_t)klen;
        for (size_t i = 0; i < count; i++) {
            if ((int)i == id_col)
                continue;
            argv[argc] = names[i];
            lens[argc++] = strlen(names[i]);
            argv[argc] = rec.fields[i];
            lens[argc++] = rec.lengths[i];
        }
        rc = emit(wr, argc, argv, lens);
        if (rc) {
            nba_error_set(err, rc, "%s:%zu: %s", path, csv_line(r),
                          rc == -EIO ? "cannot write to stdout" : "the row is too long");
            goto out;
        }
    }
out:
    free_names(names, count);
    csv_close(r);
    return rc < 0 ? rc : 0;
}

static bool has_bar(const char *s)
{
    return strchr(s, '|') != NULL;
}

static int load_incidents(const char *path, writer *wr, nba_error *err)
{
    static const char *const required[] = {"incident_id", "customer_id", "kind",    "severity",
                                           "occurred_at", "flight",      "resolved"};
    enum { ID, CUSTOMER, KIND, SEVERITY, OCCURRED, FLIGHT, RESOLVED, N_REQUIRED };
    csv_reader *r = NULL;
    char *names[MAX_COLUMNS];
    size_t count = 0;
    int rc = open_with_header(path, &r, names, &count, err);
    if (rc)
        return rc;
    int col[N_REQUIRED];
    for (int i = 0; i < N_REQUIRED; i++)
        if ((col[i] = find(names, count, required[i])) < 0) {
            rc = nba_error_set(err, -EINVAL, "%s:1: no %s column", path, required[i]);
            goto out;
        }
    csv_record rec;
    while ((rc = csv_next(r, &rec, err)) == 1) {
        size_t line = csv_line(r);
        if (rec.count != count) {
            rc = nba_error_set(err, -EINVAL, "%s:%zu: %zu fields, the header has %zu", path, line,
                               rec.count, count);
            goto out;
        }
        const char *sev = rec.fields[col[SEVERITY]], *res = rec.fields[col[RESOLVED]];
        int64_t ms;
        if (clock_parse_iso8601(rec.fields[col[OCCURRED]], rec.lengths[col[OCCURRED]], &ms)) {
            rc = nba_error_set(err, -EINVAL, "%s:%zu: occurred_at is not an ISO 8601 UTC time",
                               path, line);
            goto out;
        }
        if (!(sev[0] >= '1' && sev[0] <= '5' && sev[1] == '\0') ||
            !((res[0] == '0' || res[0] == '1') && res[1] == '\0')) {
            rc = nba_error_set(err, -EINVAL, "%s:%zu: severity is 1..5 and resolved 0 or 1", path,
                               line);
            goto out;
        }
        if (has_bar(rec.fields[col[KIND]]) || has_bar(rec.fields[col[FLIGHT]])) {
            rc = nba_error_set(err, -EINVAL, "%s:%zu: kind and flight cannot contain '|'", path,
                               line);
            goto out;
        }
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char key[256], score[32], member[512];
        int klen = snprintf(key, sizeof key, "inc:%s", rec.fields[col[CUSTOMER]]);
        int slen = snprintf(score, sizeof score, "%lld", (long long)ms);
        int mlen = snprintf(member, sizeof member, "%04d-%02d-%02d|%s|%s|%s|%s|%s",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, sev, res,
                            rec.fields[col[KIND]], rec.fields[col[FLIGHT]], rec.fields[col[ID]]);
        if (klen >= (int)sizeof key || mlen >= (int)sizeof member) {
            rc = nba_error_set(err, -EINVAL, "%s:%zu: the ids, kind or flight are too long", path,
                               line);
            goto out;
        }
        const char *argv[] = {"ZADD", key, score, member};
        const size_t lens[] = {4, (size_t)klen, (size_t)slen, (size_t)mlen};
        rc = emit(wr, 4, argv, lens);
        if (rc) {
            nba_error_set(err, rc, "%s:%zu: cannot write to stdout", path, line);
            goto out;
        }
    }
out:
    free_names(names, count);
    csv_close(r);
    return rc < 0 ? rc : 0;
}

static const char usage_text[] =
    "usage: nbaredisload --customers FILE [--incidents FILE]\n"
    "Writes the CSV extracts as Redis commands (RESP) to stdout, for redis-cli --pipe:\n"
    "a hash cust:<id> per customer, a sorted set inc:<id> of each customer's incidents.\n";

int main(int argc, char **argv)
{
    enum { OPT_CUSTOMERS = 256, OPT_INCIDENTS, OPT_HELP };
    static const struct option longopts[] = {
        {"customers", required_argument, NULL, OPT_CUSTOMERS},
        {"incidents", required_argument, NULL, OPT_INCIDENTS},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *customers = NULL, *incidents = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case OPT_CUSTOMERS:
            customers = optarg;
            break;
        case OPT_INCIDENTS:
            incidents = optarg;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return EXIT_OK;
        default:
            fputs(usage_text, stderr);
            return EXIT_USAGE;
        }
    }
    if (!customers || optind < argc) {
        fputs("nbaredisload: --customers FILE is needed, and nothing else\n", stderr);
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    writer wr = {.buf = malloc(MAX_COMMAND)};
    if (!wr.buf) {
        fputs("nbaredisload: out of memory\n", stderr);
        return EXIT_IOERR;
    }
    nba_error err;
    int rc = load_customers(customers, &wr, &err);
    if (rc == 0 && incidents)
        rc = load_incidents(incidents, &wr, &err);
    if (rc == 0 && fflush(stdout) != 0)
        rc = nba_error_set(&err, -EIO, "cannot write to stdout: %s", strerror(errno));
    free(wr.buf);
    if (rc) {
        fprintf(stderr, "nbaredisload: %s\n", err.msg);
        return rc == -ENOENT ? EXIT_NOINPUT : rc == -EIO ? EXIT_IOERR : EXIT_DATAERR;
    }
    fprintf(stderr, "nbaredisload: %zu commands\n", wr.commands);
    return EXIT_OK;
}
