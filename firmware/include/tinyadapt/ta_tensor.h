/*
 * A tensor as an op sees it at run time: its record from the blob (dtype,
 * shape, quantization) and where its bytes are now.
 */
#ifndef TA_TENSOR_H
#define TA_TENSOR_H

#include <stdint.h>

#include "tinyadapt/ta_dims.h"
#include "tinyadapt/ta_model_format.h"

typedef struct {
    const ta_tensor_rec_t *rec; /* NULL for an absent optional input */
    void *data;                 /* arena (activations) or blob (constants); NULL if absent */
} ta_tensor_t;

/* Number of elements (the loader guarantees it does not overflow). */
static inline int32_t ta_tensor_elems(const ta_tensor_rec_t *rec)
{
    int32_t n = 1;
    for (int i = 0; i < rec->ndim; ++i) {
        n *= rec->dims[i];
    }
    return n;
}

/* Dimension i counted from the end (ta_tensor_dim_r(rec, 0) is the innermost), 1 past the rank. */
static inline int32_t ta_tensor_dim_r(const ta_tensor_rec_t *rec, int i)
{
    return i < rec->ndim ? rec->dims[rec->ndim - 1 - i] : 1;
}

/* A 4-D record's shape as the NHWC kernel argument (the op's prepare has checked ndim == 4). */
static inline ta_dims_t ta_tensor_nhwc(const ta_tensor_rec_t *rec)
{
    const ta_dims_t d = {rec->dims[0], rec->dims[1], rec->dims[2], rec->dims[3]};
    return d;
}

#endif /* TA_TENSOR_H */
