/* pb_read.h - reading the protobuf wire format by hand, for the decoders
 * on the request path: requests (wire.c), stored records (record.c) and
 * the lookup keys of a customer record (loader_keys.c); and for the load
 * tools' scanners, which read a message's few fields of interest without
 * decoding it (loadtest/request_scan.c, loadtest/response_scan.c).
 *
 * A field is a key varint (field number << 3 | wire type), then a varint
 * (0), 8 little-endian bytes (1), a varint length and that many bytes (2),
 * or 4 bytes (5). What these functions accept is what protobuf-c accepts:
 * keys and lengths of at most 5 bytes, field numbers 1 .. 2^29 - 1,
 * varints of at most 10 bytes; test_wire, test_record and the fuzzers hold
 * the decoders to protobuf-c's results.
 *
 * Strings are left where they are in a copy of the message that the
 * decoder owns (pb_strings): each is NUL-terminated in place, on the byte
 * after it, once that byte (the next field's key, or the end of the
 * message, for which the copy has one byte more) has been read. One copy
 * per message instead of one per string.
 *
 * Everything is static inline: these run for every field of every request.
 */
#ifndef NBA_PB_READ_H
#define NBA_PB_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pb_wire_type { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

typedef struct pb_reader {
    const uint8_t *p, *end;
} pb_reader;

/* A varint of at most max_bytes bytes. Keys and lengths are mostly one
 * byte: that case first. */
static inline bool pb_varint(pb_reader *r, unsigned max_bytes, uint64_t *out)
{
    if (r->p < r->end && *r->p < 0x80) {
        *out = *r->p++;
        return true;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < max_bytes && r->p < r->end; i++) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* A field's key. */
static inline bool pb_key(pb_reader *r, uint32_t *field, unsigned *wire)
{
    uint64_t k;
    if (!pb_varint(r, 5, &k) || k >> 3 == 0 || k >> 3 >= (1u << 29))
        return false;
    *field = (uint32_t)(k >> 3);
    *wire = (unsigned)(k & 7);
    return true;
}

/* The bytes of a length-delimited value. */
static inline bool pb_len(pb_reader *r, const uint8_t **data, size_t *len)
{
    uint64_t n;
    if (!pb_varint(r, 5, &n) || n > UINT32_MAX || n > (uint64_t)(r->end - r->p))
        return false;
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return true;
}

/* Steps over a value of wire type `wire`. Groups (3 and 4) were never used
 * by this schema: malformed. */
static inline bool pb_skip(pb_reader *r, unsigned wire)
{
    uint64_t v;
    const uint8_t *d;
    size_t n;
    switch (wire) {
    case PB_VARINT:
        return pb_varint(r, 10, &v);
    case PB_I64:
        if (r->end - r->p < 8)
            return false;
        r->p += 8;
        return true;
    case PB_LEN:
        return pb_len(r, &d, &n);
    case PB_I32:
        if (r->end - r->p < 4)
            return false;
        r->p += 4;
        return true;
    default:
        return false;
    }
}

/* One field of a message that is scanned rather than decoded: its number,
 * its wire type and its value, a varint's or the bytes of a
 * length-delimited one (data points into the message); a fixed-size value
 * is stepped over. */
typedef struct pb_field {
    uint32_t number;
    unsigned wire;
    uint64_t varint;     /* PB_VARINT */
    const uint8_t *data; /* PB_LEN */
    size_t len;
} pb_field;

/* Reads the field at r into *f; false when it is malformed. */
static inline bool pb_next_field(pb_reader *r, pb_field *f)
{
    if (!pb_key(r, &f->number, &f->wire))
        return false;
    switch (f->wire) {
    case PB_VARINT:
        return pb_varint(r, 10, &f->varint);
    case PB_LEN:
        return pb_len(r, &f->data, &f->len);
    default:
        return pb_skip(r, f->wire);
    }
}

/* The strings of one decoder's copy of a message. */
typedef struct pb_strings {
    uint8_t *nul; /* the byte after the last string read, until it is read */
} pb_strings;

/* pb_key, then terminates the string before the key. */
static inline bool pb_next_key(pb_strings *st, pb_reader *r, uint32_t *field, unsigned *wire)
{
    if (!pb_key(r, field, wire))
        return false;
    if (st->nul) {
        *st->nul = '\0';
        st->nul = NULL;
    }
    return true;
}

/* A string value, read from the decoder's own copy (r reads it). */
static inline bool pb_string(pb_reader *r, unsigned wire, pb_strings *st, char **out)
{
    const uint8_t *d;
    size_t n;
    if (wire != PB_LEN || !pb_len(r, &d, &n))
        return false;
    *out = (char *)d;
    st->nul = (uint8_t *)d + n;
    return true;
}

/* A map<string, string> entry at buf[0..len) of the decoder's copy: key
 * (field 1) and value (field 2) left in place like any string, other fields
 * skipped; *key and *value are untouched when absent. */
static inline bool pb_string_pair(const uint8_t *buf, size_t len, pb_strings *st, char **key,
                                  char **value)
{
    pb_reader r = {buf, buf + len};
    while (r.p < r.end) {
        uint32_t field;
        unsigned wire;
        if (!pb_next_key(st, &r, &field, &wire))
            return false;
        bool ok = field == 1   ? pb_string(&r, wire, st, key)
                  : field == 2 ? pb_string(&r, wire, st, value)
                               : pb_skip(&r, wire);
        if (!ok)
            return false;
    }
    return true;
}

/* Terminates the message's last string, on the copy's spare byte. */
static inline void pb_strings_end(pb_strings *st)
{
    if (st->nul)
        *st->nul = '\0';
}

#endif
