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
    TA_TRY(ta_engine_invoke(t->heads[k]));
    TA_TRY(io_tensor(t->heads[k], 1, &out));
    *entropy = ta_tta_entropy_int8((const int8_t *)out.data, out.rec->size, out.rec->scale,
                                   out.rec->zero_point, prediction);
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
