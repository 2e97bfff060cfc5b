/* store_live.h - the generation of the customer database serving now, and
 * the switch to a new one without a pause.
 *
 * nbad serves from a database root (dbroot.h): ROOT/current names the
 * generation to serve. A nightly refresh builds the next generation beside
 * it and moves `current` (nbactl load, nbactl db switch). A store_live
 * notices that within a second (a watcher thread polls the link, and
 * store_live_poke() asks it at once, e.g. on SIGHUP), opens the new
 * generation, reads it into memory while the old one goes on serving, and
 * then publishes it: each worker's next request finds the new generation
 * number (one atomic load) and moves its reader over. A request in flight
 * finishes on the generation it started on. Once no reader holds the old
 * generation, the watcher closes it and removes its directory, unless a
 * process elsewhere still has it open.
 *
 * Threads: any thread may acquire and release; the watcher thread does all
 * the opening, closing and removing, off the request path.
 */
#ifndef NBA_STORE_LIVE_H
#define NBA_STORE_LIVE_H

#include <stddef.h>
#include <stdint.h>
#include "dbroot.h"
#include "error.h"
#include "store.h"

typedef struct store_live store_live;

/* Called on the watcher thread right after a new generation was published
 * (old: the one that served until then, still open). */
typedef void (*store_live_switch_fn)(void *arg, store *now, store *old, const char *name);

typedef struct store_live_options {
    size_t map_size;                /* as store_open(); 0: the default */
    unsigned max_readers;           /* as store_open() */
    unsigned poll_ms;               /* how often the watcher reads ROOT/current; 0: 1000 */
    store_live_switch_fn on_switch; /* may be NULL */
    void *arg;
} store_live_options;

/* Opens the generation ROOT serves now (dbroot_resolve: ROOT/current, or
 * ROOT itself when it is a flat environment) read-only, once, for a tool
 * that reads it and exits. *name (may be NULL, DBROOT_NAME_MAX bytes) gets
 * the generation's name. Returns 0, or the errors of dbroot_resolve() and
 * store_open() with their messages. */
int store_open_serving(const char *root, size_t map_size, unsigned max_readers, store **out,
                       char *name, nba_error *err);

/* Opens the generation ROOT serves now, as store_open_serving(), and
 * starts the watcher thread. Returns 0, or the errors of dbroot_resolve()
 * and store_open() with their messages. */
int store_live_open(const char *root, const store_live_options *o, store_live **out,
                    nba_error *err);

/* A store_live that serves st and never switches: for tests and tools that
 * open a store themselves. st stays the caller's (store_live_free() does
 * not close it). Returns 0 or -ENOMEM. */
int store_live_fixed(store *st, store_live **out);

/* Stops the watcher and closes every generation; every acquired store must
 * have been released. NULL is a no-op. */
void store_live_free(store_live *l);

/* The number of the generation serving now: compared by workers before
 * each request, so one relaxed atomic load. */
uint64_t store_live_generation(const store_live *l);

/* The store serving now, held until store_live_release(); *generation gets
 * its number. Never fails. */
store *store_live_acquire(store_live *l, uint64_t *generation);

/* Gives back a store store_live_acquire() returned. */
void store_live_release(store_live *l, store *st);

/* The name of the generation serving now ("gen-000007", or "." for a flat
 * environment), copied into buf. */
void store_live_name(store_live *l, char *buf, size_t size);

/* Asks the watcher to look at ROOT/current now rather than at its next
 * poll. Async-signal-safe. */
void store_live_poke(store_live *l);

#endif
