/* store.h - the LMDB environment nbad decides from.
 *
 * Layout (format 2): one LMDB environment (a directory) with three named
 * databases:
 *   records  key = customer_id                      value = nba.v1.Customer
 *            key = customer_id 0x00 incident_id     value = nba.v1.Incident
 *   keys     key = key name 0x00 key value          value = customer_id
 *   meta     key = name                             value = text
 * A customer id never contains a NUL byte, so a customer's incidents sort
 * right after the customer's own record and before any other customer
 * (even one whose id starts with this one's: "C1", "C1\0I7", "C10"). A
 * decision reads a customer and their incidents with one cursor descent
 * and a walk along the leaf that is usually already in cache.
 *
 * keys maps the other identifiers a contact point may know a customer by
 * (a booking reference, a loyalty card number: the lookup keys a load was
 * given) to the customer_id; one key names one customer. A key name never
 * contains a NUL byte, so name and value cannot be told apart two ways.
 * Generations written before keys existed have no keys table: opened
 * read-only, every key lookup misses; opened for writing, it is created.
 *
 * meta holds "format" ("2"), "customers" and "incidents" (the record
 * counts, kept by every write transaction, so store_get_stats() costs two
 * lookups however large the database), and entries callers set with
 * store_txn_put_meta() ("loaded_at", "keys"). A directory written by an nbad
 * before format 2 (customers and incidents in two tables, no "format")
 * cannot be read; a write transaction replaces it.
 *
 * Readers: each worker thread owns one store_reader: a read-only transaction
 * and a cursor created once and renewed, as LMDB recommends for short,
 * frequent reads. The transaction is kept between requests while nothing
 * is committed (an upsert), and reset when the thread goes idle. Records
 * are copied out of the map into the caller's arena, so nothing read
 * depends on the transaction after the request.
 *
 * Writers: one store_txn at a time per environment (LMDB serialises writers).
 * Everything put in a store_txn becomes visible at once on commit, or not at
 * all on abort, which is how a failed load leaves the database as it was.
 * A bulk load puts its records in key order with STORE_PUT_APPEND
 * (store_txn_put_packed): each goes at the end of the tree with no search,
 * and every page is left full before the next is started. Puts in any other
 * order work too, but an incident put between two customers already stored
 * lands in a full page, which LMDB splits in the middle: a tree built that
 * way is about 60% full, half as large again.
 *
 * Directory: `dir` may also be a database root (include/dbroot.h); the
 * generation its `current` link names when it is opened is what is opened.
 *
 * Errors: LMDB codes are translated to negative errno values here and only
 * here (MDB_NOTFOUND -> -ENOENT, MDB_MAP_FULL -> -ENOSPC, MDB_READERS_FULL ->
 * -EAGAIN, corruption -> -EIO, ...).
 */
#ifndef NBA_STORE_H
#define NBA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "error.h"
#include "nba.pb-c.h"

typedef struct store store;
typedef struct store_reader store_reader;
typedef struct store_txn store_txn;

/* Longest customer_id or incident_id accepted (LMDB keys are at most 511
 * bytes and an incident key holds both ids). */
#define STORE_MAX_ID 200

/* Longest lookup key name (a customers.csv column such as "booking_ref");
 * a key's value is at most STORE_MAX_ID bytes. */
#define STORE_MAX_KEY_NAME 64

enum store_flags {
    STORE_READONLY = 1 << 0, /* open for reading only (the daemon) */
    STORE_CREATE = 1 << 1,   /* create the directory and environment if missing */
    /* Commits do not wait for the disk: for an environment being built that
     * no one reads yet, made durable at the end with store_sync(). A crash
     * may lose or damage what was committed since the last sync. */
    STORE_NOSYNC = 1 << 2,
    /* dir is the environment itself, even when it is also a database root
     * (a flat environment left beside the generations that replaced it). */
    STORE_EXACT = 1 << 3,
};

/* Opens the environment in directory `dir` (or in the generation serving
 * now when dir is a database root: see the top of this file). map_size is the largest the
 * database may grow to, in bytes (0 = the default, 64 GiB; the file only
 * takes the space it uses). max_readers bounds concurrent reader threads
 * (0 = 126). A new environment gets the current format. Errors: -ENOENT (no
 * such directory and no STORE_CREATE, or never loaded), -ENOTSUP (a
 * database of another format: "DIR: database written by an older nbad
 * (format 1): load it again with nbactl load"; opened for writing, a format
 * 1 database is accepted and replaced by the first write transaction),
 * -EACCES, -EIO, with a message naming the directory. */
int store_open(const char *dir, unsigned flags, size_t map_size, unsigned max_readers, store **out,
               nba_error *err);

/* Closes the environment. Every reader and txn must have been freed. */
void store_close(store *st);

/* Creates a reader for the calling thread. Returns 0, -EAGAIN (reader table
 * full), -ENOMEM. */
int store_reader_new(store *st, store_reader **out, nba_error *err);

/* Frees a reader (ends its transaction if one is open). */
void store_reader_free(store_reader *r);

/* Starts a read snapshot of the database as last committed: the one the
 * reader kept from its last snapshot when nothing was committed since, else
 * a renewed one. Every lookup between begin and end sees the same committed
 * state. Returns 0 or a negative errno. */
int store_reader_begin(store_reader *r);

/* Ends the snapshot. Pointers into the map must not be used after it; data
 * copied into an arena stays valid. The transaction is kept for the next
 * store_reader_begin(). */
void store_reader_end(store_reader *r);

/* Lets go of the transaction a reader keeps between snapshots. A kept
 * transaction holds on to the pages of its snapshot, which a writer (an
 * upsert) cannot reuse meanwhile: a thread calls this when it goes idle
 * (nbad's workers, every second). */
void store_reader_release(store_reader *r);

/* Looks up a customer inside a snapshot and decodes it into arena `a`.
 * Returns 0, -ENOENT when there is no such customer, -EBADMSG when the stored
 * record does not decode, or another negative errno. */
int store_get_customer(store_reader *r, const char *customer_id, arena *a, Nba__V1__Customer **out);

/* Reads all incidents of a customer inside a snapshot, decoded into arena
 * `a`, in incident_id order. *out is an arena array of *count pointers (NULL
 * and 0 when there are none). Called right after store_get_customer() found
 * the same customer, it goes on from where that left the reader's cursor
 * (the incidents are the next records); otherwise it looks them up.
 * Returns 0, -EBADMSG, or another negative errno. */
int store_get_incidents(store_reader *r, const char *customer_id, arena *a,
                        Nba__V1__Incident ***out, size_t *count);

/* Finds the customer that lookup key `name` = `value` names (keys table),
 * inside a snapshot, and copies their customer_id into arena `a`. Does not
 * move the reader's cursor, so store_get_customer() and
 * store_get_incidents() work as before after it. Returns 0, -ENOENT when
 * no customer has that key (an unknown name or value, or a generation
 * loaded without keys), -EBADMSG when the stored id is not one, -ENOMEM. */
int store_find_key(store_reader *r, const char *name, const char *value, arena *a,
                   char **customer_id);

/* Begins the environment's write transaction. On a format 1 database it
 * starts by dropping the old tables, so its commit leaves a database of the
 * current format (and its abort, the old one). Returns 0, -EROFS (opened
 * STORE_READONLY), or a negative errno with a message. */
int store_txn_begin(store *st, store_txn **out, nba_error *err);

/* Deletes every customer, incident and lookup key inside the transaction
 * (meta entries stay). The pages they took are free for reuse once the
 * transaction commits. */
int store_txn_clear(store_txn *t, nba_error *err);

/* Stores (inserts or replaces) a customer. -EINVAL with a message when the
 * id is empty, longer than STORE_MAX_ID or contains a NUL byte; -ENOSPC when
 * the map is full. */
int store_txn_put_customer(store_txn *t, const Nba__V1__Customer *c, nba_error *err);

/* Stores (inserts or replaces) an incident under its customer. Same errors
 * as store_txn_put_customer. The customer need not exist; callers that
 * require it check with store_txn_has_customer(). */
int store_txn_put_incident(store_txn *t, const Nba__V1__Incident *inc, nba_error *err);

enum store_put_flags {
    /* The key sorts after every key in the database: the record is added at
     * the end of the tree, and pages are filled before new ones start. */
    STORE_PUT_APPEND = 1 << 0,
};

/* Stores a record already packed: key is a customer_id (the value an
 * nba.v1.Customer) or customer_id 0x00 incident_id (an nba.v1.Incident), as
 * in the layout at the top of this file; the counts follow the key's kind.
 * Without flags it inserts or replaces. Returns 0; -EINVAL when the key is
 * not of that shape, or with STORE_PUT_APPEND when it does not sort after
 * the last key; -ENOSPC when the map is full (store_map_full() then says so);
 * another negative errno; all with a message. */
int store_txn_put_packed(store_txn *t, const void *key, size_t key_len, const void *val,
                         size_t val_len, unsigned flags, nba_error *err);

/* Deletes the record under key (of the shape store_txn_put_packed takes).
 * Returns 0, -ENOENT when there is none, or a negative errno with a
 * message. */
int store_txn_delete_packed(store_txn *t, const void *key, size_t key_len, nba_error *err);

/* Reads the packed record under key (of the shape store_txn_put_packed
 * takes) as this transaction sees it. *val points into the database and is
 * valid until the transaction's next change: copy it first. Returns 0,
 * -ENOENT when there is none, or a negative errno. */
int store_txn_get_packed(store_txn *t, const void *key, size_t key_len, const void **val,
                         size_t *val_len);

/* 1 if the customer exists as seen by this transaction (including its own
 * uncommitted puts), 0 if not, negative errno on failure. */
int store_txn_has_customer(store_txn *t, const char *customer_id);

/* Stores lookup key `name` = value[0..value_len) -> customer_id[0..id_len)
 * in the keys table. Without flags it inserts; a key already there for the
 * same customer is left as it is, and one another customer has is refused
 * with -EEXIST, that customer's id copied into holder (STORE_MAX_ID + 1
 * bytes; may be NULL). With STORE_PUT_APPEND the key must sort after every
 * key in the table (a bulk load, keys in order). Returns 0; -EINVAL when
 * the name is empty, longer than STORE_MAX_KEY_NAME or holds a ',' (meta
 * "keys" lists names separated by commas), the value is empty or longer
 * than STORE_MAX_ID, the id empty or too long, or an appended key does not
 * sort last; -ENOSPC when the map is full; all with a message. */
int store_txn_put_key(store_txn *t, const char *name, const void *value, size_t value_len,
                      const void *customer_id, size_t id_len, unsigned flags, char *holder,
                      nba_error *err);

/* Deletes lookup key `name` = value[0..value_len) when it names
 * customer_id[0..id_len). Returns 0, -ENOENT when there is no such key or
 * it names another customer, or a negative errno with a message. */
int store_txn_delete_key(store_txn *t, const char *name, const void *value, size_t value_len,
                         const void *customer_id, size_t id_len, nba_error *err);

/* Sets a meta entry (e.g. "loaded_at"). -EINVAL for the entries the store
 * keeps itself: "format", "customers", "incidents". */
int store_txn_put_meta(store_txn *t, const char *key, const char *value, nba_error *err);

/* Deletes a meta entry set with store_txn_put_meta(); 0 also when there is
 * none. -EINVAL for the store's own entries, as store_txn_put_meta(). */
int store_txn_delete_meta(store_txn *t, const char *key, nba_error *err);

/* Commits and frees the transaction. On failure everything is rolled back,
 * the transaction is freed too, and a negative errno is returned. */
int store_txn_commit(store_txn *t, nba_error *err);

/* Rolls back and frees the transaction. */
void store_txn_abort(store_txn *t);

/* ---- the environment ---- */

/* Writes everything committed to disk and waits for it: what makes the
 * commits of an environment opened STORE_NOSYNC durable. Returns 0 or a
 * negative errno with a message. */
int store_sync(store *st, nba_error *err);

/* The map size: the largest the data file may grow to, in bytes. */
size_t store_map_size(store *st);

/* Bytes of the data file in use by committed data (its high-water mark). */
size_t store_used_size(store *st);

/* Whether the last write transaction failed because the map was full (its
 * put or commit returned -ENOSPC for that reason, not for a full disk). */
bool store_map_full(const store *st);

/* Grows the map to `size` bytes (nothing when it is that large already).
 * Only while this process has no transaction open on the store. Returns 0
 * or a negative errno with a message. */
int store_grow_map(store *st, size_t size, nba_error *err);

/* Reads meta entry `key` ("loaded_at", ...) in a snapshot of its own into
 * buf, NUL-terminated. Returns 0, -ENOENT when there is none, -EOVERFLOW
 * when it does not fit, or another negative errno. */
int store_get_meta(store *st, const char *key, char *buf, size_t size);

/* The directory of the environment opened (a generation's when store_open
 * was given a database root). Valid until store_close(). */
const char *store_dir(const store *st);

/* Whether a process has the environment in directory `dir` open: every
 * process that opens one holds a shared lock on its lock file while it has
 * it open (readers like nbad and writers like nbactl load alike). Returns 1
 * (and the pid of one such process in *pid when pid is not NULL), 0 when
 * none has (or there is no lock file), or a negative errno. The calling
 * process's own use is not seen, and it must not have that environment open
 * itself: closing the file this opens would drop its locks. */
int store_env_in_use(const char *dir, long *pid);

/* ---- residency ----
 *
 * A lookup reads the map; a page of it that the kernel has dropped from
 * memory costs a disk read (milliseconds) instead of a memory access. The
 * calls below let the daemon bring the whole file in after start, keep it
 * in, or lock it in, off the request path.
 */

/* Where the data file is mapped: the file's byte i is at addr[i]. */
typedef struct store_map {
    const uint8_t *addr;
    size_t size;      /* bytes of the map backed by the file now (its size) */
    size_t page_size; /* the system's page size */
} store_map;

/* Describes the map as it is now; the file grows as loads add data, so
 * `size` is a snapshot. Returns 0, or -ENOENT when the map cannot be found
 * (no /proc). */
int store_map_info(store *st, store_map *out);

/* Brings bytes [offset, offset + len) of the data file (clipped to its size
 * now) into memory and into this process's page tables, reading from disk
 * what is not cached, so that the next lookup there costs no page fault.
 * Blocks for the disk reads; any thread, at any time, concurrently with
 * readers. Touching pages that are in memory also marks them recently used,
 * which is what keeps them in when the kernel reclaims idle pages. Returns
 * the number of bytes covered (0 past the end of the file), or a negative
 * errno. */
long store_warm(store *st, size_t offset, size_t len);

/* Locks the data file's pages (up to its size now) in memory, reading them
 * in first: they are never dropped while the store is open. Call again
 * after the file has grown to lock the rest. Returns 0, or -EPERM / -ENOMEM
 * / -EAGAIN when RLIMIT_MEMLOCK (or the memory) does not allow it; the
 * store works as before then. Unlocked by store_close(). */
int store_lock(store *st);

/* Counts of records, read in their own snapshot from the counts every
 * write transaction keeps in meta: constant time. Returns 0, -EIO when the
 * counts are damaged, or another negative errno. */
typedef struct store_stats {
    size_t customers;
    size_t incidents;
} store_stats;
int store_get_stats(store *st, store_stats *out);

/* Frees the reader slots of processes that died with a read transaction
 * open (a crash, a kill -9): LMDB keeps every page such a reader could see,
 * so the file grows, and its slot is lost until someone checks. Call at
 * start. *cleared (may be NULL) is set to the number of slots freed.
 * Returns 0 or a negative errno. */
int store_check_readers(store *st, int *cleared);

#endif
