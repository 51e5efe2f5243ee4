/*
 * In-place depthwise convolution (depth multiplier 1) for cores with the DSP extension:
 * the same function, arguments, checks and output bits as
 * kernels/ref/ta_depthwise_conv2d_inplace_s8.c, which stays the specification (and
 * explains why the output may overwrite the input one channel plane at a time).
 * MobileNets run every depthwise layer through this kernel (the planner puts the output
 * over the input), so this is the depthwise kernel that matters for them.
 *
 * The plane-at-a-time order is what makes the in-place trick work, so it stays; the
 * gain comes from what a single plane allows:
 *  - the channel's filter, bias and requantization constants are fixed for the whole
 *    plane: worked out once per channel;
 *  - the plane is contiguous, so for a 3x3 filter (dilation 1) one word load holds a
 *    filter row's three taps (and one spare byte). With the row's weights packed as
 *    {w0, w2} and {w1, 0}, SXTAB16 (which also adds the input offset) and one SMLAD + one
 *    SMLABB do the row. At stride 1 the same word also serves the next output pixel:
 *    x1*w0 + x3*w2 is an SMLAD of the odd lanes, x2*w1 an SMLATB of the even ones.
 * Planes whose zero-point-padded copy fits TA_DWI_PAD_MAX bytes (up to about 30x30) are
 * copied, padded, into the op's arena scratch after the plane (ta_dwi_scratch_layout), so
 * every output pixel takes the fast path; bigger planes use the plane (gathered, no padding)
 * and loop over the taps inside
 * the plane for the pixels at its edges. Other filter sizes loop over the taps too, and a
 * multiplier of INT32_MIN (only the reference's saturating requantization is right there)
 * takes the reference arithmetic.
 */
#include "tinyadapt/ops/ta_depthwise_conv2d.h"

#include <stddef.h>
#include <string.h>

#include "tinyadapt/internal/ta_conv_ref.h"
#include "tinyadapt/internal/ta_conv_scratch.h"
#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/internal/ta_nn_simd.h"

/* scratch[i] = buffer[i * ch + c] for the plane's n pixels, four per word store. */
static void dwi_gather(int8_t *scratch, const int8_t *src, int32_t n, int32_t ch)
{
    const size_t s = (size_t)ch;
    int32_t i = 0;
    for (; i + 3 < n; i += 4, src += 4 * s) {
        const uint32_t v = (uint32_t)(uint8_t)src[0] | ((uint32_t)(uint8_t)src[s] << 8) |
                           ((uint32_t)(uint8_t)src[2 * s] << 16) | ((uint32_t)(uint8_t)src[3 * s] << 24);
        ta_nn_write_s8x4(scratch + i, (int32_t)v);
    }
    for (; i < n; ++i, src += s) {
        scratch[i] = *src;
    }
}

typedef struct {
    ta_nn_requant_t q;
    int32_t bias, output_offset, act_min, act_max;
} dwi_chan_t;

static inline int8_t dwi_finish(int32_t acc, const dwi_chan_t *k)
{
    const int32_t v = ta_nn_add_wrap(ta_nn_requant(acc, &k->q), k->output_offset);
    return (int8_t)ta_nn_clamp(v, k->act_min, k->act_max);
}

/* One output pixel from the taps that lie inside the plane (any filter size). */
static inline int32_t dwi_taps(const ta_conv_params_t *p, const int8_t *plane, int32_t in_h, int32_t in_w,
                               const int8_t *filter, int32_t k_h, int32_t k_w, int32_t ch, int32_t y0, int32_t x0,
                               int32_t acc)
{
    int32_t ky0, ky1, kx0, kx1;
    if (!ta_nn_valid_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1) ||
        !ta_nn_valid_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1)) {
        return acc;
    }
    for (int32_t ky = ky0; ky <= ky1; ++ky) {
        const int8_t *row = plane + (size_t)(y0 + ky * p->dilation_h) * (size_t)in_w;
        const int8_t *w = filter + (size_t)ky * (size_t)k_w * (size_t)ch;
        for (int32_t kx = kx0; kx <= kx1; ++kx) {
            const int32_t x = row[x0 + kx * p->dilation_w];
            acc = ta_nn_add_wrap(acc, (int32_t)w[(size_t)kx * (size_t)ch] * (x + p->input_offset));
        }
    }
    return acc;
}

/* The weights of one channel's 3x3 filter, as the plane kernels use them. */
typedef struct {
    int32_t w[9];   /* w[ky * 3 + kx] */
    int32_t w02[3]; /* per filter row: {w0, w2} in the int16 halves */
    int32_t w1[3];  /* per filter row: w1 */
} dwi_w3_t;

/* Filter rows ky0..ky0+rows-1 of one output pixel whose taps x0..x0+2 are all inside the
 * row: one (unaligned) word per row holds them (and one spare byte, never used). */
static inline int32_t dwi_one(const int8_t *r, int32_t in_w, int32_t rows, const int32_t *w02, const int32_t *w1,
                              int32_t off2, int32_t acc)
{
    for (int32_t i = 0; i < rows; ++i, r += in_w) {
        const int32_t v = ta_nn_read_s8x4(r);
        acc = ta_nn_smlad(ta_nn_sxtab16(off2, v), w02[i], acc);      /* x0*w0 + x2*w2 */
        acc = ta_nn_smlabb(ta_nn_sxtab16_ror8(off2, v), w1[i], acc); /* x1*w1 */
    }
    return acc;
}

/* Two neighbouring output pixels at stride 1: columns x0..x0+3 of each row, one word. */
static inline void dwi_two(const int8_t *r, int32_t in_w, int32_t rows, const int32_t *w02, const int32_t *w1,
                           int32_t off2, int32_t *a, int32_t *b)
{
    int32_t s = *a, t = *b;
    for (int32_t i = 0; i < rows; ++i, r += in_w) {
        const int32_t v = ta_nn_read_s8x4(r);
        const int32_t e02 = ta_nn_sxtab16(off2, v), e13 = ta_nn_sxtab16_ror8(off2, v);
        s = ta_nn_smlad(e02, w02[i], s); /* x0*w0 + x2*w2 */
        s = ta_nn_smlabb(e13, w1[i], s); /* x1*w1 */
        t = ta_nn_smlad(e13, w02[i], t); /* x1*w0 + x3*w2 */
        t = ta_nn_smlatb(e02, w1[i], t); /* x2*w1 */
    }
    *a = s;
    *b = t;
}

/* A pixel with taps outside the plane's columns: only the ones inside, one by one. */
static inline int32_t dwi_edge(const int8_t *r, int32_t in_w, int32_t rows, const int32_t *w, int32_t x0,
                               int32_t off, int32_t acc)
{
    const int32_t kx0 = x0 < 0 ? -x0 : 0;
    const int32_t kx1 = x0 + 2 >= in_w ? in_w - 1 - x0 : 2;
    for (int32_t i = 0; i < rows; ++i, r += in_w, w += 3) {
        for (int32_t kx = kx0; kx <= kx1; ++kx) {
            acc = ta_nn_add_wrap(acc, w[kx] * ((int32_t)r[x0 + kx] + off));
        }
    }
    return acc;
}

/* Stride 1, all three filter rows inside the plane: n pixel pairs from x0 on, rows `w`
 * bytes apart. The rows are unrolled, so that the six packed weights and the pointers
 * get registers of their own; r2 (a constant) picks the requantization. */
static TA_NN_ALWAYS_INLINE void dwi_pairs_body(const int8_t *r, int32_t in_w, int32_t n, const dwi_w3_t *wt,
                                               const dwi_chan_t *k, const ta_nn_act2_t *act, int32_t off2, int8_t *o,
                                               size_t out_step, const int r2)
{
    const int32_t a02 = wt->w02[0], a1 = wt->w1[0], b02 = wt->w02[1], b1 = wt->w1[1];
    const int32_t c02 = wt->w02[2], c1 = wt->w1[2];
    const size_t w = (size_t)in_w;
    for (; n > 0; --n, r += 2, o += 2 * out_step) {
        int32_t s = k->bias, t = k->bias;
        int32_t v = ta_nn_read_s8x4(r), e02 = ta_nn_sxtab16(off2, v), e13 = ta_nn_sxtab16_ror8(off2, v);
        s = ta_nn_smlabb(e13, a1, ta_nn_smlad(e02, a02, s)); /* x0*w0 + x2*w2 + x1*w1 */
        t = ta_nn_smlatb(e02, a1, ta_nn_smlad(e13, a02, t)); /* x1*w0 + x3*w2 + x2*w1 */
        v = ta_nn_read_s8x4(r + w);
        e02 = ta_nn_sxtab16(off2, v);
        e13 = ta_nn_sxtab16_ror8(off2, v);
        s = ta_nn_smlabb(e13, b1, ta_nn_smlad(e02, b02, s));
        t = ta_nn_smlatb(e02, b1, ta_nn_smlad(e13, b02, t));
        v = ta_nn_read_s8x4(r + 2 * w);
        e02 = ta_nn_sxtab16(off2, v);
        e13 = ta_nn_sxtab16_ror8(off2, v);
        s = ta_nn_smlabb(e13, c1, ta_nn_smlad(e02, c02, s));
        t = ta_nn_smlatb(e02, c1, ta_nn_smlad(e13, c02, t));
        const int32_t out = ta_nn_finish2(s, &k->q, t, &k->q, act, r2);
        o[0] = (int8_t)out;
        o[out_step] = (int8_t)(out >> 16);
    }
}

/* Any stride, all three filter rows inside the plane: n pixels, `step` columns apart,
 * each from one word per row (rows unrolled, two pixels at a time share the clamp). */
static TA_NN_ALWAYS_INLINE int32_t dwi_one3(const int8_t *r, size_t w, int32_t a02, int32_t a1, int32_t b02,
                                            int32_t b1, int32_t c02, int32_t c1, int32_t off2, int32_t acc)
{
    int32_t v = ta_nn_read_s8x4(r);
    acc = ta_nn_smlabb(ta_nn_sxtab16_ror8(off2, v), a1, ta_nn_smlad(ta_nn_sxtab16(off2, v), a02, acc));
    v = ta_nn_read_s8x4(r + w);
    acc = ta_nn_smlabb(ta_nn_sxtab16_ror8(off2, v), b1, ta_nn_smlad(ta_nn_sxtab16(off2, v), b02, acc));
    v = ta_nn_read_s8x4(r + 2 * w);
    return ta_nn_smlabb(ta_nn_sxtab16_ror8(off2, v), c1, ta_nn_smlad(ta_nn_sxtab16(off2, v), c02, acc));
}

static TA_NN_ALWAYS_INLINE void dwi_singles_body(const int8_t *r, int32_t in_w, int32_t n, int32_t step,
                                                 const dwi_w3_t *wt, const dwi_chan_t *k, const ta_nn_act2_t *act,
                                                 int32_t off2, int8_t *o, size_t out_step, const int r2)
{
    const int32_t a02 = wt->w02[0], a1 = wt->w1[0], b02 = wt->w02[1], b1 = wt->w1[1];
    const int32_t c02 = wt->w02[2], c1 = wt->w1[2];
    const size_t w = (size_t)in_w;
    for (; n > 1; n -= 2, r += 2 * step, o += 2 * out_step) {
        const int32_t s = dwi_one3(r, w, a02, a1, b02, b1, c02, c1, off2, k->bias);
        const int32_t t = dwi_one3(r + step, w, a02, a1, b02, b1, c02, c1, off2, k->bias);
        const int32_t out = ta_nn_finish2(s, &k->q, t, &k->q, act, r2);
        o[0] = (int8_t)out;
        o[out_step] = (int8_t)(out >> 16);
    }
    if (n > 0) {
        const int32_t s = dwi_one3(r, w, a02, a1, b02, b1, c02, c1, off2, k->bias);
        *o = (int8_t)ta_nn_finish2(s, &k->q, 0, &k->q, act, r2);
    }
}

static TA_NN_NOINLINE void dwi_pairs_r2(const int8_t *r, int32_t in_w, int32_t n, const dwi_w3_t *wt,
                                        const dwi_chan_t *k, const ta_nn_act2_t *act, int32_t off2, int8_t *o,
                                        size_t out_step)
{
    dwi_pairs_body(r, in_w, n, wt, k, act, off2, o, out_step, 1);
}

static TA_NN_NOINLINE void dwi_pairs_any(const int8_t *r, int32_t in_w, int32_t n, const dwi_w3_t *wt,
                                         const dwi_chan_t *k, const ta_nn_act2_t *act, int32_t off2, int8_t *o,
                                         size_t out_step)
{
    dwi_pairs_body(r, in_w, n, wt, k, act, off2, o, out_step, 0);
}

static TA_NN_NOINLINE void dwi_singles_r2(const int8_t *r, int32_t in_w, int32_t n, int32_t step,
                                          const dwi_w3_t *wt, const dwi_chan_t *k, const ta_nn_act2_t *act,
                                          int32_t off2, int8_t *o, size_t out_step)
{
    dwi_singles_body(r, in_w, n, step, wt, k, act, off2, o, out_step, 1);
}

static TA_NN_NOINLINE void dwi_singles_any(const int8_t *r, int32_t in_w, int32_t n, int32_t step,
                                           const dwi_w3_t *wt, const dwi_chan_t *k, const ta_nn_act2_t *act,
                                           int32_t off2, int8_t *o, size_t out_step)
{
    dwi_singles_body(r, in_w, n, step, wt, k, act, off2, o, out_step, 0);
}

/* n output pixels of one row whose taps all lie inside the (padded) plane. */
static void dwi_row(const int8_t *r, int32_t row_stride, int32_t n, int32_t step, const dwi_w3_t *wt,
                    const dwi_chan_t *k, const ta_nn_act2_t *act, int32_t off2, int8_t *o, size_t out_step)
{
    const int r2 = ta_nn_requant_is_r2(&k->q);
    if (step == 1 && n >= 2) {
        if (r2) {
            dwi_pairs_r2(r, row_stride, n / 2, wt, k, act, off2, o, out_step);
        } else {
            dwi_pairs_any(r, row_stride, n / 2, wt, k, act, off2, o, out_step);
        }
        r += n & ~1;
        o += (size_t)(n & ~1) * out_step;
        n &= 1;
    }
    if (n > 0) {
        if (r2) {
            dwi_singles_r2(r, row_stride, n, step, wt, k, act, off2, o, out_step);
        } else {
            dwi_singles_any(r, row_stride, n, step, wt, k, act, off2, o, out_step);
        }
    }
}

/* Small planes: a copy of the plane with the zero point all around (x + offset = 0: a
 * padded tap adds nothing, as the reference's skipped taps), big enough for every tap of
 * every output pixel and the spare byte of each word read, in the op's arena scratch. Then every
 * pixel takes the fast path: no edges, which on a 6x6 plane are more than half the pixels. */
/* TA_DWI_PAD_MAX and the copy's geometry (ta_dwi_pad_geometry): tinyadapt/internal/ta_conv_scratch.h. */
typedef ta_dwi_pad_t dwi_pad_t;

static void dwi_plane_padded(const ta_conv_params_t *p, const int8_t *src, int32_t in_h, int32_t in_w, int32_t ch,
                             const dwi_pad_t *g, int8_t *pad, const dwi_w3_t *wt, const dwi_chan_t *k,
                             int32_t out_h, int32_t out_w, int8_t *out)
{
    memset(pad, -p->input_offset, (size_t)g->rows * (size_t)g->cols);
    for (int32_t y = 0; y < in_h; ++y) {
        dwi_gather(pad + (size_t)(y - g->row0) * (size_t)g->cols - g->col0, src + (size_t)y * (size_t)in_w * (size_t)ch,
                   in_w, ch);
    }
    const ta_nn_act2_t act = ta_nn_act2_make(k->output_offset, k->act_min, k->act_max);
    const int32_t off2 = ta_nn_dup16(p->input_offset);
    const size_t out_step = (size_t)ch;
    const int8_t *r = pad + (size_t)(-p->pad_top - g->row0) * (size_t)g->cols + (size_t)(-p->pad_left - g->col0);
    for (int32_t oy = 0; oy < out_h; ++oy, r += (size_t)p->stride_h * (size_t)g->cols) {
        dwi_row(r, g->cols, out_w, p->stride_w, wt, k, &act, off2, out + (size_t)oy * (size_t)out_w * out_step,
                out_step);
    }
}

/* 3x3, dilation 1, one channel plane: output row by output row, each split into left
 * edge, interior (two pixels at a time) and right edge. Rows above or below the plane
 * just drop out of the filter rows used. */
static TA_NN_NOINLINE void dwi_plane_3x3(const ta_conv_params_t *p, const int8_t *plane, int32_t in_h, int32_t in_w,
                          int32_t plane_room, const dwi_w3_t *wt, const dwi_chan_t *k, int32_t out_h, int32_t out_w,
                          int8_t *out, size_t out_step)
{
    const int32_t off = p->input_offset, off2 = ta_nn_dup16(off);
    const int32_t sw = p->stride_w, pl = p->pad_left;
    const ta_nn_act2_t act = ta_nn_act2_make(k->output_offset, k->act_min, k->act_max);
    /* Interior columns: ox_lo..ox_hi have taps x0..x0+2 inside [0, in_w) (64-bit: in_w + pad
     * is not bounded by ta_conv_args_ok). */
    const int32_t ox_lo = pl > 0 ? (int32_t)(((int64_t)pl + sw - 1) / sw) : 0;
    const int64_t last = (int64_t)in_w - 3 + pl;
    const int32_t ox_hi = last < 0 ? -1 : (last / sw > out_w - 1 ? out_w - 1 : (int32_t)(last / sw));
    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = y0 + 2 >= in_h ? in_h - 1 - y0 : 2;
        const int32_t rows = ky1 - ky0 + 1;
        int8_t *o = out + (size_t)oy * (size_t)out_w * out_step;
        if (rows <= 0) {
            const int32_t v = ta_nn_clamp2(ta_nn_requant(k->bias, &k->q), 0, &act);
            for (int32_t ox = 0; ox < out_w; ++ox, o += out_step) {
                *o = (int8_t)v;
            }
            continue;
        }
        const int8_t *r = plane + (size_t)(y0 + ky0) * (size_t)in_w;
        const int32_t *w02 = wt->w02 + ky0, *w1 = wt->w1 + ky0, *w = wt->w + 3 * ky0;
        /* A word read at the plane's last row may run one byte past it: allowed when the
         * scratch has that byte, else the last interior pixel goes the slow way. */
        int32_t hi = ox_hi;
        if (y0 + ky1 == in_h - 1 && plane_room <= in_h * in_w && hi >= ox_lo &&
            (int64_t)hi * sw - pl + 3 >= in_w) {
            --hi;
        }
        int32_t ox = 0;
        for (; ox < out_w && ox < ox_lo; ++ox, o += out_step) {
            const int32_t acc = dwi_edge(r, in_w, rows, w, ox * sw - pl, off, k->bias);
            *o = (int8_t)ta_nn_clamp2(ta_nn_requant(acc, &k->q), 0, &act);
        }
        if (rows == 3 && ox <= hi) {
            /* all three filter rows: the out-of-line row loops (pairs at stride 1) */
            const int32_t n = hi - ox + 1;
            dwi_row(r + (ox * sw - pl), in_w, n, sw, wt, k, &act, off2, o, out_step);
            ox += n;
            o += (size_t)n * out_step;
        }
        if (sw == 1) {
            for (; ox + 1 <= ox_hi; ox += 2, o += 2 * out_step) {
                int32_t a = k->bias, b = k->bias;
                dwi_two(r + (ox - pl), in_w, rows, w02, w1, off2, &a, &b);
                const int32_t v = ta_nn_clamp2(ta_nn_requant(a, &k->q), ta_nn_requant(b, &k->q), &act);
                o[0] = (int8_t)v;
                o[out_step] = (int8_t)(v >> 16);
            }
        } else {
            for (; ox + 1 <= hi; ox += 2, o += 2 * out_step) {
                const int32_t x0 = ox * sw - pl;
                const int32_t a = dwi_one(r + x0, in_w, rows, w02, w1, off2, k->bias);
                const int32_t b = dwi_one(r + x0 + sw, in_w, rows, w02, w1, off2, k->bias);
                const int32_t v = ta_nn_clamp2(ta_nn_requant(a, &k->q), ta_nn_requant(b, &k->q), &act);
                o[0] = (int8_t)v;
                o[out_step] = (int8_t)(v >> 16);
            }
        }
        for (; ox <= hi; ++ox, o += out_step) {
            const int32_t acc = dwi_one(r + (ox * sw - pl), in_w, rows, w02, w1, off2, k->bias);
            *o = (int8_t)ta_nn_clamp2(ta_nn_requant(acc, &k->q), 0, &act);
        }
        for (; ox < out_w; ++ox, o += out_step) {
            const int32_t acc = dwi_edge(r, in_w, rows, w, ox * sw - pl, off, k->bias);
            *o = (int8_t)ta_nn_clamp2(ta_nn_requant(acc, &k->q), 0, &act);
        }
    }
}

/*
 * Several channels at once (any filter size, stride, dilation): channels c..c+G-1 (G a
 * multiple of 4) of the whole plane copied, channel-interleaved and padded with the zero
 * point, into the same scratch bytes as above; then every output pixel of those channels
 * from that copy, four channels per word: one word of input and one of filter per tap,
 * SMLABB/SMLATT per lane. The copy holds all G channels' inputs before any of their
 * outputs is written, and no other channel is touched, so the output may overwrite the
 * input as in the plane-at-a-time order. What this saves is the per-channel set-up (gather,
 * padded copy, filter packing, requantization constants, function calls), which on the
 * small planes of late MobileNet layers (6x6, 3x3) cost more than the multiplications.
 */
/* Filters of up to TA_DWI_TAPS_MAX taps (5x5, 1x9, 7x7 ...) in groups of as many channels as fit
 * TA_DWI_PAD_MAX bytes of copy (ta_dwi_group_geometry, tinyadapt/internal/ta_conv_scratch.h);
 * bigger ones one plane at a time. */
typedef ta_dwi_grp_t dwi_grp_t;

/* n bytes (a multiple of 4) of fill, a word at a time. */
static inline void dwi_fill4(int8_t *dst, size_t n, int32_t fill4)
{
    for (size_t i = 0; i < n; i += 4) {
        ta_nn_write_s8x4(dst + i, fill4);
    }
}

/* pad[i / 4][y - row0][x - col0][i % 4] = buffer[y][x][c + i], i < G, -input_offset around:
 * each lane group of four channels a plane of words of its own, so that a 3x3 filter's
 * taps lie at constant offsets (0, 4, 8 bytes across). Only the border is filled. */
static void dwi_group_copy(int8_t *pad, const int8_t *buffer, int32_t in_h, int32_t in_w, int32_t ch, int32_t c,
                           const dwi_grp_t *g, int8_t fill)
{
    const size_t gs = (size_t)g->group, row4 = (size_t)g->cols * 4u;
    const int32_t fill4 = (int32_t)(0x01010101u * (uint8_t)fill);
    const size_t left = (size_t)(-g->col0) * 4u, right = row4 - left - (size_t)in_w * 4u;
    /* the border of every lane group's plane: rows (all lane groups) */
    for (int32_t r = 0; r < g->rows * (int32_t)(gs / 4u); ++r) {
        const int32_t y = r % g->rows + g->row0;
        const size_t row_bytes = row4;
        int8_t *dst = pad + (size_t)r * row4;
        if (y < 0 || y >= in_h) {
            dwi_fill4(dst, row_bytes, fill4);
            continue;
        }
        dwi_fill4(dst, left, fill4);
        dwi_fill4(dst + row_bytes - right, right, fill4);
    }
    /* the plane's own pixels, lane group by lane group */
    const size_t sub = (size_t)g->rows * row4;
    for (int32_t y = 0; y < in_h; ++y) {
        const int8_t *src = buffer + (size_t)y * (size_t)in_w * (size_t)ch + (size_t)c;
        int8_t *dst = pad + (size_t)(y - g->row0) * row4 + (size_t)(-g->col0) * 4u;
        for (int32_t x = 0; x < in_w; ++x, src += ch, dst += 4) {
            int8_t *d = dst;
            for (size_t i = 0; i < gs; i += 4, d += sub) {
                ta_nn_write_s8x4(d, ta_nn_read_s8x4(src + i));
            }
        }
    }
}

/* One tap for four channels: a[i] += (x_i + off) * w_i; x one word, w its two
 * sign-extended halves {w0, w2}, {w1, w3}. */
#define DWI_TAP4(xp, wp)                                                       \
    do {                                                                       \
        const int32_t xv_ = ta_nn_read_s8x4(xp);                               \
        const int32_t x02_ = ta_nn_sxtab16(off2, xv_);                         \
        const int32_t x13_ = ta_nn_sxtab16_ror8(off2, xv_);                    \
        const int32_t w02_ = (wp)[0], w13_ = (wp)[1];                          \
        a0 = ta_nn_smlabb(x02_, w02_, a0);                                     \
        a2 = ta_nn_smlatt(x02_, w02_, a2);                                     \
        a1 = ta_nn_smlabb(x13_, w13_, a1);                                     \
        a3 = ta_nn_smlatt(x13_, w13_, a3);                                     \
    } while (0)

/* Channels c..c+3 (lane group j / 4 of the copy) of every output pixel; wk their filter,
 * per tap {w0, w2} and {w1, w3} sign-extended (ta_nn_sxtb16); b, q their bias and
 * requantization (by pointer: as local arrays GCC copied them per row); r2 (a constant)
 * picks the requantization. Taps in pairs with PKHBT/PKHTB + SMLAD were tried: the extra
 * packing and weight loads cost more than the SMLAxy they save. */
static TA_NN_ALWAYS_INLINE void dwi_group4_body(const ta_conv_params_t *p, const int8_t *pad, const dwi_grp_t *g,
                                                int32_t j, const ta_dims_t *filter_dims, const int32_t *wk,
                                                int32_t ch, int32_t c, const ta_nn_requant_t *q, const int32_t *b,
                                                const ta_nn_act2_t *act, int32_t out_h, int32_t out_w,
                                                int8_t *buffer, const int r2)
{
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const size_t row4 = (size_t)g->cols * 4u;
    const size_t x_tap = (size_t)p->dilation_w * 4u, y_tap = (size_t)p->dilation_h * row4;
    const size_t x_step = (size_t)p->stride_w * 4u, y_step = (size_t)p->stride_h * row4;
    const int32_t off2 = ta_nn_dup16(p->input_offset);
    const int is_3x3 = k_h == 3 && k_w == 3 && p->dilation_w == 1;
    const int8_t *row = pad + (size_t)(j / 4) * (size_t)g->rows * row4 +
                        (size_t)(-p->pad_top - g->row0) * row4 + (size_t)(-p->pad_left - g->col0) * 4u;
    int8_t *out = buffer + c;
    for (int32_t oy = 0; oy < out_h; ++oy, row += y_step) {
        const int8_t *px = row;
        for (int32_t ox = 0; ox < out_w; ++ox, px += x_step, out += ch) {
            int32_t a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
            const int32_t *w = wk;
            if (is_3x3) {
                const int8_t *xr = px;
                for (int ky = 0; ky < 3; ++ky, xr += y_tap, w += 6) {
                    DWI_TAP4(xr, w);
                    DWI_TAP4(xr + 4, w + 2);
                    DWI_TAP4(xr + 8, w + 4);
                }
            } else {
                const int8_t *xr = px;
                for (int32_t ky = 0; ky < k_h; ++ky, xr += y_tap) {
                    const int8_t *xp = xr;
                    for (int32_t kx = 0; kx < k_w; ++kx, xp += x_tap, w += 2) {
                        DWI_TAP4(xp, w);
                    }
                }
            }
            const int32_t v01 = ta_nn_finish2(a0, &q[0], a1, &q[1], act, r2);
            const int32_t v23 = ta_nn_finish2(a2, &q[2], a3, &q[3], act, r2);
            /* bytes {v0, v1, v2, v3}: the low bytes of the four int16 lanes */
            const uint32_t v = ((uint32_t)v01 & 0xFFu) | (((uint32_t)v01 >> 8) & 0xFF00u) |
                               (((uint32_t)v23 & 0xFFu) << 16) | (((uint32_t)v23 >> 16) << 24);
            ta_nn_write_s8x4(out, (int32_t)v);
        }
    }
}

#define DWI_GROUP4(NAME, R2)                                                                                      \
    static TA_NN_NOINLINE void NAME(const ta_conv_params_t *p, const int8_t *pad, const dwi_grp_t *g, int32_t j,  \
                                    const ta_dims_t *filter_dims, const int32_t *wk, int32_t ch, int32_t c,       \
                                    const ta_nn_requant_t *q, const int32_t *b, const ta_nn_act2_t *act,          \
                                    int32_t out_h, int32_t out_w, int8_t *buffer)                                 \
    {                                                                                                             \
        dwi_group4_body(p, pad, g, j, filter_dims, wk, ch, c, q, b, act, out_h, out_w, buffer, R2);               \
    }
DWI_GROUP4(dwi_group4_r2, 1)
DWI_GROUP4(dwi_group4_any, 0)
#undef DWI_GROUP4

/* Channels 0..ch4-1 in groups (ch4 = channels done), the copy at `pad`, the packed taps at
 * `wk` (the scratch layout's grouped geometry `g`). */
static int32_t dwi_grouped(const ta_conv_params_t *p, const ta_dims_t *in_dims, int8_t *buffer,
                           const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                           const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims, int8_t *pad,
                           int32_t *wk, const dwi_grp_t *geometry)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, ch = in_dims->c;
    const dwi_grp_t g = *geometry;
    const int32_t ch4 = ch & ~3, taps = filter_dims->h * filter_dims->w;
    const ta_nn_act2_t act = ta_nn_act2_make(p->output_offset, p->act_min, p->act_max);
    int32_t c = 0;
    while (c < ch4) {
        dwi_grp_t gg = g;
        gg.group = ch4 - c < g.group ? ch4 - c : g.group;
        dwi_group_copy(pad, buffer, in_h, in_w, ch, c, &gg, (int8_t)-p->input_offset);
        for (int32_t j = 0; j < gg.group; j += 4) {
            for (int32_t k = 0; k < taps; ++k) {
                const int32_t wv = ta_nn_read_s8x4(filter + (size_t)k * (size_t)ch + (size_t)(c + j));
                wk[2 * k] = ta_nn_sxtb16(wv);
                wk[2 * k + 1] = ta_nn_sxtb16_ror8(wv);
            }
            ta_nn_requant_t q[4];
            int32_t b[4];
            int r2 = 1;
            for (int i = 0; i < 4; ++i) {
                q[i] = ta_nn_requant_make(multiplier[c + j + i], shift[c + j + i]);
                b[i] = bias != NULL ? bias[c + j + i] : 0;
                r2 = r2 && ta_nn_requant_is_r2(&q[i]);
            }
            if (r2) {
                dwi_group4_r2(p, pad, &gg, j, filter_dims, wk, ch, c + j, q, b, &act, out_dims->h, out_dims->w,
                              buffer);
            } else {
                dwi_group4_any(p, pad, &gg, j, filter_dims, wk, ch, c + j, q, b, &act, out_dims->h, out_dims->w,
                               buffer);
            }
        }
        c += gg.group;
    }
    return ch4;
}

ta_status_t ta_depthwise_conv2d_inplace_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims, int8_t *buffer,
                                           const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                           const int32_t *multiplier, const int32_t *shift,
                                           const ta_dims_t *out_dims, int8_t *scratch, int32_t scratch_size)
{
    if (!ta_depthwise_inplace_kernel_args_ok(p, in_dims, buffer, filter_dims, filter, multiplier, shift, out_dims,
                                             scratch, scratch_size)) {
        return TA_ERR_ARG;
    }
    const int32_t in_h = in_dims->h, in_w = in_dims->w, ch = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w;
    /* The fast requantization's precondition; and the word reads' (3x3 only, dilation 1). */
    const int fast = ta_nn_requant_fast_ok(multiplier, shift, ch);
    const int is_3x3 = fast && k_h == 3 && k_w == 3 && p->dilation_h == 1 && p->dilation_w == 1;

    /* The plane, then the copies and packed taps, as ta_depthwise_conv2d_inplace_s8_scratch_size
     * planned; with less scratch than that (a caller of the kernel alone), the plane alone. */
    const ta_dwi_scratch_t s = ta_dwi_scratch_layout(p, in_dims, filter_dims, out_dims);
    const int room = (int64_t)scratch_size >= s.total;
    int8_t *pad = room ? scratch + s.copy_at : NULL;
    const int padded = is_3x3 && room && s.padded;
    const dwi_pad_t pad_geometry = s.pad;
    int32_t *taps = room ? (int32_t *)(void *)(scratch + s.taps_at) : NULL; /* the arena scratch is word-aligned */
    const int32_t plane_room = scratch_size;

    /* Channels in groups of four from one interleaved copy where it fits; the rest (and
     * planes too big for the copy) one plane at a time. */
    const int32_t grouped = fast && room && s.grouped ? dwi_grouped(p, in_dims, buffer, filter_dims, filter, bias, multiplier,
                                                            shift, out_dims, pad, taps, &s.grp)
                                              : 0;
    for (int32_t c = grouped; c < ch; ++c) {
        if (!padded) {
            dwi_gather(scratch, buffer + c, in_h * in_w, ch);
        }
        dwi_chan_t k;
        k.q = ta_nn_requant_make(multiplier[c], shift[c]);
        k.bias = bias != NULL ? bias[c] : 0;
        k.output_offset = p->output_offset;
        k.act_min = p->act_min;
        k.act_max = p->act_max;
        const int8_t *w = filter + c;
        if (is_3x3) {
            dwi_w3_t wt;
            for (int i = 0; i < 9; ++i) {
                wt.w[i] = w[(size_t)i * (size_t)ch];
            }
            for (int ky = 0; ky < 3; ++ky) {
                wt.w02[ky] = (int32_t)(((uint32_t)wt.w[3 * ky + 2] << 16) | ((uint32_t)wt.w[3 * ky] & 0xFFFFu));
                wt.w1[ky] = wt.w[3 * ky + 1];
            }
            if (padded) {
                /* The copy is taken before channel c's first output byte is written. */
                dwi_plane_padded(p, buffer + c, in_h, in_w, ch, &pad_geometry, pad, &wt, &k, out_h, out_w, buffer + c);
            } else {
                dwi_plane_3x3(p, scratch, in_h, in_w, plane_room, &wt, &k, out_h, out_w, buffer + c, (size_t)ch);
            }
            continue;
        }
        int8_t *out = buffer + c;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < out_w; ++ox, out += ch) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int32_t acc = dwi_taps(p, scratch, in_h, in_w, w, k_h, k_w, ch, y0, x0, k.bias);
                if (fast) {
                    *out = dwi_finish(acc, &k);
                } else {
                    const int32_t v = ta_nn_add_wrap(ta_nn_requantize(acc, multiplier[c], shift[c]), p->output_offset);
                    *out = (int8_t)ta_nn_clamp(v, p->act_min, p->act_max);
                }
            }
        }
    }
    return TA_OK;
}
