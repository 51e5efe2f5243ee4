/*
 * Early-exit runner (ta_tta.h). The exit decision is the only float code on the inference
 * path; it uses the trainer's own expf/logf (internal/ta_fmath.h), so glibc and newlib cannot
 * make the host target and the device disagree about where a sample leaves.
 */
#include "tinyadapt/ta_tta.h"

#include "tinyadapt/internal/ta_fmath.h"

#include <string.h>

float ta_tta_entropy_int8(const int8_t *logits, uint32_t n, float scale, int32_t zero_point, int32_t *argmax)
{
    int32_t best = 0;
    for (uint32_t i = 1; i < n; ++i) {
        if (logits[i] > logits[best]) {
            best = (int32_t)i;
        }
    }
    if (argmax != NULL) {
        *argmax = best;
    }
    /* H = log Z - sum p_i d_i with d_i = l_i - l_max <= 0 and Z = sum exp(d_i) >= 1 */
    float z = 0.0f;
    float zd = 0.0f;
    for (uint32_t i = 0; i < n; ++i) {
        const float d = scale * (float)((int32_t)logits[i] - (int32_t)logits[best]);
        const float e = ta_expf(d);
        z += e;
        zd += e * d;
    }
    const float h = ta_logf(z) - zd / z;
    (void)zero_point; /* cancels out of the softmax; kept so callers pass the full quantization */
    return h > 0.0f ? h : 0.0f;
}

static ta_status_t io_tensor(const ta_engine_t *e, int is_output, ta_tensor_t *t)
{
    return is_output ? ta_engine_output(e, 0, t) : ta_engine_input(e, 0, t);
}

ta_status_t ta_tta_check(const ta_tta_t *t)
{
    if (t == NULL || t->backbone == NULL || t->n_exits == 0 || t->n_exits > TA_TTA_MAX_EXITS) {
        return TA_ERR_ARG;
    }
    const uint16_t n_ops = t->backbone->model->header->n_ops;
    uint16_t prev = 0;
    for (uint8_t k = 0; k < t->n_exits; ++k) {
        const ta_tta_exit_t *x = &t->exits[k];
        if (t->heads[k] == NULL || x->cut_op <= prev || x->cut_op > n_ops) {
            return TA_ERR_ARG;
        }
        prev = x->cut_op;
        ta_tensor_t cut, in, out;
        TA_TRY(ta_engine_tensor(t->backbone, x->cut_tensor, &cut));
        TA_TRY(io_tensor(t->heads[k], 0, &in));
        TA_TRY(io_tensor(t->heads[k], 1, &out));
        if (cut.data == NULL || in.data == NULL || cut.rec->dtype != TA_DTYPE_INT8 ||
            in.rec->dtype != TA_DTYPE_INT8 || out.rec->dtype != TA_DTYPE_INT8 ||
            cut.rec->size != in.rec->size || out.rec->size == 0u) {
            return TA_ERR_SHAPE;
        }
    }
    return TA_OK;
}

ta_status_t ta_tta_head(ta_tta_t *t, uint8_t k, int32_t *prediction, float *entropy)
{
    if (t == NULL || k >= t->n_exits || prediction == NULL || entropy == NULL) {
        return TA_ERR_ARG;
    }
    ta_tensor_t cut, in, out;
    TA_TRY(ta_engine_tensor(t->backbone, t->exits[k].cut_tensor, &cut));
    TA_TRY(io_tensor(t->heads[k], 0, &in));
    if (cut.data == NULL || in.data == NULL || cut.rec->size != in.rec->size) {
        return TA_ERR_SHAPE;
    }
    memcpy(in.data, cut.data, in.rec->size);
    ta_tta_norm_t *n = t->adapt ? t->norm[k] : NULL;
    if (n == NULL) {
        TA_TRY(ta_engine_invoke(t->heads[k]));
    } else {
        /* z is read right after the conv: later ops may reuse its arena bytes */
        TA_TRY(ta_engine_invoke_ops(t->heads[k], 0, 1));
        ta_tensor_t z;
        TA_TRY(ta_engine_tensor(t->heads[k], n->z_tensor, &z));
        ta_tta_norm_update(n, (const int8_t *)z.data, z.rec->size / n->channels);
        TA_TRY(ta_engine_invoke_ops(t->heads[k], 1, t->heads[k]->model->header->n_ops));
    }
    TA_TRY(io_tensor(t->heads[k], 1, &out));
    *entropy = ta_tta_entropy_int8((const int8_t *)out.data, out.rec->size, out.rec->scale,
                                   out.rec->zero_point, prediction);
    if (n != NULL) {
        ta_tta_norm_fold(n); /* for the next sample, like the host session */
    }
    return TA_OK;
}

/* ---- normalisation adaptation ----------------------------------------------------------- */

static float sqrt_f(float x)
{
    /* Newton from a bit-level first guess: + * / only, identical on host and device */
    if (!(x > 0.0f)) {
        return 0.0f;
    }
    union { float f; uint32_t u; } v;
    v.f = x;
    v.u = (v.u >> 1) + 0x1FC00000u;
    float r = v.f;
    for (int i = 0; i < 5; ++i) {
        r = 0.5f * (r + x / r);
    }
    return r;
}

static float abs_f(float x) { return x < 0.0f ? -x : x; }

/* round half away from zero, clamped: the converter's rounding (NaN, from statistics of a
 * corrupt trailer, becomes 0: a float -> int conversion of NaN is undefined) */
static int32_t round_clamp(float v, float lo, float hi)
{
    if (v != v) {
        v = 0.0f;
    }
    v = v < lo ? lo : (v > hi ? hi : v);
    return (int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);
}

uint32_t ta_tta_norm_need(uint32_t channels) { return 12u * channels + ((channels + 3u) & ~3u); }

void ta_tta_norm_carve(ta_tta_norm_t *n, void *mem)
{
    float *f = (float *)mem;
    n->mu = f;
    n->var = f + n->channels;
    n->beta_q = (int32_t *)(void *)(f + 2u * n->channels);
    n->gamma_q = (int8_t *)(void *)(n->beta_q + n->channels);
}

void ta_tta_norm_update(ta_tta_norm_t *n, const int8_t *z, uint32_t positions)
{
    const uint32_t m = n->channels;
    const float a = n->momentum;
    for (uint32_t c = 0; c < m; ++c) {
        float s = 0.0f;
        for (uint32_t p = 0; p < positions; ++p) {
            s += n->z_scale * (float)((int32_t)z[p * m + c] - n->z_zero_point);
        }
        const float mean = s / (float)positions;
        const float mu = (1.0f - a) * n->mu[c] + a * mean;
        float q = 0.0f;
        for (uint32_t p = 0; p < positions; ++p) {
            const float d = n->z_scale * (float)((int32_t)z[p * m + c] - n->z_zero_point) - mu;
            q += d * d;
        }
        n->mu[c] = mu;
        n->var[c] = (1.0f - a) * n->var[c] + a * (q / (float)positions);
    }
}

void ta_tta_norm_fold(ta_tta_norm_t *n)
{
    n->shifted = 0;
    for (uint32_t c = 0; c < n->channels; ++c) {
        const float sd = sqrt_f(n->src_var[c] + 1e-12f);
        float mu = n->mu[c];
        float var = n->var[c];
        if (abs_f(mu - n->src_mu[c]) < n->dead_zone * sd && abs_f(sqrt_f(var + 1e-12f) / sd - 1.0f) < n->dead_zone) {
            mu = n->src_mu[c];
            var = n->src_var[c];
        } else {
            n->shifted++;
        }
        const float ratio = sqrt_f((n->src_var[c] + 1e-6f) / (var + 1e-6f));
        const float g = n->gamma[c] * ratio;
        const float b = n->beta[c] + n->gamma[c] * (n->src_mu[c] - mu * ratio);
        n->gamma_q[c] = (int8_t)round_clamp(g / n->gamma_scale[c], -128.0f, 127.0f);
        n->beta_q[c] = round_clamp(b / (n->z_scale * n->gamma_scale[c]), -2147483520.0f, 2147483520.0f);
    }
}

void ta_tta_norm_reset(ta_tta_norm_t *n)
{
    for (uint32_t c = 0; c < n->channels; ++c) {
        n->mu[c] = n->src_mu[c];
        n->var[c] = n->src_var[c];
    }
    ta_tta_norm_fold(n);
}

ta_status_t ta_tta_norm_bind(ta_tta_norm_t *n, ta_engine_t *head)
{
    TA_ENSURE(n != NULL && head != NULL && n->channels > 0, TA_ERR_ARG);
    TA_ENSURE(n->src_mu != NULL && n->src_var != NULL && n->gamma != NULL && n->beta != NULL &&
              n->gamma_scale != NULL && n->z_scale > 0.0f, TA_ERR_ARG);
    TA_ENSURE(n->mu != NULL && n->var != NULL && n->gamma_q != NULL && n->beta_q != NULL, TA_ERR_ARG);
    ta_tensor_t z, g, b;
    TA_TRY(ta_engine_tensor(head, n->z_tensor, &z));
    TA_TRY(ta_engine_tensor(head, n->gamma_tensor, &g));
    TA_TRY(ta_engine_tensor(head, n->beta_tensor, &b));
    TA_ENSURE(z.rec->dtype == TA_DTYPE_INT8 && z.rec->size >= n->channels && z.rec->size % n->channels == 0u,
              TA_ERR_SHAPE);
    TA_ENSURE(g.rec->size == n->channels && b.rec->size == 4u * n->channels, TA_ERR_SHAPE);
    ta_tta_norm_reset(n);
    /* overlays sorted by tensor index, as the engine's lookup expects */
    const int g_first = n->gamma_tensor < n->beta_tensor;
    n->overlays[g_first ? 0 : 1].tensor = n->gamma_tensor;
    n->overlays[g_first ? 0 : 1].data = n->gamma_q;
    n->overlays[g_first ? 1 : 0].tensor = n->beta_tensor;
    n->overlays[g_first ? 1 : 0].data = n->beta_q;
    return ta_engine_set_overlays(head, n->overlays, 2);
}

/* ops [first, cut_0) onwards: first > 0 when a snapshot of the sample at op `first` was
 * written back (the source comparisons); the MACs count the whole path all the same */
static ta_status_t infer_from(ta_tta_t *t, uint16_t first, ta_tta_result_t *out)
{
    if (out == NULL) {
        return TA_ERR_ARG;
    }
    TA_TRY(ta_tta_check(t));
    TA_ENSURE(first < t->exits[0].cut_op, TA_ERR_ARG);
    uint32_t macs = 0;
    for (uint8_t k = 0; k < t->n_exits; ++k) {
        const ta_tta_exit_t *x = &t->exits[k];
        TA_TRY(ta_engine_invoke_ops(t->backbone, first, x->cut_op));
        first = x->cut_op;
        int32_t pred = 0;
        float h = 0.0f;
        TA_TRY(ta_tta_head(t, k, &pred, &h));
        macs += x->macs_backbone + x->macs_head;
        if (h < x->threshold || k + 1u == t->n_exits) {
            out->exit = k;
            out->prediction = pred;
            out->entropy = h;
            out->macs = macs;
            out->macs_skipped = t->macs_full > macs ? t->macs_full - macs : 0u;
            return TA_OK;
        }
    }
    return TA_ERR_STATE; /* unreachable: the last exit always answers */
}

ta_status_t ta_tta_infer(ta_tta_t *t, ta_tta_result_t *out) { return infer_from(t, 0, out); }

/* ---- arena placement from the blob's plan ------------------------------------------------ */

/* 1 when activation tensor `x` is written before op boundary `b` (or is a model input) and
 * read at or after it: its bytes must survive the boundary */
static int live_at(const ta_model_t *m, uint16_t b, uint16_t x)
{
    for (uint16_t i = b; i < m->n_forward_ops; ++i) {
        const int16_t *io = ta_model_op_io(m, i);
        for (uint8_t j = 0; j < m->ops[i].n_inputs; ++j) {
            if (io[j] == (int16_t)x) {
                return 1;
            }
        }
        for (uint8_t j = 0; j < m->ops[i].n_outputs; ++j) {
            if (io[m->ops[i].n_inputs + j] == (int16_t)x) {
                return 0; /* rewritten before anything after b reads it */
            }
        }
    }
    return 0;
}

uint32_t ta_tta_head_base(const ta_engine_t *backbone, uint16_t cut_op, uint32_t head_arena)
{
    const ta_model_t *m = backbone->model;
    const uint32_t beside = (m->header->arena_size + TA_ARENA_ALIGN - 1u) & ~(TA_ARENA_ALIGN - 1u);
    if (m->patch != NULL) {
        return beside; /* patch buffers are not tensors of their own: keep clear of the arena */
    }
    /* candidates: 0 and the aligned end of every live tensor; the lowest one clear of all */
    uint32_t best = beside;
    for (int32_t c = -1; c < (int32_t)m->header->n_tensors; ++c) {
        uint32_t base = 0;
        if (c >= 0) {
            const ta_tensor_rec_t *r = &m->tensors[c];
            if (r->kind != TA_TENSOR_ACTIVATION || !live_at(m, cut_op, (uint16_t)c)) {
                continue;
            }
            base = (r->offset + r->size + TA_ARENA_ALIGN - 1u) & ~(TA_ARENA_ALIGN - 1u);
        }
        if (base >= best) {
            continue;
        }
        int clear = 1;
        for (uint16_t x = 0; x < m->header->n_tensors && clear; ++x) {
            const ta_tensor_rec_t *r = &m->tensors[x];
            if (r->kind == TA_TENSOR_ACTIVATION && r->size > 0u && r->offset < base + head_arena &&
                base < r->offset + r->size && live_at(m, cut_op, x)) {
                clear = 0;
            }
        }
        if (clear) {
            best = base;
        }
    }
    return best;
}

/* ---- input normalisation ----------------------------------------------------------------- */

void ta_tta_input_reset(ta_tta_input_t *n)
{
    n->shifted = 0;
    for (uint32_t c = 0; c < n->channels; ++c) {
        n->mu[c] = n->src_mu[c];
        n->var[c] = n->src_var[c];
    }
}

/* the statistics to use: the source's where the stream's stay inside the dead zone */
static int zone(float *mu, float *var, float src_mu, float src_var, float dead_zone)
{
    const float sd = sqrt_f(src_var + 1e-12f);
    if (abs_f(*mu - src_mu) < dead_zone * sd && abs_f(sqrt_f(*var + 1e-12f) / sd - 1.0f) < dead_zone) {
        *mu = src_mu;
        *var = src_var;
        return 0;
    }
    return 1;
}

static float in_value(const ta_tensor_t *in, uint32_t i)
{
    if (in->rec->dtype == TA_DTYPE_INT8) {
        return in->rec->scale * (float)((int32_t)((const int8_t *)in->data)[i] - in->rec->zero_point);
    }
    return ((const float *)in->data)[i];
}

ta_status_t ta_tta_input_apply(ta_tta_input_t *n, ta_tensor_t *in)
{
    TA_ENSURE(n != NULL && in != NULL && in->data != NULL && n->channels > 0, TA_ERR_ARG);
    const uint8_t dt = in->rec->dtype;
    TA_ENSURE(dt == TA_DTYPE_INT8 || dt == TA_DTYPE_FLOAT32, TA_ERR_UNSUPPORTED);
    TA_ENSURE(dt == TA_DTYPE_FLOAT32 || in->rec->scale > 0.0f, TA_ERR_UNSUPPORTED);
    const uint32_t m = n->channels;
    const uint32_t count = dt == TA_DTYPE_INT8 ? in->rec->size : in->rec->size / 4u;
    TA_ENSURE(count >= m && count % m == 0u, TA_ERR_SHAPE);
    const uint32_t positions = count / m;
    const float a = n->momentum;
    for (uint32_t c = 0; c < m; ++c) {
        float s = 0.0f;
        for (uint32_t p = 0; p < positions; ++p) {
            s += in_value(in, p * m + c);
        }
        const float mu = (1.0f - a) * n->mu[c] + a * (s / (float)positions);
        float q = 0.0f;
        for (uint32_t p = 0; p < positions; ++p) {
            const float d = in_value(in, p * m + c) - mu;
            q += d * d;
        }
        n->mu[c] = mu;
        n->var[c] = (1.0f - a) * n->var[c] + a * (q / (float)positions);
    }
    n->shifted = 0;
    for (uint32_t c = 0; c < m; ++c) {
        float mu = n->mu[c];
        float var = n->var[c];
        n->shifted = (uint16_t)(n->shifted + zone(&mu, &var, n->src_mu[c], n->src_var[c], n->dead_zone));
        const float ratio = sqrt_f((n->src_var[c] + 1e-8f) / (var + 1e-8f));
        for (uint32_t p = 0; p < positions; ++p) {
            const uint32_t i = p * m + c;
            const float v = (in_value(in, i) - mu) * ratio + n->src_mu[c];
            if (dt == TA_DTYPE_FLOAT32) {
                ((float *)in->data)[i] = v;
            } else {
                const int32_t q = round_clamp(v / in->rec->scale, -1.0e6f, 1.0e6f) + in->rec->zero_point;
                ((int8_t *)in->data)[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
            }
        }
    }
    return TA_OK;
}

/* ---- the adaptation loop with its health check --------------------------------------------- */

float ta_tta_rand(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* Where the source comparisons restart the sample: op 0 (a copy of the input) or, past
 * leading QUANTIZE / RESHAPE ops (no MACs to run twice), a boundary whose only live
 * activation is smaller, e.g. the int8 tensor a float input is quantized into. */
static void pick_snapshot(const ta_tta_t *t, uint16_t *op, uint16_t *tensor, uint32_t *bytes)
{
    const ta_model_t *m = t->backbone->model;
    ta_tensor_t in;
    *op = 0;
    *tensor = m->inputs[0];
    *bytes = ta_engine_input(t->backbone, 0, &in) == TA_OK ? in.rec->size : 0u;
    for (uint16_t b = 1; b < t->exits[0].cut_op && b <= m->n_forward_ops; ++b) {
        const uint16_t code = m->ops[b - 1u].opcode;
        if (code != TA_OP_QUANTIZE && code != TA_OP_RESHAPE) {
            break;
        }
        uint32_t n_live = 0;
        uint16_t live = 0;
        for (uint16_t x = 0; x < m->header->n_tensors; ++x) {
            if (m->tensors[x].kind == TA_TENSOR_ACTIVATION && live_at(m, b, x)) {
                n_live++;
                live = x;
            }
        }
        if (n_live == 1u && m->tensors[live].size < *bytes) {
            *op = b;
            *tensor = live;
            *bytes = m->tensors[live].size;
        }
    }
}

static uint32_t snap_room(uint32_t bytes) { return (bytes + 3u) & ~3u; }

static uint32_t state_floats(const ta_tta_t *runner, const ta_tta_input_t *input)
{
    uint32_t floats = input != NULL ? 2u * input->channels : 0u;
    for (uint8_t k = 0; k < runner->n_exits; ++k) {
        floats += runner->norm[k] != NULL ? 2u * runner->norm[k]->channels : 0u;
    }
    return floats;
}

uint32_t ta_tta_adapt_need(const ta_tta_t *runner, const ta_tta_input_t *input, uint32_t n_classes)
{
    uint16_t op = 0, tensor = 0;
    uint32_t bytes = 0;
    pick_snapshot(runner, &op, &tensor, &bytes);
    return snap_room(bytes) + 4u * state_floats(runner, input) + ((3u * 2u * n_classes + 3u) & ~3u);
}

/* The good state lives after the snapshot in `work`: input mu, var, then every head's. */
static void state_io(ta_tta_adapt_t *a, int restore)
{
    float *p = (float *)(void *)(a->work + snap_room(a->snap_bytes));
    if (a->input != NULL) {
        for (uint32_t c = 0; c < a->input->channels; ++c, p += 2) {
            if (restore) {
                a->input->mu[c] = p[0];
                a->input->var[c] = p[1];
            } else {
                p[0] = a->input->mu[c];
                p[1] = a->input->var[c];
            }
        }
    }
    for (uint8_t k = 0; k < a->runner->n_exits; ++k) {
        ta_tta_norm_t *n = a->runner->norm[k];
        if (n == NULL) {
            continue;
        }
        for (uint32_t c = 0; c < n->channels; ++c, p += 2) {
            if (restore) {
                n->mu[c] = p[0];
                n->var[c] = p[1];
            } else {
                p[0] = n->mu[c];
                p[1] = n->var[c];
            }
        }
        if (restore) {
            ta_tta_norm_fold(n);
        }
    }
}

static void clear_recent(ta_tta_adapt_t *a)
{
    a->n_recent = 0;
    a->sum_h = 0.0f;
    memset(a->hist, 0, 2u * a->n_classes);
}

static void clear_shadow(ta_tta_adapt_t *a)
{
    a->n_disagree = 0;
    a->n_shadow = 0;
    a->sum_h_adapted = a->sum_h_source = 0.0f;
    memset(a->hist_adapted, 0, 2u * a->n_classes);
    memset(a->hist_source, 0, 2u * a->n_classes);
}

static void to_source(ta_tta_adapt_t *a)
{
    if (a->input != NULL) {
        ta_tta_input_reset(a->input);
    }
    for (uint8_t k = 0; k < a->runner->n_exits; ++k) {
        if (a->runner->norm[k] != NULL) {
            ta_tta_norm_reset(a->runner->norm[k]);
        }
    }
}

void ta_tta_adapt_keep(ta_tta_adapt_t *a) { state_io(a, 0); }

void ta_tta_adapt_reset(ta_tta_adapt_t *a)
{
    to_source(a);
    state_io(a, 0);
    clear_recent(a);
    clear_shadow(a);
    a->has_d = 0;
    a->paused = a->fails = 0;
    a->has_prev = 0;
    a->trusted = a->suspect = 0;
}

ta_status_t ta_tta_adapt_start(ta_tta_adapt_t *a)
{
    TA_ENSURE(a != NULL && a->runner != NULL && a->work != NULL, TA_ERR_ARG);
    TA_TRY(ta_tta_check(a->runner));
    TA_ENSURE(a->n_classes >= 1, TA_ERR_ARG);
    /* the histograms count in 16 bits: a window plus the comparisons it carries over */
    TA_ENSURE(a->cfg.window >= 1u && a->cfg.window <= 60000u && a->cfg.min_source <= 1000u, TA_ERR_ARG);
    if (a->norm) {
        for (uint8_t k = 0; k < a->runner->n_exits; ++k) {
            TA_ENSURE(a->runner->norm[k] != NULL, TA_ERR_UNSUPPORTED);
        }
    }
    if (a->input != NULL) {
        TA_ENSURE(a->input->channels >= 1 && a->input->src_mu != NULL && a->input->src_var != NULL &&
                  a->input->mu != NULL && a->input->var != NULL, TA_ERR_ARG);
    }
    TA_ENSURE(((uintptr_t)a->work & 3u) == 0 &&
              a->work_size >= ta_tta_adapt_need(a->runner, a->input, a->n_classes), TA_ERR_ARENA);
    pick_snapshot(a->runner, &a->snap_op, &a->snap_tensor, &a->snap_bytes);
    a->hist = (uint16_t *)(void *)(a->work + snap_room(a->snap_bytes) + 4u * state_floats(a->runner, a->input));
    a->hist_adapted = a->hist + a->n_classes;
    a->hist_source = a->hist_adapted + a->n_classes;
    a->rng = a->cfg.seed != 0u ? a->cfg.seed : 0x9E3779B9u;
    a->pause_len = a->cfg.pause;
    a->rollbacks = a->updates = a->samples = 0;
    ta_tta_adapt_reset(a);
    return TA_OK;
}

/* entropy (nats) of a histogram of n predictions */
static float marginal(const uint16_t *hist, uint32_t classes, uint32_t n)
{
    float h = 0.0f;
    for (uint32_t c = 0; c < classes; ++c) {
        if (hist[c] > 0u) {
            const float p = (float)hist[c] / (float)n;
            h -= p * ta_logf(p);
        }
    }
    return h;
}

static void pause_adapting(ta_tta_adapt_t *a)
{
    a->trusted = a->suspect = 0; /* probation again when adapting resumes */
    a->paused = a->pause_len;
    a->pause_len = a->pause_len <= 0x7FFFFFFFu ? 2u * a->pause_len : 0xFFFFFFFFu;
}

/* The source comparisons so far: 1 when adapting looks worse than not adapting. Label-free,
 * on the same samples. Entropy alone misleads: under a shift the source model is often
 * confidently wrong (low-contrast digits all become one class). */
static int source_verdict(ta_tta_adapt_t *a)
{
    const uint32_t classes = a->n_classes;
    const float d_h = a->sum_h_adapted / (float)a->n_shadow - a->sum_h_source / (float)a->n_shadow;
    a->d_marg = marginal(a->hist_adapted, classes, a->n_shadow) - marginal(a->hist_source, classes, a->n_shadow);
    a->has_d = 1;
    /* Both models gave the same answer on every compared sample: adapting changed nothing a
     * user sees there, so it cannot have done worse (its entropy may still drift a little
     * while a shift begins, which alone used to roll good adaptation back). */
    const int changed = a->n_disagree > 0u;
    clear_shadow(a);
    return changed && ((a->d_marg < -a->cfg.narrow_margin && d_h > -a->cfg.worse_margin) ||
                       (d_h > a->cfg.worse_margin && a->d_marg < a->cfg.widen_margin));
}

/* Positive evidence on the comparisons so far: the models answered differently somewhere and
 * the adapted one is more confident, or spreads its answers wider, than the source. */
static int approve(const ta_tta_adapt_t *a)
{
    const float d_h = a->sum_h_adapted / (float)a->n_shadow - a->sum_h_source / (float)a->n_shadow;
    const float d_marg = marginal(a->hist_adapted, a->n_classes, a->n_shadow) -
                         marginal(a->hist_source, a->n_classes, a->n_shadow);
    return a->n_disagree > 0u && ((d_h < -a->cfg.worse_margin && d_marg > -a->cfg.narrow_margin) ||
                                  (d_marg > a->cfg.widen_margin && d_h < a->cfg.worse_margin));
}

/* the share of the statistics the loop adapts that are off the source's */
static float state_shifted(const ta_tta_adapt_t *a)
{
    uint32_t off = 0, all = 0;
    if (a->input != NULL) {
        off += a->input->shifted;
        all += a->input->channels;
    }
    for (uint8_t k = 0; a->norm && k < a->runner->n_exits; ++k) {
        off += a->runner->norm[k]->shifted;
        all += a->runner->norm[k]->channels;
    }
    return all > 0u ? (float)off / (float)all : 0.0f;
}

static void rollback_to_source(ta_tta_adapt_t *a)
{
    a->rollbacks++;
    to_source(a);
    state_io(a, 0);
    pause_adapting(a);
}

static void health(ta_tta_adapt_t *a, const ta_tta_result_t *r)
{
    a->hist[r->prediction]++;
    a->sum_h += r->entropy;
    if (++a->n_recent < a->cfg.window) {
        return;
    }
    const uint32_t classes = a->n_classes;
    const float marg = marginal(a->hist, classes, a->n_recent);
    const float mean_h = a->sum_h / (float)a->n_recent;
    /* else too few comparisons: they carry over to the next check */
    const int worse = a->n_shadow >= a->cfg.min_source ? source_verdict(a) : 0;
    /* collapse: the predictions narrow while the entropy falls, and (when the source model ran
     * on some of the same samples) narrower than the source's: a shift alone can narrow them */
    const int narrowing = marg < a->cfg.narrow * ta_logf((float)classes) && (!a->has_prev || mean_h < a->prev_h) &&
                          (!a->has_d || a->d_marg < 0.0f);
    clear_recent(a);
    a->has_d = 0;
    if (worse) {
        rollback_to_source(a);
    } else if (narrowing) {
        /* back to the last good state; the source when that collapses again */
        a->rollbacks++;
        if (++a->fails == 1u) {
            state_io(a, 1);
        } else {
            to_source(a);
            state_io(a, 0);
            a->fails = 0;
        }
        pause_adapting(a);
    } else {
        a->fails = 0;
        state_io(a, 0);
    }
    a->prev_h = mean_h;
    a->has_prev = 1;
}

ta_status_t ta_tta_adapt_step(ta_tta_adapt_t *a, ta_tta_result_t *out)
{
    TA_ENSURE(a != NULL && a->runner != NULL && out != NULL, TA_ERR_ARG);
    ta_tta_t *t = a->runner;
    ta_tensor_t in;
    TA_TRY(ta_engine_input(t->backbone, 0, &in));
    const int parts = a->input != NULL || a->norm;
    const int active = parts && a->paused == 0;
    /* drawn before the sample runs (the same one draw per active sample as after it): the
     * snapshot is only taken for samples the source model will see */
    /* on probation, every sample while the statistics are off the source's (decided on the
     * state the previous sample left: the same on host and device) */
    const float frac = state_shifted(a);
    const int probing = active && a->cfg.probation && !a->trusted && frac > 0.0f &&
                        (a->suspect || frac >= a->cfg.probe_share);
    const int shadow = (active && ta_tta_rand(&a->rng) < a->cfg.shadow_rate) || probing;
    ta_tensor_t snap;
    if (shadow) {
        /* the raw sample up to the snapshot boundary (QUANTIZE reads the input, writes another
         * tensor): the source model restarts from there */
        TA_TRY(ta_engine_invoke_ops(t->backbone, 0, a->snap_op));
        TA_TRY(ta_engine_tensor(t->backbone, a->snap_tensor, &snap));
        TA_ENSURE(snap.data != NULL && snap.rec->size == a->snap_bytes, TA_ERR_STATE);
        memcpy(a->work, snap.data, a->snap_bytes);
    }
    if (a->input != NULL && a->paused == 0) {
        TA_TRY(ta_tta_input_apply(a->input, &in));
    }
    t->adapt = (uint8_t)(active && a->norm);
    ta_status_t st = ta_tta_infer(t, out);
    t->adapt = 0;
    TA_TRY(st);
    TA_ENSURE(out->prediction >= 0 && out->prediction < (int32_t)a->n_classes, TA_ERR_SHAPE);
    if (active && a->norm) {
        a->updates += out->exit + 1u; /* every head the sample traversed */
    }
    if (shadow) {
        /* the same sample through the source model (source heads: overlays off, raw input):
         * evidence for "is adapting still better than not adapting" */
        memcpy(snap.data, a->work, a->snap_bytes);
        uint16_t saved[TA_TTA_MAX_EXITS];
        for (uint8_t k = 0; k < t->n_exits; ++k) {
            saved[k] = t->heads[k]->n_overlays;
            t->heads[k]->n_overlays = 0;
        }
        ta_tta_result_t src;
        st = infer_from(t, a->snap_op, &src);
        for (uint8_t k = 0; k < t->n_exits; ++k) {
            t->heads[k]->n_overlays = saved[k];
        }
        TA_TRY(st);
        TA_ENSURE(src.prediction >= 0 && src.prediction < (int32_t)a->n_classes, TA_ERR_SHAPE);
        out->macs += src.macs;
        out->macs_skipped = t->macs_full > out->macs ? t->macs_full - out->macs : 0u;
        a->sum_h_adapted += out->entropy;
        a->sum_h_source += src.entropy;
        a->hist_adapted[out->prediction]++;
        a->hist_source[src.prediction]++;
        a->n_shadow++;
        a->n_disagree += src.prediction != out->prediction ? 1u : 0u;
        a->suspect |= (uint8_t)(src.prediction != out->prediction);
        if (probing) {
            /* the source model answers until the adapted one has shown it does better */
            const uint32_t macs = out->macs;
            *out = src;
            out->macs = macs;
            out->macs_skipped = t->macs_full > macs ? t->macs_full - macs : 0u;
            if (a->n_shadow >= a->cfg.min_source && approve(a)) {
                a->trusted = 1;
            }
        }
        if (a->cfg.early && a->n_shadow >= a->cfg.min_source) {
            /* the verdict as soon as the comparisons suffice: a shorter window of damage */
            if (source_verdict(a)) {
                rollback_to_source(a);
                clear_recent(a);
                a->has_d = 0;
            }
        }
    }
    a->samples++;
    if (a->paused > 0u) {
        if (--a->paused == 0u) {
            clear_recent(a);
            clear_shadow(a);
            a->has_d = 0;
        }
    } else if (parts) {
        health(a, out);
    }
    return TA_OK;
}
