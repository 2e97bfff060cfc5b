/* config.h - nbad's settings: defaults, then the YAML config file, then the
 * command line, each overriding the one before. */
#ifndef NBA_CONFIG_H
#define NBA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "log.h"

typedef struct config {
    char *db_dir;       /* LMDB environment directory (required) */
    char *rules_path;   /* rule file (required) */
    char *listen_addr;  /* default "127.0.0.1" */
    int port;           /* default 7411; 0 picks a free port */
    int threads;        /* worker threads; default one per core */
    uint32_t max_frame; /* largest request body accepted, bytes; default 64 KiB */
    size_t map_size;    /* LMDB map size in bytes; 0 = store default */
    log_level log_min;  /* log lines below this level are dropped; default LOG_INFO
                         * (key log_level / --log-level: debug, info, warn, error) */
    bool lock_memory;   /* lock the database's pages in memory (mlock); default false */
    int warm_interval;  /* seconds between passes that keep the database's pages in
                         * memory, the first right after start; 0 = never; default 10 */
} config;

/* Fills c with the defaults. Strings are heap copies owned by c. Returns 0
 * or -ENOMEM. */
int config_init(config *c);

/* Applies the YAML mapping in file `path` to c. Keys: db, rules, listen,
 * port, threads, max_frame, map_size, log_level, lock_memory, warm_interval
 * (deploy/nbad.yaml shows each); sizes are integers or strings like
 * "64KiB", "1GiB"; booleans true or false. Unknown keys,
 * repeated keys and values of the wrong type or out of range are rejected
 * with "path:line:col: message". Keys the file does not set keep their value
 * in c. Returns 0, -EINVAL, or -ENOENT/-EACCES for an unreadable file, with a
 * message. */
int config_load_file(config *c, const char *path, nba_error *err);

/* Builds the configuration from the command line
 *   nbad [--config FILE] [--db DIR] [--rules FILE] [--listen ADDR] [--port N]
 *        [--threads N] [--max-frame BYTES] [--map-size BYTES]
 *        [--log-level LEVEL] [--lock-memory[=BOOL]] [--warm-interval S]
 *        [--help] [--version]
 * reading --config first, wherever it stands, then applying the other
 * options over it. Every option also takes the --opt=value form; a boolean
 * option alone means true. c need not
 * be initialised: it starts from config_init(). Returns 0, 1 when --help or
 * --version was printed on stdout (the caller exits 0), or -EINVAL with a
 * message (bad option or value, db or rules left unset, a config file error
 * as config_load_file() reports it; -ENOENT/-EACCES for an unreadable config
 * file). Whatever the result, c is passed to config_free() afterwards. */
int config_from_args(config *c, int argc, char **argv, nba_error *err);

/* Frees the strings c owns. */
void config_free(config *c);

#endif
