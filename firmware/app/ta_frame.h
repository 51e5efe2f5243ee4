/*
 * Frame codec: the decoded frame between COBS and the command handlers
 * (layout in tinyadapt/ta_protocol.h and docs/PROTOCOL.md).
 *
 * Receive:  ta_frame_parse(decoded bytes)  -> ta_frame_t pointing into them
 * Send:     write the payload at buf + TA_FRAME_HEADER_SIZE, then
 *           ta_frame_finish(buf, ...) fills the header and appends the CRC.
 */
#ifndef TA_FRAME_H
#define TA_FRAME_H

#include <stdint.h>
#include <string.h>

#include "tinyadapt/ta_protocol.h"
#include "tinyadapt/ta_status.h"

typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint8_t cmd;
    int8_t status;
    uint16_t len;
    const uint8_t *payload; /* points into the parsed buffer */
} ta_frame_t;

/**
 * Check and split one decoded frame.
 * @param[in]  buf          decoded bytes (COBS removed)
 * @param[in]  size         their count
 * @param[in]  max_payload  largest payload this build accepts
 * @return TA_OK, TA_ERR_TRUNCATED (shorter than TA_FRAME_OVERHEAD, or `len`
 *         disagrees with `size`), TA_ERR_OVERFLOW (`len` > max_payload),
 *         TA_ERR_CRC; `out` is valid only on TA_OK
 */
TA_CHECK_RESULT ta_status_t ta_frame_parse(const uint8_t *buf, uint32_t size, uint32_t max_payload,
                                           ta_frame_t *out);

/**
 * Complete a frame whose payload is already at buf + TA_FRAME_HEADER_SIZE.
 * @return total frame bytes (TA_FRAME_OVERHEAD + payload_len), or
 *         TA_ERR_OVERFLOW when that exceeds `cap`, TA_ERR_ARG
 */
TA_CHECK_RESULT int32_t ta_frame_finish(uint8_t *buf, uint32_t cap, uint8_t type, uint16_t seq, uint8_t cmd,
                                        int8_t status, uint16_t payload_len);

/* Little-endian field access, safe at any alignment. */
static inline uint16_t ta_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t ta_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void ta_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void ta_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void ta_wr64(uint8_t *p, uint64_t v)
{
    ta_wr32(p, (uint32_t)v);
    ta_wr32(p + 4, (uint32_t)(v >> 32));
}

/* IEEE-754 single on the wire: the bit pattern as a little-endian u32. */
static inline float ta_rd_f32(const uint8_t *p)
{
    const uint32_t u = ta_rd32(p);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}
static inline void ta_wr_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    ta_wr32(p, u);
}

#endif /* TA_FRAME_H */
