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

/* ---- training (ta_train.h) ---------------------------------------------------------------- */
#include "tinyadapt/ta_train.h"

typedef struct {
    ta_model_t model;
    ta_engine_t engine;
    ta_trainer_t trainer;
} ta_host_train_state_t;

size_t ta_host_train_state_size(void) { return sizeof(ta_host_train_state_t); }

/* Load a blob with a TRAIN section. Call with ram == NULL first to learn the parameter RAM size
 * (*ram_size receives it), then again with that much RAM. */
int ta_host_train_open(void *state, const void *blob, size_t size, void *arena, size_t arena_size, void *ram,
                       size_t *ram_size)
{
    ta_host_train_state_t *s = (ta_host_train_state_t *)state;
    if (s == NULL || ram_size == NULL) {
        return TA_ERR_ARG;
    }
    memset(s, 0, sizeof(*s));
    ta_status_t st = ta_model_load(&s->model, blob, size);
    if (st != TA_OK) {
        return st;
    }
    if (ram == NULL) {
        *ram_size = ta_train_param_ram_size(&s->model);
        return TA_OK;
    }
    st = ta_engine_init(&s->engine, &s->model, arena, arena_size);
    if (st != TA_OK) {
        return st;
    }
    return ta_train_init(&s->trainer, &s->engine, (uint8_t *)ram, *ram_size);
}

int ta_host_train_input(void *state, void **data, unsigned *size)
{
    ta_host_train_state_t *s = (ta_host_train_state_t *)state;
    ta_tensor_t t;
    ta_status_t st = ta_engine_input(&s->engine, 0, &t);
    if (st == TA_OK) {
        *data = t.data;
        *size = t.rec->size;
    }
    return st;
}

/* kind: 0 cross-entropy, 1 entropy, -1 eval (forward + cross-entropy loss, no update). */
int ta_host_train_step(void *state, int kind, int label, float lr, float *loss, int *prediction, unsigned *updated)
{
    ta_host_train_state_t *s = (ta_host_train_state_t *)state;
    ta_train_result_t r;
    ta_status_t st = kind < 0 ? ta_train_eval(&s->trainer, label, &r)
                              : ta_train_step(&s->trainer, (ta_loss_kind_t)kind, label, lr, &r);
    if (st == TA_OK) {
        *loss = r.loss;
        *prediction = r.prediction;
        *updated = r.updated_params;
    }
    return st;
}

int ta_host_train_params(void *state, const void **data, size_t *len)
{
    return ta_train_params(&((ta_host_train_state_t *)state)->trainer, (const uint8_t **)data, len);
}

int ta_host_train_load_params(void *state, const void *data, size_t len)
{
    return ta_train_load_params(&((ta_host_train_state_t *)state)->trainer, (const uint8_t *)data, len);
}

int ta_host_train_reset(void *state) { return ta_train_reset(&((ta_host_train_state_t *)state)->trainer); }

/* Where tensor `index` lives now (a gradient, or a parameter's RAM copy), for tests. */
int ta_host_train_tensor(void *state, unsigned index, void **data, unsigned *size)
{
    ta_host_train_state_t *s = (ta_host_train_state_t *)state;
    ta_tensor_t t;
    ta_status_t st = ta_engine_tensor(&s->engine, (uint16_t)index, &t);
    if (st == TA_OK) {
        *data = t.data;
        *size = t.rec->size;
    }
    return st;
}
