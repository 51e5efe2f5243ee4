#include "tinyadapt/ops/ta_quantize.h"

#include <stddef.h>
#include <string.h>

/*
 * round(v) half away from zero (roundf), then + zero_point and clamp to int8.
 * Quotients of magnitude >= 256 land outside int8 whatever the zero point, so
 * they saturate before any float-to-int conversion (which is undefined out of
 * range); NaN takes the zero point, as an Arm FPU converts it to 0.
 */
static int8_t quantize_one(float v, int32_t zero_point)
{
    int32_t r;
    if (v != v) {
        r = 0;
    } else if (v >= 256.0f) {
        r = 256;
    } else if (v <= -256.0f) {
        r = -256;
    } else {
        r = (int32_t)v; /* truncates toward zero */
        /* Exact: v and its integer part share the binade grid below 2^24. */
        const float frac = v - (float)r;
        if (frac >= 0.5f) {
            r += 1;
        } else if (frac <= -0.5f) {
            r -= 1;
        }
    }
    r += zero_point;
    return (int8_t)(r < -128 ? -128 : (r > 127 ? 127 : r));
}

ta_status_t ta_quantize_f32_s8(const ta_quantize_params_t *p, int32_t size, const float *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || size <= 0) {
        return TA_ERR_ARG;
    }
    float scale;
    memcpy(&scale, &p->scale_bits, sizeof(scale));
    for (int32_t i = 0; i < size; ++i) {
        /* A float32 division, as TFLM's val / static_cast<float>(scale). */
        output[i] = quantize_one(input[i] / scale, p->zero_point);
    }
    return TA_OK;
}
