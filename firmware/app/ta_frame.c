#include "ta_frame.h"

#include <stddef.h>

#include "tinyadapt/ta_model.h" /* ta_crc32 */

ta_status_t ta_frame_parse(const uint8_t *buf, uint32_t size, uint32_t max_payload, ta_frame_t *out)
{
    TA_ENSURE(buf != NULL && out != NULL, TA_ERR_ARG);
    TA_ENSURE(size >= TA_FRAME_OVERHEAD, TA_ERR_TRUNCATED);
    const uint16_t len = ta_rd16(buf + 6);
    TA_ENSURE(len <= max_payload, TA_ERR_OVERFLOW);
    TA_ENSURE((uint32_t)len + TA_FRAME_OVERHEAD == size, TA_ERR_TRUNCATED);
    const uint32_t body = TA_FRAME_HEADER_SIZE + len;
    TA_ENSURE(ta_crc32(0, buf, body) == ta_rd32(buf + body), TA_ERR_CRC);
    out->version = buf[0];
    out->type = buf[1];
    out->seq = ta_rd16(buf + 2);
    out->cmd = buf[4];
    out->status = (int8_t)buf[5];
    out->len = len;
    out->payload = buf + TA_FRAME_HEADER_SIZE;
    return TA_OK;
}

int32_t ta_frame_finish(uint8_t *buf, uint32_t cap, uint8_t type, uint16_t seq, uint8_t cmd, int8_t status,
                        uint16_t payload_len)
{
    TA_ENSURE(buf != NULL, TA_ERR_ARG);
    const uint32_t body = TA_FRAME_HEADER_SIZE + (uint32_t)payload_len;
    TA_ENSURE(body + TA_FRAME_CRC_SIZE <= cap, TA_ERR_OVERFLOW);
    buf[0] = TA_PROTO_VERSION;
    buf[1] = type;
    ta_wr16(buf + 2, seq);
    buf[4] = cmd;
    buf[5] = (uint8_t)status;
    ta_wr16(buf + 6, payload_len);
    ta_wr32(buf + body, ta_crc32(0, buf, body));
    return (int32_t)(body + TA_FRAME_CRC_SIZE);
}
