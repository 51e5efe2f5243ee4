/*
 * How an op plugs into the engine.
 *
 * Each op is one `ta_op_kernel_t` (engine/ops/ta_op_<name>.c) listed in the
 * op table (engine/ta_op_table.c). The engine resolves the op's tensors into
 * a `ta_op_call_t` and calls:
 *   prepare - once, from ta_engine_init: check dtypes, shapes and params of
 *             the (already bounds-checked) blob; return TA_ERR_SHAPE /
 *             TA_ERR_UNSUPPORTED / TA_ERR_CORRUPT. Never writes tensors.
 *   eval    - every invoke: compute. May assume prepare succeeded.
 * Parameters live in the blob and are read in place (`call->params`), so an
 * op keeps no state of its own between calls.
 *
 * Patch-based execution (engine/ta_patch.c) runs the ops of the patch stage on one
 * region of their tensors at a time. An op takes part in two ways:
 *   pointwise   - output pixel (y, x) depends only on pixel (y, x) of each activation
 *                 input of the same height and width (elementwise ops, channel
 *                 concatenation), and constant operands are scalars or per-channel: the
 *                 executor runs `eval` row by row on [1, 1, width, C] views;
 *   eval_region - a windowed op (conv, pool, pad) given region views of its input and
 *                 output and the regions' origins, so it can shift its padding: zero
 *                 padding then applies only where a region touches the image border.
 *                 A `gather` op (TRANSPOSE, RESHAPE at the model input) instead reads its
 *                 input 0 in full and writes the output region through its index
 *                 mapping, so the rearranged full-size copy never exists; its `in` is
 *                 then the full output's extent {0, H, 0, W}.
 */
#ifndef TA_OP_H
#define TA_OP_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/ta_model_format.h"
#include "tinyadapt/ta_status.h"
#include "tinyadapt/ta_tensor.h"

typedef struct {
    const void *params; /* the op's parameter struct, exactly params_size bytes */
    uint8_t n_inputs;
    uint8_t n_outputs;
    ta_tensor_t inputs[TA_MAX_OP_INPUTS];
    ta_tensor_t outputs[TA_MAX_OP_OUTPUTS];
    void *scratch; /* arena scratch, scratch_size bytes (NULL if none) */
    uint32_t scratch_size;
} ta_op_call_t;

/*
 * Output channels of an op's filter whose current values live in RAM while the rest stay in
 * the blob: training updates a slice of a layer (engine/ta_train.c) and keeps only that slice
 * in RAM. `rows` is the filter restricted to `channels` (ascending), in the filter's own
 * layout: [n, KH, KW, C_in] for CONV_2D, [n, I] for FULLY_CONNECTED, [1, KH, KW, n] for
 * DEPTHWISE_CONV_2D. The engine runs the op on the blob's filter and then its `eval_rows`,
 * which recomputes those output channels from the rows.
 */
typedef struct {
    uint16_t op;             /* forward op index */
    uint16_t n;              /* channels in RAM, >= 1 */
    const int32_t *channels; /* ascending output channel indices */
    const int8_t *rows;
} ta_op_rows_t;

typedef struct {
    uint16_t opcode;
    const char *name;
    uint8_t min_inputs, max_inputs; /* counts including TA_NO_TENSOR slots */
    uint8_t n_outputs;
    uint32_t params_size;           /* sizeof the op's parameter struct */
    ta_status_t (*prepare)(const ta_op_call_t *call);
    ta_status_t (*eval)(const ta_op_call_t *call);
    uint8_t pointwise; /* 1: may run row by row in a patch stage (see above) */
    /* Windowed ops in a patch stage: `call` holds region views; `in` is the region of
     * input 0 and `out` the output's, in full-tensor coordinates. NULL if unsupported. */
    ta_status_t (*eval_region)(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out);
    uint8_t gather; /* 1: eval_region reads input 0 in full, a stage input (see above) */
    /* Extra conditions for running in a patch stage (e.g. concatenation on channels only),
     * checked once at init after `prepare`; NULL when there are none. */
    ta_status_t (*prepare_region)(const ta_op_call_t *call);
    /* Recompute rows->channels of the output from rows->rows (see ta_op_rows_t), after
     * `eval` ran on the same call; the input must still be intact (not run in place). NULL
     * when the op has no filter. */
    ta_status_t (*eval_rows)(const ta_op_call_t *call, const ta_op_rows_t *rows);
} ta_op_kernel_t;

/** The kernel registered for `opcode`, or NULL when this build lacks it. */
const ta_op_kernel_t *ta_op_find(uint16_t opcode);

/* Shorthands for prepare functions. */
#define TA_IN(call, i) ((call)->inputs[(i)].rec)
#define TA_OUT(call, i) ((call)->outputs[(i)].rec)

#endif /* TA_OP_H */
