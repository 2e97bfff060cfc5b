/* resp.c - see resp.h. */
#include "resp.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nba.pb-c.h"

#define RESP_MAX_DIGITS 19 /* an int64 */

/* Why a value could not be cut at a position that needs more bytes: the
 * caller's bytes end there (wait for more) or the size limit does (give up). */
static resp_status need_more(size_t avail, size_t max_len)
{
    return avail >= max_len ? RESP_MALFORMED : RESP_INCOMPLETE;
}

/* Parses the decimal integer buf[from..to), an int64 with an optional minus
 * sign. */
static bool parse_int(const uint8_t *buf, size_t from, size_t to, int64_t *out)
{
    bool negative = from < to && buf[from] == '-';
    if (negative)
        from++;
    if (from == to || to - from > RESP_MAX_DIGITS)
        return false;
    uint64_t v = 0;
    for (size_t i = from; i < to; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(buf[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = negative ? -(int64_t)v : (int64_t)v;
    return true;
}

resp_status resp_cut(const uint8_t *buf, size_t avail, size_t max_len, resp_value *out)
{
    size_t lim = avail < max_len ? avail : max_len;
    size_t pos = 0;
    uint64_t pending = 1; /* values still to walk: arrays add their elements */
    bool top = true;
    while (pending > 0) {
        if (pos >= lim)
            return need_more(avail, max_len);
        char type = (char)buf[pos];
        const uint8_t *cr = memchr(buf + pos + 1, '\r', lim - pos - 1);
        if (!cr || (size_t)(cr - buf) + 1 >= lim)
            return need_more(avail, max_len);
        size_t line_end = (size_t)(cr - buf); /* index of the '\r' */
        if (buf[line_end + 1] != '\n')
            return RESP_MALFORMED;
        int64_t n = 0;
        size_t next = line_end + 2;
        switch (type) {
        case '+':
        case '-':
            break;
        case ':':
            if (!parse_int(buf, pos + 1, line_end, &n))
                return RESP_MALFORMED;
            break;
        case '$':
            if (!parse_int(buf, pos + 1, line_end, &n) || n < -1 ||
                (n > 0 && (uint64_t)n > max_len))
                return RESP_MALFORMED;
            if (n >= 0) {
                size_t end = next + (size_t)n + 2;
                if (end > lim)
                    return need_more(avail, max_len);
                if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
                    return RESP_MALFORMED;
                next = end;
            }
            break;
        case '*':
            /* every element takes at least 3 bytes ("+\r\n") */
            if (!parse_int(buf, pos + 1, line_end, &n) || n < -1 ||
                (n > 0 && (uint64_t)n > max_len / 3))
                return RESP_MALFORMED;
            if (n > 0)
                pending += (uint64_t)n;
            break;
        default:
            return RESP_MALFORMED;
        }
        if (top) {
            out->type = type;
            out->n = n;
            top = false;
        }
        pending--;
        pos = next;
    }
    out->len = pos;
    return RESP_READY;
}

void resp_decision(const uint8_t *buf, const resp_value *v, response_info *out)
{
    *out = (response_info){0};
    switch (v->type) {
    case '-':
        out->kind = RESPONSE_ERROR;
        return;
    case '+':
        if (v->len == 7 && memcmp(buf, "+PONG\r\n", 7) == 0)
            out->kind = RESPONSE_PONG;
        return;
    case '*':
        break;
    default:
        return;
    }
    if (v->n < 4)
        return;
    /* [customer_id, known, language, ruleset, action...] */
    const uint8_t *p = memchr(buf, '\n', v->len);
    size_t pos = (size_t)(p - buf) + 1;
    resp_value id, known;
    if (resp_cut(buf + pos, v->len - pos, v->len, &id) != RESP_READY || id.type != '$')
        return;
    pos += id.len;
    if (resp_cut(buf + pos, v->len - pos, v->len, &known) != RESP_READY || known.type != ':')
        return;
    out->kind = RESPONSE_DECISION;
    out->known = known.n != 0;
    out->actions = (uint32_t)(v->n - 4);
}

/* Writes "<prefix><n>\r\n" at out; returns the bytes or 0 when cap is short. */
static size_t put_header(uint8_t *out, size_t cap, char prefix, size_t n)
{
    char text[32];
    int len = snprintf(text, sizeof text, "%c%zu\r\n", prefix, n);
    if (len < 0 || (size_t)len > cap)
        return 0;
    memcpy(out, text, (size_t)len);
    return (size_t)len;
}

size_t resp_command(uint8_t *out, size_t cap, size_t argc, const char *const *argv,
                    const size_t *lens)
{
    size_t used = put_header(out, cap, '*', argc);
    if (!used)
        return 0;
    for (size_t i = 0; i < argc; i++) {
        size_t h = put_header(out + used, cap - used, '$', lens[i]);
        if (!h || cap - used - h < lens[i] + 2)
            return 0;
        used += h;
        memcpy(out + used, argv[i], lens[i]);
        used += lens[i];
        out[used++] = '\r';
        out[used++] = '\n';
    }
    return used;
}

static bool is_sha(const char *sha)
{
    if (strlen(sha) != RESP_SHA_LEN)
        return false;
    for (size_t i = 0; i < RESP_SHA_LEN; i++)
        if (!isxdigit((unsigned char)sha[i]))
            return false;
    return true;
}

/* The channel as rule files name it: "kiosk" for KIOSK, "" when unspecified. */
static void channel_name(Nba__V1__Channel ch, char *out, size_t cap)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&nba__v1__channel__descriptor, (int)ch);
    size_t n = 0;
    if (v && ch != NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED)
        for (const char *p = v->name; *p && n < cap - 1; p++)
            out[n++] = (char)tolower((unsigned char)*p);
    out[n] = '\0';
}

/* One request body as a command of the peer, into out (cap bytes). Returns
 * the bytes written, 0 when they do not fit, or -1 when the body does not
 * decode or holds neither a contact event nor a ping. */
static long translate(const uint8_t *body, size_t len, const char *verb, const char *name,
                      uint8_t *out, size_t cap)
{
    Nba__V1__Request *req = nba__v1__request__unpack(NULL, len, body);
    if (!req)
        return -1;
    long n = -1;
    if (req->body_case == NBA__V1__REQUEST__BODY_PING) {
        const char *argv[] = {"PING"};
        const size_t lens[] = {4};
        n = (long)resp_command(out, cap, 1, argv, lens);
    } else if (req->body_case == NBA__V1__REQUEST__BODY_CONTACT) {
        const Nba__V1__ContactEvent *ev = req->contact;
        char cust[256], inc[256], channel[32];
        snprintf(cust, sizeof cust, "cust:%s", ev->customer_id);
        snprintf(inc, sizeof inc, "inc:%s", ev->customer_id);
        channel_name(ev->channel, channel, sizeof channel);
        const char *cabin = "";
        for (size_t i = 0; i < ev->n_context; i++)
            if (strcmp(ev->context[i]->key, "cabin") == 0)
                cabin = ev->context[i]->value;
        const char *argv[] = {verb,    name,           "2",   cust,        inc, ev->customer_id,
                              channel, ev->touchpoint, cabin, ev->language};
        size_t lens[10];
        for (size_t i = 0; i < 10; i++)
            lens[i] = strlen(argv[i]);
        n = (long)resp_command(out, cap, 10, argv, lens);
    }
    nba__v1__request__free_unpacked(req, NULL);
    return n;
}

int resp_pool_build(const request_pool *in, const char *verb, const char *name, request_pool *out,
                    nba_error *err)
{
    *out = (request_pool){0};
    if (strcmp(verb, "EVALSHA") == 0 && !is_sha(name))
        return nba_error_set(err, -EINVAL, "a script's SHA1 is 40 hex digits, not \"%s\"", name);
    if (strcmp(verb, "EVALSHA") != 0 &&
        (strcmp(verb, "FCALL") != 0 || !*name || strlen(name) > 128))
        return nba_error_set(err, -EINVAL, "EVALSHA <sha> or FCALL <function name>, not %s %s",
                             verb, name);
    int rc = 0;
    size_t cap = in->count * 192 + 4096, used = 0;
    out->bytes = malloc(cap);
    out->offset = malloc((in->count + 1) * sizeof *out->offset);
    if (!out->bytes || !out->offset) {
        rc = nba_error_set(err, -ENOMEM, "out of memory for %zu commands", in->count);
        goto fail;
    }
    for (size_t i = 0; i < in->count; i++) {
        uint8_t command[2048];
        long n = translate(in->bytes + in->offset[i], in->offset[i + 1] - in->offset[i], verb, name,
                           command, sizeof command);
        if (n <= 0) {
            rc = nba_error_set(err, -EINVAL, "request %zu of the pool %s", i,
                               n < 0 ? "is neither a contact event nor a ping"
                                     : "does not fit a command of 2048 bytes");
            goto fail;
        }
        if (cap - used < (size_t)n) {
            size_t bigger = cap * 2;
            uint8_t *b = bigger < UINT32_MAX ? realloc(out->bytes, bigger) : NULL;
            if (!b) {
                rc = nba_error_set(err, -ENOMEM, "out of memory for %zu commands", in->count);
                goto fail;
            }
            out->bytes = b;
            cap = bigger;
        }
        memcpy(out->bytes + used, command, (size_t)n);
        out->offset[i] = (uint32_t)used;
        used += (size_t)n;
        if ((size_t)n > out->max_frame)
            out->max_frame = (size_t)n;
    }
    out->offset[in->count] = (uint32_t)used;
    out->count = in->count;
    return 0;
fail:
    request_pool_free(out);
    return rc;
}
