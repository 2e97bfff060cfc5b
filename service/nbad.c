/* nbad.c - the next-best-action daemon: reads its configuration, opens the
 * database, the rules and the TLS files, binds its port, drops root, and
 * answers contact events over TCP until SIGTERM or SIGINT.
 *
 * Exit status (sysexits.h), for service managers and deploy scripts:
 *   0   stopped cleanly, or --help / --version printed
 *   64  EX_USAGE        bad command line or config file
 *   65  EX_DATAERR      the rule file does not compile; a TLS file that does
 *                       not hold a certificate or key, or a key that does
 *                       not match the certificate
 *   66  EX_NOINPUT      the database, the rule file or a TLS file is missing
 *                       or cannot be read
 *   67  EX_NOUSER       the configured user does not exist
 *   69  EX_UNAVAILABLE  cannot listen on the address (in use, not local, ...)
 *   71  EX_OSERR        cannot start or run the server (memory, threads,
 *                       switching to the configured user, ...)
 *   73  EX_CANTCREAT    the state database (DB/state) cannot be opened or created
 */
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "log.h"
#include "residency.h"
#include "rules_live.h"
#include "server.h"
#include "state.h"
#include "store.h"
#include "store_live.h"
#include "tls.h"

/* Reader slots beyond one per worker: room for nbactl and other readers of
 * the same environment. */
#define EXTRA_READERS 8
/* Descriptors nbad holds besides its connections: the listener, the
 * database, each worker's event loop and eventfd, logs. */
#define FD_RESERVE 128
/* Free memory at the top of a heap that glibc keeps rather than returns to
 * the kernel (its default is 128 KiB, and adapts): the connection buffers
 * of a few thousand connections. */
#define NBAD_TRIM_THRESHOLD (64u << 20)

/* Errors that mean "this address cannot be served here", as opposed to the
 * machine failing to start a server at all. */
static bool is_address_error(int rc)
{
    return rc == -EADDRINUSE || rc == -EADDRNOTAVAIL || rc == -EACCES || rc == -EINVAL ||
           rc == -EAFNOSUPPORT;
}

/* Errors that mean "the file is not there for us", as opposed to a file
 * whose content is wrong. */
static bool is_missing_file(int rc)
{
    return rc == -ENOENT || rc == -EACCES || rc == -EPERM || rc == -ENOTDIR || rc == -EISDIR ||
           rc == -ELOOP;
}

/* Every connection holds a descriptor: raises the soft open-file limit as
 * far as max_connections needs (the hard limit allowing), and warns when it
 * does not allow that many. Past the limit nbad still works: accepting
 * pauses until connections close. */
static void fit_open_file_limit(int max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)max_connections + FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        log_warn("max_connections is %d but the open-file limit is %llu: past about %llu "
                 "connections nbad pauses accepting; raise LimitNOFILE or lower max_connections",
                 max_connections, (unsigned long long)rl.rlim_cur,
                 (unsigned long long)(rl.rlim_cur > FD_RESERVE ? rl.rlim_cur - FD_RESERVE : 0));
}

/* Started as root: becomes `user` (its groups, its gid, its uid, with no
 * way back), once everything that needs root is done. Returns 0, -ENOENT
 * for an unknown user, or another negative errno, with a message. */
static int drop_privileges(const char *user, nba_error *err)
{
    if (geteuid() != 0) {
        if (user) {
            struct passwd *pw = getpwnam(user);
            if (!pw || pw->pw_uid != geteuid())
                log_warn("not started as root: running as uid %u, not as %s", (unsigned)geteuid(),
                         user);
        }
        return 0;
    }
    if (!user) {
        log_warn("running as root: set user in the config file (or --user) to run as an "
                 "unprivileged user once the port is bound");
        return 0;
    }
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw)
        return nba_error_set(err, errno ? -errno : -ENOENT, "no such user \"%s\"", user);
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    /* Groups first: once the uid is not root, they can no longer be set.
     * glibc applies each of these to every thread of the process. */
    if (initgroups(user, gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        return nba_error_set(err, -errno, "cannot run as user %s: %s", user, strerror(errno));
    /* Checked, not assumed: root must be gone for good. */
    if (uid != 0 && (setuid(0) == 0 || geteuid() == 0))
        return nba_error_set(err, -EPERM, "cannot run as user %s: root could be regained", user);
    log_info("running as user %s (uid %u, gid %u)", user, (unsigned)uid, (unsigned)gid);
    return 0;
}

/* Keeps the generation serving in memory: the residency moves to a new
 * generation when the database switches (on the watcher's thread). */
typedef struct keeper {
    pthread_mutex_t lock;
    residency_options options;
    residency *res;
    bool stopped;
} keeper;

static void keeper_start(keeper *k, store *st)
{
    nba_error err;
    pthread_mutex_lock(&k->lock);
    residency_stop(k->res);
    k->res = NULL;
    if (!k->stopped && residency_start(st, &k->options, &k->res, &err) != 0)
        log_warn("the database is not kept in memory: %s", err.msg);
    pthread_mutex_unlock(&k->lock);
}

static void keeper_stop(keeper *k)
{
    pthread_mutex_lock(&k->lock);
    k->stopped = true;
    residency_stop(k->res);
    k->res = NULL;
    pthread_mutex_unlock(&k->lock);
}

static void on_switch(void *arg, store *now, store *old, const char *name)
{
    (void)old;
    (void)name;
    keeper *k = arg;
    if (k->options.interval_s > 0 || k->options.lock)
        keeper_start(k, now);
}

int main(int argc, char **argv)
{
    config cfg;
    nba_error err = {{0}};
    store_live *live = NULL;
    keeper keep = {.lock = PTHREAD_MUTEX_INITIALIZER};
    state *state_db = NULL;
    rules_live *rules = NULL;
    tls_context *tls = NULL;
    server *srv = NULL;
    int status = EX_OK;

    log_set_program("nbad");
    /* A client that disconnects must never kill the daemon; the plain path
     * writes with MSG_NOSIGNAL, this covers TLS (OpenSSL writes with
     * write(2)) and everything else. */
    signal(SIGPIPE, SIG_IGN);
    /* Each round of answers takes a connection buffer's chunk from malloc
     * and gives it back once sent. Left to its default, glibc may hand
     * the top of a worker's heap back to the kernel on such a free, and a
     * heap that sits at that edge does it thousands of times a second:
     * each time an madvise(), a TLB shootdown across the cores and page
     * faults to take the memory back. Memory a worker used once it will
     * use again: keep it. */
    mallopt(M_TRIM_THRESHOLD, NBAD_TRIM_THRESHOLD);

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
    fit_open_file_limit(cfg.max_connections);

    keep.options =
        (residency_options){.lock = cfg.lock_memory, .interval_s = (unsigned)cfg.warm_interval};
    store_live_options lo = {
        .map_size = cfg.map_size,
        .max_readers = (unsigned)cfg.threads + EXTRA_READERS,
        .on_switch = on_switch,
        .arg = &keep,
    };
    rc = store_live_open(cfg.db_dir, &lo, &live, &err);
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
    /* A reader that crashed (nbad, nbactl) leaves its slot in the lock file
     * taken, and LMDB keeps every page that reader could see: clear them
     * before serving, or the database grows until the slots run out. */
    int cleared = 0;
    store *st = store_live_acquire(live, NULL);
    rc = store_check_readers(st, &cleared);
    store_live_release(live, st);
    if (rc)
        log_warn("cannot check the database's reader slots: %s", strerror(-rc));
    else if (cleared > 0)
        log_warn("cleared %d stale reader slot(s) left in the database by a process that died",
                 cleared);

    /* What nbad writes itself lives beside the warehouse's data, in a
     * directory a refresh never replaces. Without it (record_contacts
     * false) decisions read the loaded data alone and nothing is written:
     * incident reports are refused as unsupported. */
    char state_dir[4096];
    if ((size_t)snprintf(state_dir, sizeof state_dir, "%s/state", cfg.db_dir) >= sizeof state_dir) {
        fprintf(stderr, "nbad: database path too long: %s\n", cfg.db_dir);
        status = EX_USAGE;
        goto out;
    }
    rc = cfg.record_contacts ? state_open(state_dir, cfg.map_size, &state_db, &err) : 0;
    if (rc) {
        fprintf(stderr, "nbad: %s\n", err.msg);
        status = EX_CANTCREAT;
        goto out;
    }

    rc = rules_live_new(cfg.rules_path, &rules, &err);
    if (rc) {
        /* Already "file:line:col: message", the source line and a caret,
         * or "file: reason" for a file that cannot be read. */
        if (is_missing_file(rc))
            fprintf(stderr, "nbad: cannot read the rules: %s\n", err.msg);
        else
            fprintf(stderr, "%s\n", err.msg);
        status = is_missing_file(rc) ? EX_NOINPUT : EX_DATAERR;
        goto out;
    }

    if (cfg.tls_cert) {
        rc = tls_context_new(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca, &tls, &err);
        if (rc) {
            fprintf(stderr, "nbad: %s\n", err.msg);
            status = is_missing_file(rc) ? EX_NOINPUT : rc == -ENOMEM ? EX_OSERR : EX_DATAERR;
            goto out;
        }
        if (!cfg.tls_client_ca)
            log_warn("TLS without tls_client_ca: any client that can reach the port is served");
    }

    rc = server_new(&cfg, live, state_db, rules, tls, &srv, &err);
    if (rc) {
        fprintf(stderr, "nbad: %s\n", err.msg);
        status = is_address_error(rc) ? EX_UNAVAILABLE : EX_OSERR;
        goto out;
    }

    /* The port is bound and every file open: root is no longer needed. */
    rc = drop_privileges(cfg.user, &err);
    if (rc) {
        fprintf(stderr, "nbad: %s\n", err.msg);
        status = rc == -ENOENT ? EX_NOUSER : EX_OSERR;
        goto out;
    }
    if (cfg.log_customer_data)
        log_warn("log_customer_data is on: debug logs name customers and carry message texts");

    /* Started once the server listens, so the first decisions never wait
     * for the database to come into memory; without it, they would wait on
     * the disk after every idle minute. */
    if (cfg.warm_interval > 0 || cfg.lock_memory) {
        store *serving = store_live_acquire(live, NULL);
        keeper_start(&keep, serving);
        store_live_release(live, serving);
    }

    char rules_id[256];
    rules_live_id(rules, rules_id, sizeof rules_id);
    log_info("nbad %s listening on %s%s%s:%d (%s), %d workers, rules %s, database %s", NBA_VERSION,
             strchr(cfg.listen_addr, ':') ? "[" : "", cfg.listen_addr,
             strchr(cfg.listen_addr, ':') ? "]" : "", server_port(srv),
             !tls                ? "plain"
             : !cfg.tls_required ? "TLS or plain"
             : cfg.tls_client_ca ? "TLS, client certificates required"
                                 : "TLS",
             cfg.threads, rules_id, cfg.db_dir);
    log_info("limits: max_connections %d, idle_timeout %d s, frame_timeout %d s, max_frame %u, "
             "max_output %zu, max_pipeline %d",
             cfg.max_connections, cfg.idle_timeout, cfg.frame_timeout, cfg.max_frame,
             cfg.max_output, cfg.max_pipeline);
    rc = server_run(srv);
    if (rc) {
        fprintf(stderr, "nbad: the server failed: %s\n", strerror(-rc));
        status = EX_OSERR;
    }

out:
    keeper_stop(&keep);
    server_free(srv);
    tls_context_free(tls);
    rules_live_free(rules);
    state_close(state_db);
    store_live_free(live);
    config_free(&cfg);
    return status;
}
