/* record.h - the stored records (nba.v1.Customer, nba.v1.Incident,
 * nba.v1.HistoryEntry) decoded from their LMDB values straight into an
 * arena.
 *
 * The same messages protobuf-c's generated unpack functions produce (every
 * field, defaults for absent ones, unknown fields skipped), decoded in one
 * pass by code that knows the messages: no descriptor lookups, no
 * per-field allocation; the record is copied once into the arena and its
 * strings are NUL-terminated in place in that copy. Reading a customer,
 * their incidents and their contact history is on every decision's path;
 * protobuf-c's generic unpack took most of it.
 *
 * Ownership: everything returned lives in the arena, so it outlives the
 * LMDB snapshot the bytes came from, until the arena is reset. Messages
 * decoded here are released by arena_reset(), never by *_free_unpacked().
 */
#ifndef NBA_RECORD_H
#define NBA_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "nba.pb-c.h"

/* Decodes buf[0..len) as an nba.v1.Customer. Returns 0, -EBADMSG when the
 * bytes are not a valid encoding (truncated, a known field with the wrong
 * wire type, a group), or -ENOMEM. */
int record_decode_customer(const uint8_t *buf, size_t len, arena *a, Nba__V1__Customer **out);

/* Decodes buf[0..len) as an nba.v1.Incident. Errors as
 * record_decode_customer(). */
int record_decode_incident(const uint8_t *buf, size_t len, arena *a, Nba__V1__Incident **out);

/* Decodes buf[0..len) as an nba.v1.HistoryEntry (the contact history that
 * nbad keeps, read on every decision about a customer who has one). Errors
 * as record_decode_customer(). */
int record_decode_history(const uint8_t *buf, size_t len, arena *a, Nba__V1__HistoryEntry **out);

#endif
