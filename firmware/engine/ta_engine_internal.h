/* Engine internals shared by ta_engine.c and ta_patch.c. */
#ifndef TA_ENGINE_INTERNAL_H
#define TA_ENGINE_INTERNAL_H

#include "tinyadapt/ta_engine.h"

/* Resolve op `op_index`'s tensors and parameters (indices were checked by the loader). */
void ta_engine_build_call(const ta_engine_t *engine, uint16_t op_index, ta_op_call_t *call);

/* Tensor `index` (or TA_NO_TENSOR) with its data: arena, blob, bound storage, or NULL. */
void ta_engine_resolve(const ta_engine_t *engine, int16_t index, ta_tensor_t *out);

#endif /* TA_ENGINE_INTERNAL_H */
