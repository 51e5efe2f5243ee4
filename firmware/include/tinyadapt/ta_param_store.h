/*
 * Atomic parameter store: keeps one parameter image (adapted weights and
 * biases, or TTA heads) in an NVM area so that a power cut at ANY moment of a
 * save leaves the device with the old image or the new one, never a mix.
 *
 * The area is two slots (the littlefs "metadata pair" idea). A save writes the
 * slot that does NOT hold the newest valid record: erase it, program the data,
 * and only then program the 32-byte header that commits it (its revision is
 * the old one + 1 and its CRC covers header and data). At boot the valid slot
 * with the highest revision wins; a torn slot fails its CRC and the other slot,
 * untouched by the save, still holds the previous image.
 *
 *   slot (size/2, page-aligned)
 *   +--------+------------------------------+
 *   | header | data[len] ... (0xFF padding) |
 *   +--------+------------------------------+
 *   header: u32 magic "TAP1", u16 version, u16 tag, u32 revision, u32 model_crc,
 *           u32 len, u32 reserved (0), u32 reserved (0),
 *           u32 crc = CRC-32 of header bytes [0, 28) then data[0, len)
 *
 * A record of length 0 is a tombstone: "use the base parameters" (what
 * RESET_TO_BASE persists), written atomically like any other record.
 * The model CRC (the blob header's crc32) ties a record to one model: another
 * model's parameters are never applied.
 */
#ifndef TA_PARAM_STORE_H
#define TA_PARAM_STORE_H

#include <stdint.h>

#include "tinyadapt/ta_hal.h"
#include "tinyadapt/ta_status.h"

#define TA_PARAM_STORE_MAGIC 0x31504154u /* "TAP1" little-endian */
#define TA_PARAM_STORE_VERSION 1u
#define TA_PARAM_STORE_HEADER_SIZE 32u

/* What a record holds (ta_param_record_t.tag). */
#define TA_PARAM_TAG_TRAIN 1u /* the trainer's updatable parameters (ta_train_params) */
#define TA_PARAM_TAG_TTA 2u   /* test-time adaptation heads, interleaved (no longer written or read) */
#define TA_PARAM_TAG_TTA_STATS 3u /* test-time adaptation: the input's and every head's running
                                   * statistics (mu[], var[] each); a tag-2 image is refused */

typedef struct {
    const ta_nvm_t *nvm;
    uint32_t offset;    /* area start in the NVM region, page-aligned */
    uint32_t slot_size; /* bytes per slot, a multiple of the page size */
} ta_param_store_t;

typedef struct {
    uint8_t slot;       /* 0 or 1 */
    uint16_t tag;
    uint32_t revision;  /* increases by one per save (modulo 2^32) */
    uint32_t model_crc;
    uint32_t len;       /* data bytes; 0 = tombstone */
} ta_param_record_t;

/**
 * Use [offset, offset + size) of `nvm` as a two-slot store. Nothing is written.
 * @return TA_ERR_ARG when the NVM is malformed or the area is not page-aligned,
 *         outside the region, or smaller than two pages
 */
TA_CHECK_RESULT ta_status_t ta_param_store_init(ta_param_store_t *s, const ta_nvm_t *nvm, uint32_t offset, uint32_t size);

/** Largest image a save accepts. */
uint32_t ta_param_store_capacity(const ta_param_store_t *s);

/**
 * The newest valid record (header and data checked against the CRC).
 * @return TA_ERR_STATE when neither slot holds one
 */
TA_CHECK_RESULT ta_status_t ta_param_store_find(const ta_param_store_t *s, ta_param_record_t *rec);

/**
 * Load the newest record into dst if it is a `tag` record of `model_crc` and
 * exactly `len` bytes. `*rec` gets the newest record when there is one.
 * @return TA_ERR_STATE: nothing stored, a tombstone, or a record of another
 *         tag, model or size (nothing is written to dst); TA_ERR_CRC: the
 *         slot changed under the read (dst is then undefined)
 */
TA_CHECK_RESULT ta_status_t ta_param_store_load(const ta_param_store_t *s, uint16_t tag, uint32_t model_crc, uint8_t *dst,
                                    uint32_t len, ta_param_record_t *rec);

/**
 * Save `len` bytes atomically (len 0: a tombstone, data may be NULL), then
 * read the new record back. `*rec` (may be NULL) gets it.
 * @return TA_ERR_OVERFLOW above the capacity; the NVM's status on a failed
 *         erase/program; TA_ERR_CRC when the read-back does not verify
 */
TA_CHECK_RESULT ta_status_t ta_param_store_save(ta_param_store_t *s, uint16_t tag, uint32_t model_crc, const uint8_t *data,
                                    uint32_t len, ta_param_record_t *rec);

#endif /* TA_PARAM_STORE_H */
