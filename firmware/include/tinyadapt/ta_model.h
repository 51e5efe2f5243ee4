/*
 * Model loader: checks an untrusted blob once, so the engine can trust it.
 *
 * Call sequence:  ta_model_load(&model, blob, size)  ->  ta_engine_init(...)
 *
 * The blob is not copied: `ta_model_t` points into it, so the blob must stay
 * where it is (typically in flash) for as long as the model is used. A
 * successful load guarantees: the header, CRC and every table are in range;
 * every tensor's shape product fits its byte size without overflow; every
 * constant lies inside the data section; every activation lies inside the
 * planned arena; every op's tensor indices, parameter struct and scratch
 * buffer are in range. Per-op shape rules are checked by each op's prepare
 * (ta_engine_init), which completes the validation.
 */
#ifndef TA_MODEL_H
#define TA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/ta_model_format.h"
#include "tinyadapt/ta_status.h"

typedef struct {
    const uint8_t *blob;
    uint32_t size;
    const ta_model_header_t *header;
    const ta_tensor_rec_t *tensors;
    const ta_op_rec_t *ops;
    const uint16_t *inputs;  /* header->n_inputs model input tensor indices */
    const uint16_t *outputs; /* header->n_outputs model output tensor indices */
    const uint8_t *data;     /* the data section */
    /* Patch plan (NULL without TA_MODEL_FLAG_PATCH): validated like everything else. */
    const ta_patch_header_t *patch;
    const ta_patch_tensor_t *patch_tensors; /* patch->n_regions entries */
    const ta_region_t *patch_regions;       /* patch->n_tiles x patch->n_regions */
    /* Training section (NULL without TA_MODEL_FLAG_TRAIN): ops [n_forward_ops, n_ops) are
     * backward ops, which only the trainer runs (ta_train.h). */
    const ta_train_header_t *train;
    uint16_t n_forward_ops; /* header->n_ops without a TRAIN section */
    const ta_stream_buffer_t *patch_streams; /* patch->n_regions, stream mode only (else NULL) */
    uint32_t patch_bands;                    /* stream mode: tiles per strip */
} ta_model_t;

/* Op i's input then output tensor indices (n_inputs + n_outputs of them), checked by the loader. */
static inline const int16_t *ta_model_op_io(const ta_model_t *m, uint16_t i)
{
    return (const int16_t *)(const void *)(m->data + m->ops[i].io_offset);
}

/**
 * Validate a blob and fill `model` with pointers into it.
 * @param[out] model  filled on success, zeroed on failure
 * @param[in]  blob   4-byte-aligned model blob
 * @param[in]  size   bytes available at `blob`
 * @return TA_OK, TA_ERR_ARG (NULL or misaligned), TA_ERR_MAGIC, TA_ERR_VERSION,
 *         TA_ERR_TRUNCATED, TA_ERR_CRC, TA_ERR_CORRUPT, TA_ERR_OVERFLOW
 */
TA_CHECK_RESULT ta_status_t ta_model_load(ta_model_t *model, const void *blob, size_t size);

/** Size in bytes of one element of `dtype`, 0 if unknown. */
uint32_t ta_dtype_size(uint8_t dtype);

/** CRC-32/IEEE (reflected, poly 0xEDB88320) of `len` bytes, continuing from `crc` (start with 0). */
uint32_t ta_crc32(uint32_t crc, const void *data, size_t len);

#endif /* TA_MODEL_H */
