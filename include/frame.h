/* frame.h - the wire framing: a 4-byte unsigned big-endian length N, then N
 * bytes of one protobuf message. Shared by the daemon, nbactl, the load
 * generator and the tests, so that a frame is cut in exactly one way. */
#ifndef NBA_FRAME_H
#define NBA_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#define FRAME_HEADER_SIZE 4u
#define FRAME_DEFAULT_MAX (64u * 1024u)

typedef enum frame_status {
    FRAME_INCOMPLETE, /* fewer bytes than the header says: wait for more */
    FRAME_READY,      /* a whole frame is in the buffer */
    FRAME_TOO_LARGE,  /* the header announces more than max_body bytes */
} frame_status;

/* Looks at the first `avail` bytes of buf (a stream position where a frame
 * starts) and says whether a whole frame of at most max_body body bytes is
 * there. *body_len is set as soon as the header is complete (for READY and
 * TOO_LARGE). Nothing is allocated and nothing is consumed: the size is
 * checked before anyone allocates for the body. */
frame_status frame_cut(const uint8_t *buf, size_t avail, uint32_t max_body, uint32_t *body_len);

/* Writes the big-endian length into header[0..4). */
void frame_put_length(uint8_t header[FRAME_HEADER_SIZE], uint32_t body_len);

/* Reads the big-endian length from header[0..4). */
uint32_t frame_get_length(const uint8_t header[FRAME_HEADER_SIZE]);

/* The number of bytes frame_pack() will write for msg: header plus body. */
size_t frame_packed_size(const ProtobufCMessage *msg);

/* Writes msg as one frame into out, which must hold frame_packed_size(msg)
 * bytes. Returns the number of bytes written. */
size_t frame_pack(const ProtobufCMessage *msg, uint8_t *out);

#endif
