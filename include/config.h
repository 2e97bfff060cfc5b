/* config.h - nbad's settings: defaults, then the YAML config file, then the
 * command line, each overriding the one before. */
#ifndef NBA_CONFIG_H
#define NBA_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

typedef struct config {
    char *db_dir;       /* LMDB environment directory (required) */
    char *rules_path;   /* rule file (required) */
    char *listen_addr;  /* default "127.0.0.1" */
    int port;           /* default 7411; 0 picks a free port */
    int threads;        /* worker threads; default one per core */
    uint32_t max_frame; /* largest request body accepted, bytes; default 64 KiB */
    size_t map_size;    /* LMDB map size in bytes; 0 = store default */
} config;

/* Fills c with the defaults. Strings are heap copies owned by c. */
int config_init(config *c);

/* Applies the YAML mapping in file `path` to c. Unknown keys and values of
 * the wrong type are rejected with "path:line:col: message". Returns 0 or
 * -EINVAL/-ENOENT with a message. */
int config_load_file(config *c, const char *path, nba_error *err);

/* Builds the configuration from the command line
 *   nbad [--config FILE] [--db DIR] [--rules FILE] [--listen ADDR] [--port N]
 *        [--threads N] [--max-frame BYTES]
 * reading --config first, wherever it stands, then applying the other
 * options over it. Returns 0, 1 when --help or --version was printed (the
 * caller exits 0), or -EINVAL with a message. */
int config_from_args(config *c, int argc, char **argv, nba_error *err);

/* Frees the strings c owns. */
void config_free(config *c);

#endif
