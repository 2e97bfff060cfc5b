/* nbactl load: the warehouse's CSV extracts into the database nbad serves
 * from (see include/loader.h and include/dbroot.h).
 *
 * A full load builds the next generation of the database root beside the
 * one serving and switches `current` to it when it is complete; readers go
 * on with the old one meanwhile. A failed or interrupted load removes what
 * it built, so the root is left as it was. An upsert (a daily delta) writes
 * into the generation serving, in one transaction.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "dbroot.h"
#include "error.h"
#include "loader.h"
#include "nbactl.h"
#include "store.h"

/* Progress: a live line on a terminal, redrawn this often; otherwise a
 * log line this often. */
#define LIVE_EVERY_NS ((uint64_t)250 * 1000 * 1000)
#define LOG_EVERY_NS  ((uint64_t)5 * 1000 * 1000 * 1000)

/* The map of a new generation: room for this many times the input (a
 * stored record takes about 1.5 times its CSV row), and never less than the
 * store's default. The map only reserves address space; the file grows as
 * it is written. */
#define MAP_PER_INPUT_BYTE 4
#define MIN_MAP_SIZE       ((size_t)64 << 30)

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct display {
    bool tty;
    bool line_shown; /* a live line is on the terminal */
    uint64_t started, attempt_started, phase_started, last_shown;
    unsigned attempt;
    loader_phase phase;
    uint64_t phase_rows0; /* rows when the phase started */
} display;

static const char *phase_name(loader_phase p)
{
    switch (p) {
    case LOADER_STREAMING:
        return "loading";
    case LOADER_SORTING:
        return "sorting";
    case LOADER_WRITING:
        return "writing";
    }
    return "loading";
}

static void clear_line(display *d)
{
    if (d->line_shown) {
        fputs("\r\033[K", stderr);
        d->line_shown = false;
    }
}

static void format_eta(char *buf, size_t size, double secs)
{
    if (secs < 0 || secs > 99 * 3600)
        snprintf(buf, size, "?");
    else if (secs >= 3600)
        snprintf(buf, size, "%d:%02d:%02d", (int)secs / 3600, (int)secs / 60 % 60, (int)secs % 60);
    else
        snprintf(buf, size, "%d:%02d", (int)secs / 60, (int)secs % 60);
}

static int on_progress(void *ctx, const loader_progress *p)
{
    display *d = ctx;
    uint64_t now = clock_mono_ns();
    if (p->attempt != d->attempt) {
        d->attempt = p->attempt;
        d->attempt_started = now;
    }
    if (p->phase != d->phase || p->rows < d->phase_rows0) {
        d->phase = p->phase;
        d->phase_started = now;
        d->phase_rows0 = p->rows;
    }
    if (interrupted)
        return 1;
    if (now - d->last_shown < (d->tty ? LIVE_EVERY_NS : LOG_EVERY_NS))
        return 0;
    d->last_shown = now;
    double in_phase = (double)(now - d->phase_started) / 1e9;
    double rate = in_phase > 0 ? (double)(p->rows - d->phase_rows0) / in_phase : 0;
    char pct[16] = "", eta[32] = "?";
    if (p->fraction > 0) {
        double in_attempt = (double)(now - d->attempt_started) / 1e9;
        snprintf(pct, sizeof pct, "%.0f%%", p->fraction * 100);
        format_eta(eta, sizeof eta, in_attempt * (1 - p->fraction) / p->fraction);
    }
    char rejected[48] = "";
    if (p->rejected)
        snprintf(rejected, sizeof rejected, ", %llu rejected", (unsigned long long)p->rejected);
    if (d->tty) {
        fprintf(stderr, "\r\033[K%s: %llu rows, %.0fk rows/s%s%s%s, ETA %s", phase_name(p->phase),
                (unsigned long long)p->rows, rate / 1000, rejected, *pct ? ", " : "", pct, eta);
        d->line_shown = true;
    } else {
        fprintf(stderr, "nbactl load: %s: %llu rows, %.0f rows/s%s%s%s, ETA %s\n",
                phase_name(p->phase), (unsigned long long)p->rows, rate, rejected, *pct ? ", " : "",
                pct, eta);
    }
    fflush(stderr);
    return 0;
}

static void on_rejected(void *ctx, const char *message)
{
    display *d = ctx;
    clear_line(d);
    fprintf(stderr, "nbactl: skipped %s\n", message);
}

static uint64_t file_size(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
}

/* Disk space the environment in dir takes. */
static uint64_t disk_bytes(const char *dir)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
}

static void print_size(FILE *f, uint64_t bytes)
{
    if (bytes >= (uint64_t)1 << 30)
        fprintf(f, "%.2f GiB", (double)bytes / (double)((uint64_t)1 << 30));
    else
        fprintf(f, "%.1f MiB", (double)bytes / (double)((uint64_t)1 << 20));
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void print_summary(const loader_options *o, const loader_stats *s, const char *dir,
                          const char *gen, bool switched, double secs)
{
    size_t rows = s->customers + s->incidents + s->rejected_customers + s->rejected_incidents;
    printf("%s %zu customers and %zu incidents into %s in %.2f s\n",
           o->mode == LOADER_UPSERT ? "upserted" : "loaded", s->customers, s->incidents, dir, secs);
    printf("  %-22s %zu rows %s, %zu rejected%s\n", base_name(o->customers), s->customers,
           o->mode == LOADER_UPSERT ? "upserted" : "loaded", s->rejected_customers,
           s->sorted_customers ? " (not in key order: sorted)" : "");
    if (o->incidents)
        printf("  %-22s %zu rows %s, %zu rejected%s\n", base_name(o->incidents), s->incidents,
               o->mode == LOADER_UPSERT ? "upserted" : "loaded", s->rejected_incidents,
               s->sorted_incidents ? " (not in key order: sorted)" : "");
    if (s->keys)
        printf("  %-22s %zu %s%s%s%s\n", "lookup keys", s->keys,
               o->mode == LOADER_UPSERT ? "upserted" : "loaded", o->keys ? " (" : "",
               o->keys ? o->keys : "", o->keys ? ")" : "");
    printf("  %-22s %.0f rows/s (%zu rows in %.2f s%s)\n", "rate", secs > 0 ? rows / secs : 0.0,
           rows, secs, s->attempts > 1 ? ", started again after sorting" : "");
    if (s->sort_runs)
        printf("  %-22s %zu runs written to disk\n", "sort", s->sort_runs);
    printf("  %-22s ", "database");
    print_size(stdout, disk_bytes(dir));
    if (gen)
        printf(" on disk, %s%s\n", gen,
               switched ? ", now current"
                        : " (not switched to: nbactl db switch --db ROOT to serve it)");
    else
        printf(" on disk\n");
}

/* The whole content replaced: a new generation, switched to on success. */
static int full_load(const char *root, loader_options *o, size_t map_size, bool no_switch,
                     display *d)
{
    nba_error err;
    char gen[DBROOT_NAME_MAX], dir[4096];
    int rc = dbroot_new_generation(root, gen, sizeof gen, &err);
    if (rc || dbroot_path(root, gen, dir, sizeof dir)) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_CANTCREAT;
    }
    if (!map_size) {
        uint64_t input = file_size(o->customers) + file_size(o->incidents);
        map_size =
            input * MAP_PER_INPUT_BYTE > MIN_MAP_SIZE ? input * MAP_PER_INPUT_BYTE : MIN_MAP_SIZE;
    }
    store *st;
    rc = store_open(dir, STORE_CREATE | STORE_NOSYNC | STORE_EXACT, map_size, 0, &st, &err);
    loader_stats stats = {0};
    uint64_t start = clock_mono_ns();
    if (!rc) {
        o->fresh = true;
        rc = loader_run(st, o, &stats, &err);
        /* Durable before anyone is pointed at it. */
        if (!rc)
            rc = store_sync(st, &err);
        store_close(st);
    }
    if (!rc && !no_switch)
        rc = dbroot_switch(root, gen, &err);
    double secs = (double)(clock_mono_ns() - start) / 1e9;
    clear_line(d);
    if (rc) {
        nba_error rm;
        fprintf(stderr, "nbactl: %s\n", err.msg);
        if (dbroot_remove(root, gen, &rm))
            fprintf(stderr, "nbactl: %s\n", rm.msg);
        fprintf(stderr, "nbactl: nothing was loaded; %s is unchanged\n", root);
        if (rc == -ECANCELED)
            return 128 + SIGINT;
        return rc == -ENOENT || rc == -EACCES || rc == -EISDIR ? EXIT_NOINPUT : EXIT_DATAERR;
    }
    print_summary(o, &stats, dir, gen, !no_switch, secs);
    return EXIT_OK;
}

/* A delta: inserted or replaced in the generation serving. */
static int upsert(const char *root, loader_options *o, size_t map_size, display *d)
{
    nba_error err;
    char dir[4096];
    int rc = dbroot_resolve(root, dir, sizeof dir, &err);
    if (rc) {
        fprintf(stderr,
                "nbactl: %s\nnbactl: an upsert updates a database: load one in full first\n",
                err.msg);
        return EXIT_NOINPUT;
    }
    store *st;
    rc = store_open(dir, STORE_EXACT, map_size, 0, &st, &err);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_NOINPUT;
    }
    /* Room for the delta; if it takes more, the loader grows the map and
     * tries again. */
    if (!map_size) {
        size_t want = store_used_size(st) +
                      MAP_PER_INPUT_BYTE * (file_size(o->customers) + file_size(o->incidents));
        rc = store_grow_map(st, want, &err);
    }
    loader_stats stats = {0};
    uint64_t start = clock_mono_ns();
    if (!rc)
        rc = loader_run(st, o, &stats, &err);
    store_close(st);
    double secs = (double)(clock_mono_ns() - start) / 1e9;
    clear_line(d);
    if (rc) {
        fprintf(stderr, "nbactl: %s\nnbactl: nothing was changed; %s is as it was\n", err.msg, dir);
        if (rc == -ECANCELED)
            return 128 + SIGINT;
        return rc == -ENOENT || rc == -EACCES || rc == -EISDIR ? EXIT_NOINPUT : EXIT_DATAERR;
    }
    print_summary(o, &stats, dir, NULL, false, secs);
    return EXIT_OK;
}

static bool parse_count(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*text == '\0' || *text == '-' || *end != '\0' || errno)
        return false;
    *out = (size_t)v;
    return true;
}

int nbactl_load(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"customers", required_argument, NULL, 'c'},
        {"incidents", required_argument, NULL, 'i'},
        {"map-size", required_argument, NULL, 'm'},
        {"max-errors", required_argument, NULL, 'e'},
        {"keys", required_argument, NULL, 'k'},
        {"upsert", no_argument, NULL, 'u'},
        {"no-switch", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    loader_options o = {.mode = LOADER_REPLACE};
    size_t map_size = 0;
    bool no_switch = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            db = optarg;
            break;
        case 'c':
            o.customers = optarg;
            break;
        case 'i':
            o.incidents = optarg;
            break;
        case 'm':
            if (!parse_count(optarg, &map_size) || map_size == 0)
                return nbactl_usage("--map-size takes a number of bytes");
            break;
        case 'e':
            if (!parse_count(optarg, &o.max_errors))
                return nbactl_usage("--max-errors takes a number of rows");
            break;
        case 'k':
            o.keys = optarg;
            break;
        case 'u':
            o.mode = LOADER_UPSERT;
            break;
        case 'n':
            no_switch = true;
            break;
        case 'h':
            return nbactl_help();
        default:
            return nbactl_usage(NULL);
        }
    }
    if (optind < argc)
        return nbactl_usage("load takes no positional arguments");
    if (!db || !o.customers)
        return nbactl_usage("load needs --db and --customers");
    if (no_switch && o.mode == LOADER_UPSERT)
        return nbactl_usage("--no-switch is for a full load; an upsert changes the current "
                            "generation");

    display d = {.tty = isatty(STDERR_FILENO) == 1};
    d.started = d.attempt_started = d.phase_started = d.last_shown = clock_mono_ns();
    o.progress = on_progress;
    o.rejected = on_rejected;
    o.ctx = &d;
    /* Interrupted, the load stops at its next progress report and removes
     * what it built. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* An upsert needs a database: do not create an empty root for it. */
    struct stat sb;
    if (o.mode == LOADER_UPSERT && stat(db, &sb) != 0) {
        fprintf(stderr, "nbactl: %s: no database here: load one in full first\n", db);
        return EXIT_NOINPUT;
    }
    nba_error err;
    int lock, rc = dbroot_lock(db, &lock, &err);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return rc == -EBUSY ? EXIT_TEMPFAIL : EXIT_CANTCREAT;
    }
    int code = o.mode == LOADER_UPSERT ? upsert(db, &o, map_size, &d)
                                       : full_load(db, &o, map_size, no_switch, &d);
    dbroot_unlock(lock);
    return code;
}
