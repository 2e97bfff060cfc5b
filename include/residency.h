/* residency.h - keeps the database's pages in memory while nbad runs.
 *
 * A lookup that finds its page in memory costs a microsecond; one whose page
 * the kernel has dropped costs a disk read, milliseconds. Kernels drop file
 * pages nobody has touched for a while (some machines after 30-60 s of
 * idleness), so after a quiet minute the first contacts of a busy period
 * would wait on the disk.
 *
 * A residency runs one background thread at the lowest CPU priority. Right
 * after start it reads the whole data file into memory and into nbad's page
 * tables, chunk by chunk, while the workers already answer (a decision never
 * waits for it). Then, every `interval_s` seconds, it touches every page
 * again, which keeps them recently used and reads back whatever was dropped
 * meanwhile. With `lock`, it also locks the pages in memory (mlock) after
 * the first pass, and again when the file has grown; when the limits do not
 * allow that (RLIMIT_MEMLOCK without CAP_IPC_LOCK) it logs a warning and
 * keeps touching the pages instead.
 */
#ifndef NBA_RESIDENCY_H
#define NBA_RESIDENCY_H

#include <stdbool.h>
#include "error.h"
#include "store.h"

typedef struct residency residency;

typedef struct residency_options {
    bool lock;           /* lock the pages in memory */
    unsigned interval_s; /* seconds between passes after the first; 0: the first only */
} residency_options;

/* Starts the thread for store st, which must outlive the residency. Returns
 * 0, or a negative errno with a message when the thread cannot start. */
int residency_start(store *st, const residency_options *o, residency **out, nba_error *err);

/* Stops the thread (an interrupted pass ends at its next chunk), waits for
 * it and frees r. NULL is a no-op. */
void residency_stop(residency *r);

#endif
