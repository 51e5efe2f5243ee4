#include "ta_cobs.h"

#include <stddef.h>

int32_t ta_cobs_encode(const uint8_t *in, uint32_t len, uint8_t *out, uint32_t cap)
{
    TA_ENSURE(out != NULL && (in != NULL || len == 0), TA_ERR_ARG);
    TA_ENSURE(len <= 0x7F000000u, TA_ERR_OVERFLOW);
    TA_ENSURE(cap >= TA_COBS_MAX_ENCODED(len), TA_ERR_OVERFLOW);
    uint32_t code_at = 0; /* where the current block's code byte goes */
    uint32_t o = 1;
    uint8_t code = 1;     /* 1 + data bytes in the current block */
    for (uint32_t i = 0; i < len; ++i) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
            continue;
        }
        out[o++] = in[i];
        if (++code == 0xFF) {
            /* A full block carries no implied zero; start the next one only
             * when there is more data (no trailing empty block). */
            out[code_at] = code;
            code = 1;
            if (i + 1 < len) {
                code_at = o++;
            } else {
                return (int32_t)o;
            }
        }
    }
    out[code_at] = code;
    return (int32_t)o;
}

int32_t ta_cobs_decode(const uint8_t *in, uint32_t len, uint8_t *out, uint32_t cap)
{
    TA_ENSURE(out != NULL && (in != NULL || len == 0), TA_ERR_ARG);
    TA_ENSURE(len <= 0x7FFFFFFFu, TA_ERR_OVERFLOW);
    uint32_t i = 0;
    uint32_t o = 0;
    while (i < len) {
        const uint8_t code = in[i++];
        TA_ENSURE(code != 0, TA_ERR_CORRUPT);
        const uint32_t n = (uint32_t)code - 1u;
        TA_ENSURE(n <= len - i, TA_ERR_CORRUPT);
        TA_ENSURE(n <= cap - o, TA_ERR_OVERFLOW);
        for (uint32_t k = 0; k < n; ++k) {
            const uint8_t b = in[i++];
            TA_ENSURE(b != 0, TA_ERR_CORRUPT);
            out[o++] = b;
        }
        /* Every block but a full one ends in an implied zero, except the last. */
        if (code != 0xFF && i < len) {
            TA_ENSURE(o < cap, TA_ERR_OVERFLOW);
            out[o++] = 0;
        }
    }
    return (int32_t)o;
}
