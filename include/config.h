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
    size_t map_size;    /* LMDB map size in bytes, of the database and of the state
                         * database each; 0 = the default (64 GiB) */
    log_level log_min;  /* log lines below this level are dropped; default LOG_INFO
                         * (key log_level / --log-level: debug, info, warn, error) */
    bool lock_memory;   /* lock the database's pages in memory (mlock); default false */
    int warm_interval;  /* seconds between passes that keep the database's pages in
                         * memory, the first right after start; 0 = never; default 10 */

    /* Limits: what one client, or many, may make nbad hold. */
    int max_connections; /* connections served at once; one more is answered with the
                          * error too_many_connections and closed; default 10000 */
    int idle_timeout;    /* seconds a connection may go without reading or writing a
                          * byte before it is closed; 0 = never; default 300 */
    int frame_timeout;   /* seconds a request may take to arrive whole once it has
                          * begun; 0 = no bound; default 30 */
    size_t max_output;   /* answers a connection may have waiting to be written, in
                          * bytes, before nbad stops reading from it; default 1 MiB */
    int max_pipeline;    /* the same, counted in answers; default 1024 */

    /* TLS on the binary protocol: on when tls_cert and tls_key are set. */
    char *tls_cert;      /* PEM server certificate (chain), or NULL */
    char *tls_key;       /* PEM private key of tls_cert, or NULL */
    char *tls_client_ca; /* PEM CA certificates a client's certificate must chain to;
                          * set: every client must present one; NULL: none asked for */
    bool tls_required;   /* with TLS on: plain connections are refused (error
                          * tls_required); false serves both on the port; default true */

    char *user;             /* started as root: the user to run as once the port is bound
                             * and the files are open; NULL = stay (with a warning) */
    bool log_customer_data; /* debug logs may name customers and carry message texts;
                             * default false: logs never hold personal data */
    bool record_contacts;   /* keep the state (DB/state): contact history, letters,
                             * stored decisions, live incidents; false: decide from the
                             * warehouse's data alone, write nothing (a read-only
                             * replica); default true */
} config;

/* Fills c with the defaults. Strings are heap copies owned by c. Returns 0
 * or -ENOMEM. */
int config_init(config *c);

/* Applies the YAML mapping in file `path` to c. Keys: db, rules, listen,
 * port, threads, max_frame, map_size, log_level, lock_memory, warm_interval,
 * max_connections, idle_timeout, frame_timeout, max_output, max_pipeline, tls_cert,
 * tls_key, tls_client_ca, tls_required, user, log_customer_data, record_contacts
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
 *        [--max-connections N] [--idle-timeout S] [--frame-timeout S] [--max-output BYTES]
 *        [--max-pipeline N] [--tls-cert FILE] [--tls-key FILE]
 *        [--tls-client-ca FILE] [--tls-required[=BOOL]] [--user NAME]
 *        [--log-customer-data[=BOOL]] [--record-contacts[=BOOL]] [--help] [--version]
 * reading --config first, wherever it stands, then applying the other
 * options over it. Every option also takes the --opt=value form; a boolean
 * option alone means true. c need not
 * be initialised: it starts from config_init(). Returns 0, 1 when --help or
 * --version was printed on stdout (the caller exits 0), or -EINVAL with a
 * message (bad option or value, db or rules left unset, tls_cert without
 * tls_key or the reverse, tls_client_ca without them, a config file error
 * as config_load_file() reports it; -ENOENT/-EACCES for an unreadable config
 * file). Whatever the result, c is passed to config_free() afterwards. */
int config_from_args(config *c, int argc, char **argv, nba_error *err);

/* Frees the strings c owns. */
void config_free(config *c);

#endif
