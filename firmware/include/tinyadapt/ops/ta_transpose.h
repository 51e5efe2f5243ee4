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

/**
 * Rows [y0, y1) and columns [x0, x1) of a 4-D transpose's output, whose shape is
 * [1, H, W, C] = input dims permuted: out[y][x][c] = input at the coordinate that perm maps
 * (0, y, x, c) back to. Used by patch-based execution to read one tile's window of a
 * transposed model input without materialising the transposed tensor.
 *
 * @param[in]  in_dims input shape, 4 entries
 * @param[in]  perm    a permutation of 0..3 with in_dims[perm[0]] == 1
 * @param[in]  input   int8, row-major in_dims
 * @param[out] output  int8, dense [y1 - y0, x1 - x0, C]; must not overlap input
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, a bad perm or a window outside the output
 */
ta_status_t ta_transpose_window_s8(const int32_t *in_dims, const int32_t *perm, const int8_t *input, int32_t y0,
                                   int32_t y1, int32_t x0, int32_t x1, int8_t *output);

#endif /* TA_TRANSPOSE_H */
