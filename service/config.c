/* config.c - see include/config.h.
 *
 * One table describes every setting once: its YAML key, its command-line
 * flag, its type and its range. The config file and the command line both
 * go through it, so a value is parsed and checked the same way wherever it
 * comes from, and a new setting is one new row.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "frame.h"

#define DEFAULT_LISTEN "127.0.0.1"
#define DEFAULT_PORT   7411
#define MAX_THREADS    256
/* A frame limit below a few bytes would refuse every request; above a few
 * hundred MiB one client could make a worker hold that much memory. */
#define MIN_MAX_FRAME 16ull
#define MAX_MAX_FRAME (256ull << 20)
/* Idle pages are dropped after a minute or so on the machines nbad runs on:
 * a pass every 10 s keeps the database in memory at the cost of a few ms. */
#define DEFAULT_WARM_INTERVAL 10
#define MAX_WARM_INTERVAL     3600
/* Far more check-in desks, kiosks and IVR lines than one airport has, and
 * far fewer than the open files a systemd service gets (LimitNOFILE=65536). */
#define DEFAULT_MAX_CONNECTIONS 10000
#define MAX_MAX_CONNECTIONS     1000000
/* A contact point that has said nothing for five minutes has gone away
 * without closing (a kiosk rebooted, a NAT forgot the flow). */
#define DEFAULT_IDLE_TIMEOUT 300
#define MAX_IDLE_TIMEOUT     86400
/* A kiosk on a poor line sends a few hundred bytes in well under this; a
 * client trickling a byte at a time to hold a connection does not. */
#define DEFAULT_FRAME_TIMEOUT 30
/* Output waiting for a slow client: a few thousand answers, and room for
 * the largest. */
#define DEFAULT_MAX_OUTPUT   (1ull << 20)
#define MIN_MAX_OUTPUT       (4ull << 10)
#define MAX_MAX_OUTPUT       (1ull << 30)
#define DEFAULT_MAX_PIPELINE 1024
#define MAX_MAX_PIPELINE     1000000

typedef enum setting_type {
    SET_TEXT,   /* char *: a non-empty string */
    SET_ADDR,   /* char *: an IPv4 or IPv6 address, or a host name */
    SET_INT,    /* int: a decimal integer in [min, max] */
    SET_SIZE,   /* size_t: a byte count, 65536 or "64KiB", in [min, max] */
    SET_SIZE32, /* uint32_t: as SET_SIZE */
    SET_LEVEL,  /* log_level: debug, info, warn or error */
    SET_BOOL,   /* bool: true or false; on the command line the flag alone is true */
} setting_type;

typedef struct setting {
    const char *key;  /* key in the config file */
    const char *flag; /* command-line option, without the leading "--" */
    setting_type type;
    size_t offset; /* of the field in struct config */
    unsigned long long min, max;
} setting;

static const setting settings[] = {
    {"db", "db", SET_TEXT, offsetof(config, db_dir), 0, 0},
    {"rules", "rules", SET_TEXT, offsetof(config, rules_path), 0, 0},
    {"listen", "listen", SET_ADDR, offsetof(config, listen_addr), 0, 0},
    {"port", "port", SET_INT, offsetof(config, port), 0, 65535},
    {"threads", "threads", SET_INT, offsetof(config, threads), 1, MAX_THREADS},
    {"max_frame", "max-frame", SET_SIZE32, offsetof(config, max_frame), MIN_MAX_FRAME,
     MAX_MAX_FRAME},
    {"map_size", "map-size", SET_SIZE, offsetof(config, map_size), 0, SIZE_MAX},
    {"log_level", "log-level", SET_LEVEL, offsetof(config, log_min), 0, 0},
    {"lock_memory", "lock-memory", SET_BOOL, offsetof(config, lock_memory), 0, 0},
    {"warm_interval", "warm-interval", SET_INT, offsetof(config, warm_interval), 0,
     MAX_WARM_INTERVAL},
    {"max_connections", "max-connections", SET_INT, offsetof(config, max_connections), 1,
     MAX_MAX_CONNECTIONS},
    {"idle_timeout", "idle-timeout", SET_INT, offsetof(config, idle_timeout), 0, MAX_IDLE_TIMEOUT},
    {"frame_timeout", "frame-timeout", SET_INT, offsetof(config, frame_timeout), 0,
     MAX_IDLE_TIMEOUT},
    {"max_output", "max-output", SET_SIZE, offsetof(config, max_output), MIN_MAX_OUTPUT,
     MAX_MAX_OUTPUT},
    {"max_pipeline", "max-pipeline", SET_INT, offsetof(config, max_pipeline), 1, MAX_MAX_PIPELINE},
    {"tls_cert", "tls-cert", SET_TEXT, offsetof(config, tls_cert), 0, 0},
    {"tls_key", "tls-key", SET_TEXT, offsetof(config, tls_key), 0, 0},
    {"tls_client_ca", "tls-client-ca", SET_TEXT, offsetof(config, tls_client_ca), 0, 0},
    {"tls_required", "tls-required", SET_BOOL, offsetof(config, tls_required), 0, 0},
    {"user", "user", SET_TEXT, offsetof(config, user), 0, 0},
    {"log_customer_data", "log-customer-data", SET_BOOL, offsetof(config, log_customer_data), 0, 0},
    {"record_contacts", "record-contacts", SET_BOOL, offsetof(config, record_contacts), 0, 0},
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

static const char usage_text[] =
    "usage: nbad [--config FILE] [--db DIR] [--rules FILE] [--listen ADDR] [--port N]\n"
    "            [--threads N] [--max-frame BYTES] [--map-size BYTES] [--log-level LEVEL]\n"
    "            [--lock-memory] [--warm-interval S] [--max-connections N]\n"
    "            [--idle-timeout S] [--frame-timeout S] [--max-output BYTES]\n"
    "            [--max-pipeline N]\n"
    "            [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n"
    "            [--tls-required=BOOL] [--user NAME] [--log-customer-data]\n"
    "            [--record-contacts=BOOL]\n"
    "            [--help] [--version]\n"
    "\n"
    "Serves next-best-action decisions over TCP.\n"
    "\n"
    "  --config FILE      YAML config file (see deploy/nbad.yaml); read first, the\n"
    "                     other options override it\n"
    "  --db DIR           LMDB database directory, as built by nbactl load (required)\n"
    "  --rules FILE       rule file (required)\n"
    "  --listen ADDR      address to listen on (default " DEFAULT_LISTEN ")\n"
    "  --port N           TCP port 0..65535, 0 picks a free one (default 7411)\n"
    "  --threads N        worker threads 1..256 (default: one per online core)\n"
    "  --max-frame BYTES  largest request accepted, e.g. 65536 or 64KiB (default 64KiB)\n"
    "  --map-size BYTES   LMDB map size of the database and of the state, each,\n"
    "                     e.g. 64GiB (default 64GiB; the files take what they use)\n"
    "  --log-level LEVEL  debug, info, warn or error (default info)\n"
    "  --lock-memory      lock the database in memory (needs RLIMIT_MEMLOCK or\n"
    "                     CAP_IPC_LOCK; without them nbad warns and goes on)\n"
    "  --warm-interval S  read the whole database into memory after start and touch\n"
    "                     it again every S seconds so it stays there, 0..3600, 0 = never\n"
    "                     (default 10)\n"
    "  --record-contacts=BOOL  keep contact history, letters and live incidents in\n"
    "                     DB/state (default true); false: decide from the loaded data\n"
    "                     alone and write nothing, as a read-only replica\n"
    "\n"
    "Limits:\n"
    "  --max-connections N  connections served at once; one more gets the error\n"
    "                     too_many_connections and is closed (default 10000)\n"
    "  --idle-timeout S   close a connection that has neither sent nor taken a byte\n"
    "                     for S seconds, 0 = never (default 300)\n"
    "  --frame-timeout S  close a connection whose request has begun but not arrived\n"
    "                     whole within S seconds, answering frame_timeout; 0 = no\n"
    "                     bound (default 30)\n"
    "  --max-output BYTES answers waiting for a slow client before nbad stops reading\n"
    "                     its requests (default 1MiB)\n"
    "  --max-pipeline N   the same, counted in answers (default 1024)\n"
    "\n"
    "Access:\n"
    "  --tls-cert FILE    PEM server certificate: serve TLS (with --tls-key)\n"
    "  --tls-key FILE     PEM private key of the certificate\n"
    "  --tls-client-ca FILE  PEM CA certificates: every client must present a\n"
    "                     certificate issued by one of them\n"
    "  --tls-required=BOOL  with TLS on, refuse plain connections (default true)\n"
    "  --user NAME        started as root: run as NAME once the port is bound\n"
    "  --log-customer-data  let debug logs name customers and carry message texts\n"
    "                     (default off: logs hold no personal data)\n"
    "\n"
    "  -h, --help         print this help and exit\n"
    "  -V, --version      print the version and exit\n"
    "\n"
    "Every option also takes the --option=value form.\n";

/* ---- values ---- */

/* How a value was written: the YAML style matters for type checks (a quoted
 * "7411" is a string, not a port), a command-line argument is always text. */
typedef enum value_kind {
    VALUE_ARG,    /* a command-line argument */
    VALUE_PLAIN,  /* an unquoted YAML scalar */
    VALUE_QUOTED, /* a quoted or block YAML scalar */
} value_kind;

static bool is_yaml_null(const char *s, value_kind kind)
{
    return kind == VALUE_PLAIN && (!*s || !strcmp(s, "~") || !strcmp(s, "null") ||
                                   !strcmp(s, "Null") || !strcmp(s, "NULL"));
}

/* Parses a run of decimal digits at *s, advancing *s. -EINVAL when there is
 * no digit, -ERANGE on overflow. */
static int parse_digits(const char **s, unsigned long long *out)
{
    const char *p = *s;
    unsigned long long v = 0;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

static int parse_int(const char *s, unsigned long long *out)
{
    int rc = parse_digits(&s, out);
    if (rc)
        return rc;
    return *s ? -EINVAL : 0;
}

/* A byte count: digits, optional blanks, then an optional binary unit
 * (K/KiB, M/MiB, G/GiB, T/TiB, B; any case). Decimal units (KB, MB) are
 * refused rather than guessed at. */
static int parse_size(const char *s, unsigned long long *out)
{
    static const struct {
        const char *name;
        unsigned shift;
    } units[] = {{"", 0},     {"b", 0},  {"k", 10},   {"kib", 10}, {"m", 20},
                 {"mib", 20}, {"g", 30}, {"gib", 30}, {"t", 40},   {"tib", 40}};
    unsigned long long v;
    int rc = parse_digits(&s, &v);
    if (rc)
        return rc;
    while (*s == ' ' || *s == '\t')
        s++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(s, units[i].name))
            continue;
        if (units[i].shift && v > (ULLONG_MAX >> units[i].shift))
            return -ERANGE;
        *out = v << units[i].shift;
        return 0;
    }
    return -EINVAL;
}

static bool is_address(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
        return true;
    /* Otherwise a host name (RFC 1123): dot-separated labels of 1..63
     * letters, digits and inner hyphens, the last not all digits, so that a
     * mistyped IPv4 address such as 10.0.0.300 is not taken for a name. */
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    const char *label = s;
    bool numeric = true;
    for (const char *p = s;; p++) {
        if (*p == '.' || !*p) {
            size_t len = (size_t)(p - label);
            if (len == 0 || len > 63 || label[0] == '-' || p[-1] == '-')
                return false;
            if (!*p)
                return !numeric;
            label = p + 1;
            numeric = true;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-') {
            numeric = false;
        } else if (*p < '0' || *p > '9') {
            return false;
        }
    }
}

static const char *type_name(const setting *st)
{
    switch (st->type) {
    case SET_TEXT:
        return "a string";
    case SET_ADDR:
        return "an IP address or host name";
    case SET_INT:
        return "an integer";
    case SET_SIZE:
    case SET_SIZE32:
        return "a size in bytes (65536, \"64KiB\", \"1GiB\")";
    case SET_LEVEL:
        return "a log level (debug, info, warn, error)";
    case SET_BOOL:
        return "true or false";
    }
    return "a value";
}

/* Checks text against the setting's type and range and stores it in c.
 * Returns 0, -ENOMEM, or -EINVAL with the reason in why (no position: the
 * caller knows where the value came from). */
static int setting_apply(config *c, const setting *st, const char *text, value_kind kind, char *why,
                         size_t why_size)
{
    char *field = (char *)c + st->offset;
    unsigned long long v = 0;
    int rc;

    switch (st->type) {
    case SET_TEXT:
    case SET_ADDR: {
        if (!*text || is_yaml_null(text, kind)) {
            snprintf(why, why_size, "expected %s, got an empty value", type_name(st));
            return -EINVAL;
        }
        if (st->type == SET_ADDR && !is_address(text)) {
            snprintf(why, why_size, "expected %s, got \"%.64s\"", type_name(st), text);
            return -EINVAL;
        }
        char *copy = strdup(text);
        if (!copy)
            return -ENOMEM;
        char **slot = (char **)(void *)field;
        free(*slot);
        *slot = copy;
        return 0;
    }
    case SET_INT:
        rc = kind == VALUE_QUOTED ? -EINVAL : parse_int(text, &v);
        break;
    case SET_SIZE:
    case SET_SIZE32:
        rc = parse_size(text, &v);
        break;
    case SET_LEVEL: {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        static const log_level levels[] = {LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR};
        for (size_t i = 0; i < 4; i++) {
            if (!strcmp(text, names[i])) {
                *(log_level *)(void *)field = levels[i];
                return 0;
            }
        }
        snprintf(why, why_size, "expected %s, got \"%.64s\"", type_name(st), text);
        return -EINVAL;
    }
    case SET_BOOL:
        /* A quoted "true" is a string in YAML, as a quoted "7411" is. */
        if (kind != VALUE_QUOTED && (!strcmp(text, "true") || !strcmp(text, "false"))) {
            *(bool *)(void *)field = text[0] == 't';
            return 0;
        }
        snprintf(why, why_size, "expected %s, got \"%.64s\"", type_name(st), text);
        return -EINVAL;
    default:
        rc = -EINVAL;
    }

    if (rc == -EINVAL) {
        if (kind == VALUE_QUOTED && st->type == SET_INT)
            snprintf(why, why_size, "expected %s %llu..%llu, got the string \"%.64s\"",
                     type_name(st), st->min, st->max, text);
        else if (st->type == SET_INT)
            snprintf(why, why_size, "expected %s %llu..%llu, got \"%.64s\"", type_name(st), st->min,
                     st->max, text);
        else
            snprintf(why, why_size, "expected %s, got \"%.64s\"", type_name(st), text);
        return -EINVAL;
    }
    if (rc == -ERANGE || v < st->min || v > st->max) {
        snprintf(why, why_size, "%.64s is out of range %llu..%llu", text, st->min, st->max);
        return -EINVAL;
    }
    switch (st->type) {
    case SET_INT:
        *(int *)(void *)field = (int)v;
        break;
    case SET_SIZE:
        *(size_t *)(void *)field = (size_t)v;
        break;
    case SET_SIZE32:
        *(uint32_t *)(void *)field = (uint32_t)v;
        break;
    default:
        break;
    }
    return 0;
}

/* ---- defaults ---- */

int config_init(config *c)
{
    memset(c, 0, sizeof *c);
    c->listen_addr = strdup(DEFAULT_LISTEN);
    if (!c->listen_addr)
        return -ENOMEM;
    c->port = DEFAULT_PORT;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = cores < 1 ? 1 : cores > MAX_THREADS ? MAX_THREADS : (int)cores;
    c->max_frame = FRAME_DEFAULT_MAX;
    c->map_size = 0;
    c->log_min = LOG_INFO;
    c->lock_memory = false;
    c->warm_interval = DEFAULT_WARM_INTERVAL;
    c->max_connections = DEFAULT_MAX_CONNECTIONS;
    c->idle_timeout = DEFAULT_IDLE_TIMEOUT;
    c->frame_timeout = DEFAULT_FRAME_TIMEOUT;
    c->max_output = DEFAULT_MAX_OUTPUT;
    c->max_pipeline = DEFAULT_MAX_PIPELINE;
    c->tls_required = true;
    c->log_customer_data = false;
    c->record_contacts = true;
    return 0;
}

void config_free(config *c)
{
    free(c->db_dir);
    free(c->rules_path);
    free(c->listen_addr);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_client_ca);
    free(c->user);
    c->db_dir = c->rules_path = c->listen_addr = NULL;
    c->tls_cert = c->tls_key = c->tls_client_ca = c->user = NULL;
}

/* ---- the config file ---- */

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a scalar";
    }
}

/* "path:line:col: " + message, at a libyaml mark (0-based). */
static int file_error(nba_error *err, const char *path, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int file_error(nba_error *err, const char *path, yaml_mark_t m, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nba_error_set(err, -EINVAL, "%s:%zu:%zu: %s", path, m.line + 1, m.column + 1, msg);
}

static int apply_mapping(config *c, const char *path, yaml_document_t *doc, yaml_node_t *root,
                         nba_error *err)
{
    bool seen[N_SETTINGS] = {false};

    if (root->type != YAML_MAPPING_NODE)
        return file_error(err, path, root->start_mark,
                          "expected a mapping of settings (key: value), got %s", node_kind(root));
    for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(doc, pair->key);
        yaml_node_t *value = yaml_document_get_node(doc, pair->value);
        if (key->type != YAML_SCALAR_NODE)
            return file_error(err, path, key->start_mark, "expected a setting name, got %s",
                              node_kind(key));
        const char *name = (const char *)key->data.scalar.value;
        size_t i = 0;
        while (i < N_SETTINGS && strcmp(settings[i].key, name))
            i++;
        if (i == N_SETTINGS) {
            char known[512];
            size_t used = 0;
            for (size_t k = 0; k < N_SETTINGS && used < sizeof known; k++)
                used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "",
                                         settings[k].key);
            return file_error(err, path, key->start_mark, "unknown key \"%.64s\" (known: %s)", name,
                              known);
        }
        if (seen[i])
            return file_error(err, path, key->start_mark, "%s is set twice", name);
        seen[i] = true;
        if (value->type != YAML_SCALAR_NODE)
            return file_error(err, path, value->start_mark, "%s: expected a single value, got %s",
                              name, node_kind(value));

        value_kind kind =
            value->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? VALUE_PLAIN : VALUE_QUOTED;
        char why[256];
        int rc = setting_apply(c, &settings[i], (const char *)value->data.scalar.value, kind, why,
                               sizeof why);
        if (rc == -ENOMEM)
            return nba_error_set(err, rc, "%s: out of memory", path);
        if (rc)
            return file_error(err, path, value->start_mark, "%s: %s", name, why);
    }
    return 0;
}

int config_load_file(config *c, const char *path, nba_error *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_parser = false, have_doc = false;
    int rc = 0;

    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = -errno;
        return nba_error_set(err, rc, "cannot read config file %s: %s", path, strerror(-rc));
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = nba_error_set(err, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    have_parser = true;
    yaml_parser_set_input_file(&parser, f);

    if (!yaml_parser_load(&parser, &doc))
        goto syntax;
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) /* an empty file changes nothing */
        rc = apply_mapping(c, path, &doc, root, err);
    if (rc)
        goto out;

    /* A second document would be ignored silently by a reader that stops at
     * the first: refuse it instead. */
    yaml_document_delete(&doc);
    have_doc = false;
    if (!yaml_parser_load(&parser, &doc))
        goto syntax;
    have_doc = true;
    root = yaml_document_get_root_node(&doc);
    if (root)
        rc = file_error(err, path, root->start_mark,
                        "a config file holds one document; found another");
    goto out;

syntax:
    rc = nba_error_set(err, -EINVAL, "%s:%zu:%zu: invalid YAML: %s%s%s", path,
                       parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                       parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                       parser.context ? parser.context : "");
out:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

/* ---- the command line ---- */

enum flag_kind { FLAG_SETTING, FLAG_CONFIG, FLAG_HELP, FLAG_VERSION };

/* One option as written on the command line. */
typedef struct cli_option {
    enum flag_kind kind;
    const setting *setting; /* FLAG_SETTING */
    const char *value;      /* NULL for --help, --version */
} cli_option;

/* Reads the option at argv[*i] (and its value, which may be the next
 * argument), advancing *i past what it used. */
static int next_option(int argc, char **argv, int *i, cli_option *o, nba_error *err)
{
    const char *arg = argv[*i];
    (*i)++;
    if (!strcmp(arg, "-h"))
        arg = "--help";
    else if (!strcmp(arg, "-V"))
        arg = "--version";
    if (strncmp(arg, "--", 2) || !arg[2])
        return nba_error_set(err, -EINVAL, "unexpected argument \"%.64s\"", arg);

    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    memset(o, 0, sizeof *o);
    if (len == 4 && !strncmp(name, "help", len))
        o->kind = FLAG_HELP;
    else if (len == 7 && !strncmp(name, "version", len))
        o->kind = FLAG_VERSION;
    else if (len == 6 && !strncmp(name, "config", len))
        o->kind = FLAG_CONFIG;
    else {
        size_t k = 0;
        while (k < N_SETTINGS &&
               !(strlen(settings[k].flag) == len && !strncmp(settings[k].flag, name, len)))
            k++;
        if (k == N_SETTINGS)
            return nba_error_set(err, -EINVAL, "unknown option \"--%.*s\"", (int)len, name);
        o->kind = FLAG_SETTING;
        o->setting = &settings[k];
    }

    if (o->kind == FLAG_HELP || o->kind == FLAG_VERSION) {
        if (eq)
            return nba_error_set(err, -EINVAL, "--%.*s takes no value", (int)len, name);
        return 0;
    }
    if (eq) {
        o->value = eq + 1;
        return 0;
    }
    if (o->kind == FLAG_SETTING && o->setting->type == SET_BOOL) {
        o->value = "true"; /* --lock-memory alone */
        return 0;
    }
    /* A value that looks like an option is far more often a forgotten value
     * than a directory named "--rules". */
    if (*i >= argc || !strncmp(argv[*i], "--", 2))
        return nba_error_set(err, -EINVAL, "--%s needs a value", name);
    o->value = argv[(*i)++];
    return 0;
}

int config_from_args(config *c, int argc, char **argv, nba_error *err)
{
    const char *config_path = NULL;
    bool help = false, version = false;
    cli_option o;
    int rc = config_init(c);
    if (rc)
        return nba_error_set(err, rc, "out of memory");

    /* First pass: check the syntax of the whole line and find --config,
     * which is read before anything else wherever it stands. */
    for (int i = 1; i < argc;) {
        rc = next_option(argc, argv, &i, &o, err);
        if (rc)
            return rc;
        if (o.kind == FLAG_HELP)
            help = true;
        else if (o.kind == FLAG_VERSION)
            version = true;
        else if (o.kind == FLAG_CONFIG) {
            if (config_path)
                return nba_error_set(err, -EINVAL, "--config given twice");
            if (!*o.value)
                return nba_error_set(err, -EINVAL, "--config: expected a file name");
            config_path = o.value;
        }
    }
    if (help) {
        fputs(usage_text, stdout);
        return 1;
    }
    if (version) {
        printf("nbad %s\n", NBA_VERSION);
        return 1;
    }
    if (config_path) {
        rc = config_load_file(c, config_path, err);
        if (rc)
            return rc;
    }

    /* Second pass: the options override the file, in order. */
    for (int i = 1; i < argc;) {
        rc = next_option(argc, argv, &i, &o, err);
        if (rc)
            return rc;
        if (o.kind != FLAG_SETTING)
            continue;
        char why[256];
        rc = setting_apply(c, o.setting, o.value, VALUE_ARG, why, sizeof why);
        if (rc == -ENOMEM)
            return nba_error_set(err, rc, "out of memory");
        if (rc)
            return nba_error_set(err, rc, "--%s: %s", o.setting->flag, why);
    }

    if (!c->db_dir)
        return nba_error_set(err, -EINVAL,
                             "no database: give --db DIR or set db: in the config file");
    if (!c->rules_path)
        return nba_error_set(err, -EINVAL,
                             "no rule file: give --rules FILE or set rules: in the config file");
    if (!c->tls_cert != !c->tls_key)
        return nba_error_set(err, -EINVAL, "TLS needs both a certificate and its key: set %s too",
                             c->tls_cert ? "tls_key (--tls-key)" : "tls_cert (--tls-cert)");
    if (c->tls_client_ca && !c->tls_cert)
        return nba_error_set(err, -EINVAL,
                             "tls_client_ca needs TLS on: set tls_cert and tls_key too");
    return 0;
}
