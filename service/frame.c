/* frame.c - see include/frame.h. */
#include "frame.h"

frame_status frame_cut(const uint8_t *buf, size_t avail, uint32_t max_body, uint32_t *body_len)
{
    if (avail < FRAME_HEADER_SIZE)
        return FRAME_INCOMPLETE;
    uint32_t len = frame_get_length(buf);
    *body_len = len;
    if (len > max_body)
        return FRAME_TOO_LARGE;
    if (avail - FRAME_HEADER_SIZE < len)
        return FRAME_INCOMPLETE;
    return FRAME_READY;
}

void frame_put_length(uint8_t header[FRAME_HEADER_SIZE], uint32_t body_len)
{
    header[0] = (uint8_t)(body_len >> 24);
    header[1] = (uint8_t)(body_len >> 16);
    header[2] = (uint8_t)(body_len >> 8);
    header[3] = (uint8_t)body_len;
}

uint32_t frame_get_length(const uint8_t header[FRAME_HEADER_SIZE])
{
    return (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 |
           (uint32_t)header[3];
}

size_t frame_packed_size(const ProtobufCMessage *msg)
{
    return FRAME_HEADER_SIZE + protobuf_c_message_get_packed_size(msg);
}

size_t frame_pack(const ProtobufCMessage *msg, uint8_t *out)
{
    size_t body = protobuf_c_message_pack(msg, out + FRAME_HEADER_SIZE);
    frame_put_length(out, (uint32_t)body);
    return FRAME_HEADER_SIZE + body;
}
