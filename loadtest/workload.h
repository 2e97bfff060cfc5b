/* workload.h - what the simulated kiosks, desks and IVR lines send.
 *
 * The load generator must cost less than the server it measures, so every
 * request is encoded once, before the run: workload_build() draws a pool of
 * contact events (customers by popularity, channels and touchpoints by the
 * configured mix, a flight and a booked cabin) and packs each one as an
 * nba.v1.Request body without its id. Sending is then workload_frame(): a
 * frame header, the id field and a memcpy of the body. The id goes first,
 * where a packer would put it, so the frame is exactly what protobuf-c
 * itself would produce for that request.
 *
 * Customer ids are those of customer_id.h, the ids nbagen writes (C0000001,
 * C0000002, ...). Unknown customers get the prefix, an "X" and digits, which
 * nbagen never writes.
 */
#ifndef NBA_WORKLOAD_H
#define NBA_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "frame.h"

#define WORKLOAD_CHANNELS       7 /* values of nba.v1.Channel */
#define WORKLOAD_MAX_TOUCHPOINT 8 /* touchpoints in one --touchpoints list */

typedef struct touchpoint_mix {
    unsigned count;
    char names[WORKLOAD_MAX_TOUCHPOINT][32];
    unsigned weights[WORKLOAD_MAX_TOUCHPOINT];
} touchpoint_mix;

typedef struct workload {
    uint64_t customers; /* ids 1..customers */
    char id_prefix[16];
    int id_width; /* 0: the width nbagen uses for this many customers */
    double skew;  /* Zipf exponent of customer popularity, 0 = uniform */
    double unknown_ratio;
    unsigned channel_weights[WORKLOAD_CHANNELS]; /* by nba.v1.Channel value */
    touchpoint_mix touchpoints;                  /* count 0: a realistic mix per channel */
    int ping;                                    /* send Ping requests instead of contact events */
    uint64_t seed;
    size_t pool_size; /* distinct pre-encoded requests */
    /* Every customer exactly once, in a random order, instead of by
     * popularity: the pool holds one request per customer (pool_size is
     * ignored), so a run of at most `customers` requests never meets a
     * customer twice (measuring decisions that write, which a repeat would
     * answer from the stored decision). */
    int each_once;
} workload;

typedef struct request_pool {
    uint8_t *bytes;   /* request bodies without id, back to back */
    uint32_t *offset; /* body i is bytes[offset[i] .. offset[i + 1]) */
    size_t count;
    size_t max_frame; /* bytes of the largest frame workload_frame() writes */
} request_pool;

/* Sets w to the defaults: 1000 customers, prefix "C", uniform popularity,
 * kiosk 50% desk 30% ivr 20%, 65536 requests in the pool, seed 1. */
void workload_defaults(workload *w);

/* Parses a channel mix such as "kiosk=50,desk=30,ivr=20" (names of
 * nba.v1.Channel, any case; weights are relative) into w. Returns 0 or
 * -EINVAL with a message. */
int workload_parse_mix(workload *w, const char *text, nba_error *err);

/* Parses a touchpoint mix such as "checkin=80,boarding=15,call=5", used for
 * every channel instead of the per-channel default. Returns 0 or -EINVAL. */
int workload_parse_touchpoints(workload *w, const char *text, nba_error *err);

/* The digit width of customer ids for w: id_width, or customer_id_width()
 * of the customer count. */
int workload_id_width(const workload *w);

/* Writes a one-line description of the channel mix ("kiosk 50% desk 30%
 * ivr 20%") into buf. */
void workload_describe_mix(const workload *w, char *buf, size_t cap);

/* Draws and encodes w->pool_size requests. Returns 0, -EINVAL (a bad
 * workload, with a message) or -ENOMEM. Free the pool with
 * request_pool_free(). */
int workload_build(const workload *w, request_pool *out, nba_error *err);

void request_pool_free(request_pool *p);

/* Writes request i of the pool with the given id as one complete frame into
 * out, which must hold p->max_frame bytes. Returns the bytes written. */
static inline size_t workload_frame(const request_pool *p, size_t i, uint64_t id, uint8_t *out)
{
    const uint8_t *body = p->bytes + p->offset[i];
    size_t body_len = p->offset[i + 1] - p->offset[i];
    uint8_t *q = out + FRAME_HEADER_SIZE;
    *q++ = 0x08; /* field 1 (id), wire type varint */
    while (id >= 0x80) {
        *q++ = (uint8_t)(id | 0x80);
        id >>= 7;
    }
    *q++ = (uint8_t)id;
    memcpy(q, body, body_len);
    q += body_len;
    size_t total = (size_t)(q - out);
    frame_put_length(out, (uint32_t)(total - FRAME_HEADER_SIZE));
    return total;
}

#endif
