#include "tinyadapt/ops/ta_conv2d.h"

#include "tinyadapt/internal/ta_conv_ref.h"

static int channels_ok(int32_t n, const int32_t *channels, int32_t out_c)
{
    for (int32_t k = 0; k < n; ++k) {
        if (channels[k] < 0 || channels[k] >= out_c) {
            return 0;
        }
    }
    return 1;
}

/* One output channel at a time through the reference pixel routine (out_c = 1), so the bits
 * are by construction those of the whole-filter loop. */
ta_status_t ta_conv2d_rows_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                              const ta_dims_t *filter_dims, int32_t n, const int32_t *channels, const int8_t *rows,
                              const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                              const ta_dims_t *out_dims, int8_t *output)
{
    if (!ta_conv2d_kernel_args_ok(p, in_dims, input, filter_dims, rows, multiplier, shift, out_dims, output) ||
        channels == NULL || n < 0 || n > out_dims->c || !channels_ok(n, channels, out_dims->c)) {
        return TA_ERR_ARG;
    }
    const int32_t out_c = out_dims->c;
    const size_t row = (size_t)filter_dims->h * (size_t)filter_dims->w * (size_t)filter_dims->c;
    const size_t image_size = (size_t)in_dims->h * (size_t)in_dims->w * (size_t)in_dims->c;
    int8_t *out = output;
    for (int32_t b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * image_size;
        for (int32_t oy = 0; oy < out_dims->h; ++oy) {
            for (int32_t ox = 0; ox < out_dims->w; ++ox, out += out_c) {
                for (int32_t k = 0; k < n; ++k) {
                    const int32_t c = channels[k];
                    ta_conv2d_ref_pixel(p, in_dims, image, filter_dims, rows + (size_t)k * row,
                                        bias != NULL ? bias + c : NULL, multiplier + c, shift + c, 1,
                                        oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left, out + c);
                }
            }
        }
    }
    return TA_OK;
}
