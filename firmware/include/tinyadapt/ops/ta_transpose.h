/*
 * TRANSPOSE, int8 (TFLM reference_ops::Transpose): output dimension i is
 * input dimension perm[i]. Values are moved as raw bytes.
 *
 * Blob tensors, in order:
 *   in:  input  int8 [d0, ..., d(ndim-1)]
 *   out: output int8 [d(perm[0]), ..., d(perm[ndim-1])]
 */
#ifndef TA_TRANSPOSE_H
#define TA_TRANSPOSE_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

#define TA_TRANSPOSE_MAX_DIMS 6

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t ndim;                        /* 1..TA_TRANSPOSE_MAX_DIMS */
    int32_t perm[TA_TRANSPOSE_MAX_DIMS]; /* a permutation of 0..ndim-1; unused entries 0 */
} ta_transpose_params_t;

/**
 * @param[in]  ndim    rank, 1..TA_TRANSPOSE_MAX_DIMS
 * @param[in]  in_dims input shape, ndim entries
 * @param[in]  perm    output dimension i is input dimension perm[i]
 * @param[in]  input   int8, row-major in_dims
 * @param[out] output  int8, row-major permuted shape; must not overlap input
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, a bad rank, a
 *         non-positive dimension or a perm that is not a permutation
 */
ta_status_t ta_transpose_s8(int32_t ndim, const int32_t *in_dims, const int32_t *perm, const int8_t *input,
                            int8_t *output);

#endif /* TA_TRANSPOSE_H */
