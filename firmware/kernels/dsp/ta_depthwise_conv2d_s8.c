/*
 * DEPTHWISE_CONV_2D int8 for cores with the DSP extension (Cortex-M4/M7): the same
 * function, arguments, checks and output bits as kernels/ref/ta_depthwise_conv2d_s8.c,
 * which stays the specification.
 *
 * Each output channel has its own filter, so there is no long dot product to run SMLAD
 * on; instead four neighbouring channels go through one word per operand, each lane
 * multiplied with SMLABB/SMLATT:
 *   dw_channels    depth multiplier 1: four channels of one pixel (a word of input, a
 *                  word of filter per tap). 3x3 filters (MobileNet) have the taps of an
 *                  interior pixel unrolled; borders and other sizes loop over the taps
 *                  that fall inside the input, worked out once per pixel, not tested per tap.
 *   dw_multiplier  depth multiplier > 1: the outputs of one input channel are adjacent
 *                  (oc = ic * dm + m), so four of them share one input byte per tap
 *                  (micro_speech: 1 channel -> 8, 10x8 filter).
 *   otherwise      a multiplier of INT32_MIN, where only the reference's saturating
 *                  requantization is right: the reference loop, ta_conv_ref.h.
 * The loops run channel groups outermost, so each group's requantization constants are
 * worked out once per call. Sums are taken in another order than the reference's;
 * int32 addition wraps, so the bits are the same (tinyadapt/internal/ta_nn_simd.h).
 */
#include "tinyadapt/ops/ta_depthwise_conv2d.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_conv_ref.h"
#include "tinyadapt/internal/ta_conv_scratch.h"
#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/internal/ta_nn_simd.h"

typedef struct {
    int32_t output_offset, act_min, act_max;
} dw_out_t;

static inline int8_t dw_finish(int32_t acc, const ta_nn_requant_t *q, const dw_out_t *o)
{
    const int32_t v = ta_nn_add_wrap(ta_nn_requant(acc, q), o->output_offset);
    return (int8_t)ta_nn_clamp(v, o->act_min, o->act_max);
}

/* One tap for four channels: a[i] += (x_i + off) * w_i, x and w read as one word each. */
#define DW_TAP4(xp, wp)                                                       \
    do {                                                                      \
        const int32_t xv_ = ta_nn_read_s8x4(xp), wv_ = ta_nn_read_s8x4(wp);   \
        const int32_t x02_ = ta_nn_sxtab16(off2, xv_);                        \
        const int32_t x13_ = ta_nn_sxtab16_ror8(off2, xv_);                   \
        const int32_t w02_ = ta_nn_sxtb16(wv_), w13_ = ta_nn_sxtb16_ror8(wv_); \
        a0 = ta_nn_smlabb(x02_, w02_, a0);                                    \
        a2 = ta_nn_smlatt(x02_, w02_, a2);                                    \
        a1 = ta_nn_smlabb(x13_, w13_, a1);                                    \
        a3 = ta_nn_smlatt(x13_, w13_, a3);                                    \
    } while (0)

/* Depth multiplier 1: channels c..c+3 of every output pixel, then the next four. */
static void dw_channels(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                        const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                        const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims, int8_t *output)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, ch = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w;
    const size_t row_bytes = (size_t)in_w * (size_t)ch;
    const dw_out_t o = {p->output_offset, p->act_min, p->act_max};
    const int32_t off = p->input_offset, off2 = ta_nn_dup16(p->input_offset);
    const int is_3x3 = k_h == 3 && k_w == 3 && p->dilation_h == 1 && p->dilation_w == 1;
    const size_t x_tap = (size_t)p->dilation_w * (size_t)ch; /* next filter column, in the input */
    const size_t y_tap = (size_t)p->dilation_h * row_bytes;  /* next filter row, in the input */
    const size_t w_row = (size_t)k_w * (size_t)ch;           /* next filter row, in the filter */

    int32_t c = 0;
    for (; c + 3 < ch; c += 4) {
        ta_nn_requant_t q[4];
        int32_t b[4];
        for (int i = 0; i < 4; ++i) {
            q[i] = ta_nn_requant_make(multiplier[c + i], shift[c + i]);
            b[i] = bias != NULL ? bias[c + i] : 0;
        }
        for (int32_t n = 0; n < out_dims->n; ++n) {
            const int8_t *image = input + (size_t)n * (size_t)in_h * row_bytes + (size_t)c;
            int8_t *out = output + (size_t)n * (size_t)out_h * (size_t)out_w * (size_t)ch + (size_t)c;
            for (int32_t oy = 0; oy < out_h; ++oy) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                int32_t ky0, ky1;
                const int rows = ta_nn_valid_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1);
                for (int32_t ox = 0; ox < out_w; ++ox, out += ch) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    int32_t kx0, kx1;
                    const int cols = ta_nn_valid_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1);
                    int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
                    if (rows && cols) {
                        /* the first valid tap, in the input and in the filter */
                        const int8_t *xr = image + (size_t)(y0 + ky0 * p->dilation_h) * row_bytes +
                                           (size_t)(x0 + kx0 * p->dilation_w) * (size_t)ch;
                        const int8_t *wr = filter + (size_t)ky0 * w_row + (size_t)kx0 * (size_t)ch + (size_t)c;
                        if (is_3x3 && ky0 == 0 && ky1 == 2 && kx0 == 0 && kx1 == 2) {
                            for (int ky = 0; ky < 3; ++ky, xr += y_tap, wr += w_row) {
                                DW_TAP4(xr, wr);
                                DW_TAP4(xr + ch, wr + ch);
                                DW_TAP4(xr + 2 * (size_t)ch, wr + 2 * (size_t)ch);
                            }
                        } else {
                            for (int32_t ky = ky0; ky <= ky1; ++ky, xr += y_tap, wr += w_row) {
                                const int8_t *xp = xr, *wp = wr;
                                for (int32_t kx = kx0; kx <= kx1; ++kx, xp += x_tap, wp += ch) {
                                    DW_TAP4(xp, wp);
                                }
                            }
                        }
                    }
                    out[0] = dw_finish(a0, &q[0], &o);
                    out[1] = dw_finish(a1, &q[1], &o);
                    out[2] = dw_finish(a2, &q[2], &o);
                    out[3] = dw_finish(a3, &q[3], &o);
                }
            }
        }
    }
    /* The last ch % 4 channels, one at a time. */
    for (; c < ch; ++c) {
        const ta_nn_requant_t q = ta_nn_requant_make(multiplier[c], shift[c]);
        const int32_t b = bias != NULL ? bias[c] : 0;
        for (int32_t n = 0; n < out_dims->n; ++n) {
            const int8_t *image = input + (size_t)n * (size_t)in_h * row_bytes + (size_t)c;
            int8_t *out = output + (size_t)n * (size_t)out_h * (size_t)out_w * (size_t)ch + (size_t)c;
            for (int32_t oy = 0; oy < out_h; ++oy) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                int32_t ky0, ky1;
                const int rows = ta_nn_valid_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1);
                for (int32_t ox = 0; ox < out_w; ++ox, out += ch) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    int32_t kx0, kx1;
                    int32_t acc = b;
                    if (rows && ta_nn_valid_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1)) {
                        const int8_t *xr = image + (size_t)(y0 + ky0 * p->dilation_h) * row_bytes +
                                           (size_t)(x0 + kx0 * p->dilation_w) * (size_t)ch;
                        const int8_t *wr = filter + (size_t)ky0 * w_row + (size_t)kx0 * (size_t)ch + (size_t)c;
                        for (int32_t ky = ky0; ky <= ky1; ++ky, xr += y_tap, wr += w_row) {
                            const int8_t *xp = xr, *wp = wr;
                            for (int32_t kx = kx0; kx <= kx1; ++kx, xp += x_tap, wp += ch) {
                                acc = ta_nn_add_wrap(acc, (int32_t)*wp * ((int32_t)*xp + off));
                            }
                        }
                    }
                    *out = dw_finish(acc, &q, &o);
                }
            }
        }
    }
}

/* Output channels oc..oc+L-1 (all of input channel ic, L = 1, 2 or 4, a constant at
 * each call: compiled once per L) of every output pixel. */
static TA_NN_ALWAYS_INLINE void dw_multiplier_group(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                                    const int8_t *input, const ta_dims_t *filter_dims,
                                                    const int8_t *filter, const ta_dims_t *out_dims, int8_t *output,
                                                    int32_t ic, int32_t oc, const int32_t *b,
                                                    const ta_nn_requant_t *q, const ta_nn_act2_t *act, const int L)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, in_c = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const size_t row_bytes = (size_t)in_w * (size_t)in_c;
    const int32_t off = p->input_offset;
    const size_t x_tap = (size_t)p->dilation_w * (size_t)in_c;
    const size_t y_tap = (size_t)p->dilation_h * row_bytes;
    const size_t w_row = (size_t)k_w * (size_t)out_c;
    for (int32_t n = 0; n < out_dims->n; ++n) {
        const int8_t *image = input + (size_t)n * (size_t)in_h * row_bytes + (size_t)ic;
        int8_t *out = output + (size_t)n * (size_t)out_h * (size_t)out_w * (size_t)out_c + (size_t)oc;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            const int rows = ta_nn_valid_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_w; ++ox, out += out_c) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                int32_t a0 = b[0], a1 = L > 1 ? b[1] : 0, a2 = L > 2 ? b[2] : 0, a3 = L > 3 ? b[3] : 0;
                if (rows && ta_nn_valid_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1)) {
                    const int8_t *xr = image + (size_t)(y0 + ky0 * p->dilation_h) * row_bytes +
                                       (size_t)(x0 + kx0 * p->dilation_w) * (size_t)in_c;
                    const int8_t *wr = filter + (size_t)ky0 * w_row + (size_t)kx0 * (size_t)out_c + (size_t)oc;
                    const int32_t cols = kx1 - kx0 + 1;
                    for (int32_t ky = ky0; ky <= ky1; ++ky, xr += y_tap, wr += w_row) {
                        const int8_t *xp = xr, *wp = wr;
                        for (int32_t kx = cols; kx > 0; --kx, xp += x_tap, wp += out_c) {
                            const int32_t xv = (int32_t)*xp + off;
                            if (L == 4) {
                                /* SMLAxB: a filter lane times the input value in the low half */
                                const int32_t wv = ta_nn_read_s8x4(wp);
                                const int32_t w02 = ta_nn_sxtb16(wv), w13 = ta_nn_sxtb16_ror8(wv);
                                a0 = ta_nn_smlabb(w02, xv, a0);
                                a2 = ta_nn_smlatb(w02, xv, a2);
                                a1 = ta_nn_smlabb(w13, xv, a1);
                                a3 = ta_nn_smlatb(w13, xv, a3);
                            } else {
                                a0 = ta_nn_add_wrap(a0, xv * wp[0]);
                                if (L > 1) {
                                    a1 = ta_nn_add_wrap(a1, xv * wp[1]);
                                }
                            }
                        }
                    }
                }
                const int32_t v01 = ta_nn_clamp2(ta_nn_requant(a0, &q[0]), L > 1 ? ta_nn_requant(a1, &q[1]) : 0, act);
                out[0] = (int8_t)v01;
                if (L > 1) {
                    out[1] = (int8_t)(v01 >> 16);
                }
                if (L > 2) {
                    const int32_t v23 = ta_nn_clamp2(ta_nn_requant(a2, &q[2]), ta_nn_requant(a3, &q[3]), act);
                    out[2] = (int8_t)v23;
                    out[3] = (int8_t)(v23 >> 16);
                }
            }
        }
    }
}

/* One out-of-line copy per L, each with the registers to itself. */
#define DW_GROUP(L)                                                                                              \
    static TA_NN_NOINLINE void dw_multiplier_group##L(                                                          \
        const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input, const ta_dims_t *filter_dims, \
        const int8_t *filter, const ta_dims_t *out_dims, int8_t *output, int32_t ic, int32_t oc, const int32_t *b, \
        const ta_nn_requant_t *q, const ta_nn_act2_t *act)                                                       \
    {                                                                                                            \
        dw_multiplier_group(p, in_dims, input, filter_dims, filter, out_dims, output, ic, oc, b, q, act, L);     \
    }
DW_GROUP(1)
DW_GROUP(2)
DW_GROUP(4)
#undef DW_GROUP

/*
 * Depth multiplier >= 2, dilation 1 across (micro_speech: 1 channel -> 8 with a 10x8
 * filter; a 1-channel image into 8 channels; the digits CNN's 8 -> 16): four (or two)
 * outputs of one input channel take their taps in pairs with SMLAD. One word of an input row holds four neighbouring taps; SXTAB16
 * adds the input offset and splits it into taps {0, 2} and {1, 3}, which meet the four
 * channels' weights packed the same way once per call. The rows are copied, per output
 * row, into a buffer padded with -input_offset (a tap that then adds (x + offset) * w = 0,
 * as the reference's skipped tap does) and rounded up to whole words of taps (with zero
 * weights), so every output pixel takes the same loop. The rows and packed weights live in
 * the op's arena scratch (ta_dw_scratch_layout: at most TA_DWR_ROW_MAX + 8 * TA_DWR_TAPS_MAX
 * bytes); layers beyond those limits, or given too little scratch, take dw_multiplier.
 */

/* dst[j] = the input at column j - pad_left (stride in_c in src), pad outside [0, in_w). */
static void dw_pad_row(int8_t *dst, const int8_t *src, int32_t wp, int32_t pad_left, int32_t in_w, int32_t in_c,
                       int8_t pad)
{
    int32_t j = 0;
    for (; j < wp && j < pad_left; ++j) {
        dst[j] = pad;
    }
    const int32_t end = pad_left + in_w < wp ? pad_left + in_w : wp;
    const int8_t *x = src + (size_t)(j - pad_left) * (size_t)in_c;
    if (in_c == 1) { /* a contiguous row: a word at a time */
        for (; j + 3 < end; j += 4, x += 4) {
            ta_nn_write_s8x4(dst + j, ta_nn_read_s8x4(x));
        }
    }
    for (; j < end; ++j, x += in_c) {
        dst[j] = *x;
    }
    for (; j < wp; ++j) {
        dst[j] = pad;
    }
}

/* Outputs m..m+L-1 of each input channel, for m = m0, m0 + L, ... while m + L <= m1 (L = 2
 * or 4, a constant at each call: compiled once per L). */
static TA_NN_ALWAYS_INLINE void dw_rows(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                        const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                        const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                                        int8_t *output, int32_t m0, int32_t m1, const int L, int8_t *scratch,
                                        const ta_dw_scratch_t *layout)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, in_c = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const int32_t dm = p->depth_multiplier;
    const int32_t kp = (k_w + 3) & ~3, words = kp / 4;
    const int32_t wp = (out_w - 1) * p->stride_w + kp;
    const int32_t off2 = ta_nn_dup16(p->input_offset);
    const int8_t pad = (int8_t)-p->input_offset; /* in [-128, 127]: the offset is in [-127, 128] */
    const ta_nn_act2_t act = ta_nn_act2_make(p->output_offset, p->act_min, p->act_max);
    int8_t *rows = scratch + layout->rows_at;
    int32_t *w4 = (int32_t *)(void *)scratch; /* [ky][word][lane]{taps 0/2, taps 1/3}; word-aligned */

    for (int32_t n = 0; n < out_dims->n; ++n) {
        const int8_t *image = input + (size_t)n * (size_t)in_h * (size_t)in_w * (size_t)in_c;
        int8_t *image_out = output + (size_t)n * (size_t)out_h * (size_t)out_w * (size_t)out_c;
        for (int32_t ic = 0; ic < in_c; ++ic) {
            for (int32_t m = m0; m + L <= m1; m += L) {
                const int32_t oc = ic * dm + m;
                ta_nn_requant_t q[4];
                int32_t b[4] = {0, 0, 0, 0};
                for (int32_t i = 0; i < L; ++i) {
                    q[i] = ta_nn_requant_make(multiplier[oc + i], shift[oc + i]);
                    b[i] = bias != NULL ? bias[oc + i] : 0;
                }
                int32_t *wq = w4;
                for (int32_t ky = 0; ky < k_h; ++ky) {
                    for (int32_t j = 0; j < words; ++j) {
                        for (int32_t i = 0; i < L; ++i, wq += 2) {
                            int32_t t[4];
                            for (int32_t k = 0; k < 4; ++k) {
                                const int32_t kx = 4 * j + k;
                                t[k] = kx < k_w ? filter[((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)out_c +
                                                         (size_t)(oc + i)]
                                                : 0;
                            }
                            wq[0] = ta_nn_pack16(t[0], t[2]);
                            wq[1] = ta_nn_pack16(t[1], t[3]);
                        }
                    }
                }
                for (int32_t oy = 0; oy < out_h; ++oy) {
                    const int32_t y0 = oy * p->stride_h - p->pad_top;
                    int32_t ky0, ky1;
                    const int any = ta_nn_valid_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1);
                    /* the valid rows, padded: rows[(ky - ky0) * wp + j] = x at column j - pad_left */
                    for (int32_t ky = ky0; any && ky <= ky1; ++ky) {
                        const int8_t *src = image + (size_t)(y0 + ky * p->dilation_h) * (size_t)in_w * (size_t)in_c +
                                            (size_t)ic;
                        dw_pad_row(rows + (size_t)(ky - ky0) * (size_t)wp, src, wp, p->pad_left, in_w, in_c, pad);
                    }
                    int8_t *out = image_out + (size_t)oy * (size_t)out_w * (size_t)out_c + (size_t)oc;
                    for (int32_t ox = 0; ox < out_w; ++ox, out += out_c) {
                        int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
                        for (int32_t ky = ky0; any && ky <= ky1; ++ky) {
                            const int8_t *xp = rows + (size_t)(ky - ky0) * (size_t)wp + (size_t)ox * (size_t)p->stride_w;
                            const int32_t *wk = w4 + (size_t)ky * (size_t)words * (size_t)(2 * L);
                            for (int32_t j = 0; j < words; ++j, xp += 4, wk += 2 * L) {
                                const int32_t xv = ta_nn_read_s8x4(xp);
                                const int32_t x02 = ta_nn_sxtab16(off2, xv), x13 = ta_nn_sxtab16_ror8(off2, xv);
                                a0 = ta_nn_smlad(x13, wk[1], ta_nn_smlad(x02, wk[0], a0));
                                a1 = ta_nn_smlad(x13, wk[3], ta_nn_smlad(x02, wk[2], a1));
                                if (L == 4) {
                                    a2 = ta_nn_smlad(x13, wk[5], ta_nn_smlad(x02, wk[4], a2));
                                    a3 = ta_nn_smlad(x13, wk[7], ta_nn_smlad(x02, wk[6], a3));
                                }
                            }
                        }
                        const int32_t v01 = ta_nn_clamp2(ta_nn_requant(a0, &q[0]), ta_nn_requant(a1, &q[1]), &act);
                        out[0] = (int8_t)v01;
                        out[1] = (int8_t)(v01 >> 16);
                        if (L == 4) {
                            const int32_t v23 =
                                ta_nn_clamp2(ta_nn_requant(a2, &q[2]), ta_nn_requant(a3, &q[3]), &act);
                            out[2] = (int8_t)v23;
                            out[3] = (int8_t)(v23 >> 16);
                        }
                    }
                }
            }
        }
    }
}

static TA_NN_NOINLINE void dw_rows4(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                    const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                    const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                                    int8_t *output, int8_t *scratch, const ta_dw_scratch_t *layout)
{
    dw_rows(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output, 0,
            p->depth_multiplier, 4, scratch, layout);
}

/* The pair left over after the groups of four (multiplier 2, 6, 7, ...). */
static TA_NN_NOINLINE void dw_rows2(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                    const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                    const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                                    int8_t *output, int8_t *scratch, const ta_dw_scratch_t *layout)
{
    const int32_t m0 = p->depth_multiplier & ~3;
    dw_rows(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output, m0, m0 + 2, 2,
            scratch, layout);
}

/*
 * Depth multiplier 2 on two or more input channels (the digits CNN: 8 -> 16): input
 * channels ic, ic+1 give output channels 2ic..2ic+3, whose filter taps are one word. The
 * two input bytes (one halfword) become {x0 + off, x1 + off} in the int16 lanes (two
 * SXTAB16 + PKHBT), and each lane meets its two outputs' weights with SMLABB/SMLATT. Pixels
 * at the borders loop over their valid taps only. An odd last input channel is left to
 * dw_multiplier.
 */
/* Input channels ic, ic + 1 of every pixel; q, b their four outputs' requantization and
 * bias; r2 (a constant) picks the requantization. */
static TA_NN_ALWAYS_INLINE void dw_mult2_body(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                              const ta_dims_t *filter_dims, const int8_t *filter,
                                              const ta_nn_requant_t *q, const int32_t *b, const ta_nn_act2_t *act,
                                              const ta_dims_t *out_dims, int8_t *output, int32_t ic, const int r2)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, in_c = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const size_t row_bytes = (size_t)in_w * (size_t)in_c;
    const int32_t off2 = ta_nn_dup16(p->input_offset);
    const size_t x_tap = (size_t)p->dilation_w * (size_t)in_c, y_tap = (size_t)p->dilation_h * row_bytes;
    const size_t w_row = (size_t)k_w * (size_t)out_c;
    const int32_t oc = 2 * ic;
    {
        for (int32_t n = 0; n < out_dims->n; ++n) {
            const int8_t *image = input + (size_t)n * (size_t)in_h * row_bytes + (size_t)ic;
            int8_t *out = output + (size_t)n * (size_t)out_h * (size_t)out_w * (size_t)out_c + (size_t)oc;
            for (int32_t oy = 0; oy < out_h; ++oy) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                int32_t ky0, ky1;
                const int rows = ta_nn_valid_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1);
                for (int32_t ox = 0; ox < out_w; ++ox, out += out_c) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    int32_t kx0, kx1;
                    /* a0, a1: channel ic's two outputs; a2, a3: channel ic + 1's */
                    int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
                    if (rows && ta_nn_valid_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1)) {
                        const int8_t *xr = image + (size_t)(y0 + ky0 * p->dilation_h) * row_bytes +
                                           (size_t)(x0 + kx0 * p->dilation_w) * (size_t)in_c;
                        const int8_t *wr = filter + (size_t)ky0 * w_row + (size_t)kx0 * (size_t)out_c + (size_t)oc;
                        for (int32_t ky = ky0; ky <= ky1; ++ky, xr += y_tap, wr += w_row) {
                            const int8_t *xp = xr, *wp = wr;
                            for (int32_t kx = kx0; kx <= kx1; ++kx, xp += x_tap, wp += out_c) {
                                const int32_t xv = (int32_t)((uint32_t)(uint8_t)xp[0] | ((uint32_t)(uint8_t)xp[1] << 8));
                                /* {x0 + off, x1 + off} */
                                const int32_t xx = ta_nn_pack16(ta_nn_sxtab16(off2, xv), ta_nn_sxtab16_ror8(off2, xv));
                                const int32_t wv = ta_nn_read_s8x4(wp); /* {w(ic,0), w(ic,1), w(ic+1,0), w(ic+1,1)} */
                                const int32_t w02 = ta_nn_sxtb16(wv), w13 = ta_nn_sxtb16_ror8(wv);
                                a0 = ta_nn_smlabb(xx, w02, a0);
                                a1 = ta_nn_smlabb(xx, w13, a1);
                                a2 = ta_nn_smlatt(xx, w02, a2);
                                a3 = ta_nn_smlatt(xx, w13, a3);
                            }
                        }
                    }
                    const int32_t v01 = ta_nn_finish2(a0, &q[0], a1, &q[1], act, r2);
                    const int32_t v23 = ta_nn_finish2(a2, &q[2], a3, &q[3], act, r2);
                    out[0] = (int8_t)v01;
                    out[1] = (int8_t)(v01 >> 16);
                    out[2] = (int8_t)v23;
                    out[3] = (int8_t)(v23 >> 16);
                }
            }
        }
    }
}

static TA_NN_NOINLINE void dw_mult2_r2(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                       const ta_dims_t *filter_dims, const int8_t *filter, const ta_nn_requant_t *q,
                                       const int32_t *b, const ta_nn_act2_t *act, const ta_dims_t *out_dims,
                                       int8_t *output, int32_t ic)
{
    dw_mult2_body(p, in_dims, input, filter_dims, filter, q, b, act, out_dims, output, ic, 1);
}

static TA_NN_NOINLINE void dw_mult2_any(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                        const ta_dims_t *filter_dims, const int8_t *filter, const ta_nn_requant_t *q,
                                        const int32_t *b, const ta_nn_act2_t *act, const ta_dims_t *out_dims,
                                        int8_t *output, int32_t ic)
{
    dw_mult2_body(p, in_dims, input, filter_dims, filter, q, b, act, out_dims, output, ic, 0);
}

static void dw_mult2(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                     const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                     const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims, int8_t *output)
{
    const ta_nn_act2_t act = ta_nn_act2_make(p->output_offset, p->act_min, p->act_max);
    for (int32_t ic = 0; ic + 1 < in_dims->c; ic += 2) {
        ta_nn_requant_t q[4];
        int32_t b[4];
        int r2 = 1;
        for (int i = 0; i < 4; ++i) {
            q[i] = ta_nn_requant_make(multiplier[2 * ic + i], shift[2 * ic + i]);
            b[i] = bias != NULL ? bias[2 * ic + i] : 0;
            r2 = r2 && ta_nn_requant_is_r2(&q[i]);
        }
        if (r2) {
            dw_mult2_r2(p, in_dims, input, filter_dims, filter, q, b, &act, out_dims, output, ic);
        } else {
            dw_mult2_any(p, in_dims, input, filter_dims, filter, q, b, &act, out_dims, output, ic);
        }
    }
}

/* Depth multiplier > 1: output channels ic*dm + m, m = 0..dm-1, read the same input
 * byte; four of them at a time take one word of filter per tap. Channel groups are the
 * outer loop, so their requantization constants are worked out once. */
static void dw_multiplier(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                          const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                          const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                          int8_t *output, int8_t *scratch, int32_t scratch_size)
{
    const int32_t dm = p->depth_multiplier;
    const ta_nn_act2_t act = ta_nn_act2_make(p->output_offset, p->act_min, p->act_max);
    if (dm == 2 && in_dims->c >= 2) { /* pairs of input channels; an odd last one below */
        dw_mult2(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
        if ((in_dims->c & 1) == 0) {
            return;
        }
    }
    const int32_t ic_first = dm == 2 && in_dims->c >= 2 ? in_dims->c & ~1 : 0;
    const ta_dw_scratch_t layout = ta_dw_scratch_layout(p, in_dims, filter_dims, out_dims);
    const int rows4 = ic_first == 0 && layout.total > 0 && scratch != NULL && scratch_size >= layout.total;
    if (rows4) { /* groups of four outputs per input channel, then a pair; an odd one below */
        if (dm >= 4) {
            dw_rows4(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output, scratch,
                     &layout);
        }
        if ((dm & 3) >= 2) {
            dw_rows2(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output, scratch,
                     &layout);
        }
    }
    for (int32_t ic = ic_first; ic < in_dims->c; ++ic) {
        int32_t m = rows4 ? dm & ~1 : 0;
        while (m < dm) {
            const int32_t oc = ic * dm + m;
            const int32_t lanes = dm - m >= 4 ? 4 : (dm - m >= 2 ? 2 : 1);
            ta_nn_requant_t q[4];
            int32_t b[4];
            for (int32_t i = 0; i < lanes; ++i) {
                q[i] = ta_nn_requant_make(multiplier[oc + i], shift[oc + i]);
                b[i] = bias != NULL ? bias[oc + i] : 0;
            }
            if (lanes == 4) {
                dw_multiplier_group4(p, in_dims, input, filter_dims, filter, out_dims, output, ic, oc, b, q, &act);
            } else if (lanes == 2) {
                dw_multiplier_group2(p, in_dims, input, filter_dims, filter, out_dims, output, ic, oc, b, q, &act);
            } else {
                dw_multiplier_group1(p, in_dims, input, filter_dims, filter, out_dims, output, ic, oc, b, q, &act);
            }
            m += lanes;
        }
    }
}

ta_status_t ta_depthwise_conv2d_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                   const int8_t *input, const ta_dims_t *filter_dims,
                                   const int8_t *filter, const int32_t *bias, const int32_t *multiplier,
                                   const int32_t *shift, const ta_dims_t *out_dims, int8_t *output,
                                   void *scratch, int32_t scratch_size)
{
    if (!ta_depthwise_kernel_args_ok(p, in_dims, input, filter_dims, filter, multiplier, shift, out_dims, output)) {
        return TA_ERR_ARG;
    }
    /* The fast paths' precondition (input_offset in [-127, 128], checked above, keeps
     * x + offset in the int16 lanes). */
    if (!ta_nn_requant_fast_ok(multiplier, shift, out_dims->c)) {
        ta_depthwise_ref_loop(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
    } else if (p->depth_multiplier == 1) {
        dw_channels(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
    } else {
        dw_multiplier(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output,
                      (int8_t *)scratch, scratch_size);
    }
    return TA_OK;
}
