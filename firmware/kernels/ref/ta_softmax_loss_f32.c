#include "tinyadapt/internal/ta_fmath.h"
#include "tinyadapt/ops/ta_backward.h"

/*
 * p = softmax(z), z_i = beta * x_i, x_i = scale * (q_i - zp). The gradient is taken with
 * respect to x (the dequantized logits the previous layer produced), so dL/dx = beta dL/dz.
 *   cross-entropy  L = -log p_label        dL/dz_i = p_i - [i == label]
 *   entropy        L = -sum p_i log p_i    dL/dz_i = -p_i (log p_i + L)
 * `grad` holds the exponentials first, then the gradient.
 */
float ta_softmax_loss_f32(int32_t depth, const int8_t *q, int32_t zero_point, float scale, float beta, int kind,
                          int32_t label, float *grad)
{
    const float zs = beta * scale;
    int32_t qmax = q[0];
    for (int32_t i = 1; i < depth; ++i) {
        qmax = q[i] > qmax ? q[i] : qmax;
    }
    float sum = 0.0f;
    for (int32_t i = 0; i < depth; ++i) {
        grad[i] = ta_expf(zs * (float)(q[i] - qmax)); /* z_i - max z, computed exactly */
        sum += grad[i];
    }
    const float log_sum = ta_logf(sum);
    const float inv = 1.0f / sum;
    float loss = 0.0f;
    if (kind == 0) {
        loss = log_sum - zs * (float)(q[label] - qmax);
        for (int32_t i = 0; i < depth; ++i) {
            grad[i] = beta * (grad[i] * inv - (i == label ? 1.0f : 0.0f));
        }
        return loss;
    }
    for (int32_t i = 0; i < depth; ++i) {
        if (grad[i] > 0.0f) {
            loss -= grad[i] * inv * (zs * (float)(q[i] - qmax) - log_sum);
        }
    }
    for (int32_t i = 0; i < depth; ++i) {
        const float p = grad[i] * inv;
        grad[i] = p > 0.0f ? -beta * p * ((zs * (float)(q[i] - qmax) - log_sum) + loss) : 0.0f;
    }
    return loss;
}
