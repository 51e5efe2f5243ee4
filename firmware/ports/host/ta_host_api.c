/*
 * The engine as a shared library for the host (Python ctypes): one opaque
 * state holding a model and an engine, so Python never mirrors C structs.
 */
#include <stddef.h>
#include <string.h>

#include "tinyadapt/ta_engine.h"

typedef struct {
    ta_model_t model;
    ta_engine_t engine;
} ta_host_state_t;

size_t ta_host_state_size(void) { return sizeof(ta_host_state_t); }

/* Load and prepare `blob` with `arena`; both must outlive the state. */
int ta_host_open(void *state, const void *blob, size_t size, void *arena, size_t arena_size)
{
    if (state == NULL) {
        return TA_ERR_ARG;
    }
    ta_host_state_t *s = (ta_host_state_t *)state;
    memset(s, 0, sizeof(*s));
    ta_status_t st = ta_model_load(&s->model, blob, size);
    if (st != TA_OK) {
        return st;
    }
    return ta_engine_init(&s->engine, &s->model, arena, arena_size);
}

int ta_host_invoke(void *state) { return ta_engine_invoke(&((ta_host_state_t *)state)->engine); }

int ta_host_invoke_ops(void *state, unsigned first, unsigned end)
{
    return ta_engine_invoke_ops(&((ta_host_state_t *)state)->engine, (uint16_t)first, (uint16_t)end);
}

/* Where model input (is_output = 0) or output i lives, and its size in bytes. */
int ta_host_io(void *state, int is_output, unsigned i, void **data, unsigned *size)
{
    ta_host_state_t *s = (ta_host_state_t *)state;
    ta_tensor_t t;
    ta_status_t st = is_output ? ta_engine_output(&s->engine, (uint16_t)i, &t)
                               : ta_engine_input(&s->engine, (uint16_t)i, &t);
    if (st != TA_OK) {
        return st;
    }
    *data = t.data;
    *size = t.rec->size;
    return TA_OK;
}

/* Storage for model input i when the model keeps it outside the arena. */
int ta_host_bind_input(void *state, unsigned i, void *data, size_t size)
{
    return ta_engine_bind_input(&((ta_host_state_t *)state)->engine, (uint16_t)i, data, size);
}

const char *ta_host_status_name(int status) { return ta_status_name((ta_status_t)status); }

/* Any tensor of the model: activations (valid while the plan keeps them), constants (in the
 * blob copy, which the TTA session overwrites with adapted head parameters). */
int ta_host_tensor(void *state, unsigned index, void **data, unsigned *size)
{
    ta_tensor_t t;
    ta_status_t st = ta_engine_tensor(&((ta_host_state_t *)state)->engine, (uint16_t)index, &t);
    if (st != TA_OK) {
        return st;
    }
    *data = t.data;
    *size = t.rec->size;
    return t.data != NULL ? TA_OK : TA_ERR_STATE;
}

ta_engine_t *ta_host_engine(void *state) { return &((ta_host_state_t *)state)->engine; }
