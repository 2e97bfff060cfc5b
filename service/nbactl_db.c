/* nbactl db: the generations of a database root (see include/dbroot.h).
 *
 *   nbactl db list   --db ROOT [--json]
 *   nbactl db switch --db ROOT [GEN]
 *   nbactl db prune  --db ROOT [--keep N]
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbroot.h"
#include "error.h"
#include "nbactl.h"
#include "store.h"

/* What a generation holds, read from its own meta entries. */
typedef struct gen_info {
    bool readable;
    store_stats stats;
    char loaded_at[64];
    char updated_at[64];
    char keys[512]; /* the lookup keys loaded, names separated by commas */
} gen_info;

static void read_info(const char *root, const dbroot_gen *g, gen_info *out)
{
    char dir[4096];
    store *st;
    memset(out, 0, sizeof *out);
    if (!g->has_data || dbroot_path(root, g->name, dir, sizeof dir))
        return;
    if (store_open(dir, STORE_READONLY | STORE_EXACT, 0, 0, &st, NULL))
        return;
    out->readable = store_get_stats(st, &out->stats) == 0;
    if (store_get_meta(st, "loaded_at", out->loaded_at, sizeof out->loaded_at))
        out->loaded_at[0] = '\0';
    if (store_get_meta(st, "updated_at", out->updated_at, sizeof out->updated_at))
        out->updated_at[0] = '\0';
    if (store_get_meta(st, "keys", out->keys, sizeof out->keys))
        out->keys[0] = '\0';
    store_close(st);
}

static void format_size(char *buf, size_t size, uint64_t bytes)
{
    if (bytes >= (uint64_t)1 << 30)
        snprintf(buf, size, "%.1f GiB", (double)bytes / (double)((uint64_t)1 << 30));
    else
        snprintf(buf, size, "%.1f MiB", (double)bytes / (double)((uint64_t)1 << 20));
}

static int list_generations(const char *root, dbroot_gen **list, size_t *n)
{
    nba_error err;
    int rc = dbroot_list(root, list, n, &err);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_NOINPUT;
    }
    return EXIT_OK;
}

static int db_list(const char *root, bool json)
{
    dbroot_gen *list;
    size_t n;
    int code = list_generations(root, &list, &n);
    if (code)
        return code;
    if (json)
        printf("{\"root\": \"%s\", \"generations\": [", root);
    else
        printf("%-12s %-7s %10s %12s %12s  %-20s  %s\n", "generation", "current", "size",
               "customers", "incidents", "loaded_at", "in use");
    for (size_t i = 0; i < n; i++) {
        const dbroot_gen *g = &list[i];
        gen_info info;
        /* Read after dbroot_list() looked at who has it open: opening it
         * here is this process's own use, which that does not see. */
        read_info(root, g, &info);
        char in_use[48];
        if (g->in_use == 1)
            snprintf(in_use, sizeof in_use, "yes (pid %ld)", g->pid);
        else
            snprintf(in_use, sizeof in_use, "%s", g->in_use == 0 ? "no" : "?");
        if (json) {
            printf("%s\n  {\"name\": \"%s\", \"current\": %s, \"bytes\": %llu, \"complete\": %s, "
                   "\"customers\": %zu, \"incidents\": %zu, \"loaded_at\": \"%s\", "
                   "\"updated_at\": \"%s\", \"keys\": \"%s\", \"in_use\": %s}",
                   i ? "," : "", g->name, g->current ? "true" : "false",
                   (unsigned long long)g->bytes,
                   info.readable && info.loaded_at[0] ? "true" : "false", info.stats.customers,
                   info.stats.incidents, info.loaded_at, info.updated_at, info.keys,
                   g->in_use == 1 ? "true" : "false");
            continue;
        }
        char size[32], customers[32] = "-", incidents[32] = "-";
        format_size(size, sizeof size, g->bytes);
        if (info.readable) {
            snprintf(customers, sizeof customers, "%zu", info.stats.customers);
            snprintf(incidents, sizeof incidents, "%zu", info.stats.incidents);
        }
        const char *when = info.loaded_at[0] ? info.loaded_at
                           : g->has_data     ? "(load not finished)"
                                             : "(empty)";
        printf("%-12s %-7s %10s %12s %12s  %-20s  %s\n", g->name, g->current ? "*" : "", size,
               customers, incidents, when, in_use);
        if (info.updated_at[0])
            printf("%-12s %-7s %10s %12s %12s  upserted %s\n", "", "", "", "", "", info.updated_at);
        if (info.keys[0])
            printf("%-12s %-7s %10s %12s %12s  lookup keys %s\n", "", "", "", "", "", info.keys);
    }
    if (json)
        printf("\n]}\n");
    else if (n == 0)
        printf("(no generations: load one with nbactl load --db %s)\n", root);
    free(list);
    return EXIT_OK;
}

static int db_switch(const char *root, const char *gen)
{
    nba_error err;
    char newest[DBROOT_NAME_MAX] = "", was[DBROOT_NAME_MAX] = "";
    int lock, rc = dbroot_lock(root, &lock, &err);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return rc == -EBUSY ? EXIT_TEMPFAIL : EXIT_NOINPUT;
    }
    if (!gen) {
        dbroot_gen *list;
        size_t n;
        int code = list_generations(root, &list, &n);
        if (code) {
            dbroot_unlock(lock);
            return code;
        }
        if (n && strcmp(list[n - 1].name, DBROOT_FLAT) != 0)
            snprintf(newest, sizeof newest, "%s", list[n - 1].name);
        free(list);
        if (!newest[0]) {
            dbroot_unlock(lock);
            fprintf(stderr, "nbactl: %s: no generation to switch to\n", root);
            return EXIT_NOINPUT;
        }
        gen = newest;
    }
    if (dbroot_current_name(root, was, sizeof was) != 0)
        was[0] = '\0';
    rc = dbroot_switch(root, gen, &err);
    dbroot_unlock(lock);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return rc == -ENOENT ? EXIT_NOINPUT : EXIT_DATAERR;
    }
    if (strcmp(was, gen) == 0)
        printf("%s: %s is current already\n", root, gen);
    else
        printf("%s: current is now %s (was %s)\n", root, gen, was[0] ? was : "none");
    return EXIT_OK;
}

static void on_pruned(void *ctx, const dbroot_gen *g, bool removed)
{
    const char *root = ctx;
    char size[32];
    format_size(size, sizeof size, g->bytes);
    if (removed)
        printf("%s: removed %s (%s)\n", root, g->name, size);
    else
        printf("%s: kept %s: in use by process %ld\n", root, g->name, g->pid);
}

static int db_prune(const char *root, unsigned keep)
{
    nba_error err;
    int lock, rc = dbroot_lock(root, &lock, &err);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return rc == -EBUSY ? EXIT_TEMPFAIL : EXIT_NOINPUT;
    }
    rc = dbroot_prune(root, keep, on_pruned, (void *)root, &err);
    dbroot_unlock(lock);
    if (rc < 0) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_SOFTWARE;
    }
    if (rc == 0)
        printf("%s: nothing to remove\n", root);
    return EXIT_OK;
}

int nbactl_db(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"keep", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2)
        return nbactl_usage("db needs a subcommand: list, switch or prune");
    const char *sub = argv[1];
    const char *root = NULL;
    bool json = false;
    unsigned long keep = 1;
    int opt;
    char *end;
    argc--;
    argv++;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            root = optarg;
            break;
        case 'k':
            keep = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *optarg == '-' || *end != '\0' || keep > 1000000)
                return nbactl_usage("--keep takes a number of generations");
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            return nbactl_help();
        default:
            return nbactl_usage(NULL);
        }
    }
    if (!root)
        return nbactl_usage("db needs --db ROOT");
    int extra = argc - optind;
    if (strcmp(sub, "list") == 0 && extra == 0)
        return db_list(root, json);
    if (strcmp(sub, "switch") == 0 && extra <= 1)
        return db_switch(root, extra ? argv[optind] : NULL);
    if (strcmp(sub, "prune") == 0 && extra == 0)
        return db_prune(root, (unsigned)keep);
    return nbactl_usage("db: list, switch [GEN] or prune");
}
