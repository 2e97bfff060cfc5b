/* resp.h - just enough of Redis's protocol (RESP2) for nbaload to drive the
 * Redis + Lua peer (loadtest/peers/redis/) the way it drives nbad.
 *
 * Requests: the nbad request pool (workload.h) is translated once, before the
 * run, into complete EVALSHA commands of the peer's checkin.lua, so that the
 * same contact events, in the same order, reach both systems and sending is a
 * memcpy in both cases.
 *
 * Replies: RESP has no length prefix, so a reply is cut by walking its value
 * headers and skipping bulk payloads by their length (resp_cut), without
 * copying or decoding anything. resp_decision() then reads the few header
 * fields of the script's reply that nbaload reports on.
 *
 * Only RESP2 is spoken (no HELLO 3): simple strings, errors, integers, bulk
 * strings and arrays, nested to any depth.
 */
#ifndef NBA_RESP_H
#define NBA_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "response_scan.h"
#include "workload.h"

/* Bytes of the SHA1 hex digest that names a loaded script. */
#define RESP_SHA_LEN 40

typedef enum resp_status {
    RESP_INCOMPLETE, /* the value goes on past the bytes available: wait for more */
    RESP_READY,      /* a whole value is there */
    RESP_MALFORMED,  /* not RESP2, or longer than the limit: the stream is lost */
} resp_status;

typedef struct resp_value {
    size_t len; /* bytes of the whole value, nested values and CRLFs included */
    char type;  /* '+' simple string, '-' error, ':' integer, '$' bulk, '*' array */
    int64_t n;  /* ':' the integer, '$' the payload length, '*' the element count (-1: null) */
} resp_value;

/* Looks at buf[0..avail), where a value starts, and says whether a whole
 * value of at most max_len bytes is there; *out is set for RESP_READY.
 * Nothing is consumed: the caller advances by out->len. Nested arrays are
 * walked without recursion. */
resp_status resp_cut(const uint8_t *buf, size_t avail, size_t max_len, resp_value *out);

/* Reads what nbaload reports from one whole value v at buf (as cut by
 * resp_cut): an error reply is RESPONSE_ERROR; +PONG is RESPONSE_PONG; an
 * array shaped like checkin.lua's reply (customer id, known as an integer,
 * language, ruleset, then one array per action) is RESPONSE_DECISION with
 * known and actions set; anything else is RESPONSE_NONE. The id is left 0:
 * RESP answers in order and carries none. */
void resp_decision(const uint8_t *buf, const resp_value *v, response_info *out);

/* Writes one command of argc arguments (argv[i] of lens[i] bytes) as a RESP
 * array of bulk strings into out, which holds cap bytes. Returns the bytes
 * written, or 0 when they would not fit. */
size_t resp_command(uint8_t *out, size_t cap, size_t argc, const char *const *argv,
                    const size_t *lens);

/* Translates every request of an nbad pool into a command of the peer: a
 * contact event becomes
 *   <verb> <name> 2 cust:<id> inc:<id> <id> <channel> <touchpoint> <cabin> <language>
 * with verb "EVALSHA" and name the SHA1 of the loaded checkin.lua, or verb
 * "FCALL" and name the function it was registered as (channel as the rule
 * files name it: "kiosk", "desk", "ivr", ...; cabin from the context, ""
 * when absent; the language picked at the contact point, "" when none), and
 * a Ping becomes PING. out is a pool of the same count whose entries are
 * complete commands (send them as they are) and whose max_frame is the
 * longest one. Returns 0, -EINVAL (another verb, a sha that is not 40 hex
 * digits, a body that does not decode; with a message) or -ENOMEM. Free out
 * with request_pool_free(). */
int resp_pool_build(const request_pool *in, const char *verb, const char *name, request_pool *out,
                    nba_error *err);

#endif
