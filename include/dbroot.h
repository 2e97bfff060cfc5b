/* dbroot.h - a database root: generations of the store side by side, and
 * the one that serves.
 *
 *   ROOT/current -> gen-000007   a symbolic link naming the generation that
 *                                serves now, replaced atomically (rename)
 *   ROOT/gen-000007/             an LMDB environment of the store (store.h):
 *                                customers and incidents
 *   ROOT/gen-000006/             the one before, until pruned
 *   ROOT/state/                  nbad's own environment (state.h); nothing
 *                                here ever touches it
 *
 * A full load builds the next generation beside the one serving, and
 * switches `current` to it once it is complete, so a refresh takes no
 * downtime: a reader that has the old generation open keeps reading it,
 * whole and unchanged, until it reopens ROOT; one that opens ROOT after the
 * switch gets the new one. Switching back to an older generation is a
 * rollback. A directory written before generations existed holds the
 * environment itself (ROOT/data.mdb): with no `current`, ROOT is its own and
 * only generation, so old directories keep working.
 *
 * Generation names are "gen-" and a number of at least six digits; numbers
 * only grow. Processes that change a root (build, switch, prune) hold
 * dbroot_lock() while they do, so that a prune never removes a generation
 * that a load has just created.
 *
 * Errors: negative errno values with a message naming the path.
 */
#ifndef NBA_DBROOT_H
#define NBA_DBROOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

/* The longest generation name, with its NUL. */
#define DBROOT_NAME_MAX 32

/* The name a flat environment (ROOT/data.mdb itself) is listed under. */
#define DBROOT_FLAT "."

/* Writes into buf the directory of the generation serving now: ROOT's
 * absolute path joined with the target of ROOT/current, or, when there is
 * no `current` but ROOT holds data.mdb, ROOT itself (a flat environment).
 * Returns 0, -ENOENT when ROOT holds neither ("no database here"),
 * -ENAMETOOLONG when buf is too small, or another negative errno. */
int dbroot_resolve(const char *root, char *buf, size_t size, nba_error *err);

/* Writes the target of ROOT/current ("gen-000007") into buf: one readlink,
 * cheap enough to poll for a switch. Returns 0, -ENOENT when there is no
 * `current`, -ENAMETOOLONG, or another negative errno. */
int dbroot_current_name(const char *root, char *buf, size_t size);

/* Joins ROOT and a generation name (DBROOT_FLAT gives ROOT) into buf.
 * Returns 0 or -ENAMETOOLONG. */
int dbroot_path(const char *root, const char *name, char *buf, size_t size);

/* Creates ROOT (and its parents) if needed, then the next generation as an
 * empty directory, numbered one past the highest there; its name goes into
 * buf. Two processes creating one at once get different ones. Returns 0 or
 * a negative errno with a message. */
int dbroot_new_generation(const char *root, char *buf, size_t size, nba_error *err);

/* Makes gen_name the generation serving: replaces ROOT/current with a link
 * to it by rename(), atomic for every reader, then syncs ROOT so the switch
 * survives a crash. Refuses (-EINVAL) a name that is not a generation's, and
 * a generation that is not a complete load (-ENOENT when it has no data,
 * -EINVAL when its load never finished). Returns 0 or a negative errno with
 * a message. */
int dbroot_switch(const char *root, const char *gen_name, nba_error *err);

/* One generation of a root. */
typedef struct dbroot_gen {
    char name[DBROOT_NAME_MAX]; /* "gen-000007", or DBROOT_FLAT */
    uint64_t number;            /* 0 for DBROOT_FLAT */
    bool current;               /* the one `current` names (or the flat one without it) */
    bool has_data;              /* holds data.mdb */
    int in_use;                 /* 1: a process has it open; 0: none; < 0: cannot tell */
    long pid;                   /* one process that has it open, when in_use is 1 */
    uint64_t bytes;             /* disk space data.mdb takes */
} dbroot_gen;

/* Lists ROOT's generations, oldest (lowest number) first, the flat
 * environment, if any, before them. *out is an array the caller frees with
 * free() (NULL when there are none). Returns 0 or a negative errno with a
 * message (-ENOENT when ROOT does not exist). */
int dbroot_list(const char *root, dbroot_gen **out, size_t *count, nba_error *err);

/* Called by dbroot_prune() for each generation it removed (removed true) or
 * would have removed but left because a process has it open. */
typedef void dbroot_prune_fn(void *ctx, const dbroot_gen *g, bool removed);

/* Removes every generation but the current one and the keep_previous newest
 * of those older than it (a flat environment counts as the oldest), leaving
 * any that a process still has open (a reader that has not yet followed a
 * switch). Generations newer than the current one (a rollback's, a load's
 * that was not switched to) are removed too. With no `current`, removes
 * nothing. Calls report (if not NULL) for each removed or left in use.
 * Returns the number removed, or a negative errno with a message. */
int dbroot_prune(const char *root, unsigned keep_previous, dbroot_prune_fn *report, void *ctx,
                 nba_error *err);

/* Removes one generation (a failed load's): its files and its directory.
 * Refuses the current one (-EBUSY) and one a process has open (-EBUSY).
 * Returns 0 or a negative errno with a message. */
int dbroot_remove(const char *root, const char *gen_name, nba_error *err);

/* Takes ROOT's exclusive lock (creating ROOT if needed): an flock on the
 * directory, held until dbroot_unlock() or the process ends. Returns 0 with
 * the descriptor in *fd, -EBUSY when another process holds it ("another
 * load, switch or prune is running"), or another negative errno. */
int dbroot_lock(const char *root, int *fd, nba_error *err);

/* Releases the lock dbroot_lock() took. */
void dbroot_unlock(int fd);

#endif
