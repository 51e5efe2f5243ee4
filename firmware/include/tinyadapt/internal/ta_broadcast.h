/*
 * NumPy-style broadcasting of two operands for elementwise binary kernels
 * (ADD, SUB, MUL), over up to TA_BCAST_DIMS dimensions.
 *
 * Shapes are aligned at their innermost dimension and padded with leading 1s
 * to TA_BCAST_DIMS. Along each dimension an input either has the output's
 * extent or 1 (then it is repeated: its stride is 0), and the output extent is
 * the larger of the two input extents - exactly the shape TFLite infers.
 *
 * Kernels walk the output in row-major order, one innermost row at a time:
 *
 *     ta_broadcast_iter_t it;   TA_TRY(ta_broadcast_iter_init(&it, ...));
 *     do {
 *         for (k = 0; k < it.row; ++k)
 *             output[it.out + k] = f(in1[it.in1 + k * it.step1], in2[it.in2 + k * it.step2]);
 *     } while (ta_broadcast_next_row(&it));
 *
 * Output element k is written right after its operands are read, and an input
 * with the output's element count has index k at output index k, so the
 * output may overwrite such an input (the planner's in-place reuse).
 */
#ifndef TA_BROADCAST_H
#define TA_BROADCAST_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/ta_status.h"

#define TA_BCAST_DIMS 6

typedef struct {
    int32_t dims[TA_BCAST_DIMS];    /* output extents, leading 1s */
    int32_t stride1[TA_BCAST_DIMS]; /* input-1 elements per output step along each dim (0: repeated) */
    int32_t stride2[TA_BCAST_DIMS];
    int32_t elems;                  /* output elements */
} ta_broadcast_t;

/* Extent of `dims[0..ndim)` at padded position `d` of TA_BCAST_DIMS. */
static inline int32_t ta_bcast_dim_(const int32_t *dims, int32_t ndim, int d)
{
    const int lead = TA_BCAST_DIMS - (int)ndim;
    return d < lead ? 1 : dims[d - lead];
}

/**
 * Check that `in1` and `in2` broadcast to exactly `out` and fill `b`.
 * Ranks are 0..TA_BCAST_DIMS and every extent is positive.
 * @return TA_OK, or TA_ERR_ARG for NULL pointers, bad ranks or extents,
 *         shapes that do not broadcast to `out`, or more than INT32_MAX elements
 */
static inline ta_status_t ta_broadcast_init(ta_broadcast_t *b, int32_t ndim1, const int32_t *dims1,
                                            int32_t ndim2, const int32_t *dims2, int32_t ndim_out,
                                            const int32_t *dims_out)
{
    TA_ENSURE(b != NULL, TA_ERR_ARG);
    TA_ENSURE(ndim1 >= 0 && ndim1 <= TA_BCAST_DIMS && ndim2 >= 0 && ndim2 <= TA_BCAST_DIMS &&
                  ndim_out >= 0 && ndim_out <= TA_BCAST_DIMS,
              TA_ERR_ARG);
    TA_ENSURE((ndim1 == 0 || dims1 != NULL) && (ndim2 == 0 || dims2 != NULL) &&
                  (ndim_out == 0 || dims_out != NULL),
              TA_ERR_ARG);
    int64_t acc1 = 1, acc2 = 1, acc_out = 1;
    for (int d = TA_BCAST_DIMS - 1; d >= 0; --d) {
        const int32_t e1 = ta_bcast_dim_(dims1, ndim1, d);
        const int32_t e2 = ta_bcast_dim_(dims2, ndim2, d);
        const int32_t eo = ta_bcast_dim_(dims_out, ndim_out, d);
        TA_ENSURE(e1 > 0 && e2 > 0 && eo > 0, TA_ERR_ARG);
        TA_ENSURE((e1 == 1 || e1 == eo) && (e2 == 1 || e2 == eo) && eo == (e1 > e2 ? e1 : e2), TA_ERR_ARG);
        /* Inputs never hold more elements than the output, so checking it bounds all three. */
        acc_out *= eo;
        TA_ENSURE(acc_out <= INT32_MAX, TA_ERR_ARG);
        b->dims[d] = eo;
        b->stride1[d] = e1 == 1 ? 0 : (int32_t)acc1;
        b->stride2[d] = e2 == 1 ? 0 : (int32_t)acc2;
        acc1 *= e1;
        acc2 *= e2;
    }
    b->elems = (int32_t)acc_out;
    return TA_OK;
}

/* A walk over the output's innermost rows, with where each row's operands start. */
typedef struct {
    ta_broadcast_t bc;
    int32_t idx[TA_BCAST_DIMS - 1]; /* the current row's index in every dim but the innermost */
    int32_t row;                    /* elements per row: the output's innermost extent */
    size_t step1, step2;            /* input strides along a row (0: the element is repeated) */
    size_t in1, in2, out;           /* first element of the current row in input1, input2 and output */
} ta_broadcast_iter_t;

/* ta_broadcast_init(), positioned on the first row. */
static inline ta_status_t ta_broadcast_iter_init(ta_broadcast_iter_t *it, int32_t ndim1, const int32_t *dims1,
                                                 int32_t ndim2, const int32_t *dims2, int32_t ndim_out,
                                                 const int32_t *dims_out)
{
    TA_ENSURE(it != NULL, TA_ERR_ARG);
    TA_TRY(ta_broadcast_init(&it->bc, ndim1, dims1, ndim2, dims2, ndim_out, dims_out));
    for (int d = 0; d < TA_BCAST_DIMS - 1; ++d) {
        it->idx[d] = 0;
    }
    it->row = it->bc.dims[TA_BCAST_DIMS - 1];
    it->step1 = (size_t)it->bc.stride1[TA_BCAST_DIMS - 1];
    it->step2 = (size_t)it->bc.stride2[TA_BCAST_DIMS - 1];
    it->in1 = it->in2 = it->out = 0;
    return TA_OK;
}

/* Move to the next row; 0 once every row has been visited. */
static inline int ta_broadcast_next_row(ta_broadcast_iter_t *it)
{
    const ta_broadcast_t *b = &it->bc;
    it->out += (size_t)it->row;
    for (int d = TA_BCAST_DIMS - 2; d >= 0; --d) {
        if (++it->idx[d] < b->dims[d]) {
            it->in1 += (size_t)b->stride1[d];
            it->in2 += (size_t)b->stride2[d];
            return 1;
        }
        /* Wrap this dimension back to index 0 and carry into the next outer one. */
        it->idx[d] = 0;
        it->in1 -= (size_t)b->stride1[d] * (size_t)(b->dims[d] - 1);
        it->in2 -= (size_t)b->stride2[d] * (size_t)(b->dims[d] - 1);
    }
    return 0;
}

#endif /* TA_BROADCAST_H */
