/*
 * COBS (Consistent Overhead Byte Stuffing): removes every 0x00 from a frame
 * so that 0x00 can delimit frames on a byte stream.
 *
 * Encoding n bytes yields at most TA_COBS_MAX_ENCODED(n) bytes, none zero;
 * the caller appends the 0x00 delimiter. Decoding may run in place
 * (out == in): the output never gets ahead of the input.
 */
#ifndef TA_COBS_H
#define TA_COBS_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Worst-case encoded size of n bytes (without the delimiter). */
#define TA_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/**
 * Encode `len` bytes of `in` into `out`.
 * @return encoded length (>= 1), or TA_ERR_OVERFLOW when `cap` is too small
 *         (checked up front against TA_COBS_MAX_ENCODED(len)), TA_ERR_ARG
 */
TA_CHECK_RESULT int32_t ta_cobs_encode(const uint8_t *in, uint32_t len, uint8_t *out, uint32_t cap);

/**
 * Decode `len` bytes of `in` (no delimiter) into `out`; `out` may equal `in`.
 * @return decoded length, or TA_ERR_CORRUPT (a zero byte, or a block that
 *         runs past the end), TA_ERR_OVERFLOW (more than `cap` bytes), TA_ERR_ARG
 */
TA_CHECK_RESULT int32_t ta_cobs_decode(const uint8_t *in, uint32_t len, uint8_t *out, uint32_t cap);

#endif /* TA_COBS_H */
