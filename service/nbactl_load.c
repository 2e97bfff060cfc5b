/* nbactl load: the warehouse's CSV extracts into the database nbad serves
 * from (see include/loader.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "error.h"
#include "loader.h"
#include "nbactl.h"
#include "store.h"

int nbactl_load(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"customers", required_argument, NULL, 'c'},
        {"incidents", required_argument, NULL, 'i'},
        {"map-size", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *customers = NULL, *incidents = NULL;
    size_t map_size = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            db = optarg;
            break;
        case 'c':
            customers = optarg;
            break;
        case 'i':
            incidents = optarg;
            break;
        case 'm': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v == 0)
                return nbactl_usage("--map-size takes a number of bytes");
            map_size = (size_t)v;
            break;
        }
        case 'h':
            return nbactl_help();
        default:
            return nbactl_usage(NULL);
        }
    }
    if (optind < argc)
        return nbactl_usage("load takes no positional arguments");
    if (!db || !customers)
        return nbactl_usage("load needs --db and --customers");

    nba_error err;
    store *st;
    int rc = store_open(db, STORE_CREATE, map_size, 0, &st, &err);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_NOINPUT;
    }
    loader_stats stats = {0};
    uint64_t start = clock_mono_ns();
    rc = loader_load(st, customers, incidents, &stats, &err);
    double secs = (double)(clock_mono_ns() - start) / 1e9;
    store_close(st);
    if (rc) {
        fprintf(stderr, "nbactl: %s\nnbactl: nothing was loaded; %s is unchanged\n", err.msg, db);
        return rc == -ENOENT || rc == -EACCES ? EXIT_NOINPUT : EXIT_DATAERR;
    }
    printf("loaded %zu customers and %zu incidents into %s in %.2f s\n", stats.customers,
           stats.incidents, db, secs);
    return EXIT_OK;
}
