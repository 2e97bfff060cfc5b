/* nbad.c - the next-best-action daemon: reads its configuration, opens the
 * database and the rules, and answers contact events over TCP until SIGTERM
 * or SIGINT.
 *
 * Exit status (sysexits.h), for service managers and deploy scripts:
 *   0   stopped cleanly, or --help / --version printed
 *   64  EX_USAGE        bad command line or config file
 *   65  EX_DATAERR      the rule file does not compile (or cannot be read)
 *   66  EX_NOINPUT      the database cannot be opened
 *   69  EX_UNAVAILABLE  cannot listen on the address (in use, not local, ...)
 *   71  EX_OSERR        cannot start or run the server (memory, threads, ...)
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "config.h"
#include "error.h"
#include "log.h"
#include "residency.h"
#include "rules_live.h"
#include "server.h"
#include "store.h"

/* Reader slots beyond one per worker: room for nbactl and other readers of
 * the same environment. */
#define EXTRA_READERS 8

/* Errors that mean "this address cannot be served here", as opposed to the
 * machine failing to start a server at all. */
static bool is_address_error(int rc)
{
    return rc == -EADDRINUSE || rc == -EADDRNOTAVAIL || rc == -EACCES || rc == -EINVAL ||
           rc == -EAFNOSUPPORT;
}

int main(int argc, char **argv)
{
    config cfg;
    nba_error err = {{0}};
    store *st = NULL;
    rules_live *rules = NULL;
    server *srv = NULL;
    residency *res = NULL;
    int status = EX_OK;

    log_set_program("nbad");
    /* A client that disconnects must never kill the daemon; the server also
     * writes with MSG_NOSIGNAL, this covers everything else. */
    signal(SIGPIPE, SIG_IGN);

    int rc = config_from_args(&cfg, argc, argv, &err);
    if (rc == 1)
        goto out;
    if (rc) {
        fprintf(stderr, "nbad: %s\n", err.msg);
        fputs("nbad: see nbad --help for the options\n", stderr);
        status = EX_USAGE;
        goto out;
    }
    log_set_level(cfg.log_min);

    rc = store_open(cfg.db_dir, STORE_READONLY, cfg.map_size, (unsigned)cfg.threads + EXTRA_READERS,
                    &st, &err);
    if (rc) {
        /* store's messages name the directory already; never say it twice */
        char what[NBA_ERROR_MAX + 512];
        size_t n = strlen(cfg.db_dir);
        if (strncmp(err.msg, cfg.db_dir, n) == 0)
            snprintf(what, sizeof what, "%s", err.msg);
        else
            snprintf(what, sizeof what, "%s: %s", cfg.db_dir, err.msg);
        if (rc == -ENOENT)
            fprintf(stderr,
                    "nbad: cannot open database %s (load one with: nbactl load --db %s ...)\n",
                    what, cfg.db_dir);
        else
            fprintf(stderr, "nbad: cannot open database %s\n", what);
        status = EX_NOINPUT;
        goto out;
    }

    rc = rules_live_new(cfg.rules_path, &rules, &err);
    if (rc) {
        /* Already "file:line:col: message", the source line and a caret. */
        fprintf(stderr, "%s\n", err.msg);
        status = EX_DATAERR;
        goto out;
    }

    rc = server_new(&cfg, st, rules, &srv, &err);
    if (rc) {
        fprintf(stderr, "nbad: %s\n", err.msg);
        status = is_address_error(rc) ? EX_UNAVAILABLE : EX_OSERR;
        goto out;
    }

    /* Started once the server listens, so the first decisions never wait
     * for the database to come into memory; without it, they would wait on
     * the disk after every idle minute. */
    if (cfg.warm_interval > 0 || cfg.lock_memory) {
        residency_options ro = {.lock = cfg.lock_memory, .interval_s = (unsigned)cfg.warm_interval};
        rc = residency_start(st, &ro, &res, &err);
        if (rc)
            log_warn("the database is not kept in memory: %s", err.msg);
    }

    char rules_id[256];
    rules_live_id(rules, rules_id, sizeof rules_id);
    log_info("nbad %s listening on %s%s%s:%d, %d workers, rules %s, database %s", NBA_VERSION,
             strchr(cfg.listen_addr, ':') ? "[" : "", cfg.listen_addr,
             strchr(cfg.listen_addr, ':') ? "]" : "", server_port(srv), cfg.threads, rules_id,
             cfg.db_dir);
    rc = server_run(srv);
    if (rc) {
        fprintf(stderr, "nbad: the server failed: %s\n", strerror(-rc));
        status = EX_OSERR;
    }

out:
    residency_stop(res);
    server_free(srv);
    rules_live_free(rules);
    if (st)
        store_close(st);
    config_free(&cfg);
    return status;
}
