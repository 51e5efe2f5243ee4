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
 */
#ifndef TA_OP_H
#define TA_OP_H

#include <stddef.h>
#include <stdint.h>

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

typedef struct {
    uint16_t opcode;
    const char *name;
    uint8_t min_inputs, max_inputs; /* counts including TA_NO_TENSOR slots */
    uint8_t n_outputs;
    uint32_t params_size;           /* sizeof the op's parameter struct */
    ta_status_t (*prepare)(const ta_op_call_t *call);
    ta_status_t (*eval)(const ta_op_call_t *call);
} ta_op_kernel_t;

/** The kernel registered for `opcode`, or NULL when this build lacks it. */
const ta_op_kernel_t *ta_op_find(uint16_t opcode);

/* Shorthands for prepare functions. */
#define TA_IN(call, i) ((call)->inputs[(i)].rec)
#define TA_OUT(call, i) ((call)->outputs[(i)].rec)

#endif /* TA_OP_H */
