/* nbactl outbox and nbactl history: the letter service's side of the
 * recovery loop, and the contact history, read from the state nbad writes
 * (include/state.h). Safe while nbad serves: LMDB serialises the writes of
 * both processes, and readers never wait.
 *
 *   nbactl outbox list --db DIR [--json]
 *   nbactl outbox export --db DIR OUTDIR
 *   nbactl outbox ack --db DIR ID...
 *   nbactl history --db DIR [--customer ID] [--json]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "facts_load.h"
#include "nbactl.h"
#include "state.h"

/* Opens DIR/state, which nbad creates when it first starts on DIR. */
static int open_state(const char *db, state **out)
{
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s/state", db) >= sizeof dir)
        return nbactl_usage("--db path too long");
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "nbactl: %s: no state yet (nbad creates it when it first serves %s)\n", dir,
                db);
        return EXIT_NOINPUT;
    }
    nba_error err;
    if (state_open(dir, 0, out, &err)) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_NOINPUT;
    }
    return EXIT_OK;
}

static void format_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&secs, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "-");
}

static const char *channel_name(Nba__V1__Channel ch)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&nba__v1__channel__descriptor, (int)ch);
    return v ? v->name : "?";
}

/* ---- the state in facts, for the in-process tools ---- */

int nbactl_state_open(const char *db, nbactl_state *s)
{
    *s = (nbactl_state){0};
    char dir[4096];
    struct stat sb;
    if ((size_t)snprintf(dir, sizeof dir, "%s/state", db) >= sizeof dir || stat(dir, &sb) != 0)
        return EXIT_OK;
    nba_error err;
    if (state_open(dir, 0, &s->st, &err) || state_reader_new(s->st, &s->reader, &err)) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        nbactl_state_close(s);
        return EXIT_NOINPUT;
    }
    return EXIT_OK;
}

int nbactl_state_add(nbactl_state *s, arena *a, facts *f)
{
    if (!s->reader)
        return 0;
    int rc = state_reader_begin(s->reader);
    if (rc)
        return rc;
    const uint8_t *stored;
    size_t stored_len;
    int64_t stored_at;
    rc = facts_add_state(s->reader, NULL, 0, a, f, &stored, &stored_len, &stored_at);
    state_reader_end(s->reader);
    return rc;
}

void nbactl_state_close(nbactl_state *s)
{
    state_reader_free(s->reader);
    state_close(s->st);
    *s = (nbactl_state){0};
}

/* ---- outbox list ---- */

static json_t *outbox_json(const Nba__V1__OutboxEntry *e)
{
    char at[32];
    format_time(e->created_at_ms, at, sizeof at);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id",
                     (json_int_t)e->id, "created_at", at, "customer_id", e->customer_id,
                     "incident_id", e->incident_id, "action", e->action, "rule_id", e->rule_id,
                     "language", e->language, "channel", channel_name(e->channel), "name", e->name,
                     "subject", e->subject, "text", e->text, "html", e->html, "exports",
                     (json_int_t)e->exports);
}

typedef struct list_ctx {
    json_t *array; /* NULL: readable output */
    size_t count;
} list_ctx;

static int list_one(void *arg, const Nba__V1__OutboxEntry *e)
{
    list_ctx *ctx = arg;
    ctx->count++;
    if (ctx->array)
        return json_array_append_new(ctx->array, outbox_json(e)) ? -ENOMEM : 0;
    char at[32];
    format_time(e->created_at_ms, at, sizeof at);
    printf("%-8" PRIu64 " %s  %-12s %-12s %-16s %-7s exported %u×  %s\n", e->id, at, e->customer_id,
           e->incident_id[0] ? e->incident_id : "-", e->action, e->language, e->exports,
           e->subject);
    return 0;
}

static int outbox_list(state *st, bool json)
{
    list_ctx ctx = {json ? json_array() : NULL, 0};
    nba_error err;
    int rc = state_outbox_list(st, list_one, &ctx, &err);
    if (rc) {
        json_decref(ctx.array);
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_SOFTWARE;
    }
    if (json) {
        json_dumpf(ctx.array, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(ctx.array);
    } else {
        printf("%zu letter(s) waiting\n", ctx.count);
    }
    return EXIT_OK;
}

/* ---- outbox export ---- */

/* Writes text into dir/name through a temporary file and a rename, so the
 * letter service never picks up half a letter. */
static int write_file(const char *dir, const char *name, const char *text)
{
    char path[4096], tmp[4096 + 8];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return -ENAMETOOLONG;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            unlink(tmp);
            return e;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    return rename(tmp, path) == 0 ? 0 : -errno;
}

typedef struct export_ctx {
    const char *dir;
    uint64_t *ids;
    size_t n, cap;
    int failed; /* a negative errno */
} export_ctx;

static int export_one(void *arg, const Nba__V1__OutboxEntry *e)
{
    export_ctx *ctx = arg;
    char name[64];
    snprintf(name, sizeof name, "%" PRIu64 ".txt", e->id);
    /* The plain letter starts with its subject, as a letter service that
     * only reads text would print it. */
    size_t len = strlen(e->subject) + strlen(e->text) + 4;
    char *text = malloc(len);
    if (!text)
        return -ENOMEM;
    snprintf(text, len, "%s\n\n%s\n", e->subject, e->text);
    int rc = write_file(ctx->dir, name, text);
    free(text);
    if (rc == 0) {
        snprintf(name, sizeof name, "%" PRIu64 ".html", e->id);
        rc = write_file(ctx->dir, name, e->html);
    }
    if (rc == 0) {
        json_t *meta = outbox_json(e);
        json_object_del(meta, "text");
        json_object_del(meta, "html");
        char *dumped = json_dumps(meta, JSON_INDENT(2));
        json_decref(meta);
        snprintf(name, sizeof name, "%" PRIu64 ".json", e->id);
        rc = dumped ? write_file(ctx->dir, name, dumped) : -ENOMEM;
        free(dumped);
    }
    if (rc) {
        fprintf(stderr, "nbactl: %s: cannot write letter %" PRIu64 ": %s\n", ctx->dir, e->id,
                strerror(-rc));
        ctx->failed = rc;
        return rc;
    }
    if (ctx->n == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 64;
        uint64_t *ids = realloc(ctx->ids, cap * sizeof *ids);
        if (!ids)
            return -ENOMEM;
        ctx->ids = ids;
        ctx->cap = cap;
    }
    ctx->ids[ctx->n++] = e->id;
    return 0;
}

static int outbox_export(state *st, const char *dir)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "nbactl: %s: %s\n", dir, strerror(errno));
        return EXIT_NOINPUT;
    }
    export_ctx ctx = {.dir = dir};
    nba_error err;
    int rc = state_outbox_list(st, export_one, &ctx, &err);
    /* What was written is counted as exported even when a later letter
     * failed: it is on disk, and it is exported again until acknowledged. */
    int marked = ctx.n ? state_outbox_mark_exported(st, ctx.ids, ctx.n, &err) : 0;
    free(ctx.ids);
    if (rc || marked) {
        if (!ctx.failed)
            fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_SOFTWARE;
    }
    printf("exported %zu letter(s) to %s (each as ID.txt, ID.html and ID.json); acknowledge "
           "them with: nbactl outbox ack --db DIR ID...\n",
           ctx.n, dir);
    return EXIT_OK;
}

/* ---- outbox ack ---- */

static int outbox_ack(state *st, int n, char **args)
{
    uint64_t *ids = calloc((size_t)n, sizeof *ids);
    if (!ids)
        return EXIT_SOFTWARE;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(args[i], &end, 10);
        if (args[i][0] == '\0' || args[i][0] == '-' || *end != '\0' || errno) {
            free(ids);
            fprintf(stderr, "nbactl: '%s' is not a letter id\n", args[i]);
            return EXIT_USAGE;
        }
        ids[i] = v;
    }
    size_t acked = 0;
    nba_error err;
    int rc = state_outbox_ack(st, ids, (size_t)n, &acked, &err);
    free(ids);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_SOFTWARE;
    }
    printf("acknowledged %zu letter(s)", acked);
    if ((size_t)n > acked)
        printf("; %zu were not waiting (acknowledged before, or never given)", (size_t)n - acked);
    putchar('\n');
    return EXIT_OK;
}

/* ---- the commands ---- */

/* Parses --db and --json (and, for history, --customer); the rest stays in
 * argv from optind. */
static int parse_common(int argc, char **argv, const char **db, bool *json, const char **customer)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"customer", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            *db = optarg;
            break;
        case 'j':
            *json = true;
            break;
        case 'c':
            if (!customer)
                return nbactl_usage("--customer is an option of nbactl history");
            *customer = optarg;
            break;
        case 'h':
            return nbactl_help();
        default:
            return nbactl_usage(NULL);
        }
    }
    if (!*db)
        return nbactl_usage("--db DIR is required");
    return -1;
}

int nbactl_outbox(int argc, char **argv)
{
    if (argc < 2)
        return nbactl_usage("outbox needs list, export or ack");
    const char *verb = argv[1];
    const char *db = NULL;
    bool json = false;
    int rc = parse_common(argc - 1, argv + 1, &db, &json, NULL);
    if (rc >= 0)
        return rc;
    int rest = argc - 1 - optind;
    char **args = argv + 1 + optind;

    if (strcmp(verb, "list") == 0 && rest != 0)
        return nbactl_usage("outbox list takes no arguments");
    if (strcmp(verb, "export") == 0 && rest != 1)
        return nbactl_usage("outbox export takes one directory");
    if (strcmp(verb, "ack") == 0 && rest < 1)
        return nbactl_usage("outbox ack takes the ids of the letters sent");
    if (strcmp(verb, "list") != 0 && strcmp(verb, "export") != 0 && strcmp(verb, "ack") != 0)
        return nbactl_usage("outbox needs list, export or ack");

    state *st;
    rc = open_state(db, &st);
    if (rc)
        return rc;
    if (strcmp(verb, "list") == 0)
        rc = outbox_list(st, json);
    else if (strcmp(verb, "export") == 0)
        rc = outbox_export(st, args[0]);
    else
        rc = outbox_ack(st, rest, args);
    state_close(st);
    return rc;
}

typedef struct history_ctx {
    json_t *array;
    size_t count;
} history_ctx;

static int history_one(void *arg, const Nba__V1__HistoryEntry *e)
{
    history_ctx *ctx = arg;
    ctx->count++;
    char at[32];
    format_time(e->at_ms, at, sizeof at);
    if (!ctx->array) {
        printf("%s  %-12s %-12s %-8s %-10s %-16s %s\n", at, e->customer_id,
               e->incident_id[0] ? e->incident_id : "-", channel_name(e->channel), e->touchpoint,
               e->action, e->rule_id);
        return 0;
    }
    json_t *params = json_object(), *context = json_object();
    for (size_t i = 0; i < e->n_params; i++)
        json_object_set_new(params, e->params[i]->key, json_string(e->params[i]->value));
    for (size_t i = 0; i < e->n_context; i++)
        json_object_set_new(context, e->context[i]->key, json_string(e->context[i]->value));
    json_t *o =
        json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "at", at, "at_ms",
                  (json_int_t)e->at_ms, "customer_id", e->customer_id, "incident_id",
                  e->incident_id, "channel", channel_name(e->channel), "touchpoint", e->touchpoint,
                  "action", e->action, "rule_id", e->rule_id, "params", params, "context", context);
    return json_array_append_new(ctx->array, o) ? -ENOMEM : 0;
}

int nbactl_history(int argc, char **argv)
{
    const char *db = NULL, *customer = NULL;
    bool json = false;
    int rc = parse_common(argc, argv, &db, &json, &customer);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return nbactl_usage("history takes no positional arguments");
    state *st;
    rc = open_state(db, &st);
    if (rc)
        return rc;
    history_ctx ctx = {json ? json_array() : NULL, 0};
    nba_error err;
    int walked = state_history_list(st, customer, history_one, &ctx, &err);
    state_close(st);
    if (walked) {
        json_decref(ctx.array);
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_SOFTWARE;
    }
    if (json) {
        json_dumpf(ctx.array, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(ctx.array);
    } else {
        printf("%zu entr%s\n", ctx.count, ctx.count == 1 ? "y" : "ies");
    }
    return EXIT_OK;
}
