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
    for (uint32_t c = 0; c < n->channels; ++c) {
        const float sd = sqrt_f(n->src_var[c] + 1e-12f);
        float mu = n->mu[c];
        float var = n->var[c];
        if (abs_f(mu - n->src_mu[c]) < n->dead_zone * sd && abs_f(sqrt_f(var + 1e-12f) / sd - 1.0f) < n->dead_zone) {
            mu = n->src_mu[c];
            var = n->src_var[c];
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
    TA_ENSURE(n != NULL && head != NULL && n->channels > 0 && n->channels <= TA_TTA_MAX_CHANNELS, TA_ERR_ARG);
    TA_ENSURE(n->src_mu != NULL && n->src_var != NULL && n->gamma != NULL && n->beta != NULL &&
              n->gamma_scale != NULL && n->z_scale > 0.0f, TA_ERR_ARG);
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
    head->overlays = n->overlays;
    head->n_overlays = 2;
    return TA_OK;
}

ta_status_t ta_tta_infer(ta_tta_t *t, ta_tta_result_t *out)
{
    if (out == NULL) {
        return TA_ERR_ARG;
    }
    TA_TRY(ta_tta_check(t));
    uint16_t first = 0;
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
