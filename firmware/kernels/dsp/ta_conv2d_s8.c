/*
 * CONV_2D int8 for cores with the DSP extension (Cortex-M4/M7): the same function, the
 * same arguments, the same checks and the same output bits as kernels/ref/ta_conv2d_s8.c,
 * which stays the specification.
 *
 * Dispatch (each path's preconditions are checked here, at the call):
 *   conv_1x1_x16    1x1 filter, stride 1, no padding, output the input's size: the
 *                   convolution is a matrix product over pixels [P, C_in] x [C_in, C_out].
 *                   A block of pixels is widened to int16 once (input offset included) in
 *                   the op's arena scratch (ta_conv_x16_block); then 2 pixels x 2 output
 *                   channels per step, the filter read as raw int8 (x16_accumulate: 15
 *                   instructions per 16 MACs), and the outputs of the block in a loop of
 *                   their own (requantization + offset in 3 instructions, activation on 4
 *                   bytes at once).
 *   conv_1x1_gemm   the same without scratch (an in-place pointwise conv, a deep layer):
 *                   blocks of 2 pixels x 2 output channels on the int8 input
 *                   (ta_nn_dot_2x2_raw_s8: SXTB16 + SMLAD, 22 instructions per 16 MACs).
 *   conv_im2col     any other filter of at most TA_CONV_PATCH_MAX taps x C_in (the first
 *                   3x3 layer of a MobileNet has 27): each output pixel's patch is gathered
 *                   (padding filled with the zero point) and widened like a 1x1 pixel, in
 *                   the op's arena scratch (ta_conv2d_s8_scratch_size); then the 1x1 loops.
 *   conv_rows       bigger filters (or too little scratch) with dilation_w 1: a pixel's taps in one filter row
 *                   are contiguous in input and filter, one dot product per row.
 *   the rest (bigger filters with dilation_w > 1, a multiplier of INT32_MIN where
 *                   only the reference's saturating requantization is right): the
 *                   reference loop, ta_conv_ref.h.
 * Sums are taken in another order than the reference's; int32 addition wraps (mod 2^32),
 * so the accumulators hold the same bits (see tinyadapt/internal/ta_nn_simd.h).
 */
#include "tinyadapt/ops/ta_conv2d.h"

#include <stddef.h>
#include <string.h>

#include "tinyadapt/internal/ta_conv_ref.h"
#include "tinyadapt/internal/ta_conv_scratch.h"
#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/internal/ta_nn_simd.h"

typedef struct {
    int32_t output_offset, act_min, act_max;
} conv_out_t;

static inline int8_t conv_finish(int32_t acc, const ta_nn_requant_t *q, const conv_out_t *o)
{
    const int32_t v = ta_nn_add_wrap(ta_nn_requant(acc, q), o->output_offset);
    return (int8_t)ta_nn_clamp(v, o->act_min, o->act_max);
}

/* Output channels oc, oc+1 of all pixels (1x1 GEMM, see conv_1x1_gemm). r2: both channels
 * scale down by 4 or more (ta_nn_requant_r2); a constant at each call, so this is
 * compiled twice. */
static TA_NN_ALWAYS_INLINE void conv_1x1_pair(const int8_t *input, const int8_t *wa, int32_t pixels, int32_t depth,
                                              int32_t out_c, int32_t ba, int32_t bb, const ta_nn_requant_t *qa,
                                              const ta_nn_requant_t *qb, const ta_nn_act2_t *act, int8_t *out,
                                              const int r2)
{
    const int8_t *x = input;
    int32_t px = 0;
    for (; px + 1 < pixels; px += 2) {
        int32_t acc[4];
        acc[0] = acc[2] = ba;
        acc[1] = acc[3] = bb;
        /* filter row oc+1 is `depth` bytes after row oc, as pixel px+1 is after pixel px */
        ta_nn_dot_2x2_raw_s8(x, wa, depth, depth, acc);
        const int32_t v0 = ta_nn_finish2(acc[0], qa, acc[1], qb, act, r2);
        const int32_t v1 = ta_nn_finish2(acc[2], qa, acc[3], qb, act, r2);
        out[0] = (int8_t)v0;
        out[1] = (int8_t)(v0 >> 16);
        out[out_c] = (int8_t)v1;
        out[out_c + 1] = (int8_t)(v1 >> 16);
        x += 2 * (size_t)depth;
        out += 2 * (size_t)out_c;
    }
    if (px < pixels) {
        int32_t acc[2] = {ba, bb};
        ta_nn_dot_1x2_s8(x, wa, wa + depth, depth, 0, acc);
        const int32_t v = ta_nn_finish2(acc[0], qa, acc[1], qb, act, r2);
        out[0] = (int8_t)v;
        out[1] = (int8_t)(v >> 16);
    }
}

/* 1x1, stride 1, no padding, same spatial size: pixel k of the output reads pixel k of
 * the input, across rows and batches, so the P = N*H*W pixels form one matrix. Output
 * channels go in pairs in the outer loop, so each pair's requantization constants and
 * filter sums are worked out once, not once per pixel. */
static void conv_1x1_gemm(const ta_conv_params_t *p, int32_t pixels, int32_t depth, int32_t out_c,
                          const int8_t *input, const int8_t *filter, const int32_t *bias, const int32_t *multiplier,
                          const int32_t *shift, int8_t *output)
{
    const conv_out_t o = {p->output_offset, p->act_min, p->act_max};
    const ta_nn_act2_t act = ta_nn_act2_make(p->output_offset, p->act_min, p->act_max);
    const int32_t off = p->input_offset;
    int32_t oc = 0;
    for (; oc + 1 < out_c; oc += 2) {
        const int8_t *wa = filter + (size_t)oc * (size_t)depth;
        const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
        const ta_nn_requant_t qb = ta_nn_requant_make(multiplier[oc + 1], shift[oc + 1]);
        /* sum (x + off) * w = sum x * w + off * sum w (mod 2^32): the offset leaves the inner loop. */
        const int32_t ba = ta_nn_mla_wrap(off, ta_nn_sum_s8(wa, depth), bias != NULL ? bias[oc] : 0);
        const int32_t bb = ta_nn_mla_wrap(off, ta_nn_sum_s8(wa + depth, depth), bias != NULL ? bias[oc + 1] : 0);
        if (ta_nn_requant_is_r2(&qa) && ta_nn_requant_is_r2(&qb)) {
            conv_1x1_pair(input, wa, pixels, depth, out_c, ba, bb, &qa, &qb, &act, output + oc, 1);
        } else {
            conv_1x1_pair(input, wa, pixels, depth, out_c, ba, bb, &qa, &qb, &act, output + oc, 0);
        }
    }
    if (oc < out_c) { /* an odd last channel */
        const int8_t *wa = filter + (size_t)oc * (size_t)depth;
        const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
        const int32_t ba = bias != NULL ? bias[oc] : 0;
        for (int32_t px = 0; px < pixels; ++px) {
            const int32_t acc = ta_nn_dot_1x1_s8(input + (size_t)px * (size_t)depth, wa, depth, off, ba);
            output[(size_t)px * (size_t)out_c + (size_t)oc] = conv_finish(acc, &qa, &o);
        }
    }
}

/*
 * 1x1 on widened input (conv_1x1_x16). The input of a block of pixels is widened to int16
 * once, input offset included (SXTAB16), in the op's arena scratch; every pair of output
 * channels then runs over the block's pixel pairs with ta_nn_dot_2x2_x16 (16 instructions
 * per 16 multiply-accumulates) and the accumulators start at the bias.
 */

/* count pixels of `depth` int8 from x, widened into dst: pairs as ta_nn_dot_2x2_x16 reads
 * them, a last odd pixel as {x02, x13} per group of 4 channels. A last group short of 4
 * channels is padded with zeros, so whatever the filter holds there adds nothing. */
static void x16_widen(const int8_t *x, int32_t count, int32_t depth, int32_t offset, int32_t *dst)
{
    const int32_t off2 = ta_nn_dup16(offset), groups = depth >> 2, rem = depth & 3;
    for (; count > 0; count -= 2, x += 2 * (size_t)depth) {
        const int8_t *xa = x, *xb = x + depth;
        const int two = count > 1;
        if (two) {
            for (int32_t g = groups; g > 0; --g, xa += 4, xb += 4, dst += 4) {
                const int32_t u = ta_nn_read_s8x4(xa), v = ta_nn_read_s8x4(xb);
                dst[0] = ta_nn_sxtab16(off2, u);
                dst[1] = ta_nn_sxtab16_ror8(off2, u);
                dst[2] = ta_nn_sxtab16(off2, v);
                dst[3] = ta_nn_sxtab16_ror8(off2, v);
            }
        } else {
            for (int32_t g = groups; g > 0; --g, xa += 4, dst += 2) {
                const int32_t u = ta_nn_read_s8x4(xa);
                dst[0] = ta_nn_sxtab16(off2, u);
                dst[1] = ta_nn_sxtab16_ror8(off2, u);
            }
        }
        if (rem > 0) {
            for (int k = 0; k < (two ? 2 : 1); ++k) {
                const int8_t *t = k == 0 ? xa : xb;
                const int32_t t0 = t[0] + offset, t1 = rem > 1 ? t[1] + offset : 0, t2 = rem > 2 ? t[2] + offset : 0;
                dst[0] = ta_nn_pack16(t0, t2);
                dst[1] = ta_nn_pack16(t1, 0);
                dst += 2;
            }
        }
    }
}

/* Filter bytes w[0..rem) (rem 1..3) split as SXTB16 splits a word: {w0, w2}, {w1, w3}. */
static inline void x16_tail_weights(const int8_t *w, int32_t rem, int32_t *w02, int32_t *w13)
{
    *w02 = ta_nn_pack16(w[0], rem > 2 ? w[2] : 0);
    *w13 = ta_nn_pack16(rem > 1 ? w[1] : 0, 0);
}

/* One widened pixel ({x02, x13} per group) x two filter rows d bytes apart. */
static inline const int32_t *x16_dot_1x2(const int32_t *x, const int8_t *w, int32_t d, int32_t groups,
                                         int32_t acc[2])
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t k = groups; k > 0; --k, x += 2, w += 4) {
        const int32_t x02 = x[0], x13 = x[1];
        const int32_t wa = ta_nn_read_s8x4(w), wb = ta_nn_read_s8x4(w + d);
        a0 = ta_nn_smlad(x13, ta_nn_sxtb16_ror8(wa), ta_nn_smlad(x02, ta_nn_sxtb16(wa), a0));
        a1 = ta_nn_smlad(x13, ta_nn_sxtb16_ror8(wb), ta_nn_smlad(x02, ta_nn_sxtb16(wb), a1));
    }
    acc[0] = a0;
    acc[1] = a1;
    return x;
}

/* An output: requantized, offset added; saturated to int8, which the activation bounds
 * (within int8) then clamp as the reference clamps the unsaturated value. */
static TA_NN_ALWAYS_INLINE int32_t x16_out(int32_t acc, const ta_nn_requant_t *q, int32_t offset, const int r2)
{
    const int32_t v = r2 ? ta_nn_requant_r2_off(acc, q->m2, q->p2, offset) : ta_nn_add_wrap(ta_nn_requant(acc, q), offset);
    return ta_nn_ssat8(v);
}

/* The outputs of one output channel pair at two pixels, from their accumulators
 * {(a, oc), (a, ob), (b, oc), (b, ob)}; two_ch 0: only oc is stored. Any requantization. */
static TA_NN_ALWAYS_INLINE void x16_store4(const int32_t *acc, const ta_nn_requant_t *qa, const ta_nn_requant_t *qb,
                                           int32_t off, int32_t lo, int32_t hi, int8_t *out_a, int8_t *out_b,
                                           const int two_ch)
{
    const int32_t s0 = x16_out(acc[0], qa, off, 0), s2 = x16_out(acc[2], qa, off, 0);
    out_a[0] = (int8_t)(s0 < lo ? lo : (s0 > hi ? hi : s0));
    out_b[0] = (int8_t)(s2 < lo ? lo : (s2 > hi ? hi : s2));
    if (two_ch) {
        const int32_t s1 = x16_out(acc[1], qb, off, 0), s3 = x16_out(acc[3], qb, off, 0);
        out_a[1] = (int8_t)(s1 < lo ? lo : (s1 > hi ? hi : s1));
        out_b[1] = (int8_t)(s3 < lo ? lo : (s3 > hi ? hi : s3));
    }
}

/* The ta_nn_requant_r2 constants of a channel pair, the output offset and the packed
 * activation bounds: what the output loop keeps in registers. */
typedef struct {
    int32_t m2a, p2a, m2b, p2b, off, lo4, hi4;
} x16_rq_t;

/* Outputs of `pairs` pixel pairs (accumulators as x16_store4's, 16 bytes a pair) for a
 * channel pair whose channels both take ta_nn_requant_r2; a loop of its own, so that its
 * constants stay in registers. two_ch 0: channel oc only; full: no clamp beyond int8. */
static TA_NN_ALWAYS_INLINE void x16_emit_r2(const int32_t *a, int32_t pairs, int8_t *out, int32_t out_c,
                                            const x16_rq_t *c, const int two_ch, const int full)
{
    const int32_t m2a = c->m2a, p2a = c->p2a, m2b = c->m2b, p2b = c->p2b, off = c->off;
    const int32_t lo4 = c->lo4, hi4 = c->hi4;
    for (const int32_t *end = a + 4 * (size_t)pairs; a < end; a += 4, out += 2 * (size_t)out_c) {
        const int32_t s0 = ta_nn_ssat8(ta_nn_requant_r2_off(a[0], m2a, p2a, off));
        const int32_t s2 = ta_nn_ssat8(ta_nn_requant_r2_off(a[2], m2a, p2a, off));
        const int32_t s1 = two_ch ? ta_nn_ssat8(ta_nn_requant_r2_off(a[1], m2b, p2b, off)) : 0;
        const int32_t s3 = two_ch ? ta_nn_ssat8(ta_nn_requant_r2_off(a[3], m2b, p2b, off)) : 0;
        if (full) {
            out[0] = (int8_t)s0;
            out[out_c] = (int8_t)s2;
            if (two_ch) {
                out[1] = (int8_t)s1;
                out[out_c + 1] = (int8_t)s3;
            }
            continue;
        }
        const int32_t v = ta_nn_min_s8x4(ta_nn_max_s8x4(ta_nn_pack_s8x4(s0, s1, s2, s3), lo4), hi4);
        if (two_ch) {
            const uint16_t va = (uint16_t)v, vb = (uint16_t)((uint32_t)v >> 16);
            memcpy(out, &va, 2);
            memcpy(out + out_c, &vb, 2);
        } else {
            out[0] = (int8_t)v;
            out[out_c] = (int8_t)((uint32_t)v >> 16);
        }
    }
}

#define X16_EMIT(name, two_ch, full)                                                                             \
    static TA_NN_NOINLINE void name(const int32_t *a, int32_t pairs, int8_t *out, int32_t out_c, const x16_rq_t *c) \
    {                                                                                                            \
        x16_emit_r2(a, pairs, out, out_c, c, two_ch, full);                                                      \
    }
X16_EMIT(x16_emit_2_full, 1, 1)
X16_EMIT(x16_emit_2_act, 1, 0)
X16_EMIT(x16_emit_1_full, 0, 1)
X16_EMIT(x16_emit_1_act, 0, 0)
#undef X16_EMIT

/* The accumulators of `pairs` widened pixel pairs (from x on) for filter rows w, w + d,
 * stored 16 bytes a pair at accs, started at the biases ba, bb; depth a multiple of 4
 * (groups of 4 channels, at least one): per group one LDM of the pair's four words, two
 * LDR + four SXTB16 of filter, eight SMLAD (15 instructions per 16 multiply-accumulates),
 * unrolled four times. The pixel-pair loop is in the assembly too: the dot product takes
 * 14 registers, so the loop's own state lives in the stack frame
 * (sp-relative "m" operands), reloaded once a pair, which costs less than what GCC
 * spills and reloads around the dot product. */
static TA_NN_NOINLINE void x16_accumulate(const int32_t *x, const int8_t *w, int32_t d, int32_t groups,
                                          int32_t pairs, int32_t ba, int32_t bb, int32_t *accs)
{
#if defined(TA_NN_SIMD_DSP)
    if (pairs <= 0) {
        return;
    }
    struct {
        const int8_t *w;
        int32_t groups, ba, bb, pairs;
        int32_t *accs;
    } st = {w, groups, ba, bb, pairs, accs};
    /* LDM fills its registers in ascending order: the pair's four words in r8..r11. */
    register int32_t xa02 __asm__("r8"), xa13 __asm__("r9"), xb02 __asm__("r10"), xb13 __asm__("r11");
    int32_t a0, a1, a2, a3, s, e, k;
    const int8_t *wp;
#define TA_X16_STEP                                                 \
    "ldmia   %[x]!, {%[xa02], %[xa13], %[xb02], %[xb13]}\n\t"       \
    "ldr     %[s], [%[w], %[d]]\n\t"                                \
    "sxtb16  %[e], %[s]\n\t"                                        \
    "sxtb16  %[s], %[s], ror #8\n\t"                                \
    "smlad   %[a1], %[xa02], %[e], %[a1]\n\t"                       \
    "smlad   %[a3], %[xb02], %[e], %[a3]\n\t"                       \
    "smlad   %[a1], %[xa13], %[s], %[a1]\n\t"                       \
    "smlad   %[a3], %[xb13], %[s], %[a3]\n\t"                       \
    "ldr     %[s], [%[w]], #4\n\t"                                  \
    "sxtb16  %[e], %[s]\n\t"                                        \
    "sxtb16  %[s], %[s], ror #8\n\t"                                \
    "smlad   %[a0], %[xa02], %[e], %[a0]\n\t"                       \
    "smlad   %[a2], %[xb02], %[e], %[a2]\n\t"                       \
    "smlad   %[a0], %[xa13], %[s], %[a0]\n\t"                       \
    "smlad   %[a2], %[xb13], %[s], %[a2]\n\t"
    /* groups % 4 single steps, then four at a time */
    __asm__ volatile("0:\n\t"
                     "ldr     %[w], %[st_w]\n\t"
                     "ldr     %[k], %[st_g]\n\t"
                     "ldr     %[a0], %[st_ba]\n\t"
                     "ldr     %[a1], %[st_bb]\n\t"
                     "mov     %[a2], %[a0]\n\t"
                     "mov     %[a3], %[a1]\n\t"
                     "tst     %[k], #1\n\t"
                     "beq     2f\n\t" TA_X16_STEP
                     "2:\n\t"
                     "tst     %[k], #2\n\t"
                     "beq     4f\n\t" TA_X16_STEP TA_X16_STEP
                     "4:\n\t"
                     "lsrs    %[k], %[k], #2\n\t"
                     "beq     3f\n"
                     "1:\n\t" TA_X16_STEP TA_X16_STEP TA_X16_STEP TA_X16_STEP
                     "subs    %[k], %[k], #1\n\t"
                     "bne     1b\n"
                     "3:\n\t"
                     "ldr     %[xa02], %[st_acc]\n\t"
                     "strd    %[a0], %[a1], [%[xa02]], #8\n\t"
                     "strd    %[a2], %[a3], [%[xa02]], #8\n\t"
                     "str     %[xa02], %[st_acc]\n\t"
                     "ldr     %[xa13], %[st_n]\n\t"
                     "subs    %[xa13], %[xa13], #1\n\t"
                     "str     %[xa13], %[st_n]\n\t"
                     "bne     0b\n\t"
                     : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "+r"(x), [w] "=&r"(wp),
                       [k] "=&r"(k), [xa02] "=&r"(xa02), [xa13] "=&r"(xa13), [xb02] "=&r"(xb02),
                       [xb13] "=&r"(xb13), [s] "=&r"(s), [e] "=&r"(e), [st_acc] "+m"(st.accs), [st_n] "+m"(st.pairs)
                     : [d] "r"(d), [st_w] "m"(st.w), [st_g] "m"(st.groups), [st_ba] "m"(st.ba), [st_bb] "m"(st.bb)
                     : "cc", "memory");
#undef TA_X16_STEP
#else
    for (; pairs > 0; --pairs, accs += 4) {
        int32_t acc[4] = {ba, bb, ba, bb};
        x = ta_nn_dot_2x2_x16(x, w, d, groups, acc);
        accs[0] = acc[0];
        accs[1] = acc[1];
        accs[2] = acc[2];
        accs[3] = acc[3];
    }
#endif
}

/* Output channels oc, ob (ob == oc for an odd last channel: then only oc is stored) of the
 * `count` widened pixels at xs. All the block's accumulators first (into accs, 2 words a
 * pixel), then all its outputs, each in a loop of its own (the dot product takes every
 * register). r2: every channel takes ta_nn_requant_r2 (a constant). */
static TA_NN_ALWAYS_INLINE void x16_channels(const ta_conv_params_t *p, const int32_t *xs, int32_t count,
                                             int32_t depth, int32_t out_c, const int8_t *filter, const int32_t *bias,
                                             const int32_t *multiplier, const int32_t *shift, int8_t *output,
                                             int32_t *restrict accs, const int r2)
{
    const int32_t groups = depth >> 2, rem = depth & 3, pairs = count >> 1;
    const int32_t off = p->output_offset, lo = p->act_min, hi = p->act_max;
    const int full = lo == -128 && hi == 127;
    for (int32_t oc = 0; oc < out_c; oc += 2) {
        const int32_t ob = oc + 1 < out_c ? oc + 1 : oc;
        const int two_ch = ob != oc;
        const int8_t *wa = filter + (size_t)oc * (size_t)depth;
        const int32_t d = (ob - oc) * depth; /* filter row ob, from row oc */
        const int32_t ba = bias != NULL ? bias[oc] : 0, bb = bias != NULL ? bias[ob] : 0;
        int32_t ta02 = 0, ta13 = 0, tb02 = 0, tb13 = 0;
        const int32_t *x = xs;
        if (rem == 0 && groups > 0) {
            x16_accumulate(x, wa, d, groups, pairs, ba, bb, accs);
            x += (size_t)pairs * (size_t)groups * 4u;
        } else {
            x16_tail_weights(wa + (size_t)groups * 4u, rem, &ta02, &ta13);
            x16_tail_weights(wa + (size_t)d + (size_t)groups * 4u, rem, &tb02, &tb13);
            int32_t *a = accs;
            for (int32_t j = pairs; j > 0; --j, a += 4) {
                int32_t acc[4] = {ba, bb, ba, bb};
                x = ta_nn_dot_2x2_x16(x, wa, d, groups, acc);
                a[0] = ta_nn_smlad(x[1], ta13, ta_nn_smlad(x[0], ta02, acc[0]));
                a[1] = ta_nn_smlad(x[1], tb13, ta_nn_smlad(x[0], tb02, acc[1]));
                a[2] = ta_nn_smlad(x[3], ta13, ta_nn_smlad(x[2], ta02, acc[2]));
                a[3] = ta_nn_smlad(x[3], tb13, ta_nn_smlad(x[2], tb02, acc[3]));
                x += 4;
            }
        }
        int32_t lone[4];
        if (count & 1) { /* the odd last pixel */
            int32_t acc[2] = {ba, bb};
            x = x16_dot_1x2(x, wa, d, groups, acc);
            if (rem > 0) {
                acc[0] = ta_nn_smlad(x[1], ta13, ta_nn_smlad(x[0], ta02, acc[0]));
                acc[1] = ta_nn_smlad(x[1], tb13, ta_nn_smlad(x[0], tb02, acc[1]));
            }
            lone[0] = lone[2] = acc[0];
            lone[1] = lone[3] = acc[1];
        }
        int8_t *out = output + oc;
        int8_t *out_lone = out + (size_t)pairs * 2u * (size_t)out_c;
        if (r2) { /* only m2 and p2 matter then (shift in [-31, -2]) */
            x16_rq_t c;
            c.m2a = (int32_t)((uint32_t)multiplier[oc] << 1);
            c.p2a = (int32_t)(1u << (32 + shift[oc]));
            c.m2b = (int32_t)((uint32_t)multiplier[ob] << 1);
            c.p2b = (int32_t)(1u << (32 + shift[ob]));
            c.off = off;
            c.lo4 = ta_nn_dup8(lo);
            c.hi4 = ta_nn_dup8(hi);
            if (two_ch) {
                (full ? x16_emit_2_full : x16_emit_2_act)(accs, pairs, out, out_c, &c);
            } else {
                (full ? x16_emit_1_full : x16_emit_1_act)(accs, pairs, out, out_c, &c);
            }
            if (count & 1) { /* written twice, the same bytes (out_b = out_a) */
                (two_ch ? x16_emit_2_act : x16_emit_1_act)(lone, 1, out_lone, 0, &c);
            }
        } else {
            const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
            const ta_nn_requant_t qb = ta_nn_requant_make(multiplier[ob], shift[ob]);
            const int32_t *a = accs;
            for (int32_t j = pairs; j > 0; --j, a += 4, out += 2 * (size_t)out_c) {
                x16_store4(a, &qa, &qb, off, lo, hi, out, out + out_c, two_ch);
            }
            if (count & 1) {
                x16_store4(lone, &qa, &qb, off, lo, hi, out_lone, out_lone, two_ch);
            }
        }
    }
}

#define X16_VARIANT(name, r2)                                                                                   \
    static TA_NN_NOINLINE void name(const ta_conv_params_t *p, const int32_t *xs, int32_t count, int32_t depth, \
                                    int32_t out_c, const int8_t *filter, const int32_t *bias,                   \
                                    const int32_t *multiplier, const int32_t *shift, int8_t *output,            \
                                    int32_t *accs)                                                              \
    {                                                                                                            \
        x16_channels(p, xs, count, depth, out_c, filter, bias, multiplier, shift, output, accs, r2);             \
    }
X16_VARIANT(x16_channels_r2, 1)
X16_VARIANT(x16_channels_any, 0)
#undef X16_VARIANT

/* 1x1, stride 1, no padding (ta_conv_is_gemm), a block of `block` pixels widened at a time
 * into xs (ta_conv_x16_block). */
static void conv_1x1_x16(const ta_conv_params_t *p, int32_t pixels, int32_t depth, int32_t out_c,
                         const int8_t *input, const int8_t *filter, const int32_t *bias, const int32_t *multiplier,
                         const int32_t *shift, int8_t *output, int32_t *xs, int32_t block)
{
    int32_t *accs = xs + (size_t)block * (size_t)((depth + 3) >> 2) * 2u; /* ta_conv_scratch_layout's acc_at */
    int all_r2 = 1;
    for (int32_t oc = 0; oc < out_c && all_r2; ++oc) {
        const ta_nn_requant_t q = ta_nn_requant_make(multiplier[oc], shift[oc]);
        all_r2 = ta_nn_requant_is_r2(&q);
    }
    for (int32_t q0 = 0; q0 < pixels; q0 += block) {
        const int32_t count = pixels - q0 < block ? pixels - q0 : block;
        const int8_t *x = input + (size_t)q0 * (size_t)depth;
        int8_t *out = output + (size_t)q0 * (size_t)out_c;
        x16_widen(x, count, depth, p->input_offset, xs);
        if (all_r2) {
            x16_channels_r2(p, xs, count, depth, out_c, filter, bias, multiplier, shift, out, accs);
        } else {
            x16_channels_any(p, xs, count, depth, out_c, filter, bias, multiplier, shift, out, accs);
        }
    }
}

/* The k_h * k_w * C_in input bytes output pixel (oy, ox) reads, in the filter's order;
 * taps outside the input hold the input zero point (x + offset = 0: no contribution, as
 * the reference's skipped taps). */
static void conv_patch(const ta_conv_params_t *p, const int8_t *image, int32_t in_h, int32_t in_w, int32_t depth,
                       int32_t k_h, int32_t k_w, int32_t oy, int32_t ox, int8_t *dst)
{
    const int8_t zp = (int8_t)-p->input_offset;
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    const size_t row_bytes = (size_t)k_w * (size_t)depth;
    int32_t kx0, kx1;
    const int cols = ta_nn_valid_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1);
    for (int32_t ky = 0; ky < k_h; ++ky, dst += row_bytes) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= in_h || !cols) {
            memset(dst, zp, row_bytes);
            continue;
        }
        const int8_t *row = image + (size_t)iy * (size_t)in_w * (size_t)depth;
        if (p->dilation_w == 1) {
            /* one run of valid columns, zero point either side */
            const size_t before = (size_t)kx0 * (size_t)depth, run = (size_t)(kx1 - kx0 + 1) * (size_t)depth;
            const size_t after = row_bytes - before - run;
            /* interior pixels have no padding: skip the empty calls (~20 instructions a pixel) */
            if (before > 0) {
                memset(dst, zp, before);
            }
            memcpy(dst + before, row + (size_t)(x0 + kx0) * (size_t)depth, run);
            if (after > 0) {
                memset(dst + before + run, zp, after);
            }
            continue;
        }
        for (int32_t kx = 0; kx < k_w; ++kx) {
            int8_t *d = dst + (size_t)kx * (size_t)depth;
            if (kx < kx0 || kx > kx1) {
                memset(d, zp, (size_t)depth);
            } else {
                memcpy(d, row + (size_t)(x0 + kx * p->dilation_w) * (size_t)depth, (size_t)depth);
            }
        }
    }
}

/* Any filter of at most TA_CONV_PATCH_MAX taps x channels (the first 3x3 layer of a
 * MobileNet: 27): output pixels' patches are gathered (conv_patch, two at a time), widened
 * into a block as the 1x1 path's pixels (the zero point of padding becomes 0) and run
 * through the same channel loops. A patch size not a multiple of 4 reads the filter from a
 * copy with rows padded to whole words when the scratch has one (else the loops' slower
 * path for the last channels). */
static TA_NN_NOINLINE void conv_im2col(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                       const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                                       const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                                       int8_t *output, int8_t *scratch, const ta_conv_scratch_t *layout)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, depth = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const int32_t fs = k_h * k_w * depth, fs4 = (fs + 3) & ~3;
    const size_t image_bytes = (size_t)in_h * (size_t)in_w * (size_t)depth;
    const int64_t pixels = (int64_t)out_dims->n * out_h * out_w;
    const int32_t block = layout->block;
    int32_t *xs = (int32_t *)(void *)scratch; /* the arena scratch is word-aligned */
    int32_t *accs = (int32_t *)(void *)(scratch + layout->acc_at);
    int8_t *patch = scratch + layout->patch_at;
    const int8_t *w = filter;
    int32_t w_depth = fs;
    if (layout->total > layout->w_at) { /* rows padded to whole words */
        int8_t *copy = scratch + layout->w_at;
        for (int32_t oc = 0; oc < out_c; ++oc) {
            memcpy(copy + (size_t)oc * (size_t)fs4, filter + (size_t)oc * (size_t)fs, (size_t)fs);
            memset(copy + (size_t)oc * (size_t)fs4 + fs, 0, (size_t)(fs4 - fs));
        }
        w = copy;
        w_depth = fs4;
    }
    int all_r2 = 1;
    for (int32_t oc = 0; oc < out_c && all_r2; ++oc) {
        const ta_nn_requant_t q = ta_nn_requant_make(multiplier[oc], shift[oc]);
        all_r2 = ta_nn_requant_is_r2(&q);
    }
    int32_t b = 0, oy = 0, ox = 0; /* the next output pixel */
    for (int64_t q0 = 0; q0 < pixels; q0 += block) {
        const int32_t count = pixels - q0 < block ? (int32_t)(pixels - q0) : block;
        int32_t *dst = xs;
        for (int32_t j = 0; j < count; j += 2) {
            const int32_t two = j + 1 < count ? 2 : 1;
            for (int32_t k = 0; k < two; ++k) {
                conv_patch(p, input + (size_t)b * image_bytes, in_h, in_w, depth, k_h, k_w, oy, ox,
                           patch + (size_t)k * (size_t)fs);
                if (++ox == out_w) {
                    ox = 0;
                    if (++oy == out_h) {
                        oy = 0;
                        ++b;
                    }
                }
            }
            x16_widen(patch, two, fs, p->input_offset, dst);
            dst += (size_t)two * (size_t)(fs4 >> 1);
        }
        int8_t *out = output + (size_t)q0 * (size_t)out_c;
        if (all_r2) {
            x16_channels_r2(p, xs, count, w_depth, out_c, w, bias, multiplier, shift, out, accs);
        } else {
            x16_channels_any(p, xs, count, w_depth, out_c, w, bias, multiplier, shift, out, accs);
        }
    }
}

/* dilation_w == 1: a pixel's taps in filter row ky are columns kx0..kx1, i.e. the
 * (kx1 - kx0 + 1) * depth bytes from input column x0 + kx0 on, matched by the filter row's
 * bytes from kx0 * depth on. Two horizontally adjacent output pixels that read the same
 * filter columns (all of the interior) go through the 2x2 dot product together. */
static void conv_rows(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                      const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                      const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims, int8_t *output)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, depth = in_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = out_dims->h, out_w = out_dims->w, out_c = out_dims->c;
    const size_t filter_stride = (size_t)k_h * (size_t)k_w * (size_t)depth;
    const size_t row_bytes = (size_t)in_w * (size_t)depth;
    const conv_out_t o = {p->output_offset, p->act_min, p->act_max};
    const int32_t off = p->input_offset;

    for (int32_t b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)in_h * row_bytes;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            const int rows = ta_nn_valid_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1);
            int8_t *out_row = output + ((size_t)b * (size_t)out_h + (size_t)oy) * (size_t)out_w * (size_t)out_c;
            int32_t ox = 0;
            while (ox < out_w) {
                const int32_t xa0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                const int cols = ta_nn_valid_taps(xa0, 1, k_w, in_w, &kx0, &kx1);
                /* Pair this pixel with the next one when that one reads the same filter columns. */
                int32_t pair = 0;
                if (ox + 1 < out_w) {
                    int32_t nx0, nx1;
                    const int ncols = ta_nn_valid_taps(xa0 + p->stride_w, 1, k_w, in_w, &nx0, &nx1);
                    pair = ncols == cols && (!cols || (nx0 == kx0 && nx1 == kx1));
                }
                const int32_t len = (rows && cols) ? (kx1 - kx0 + 1) * depth : 0;
                /* Row 0 of the taps' columns; only dereferenced (at valid rows) when len > 0. */
                const int8_t *xa = len > 0 ? image + (size_t)(xa0 + kx0) * (size_t)depth : image;
                const int8_t *xb = pair && len > 0 ? xa + (size_t)p->stride_w * (size_t)depth : xa;
                int8_t *out_a = out_row + (size_t)ox * (size_t)out_c;
                int8_t *out_b = out_a + (size_t)out_c;
                for (int32_t oc = 0; oc < out_c; oc += 2) {
                    const int32_t oc2 = oc + 1 < out_c ? oc + 1 : oc;
                    const size_t col_off = len > 0 ? (size_t)kx0 * (size_t)depth : 0;
                    const int8_t *wa = filter + (size_t)oc * filter_stride + col_off;
                    const int8_t *wb = filter + (size_t)oc2 * filter_stride + col_off;
                    const int32_t ba = bias != NULL ? bias[oc] : 0, bb = bias != NULL ? bias[oc2] : 0;
                    int32_t acc[4] = {ba, bb, ba, bb};
                    if (len > 0) {
                        for (int32_t ky = ky0; ky <= ky1; ++ky) {
                            const size_t in_off = (size_t)(y0 + ky * p->dilation_h) * row_bytes;
                            const size_t w_off = (size_t)ky * (size_t)k_w * (size_t)depth;
                            ta_nn_dot_2x2_s8(xa + in_off, xb + in_off, wa + w_off, wb + w_off, len, off, acc);
                        }
                    }
                    const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
                    out_a[oc] = conv_finish(acc[0], &qa, &o);
                    if (pair) {
                        out_b[oc] = conv_finish(acc[2], &qa, &o);
                    }
                    if (oc2 != oc) {
                        const ta_nn_requant_t qb = ta_nn_requant_make(multiplier[oc2], shift[oc2]);
                        out_a[oc2] = conv_finish(acc[1], &qb, &o);
                        if (pair) {
                            out_b[oc2] = conv_finish(acc[3], &qb, &o);
                        }
                    }
                }
                ox += pair ? 2 : 1;
            }
        }
    }
}

ta_status_t ta_conv2d_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                         const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                         const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                         int8_t *output, void *scratch, int32_t scratch_size)
{
    if (!ta_conv2d_kernel_args_ok(p, in_dims, input, filter_dims, filter, multiplier, shift, out_dims, output)) {
        return TA_ERR_ARG;
    }
    /* The fast requantization's precondition. (ta_conv_args_ok already keeps input_offset
     * in [-127, 128], so every x + offset fits the int16 lanes of SXTAB16.) */
    if (!ta_nn_requant_fast_ok(multiplier, shift, out_dims->c)) {
        ta_conv2d_ref_loop(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
        return TA_OK;
    }
    if (ta_conv_is_gemm(p, in_dims, filter_dims, out_dims)) {
        const int32_t pixels = in_dims->n * in_dims->h * in_dims->w;
        const ta_conv_scratch_t x16 = ta_conv_scratch_layout(p, in_dims, filter_dims, out_dims);
        if (x16.block > 0 && scratch != NULL && scratch_size >= x16.total) {
            conv_1x1_x16(p, pixels, in_dims->c, out_dims->c, input, filter, bias, multiplier, shift, output,
                         (int32_t *)scratch, x16.block);
            return TA_OK;
        }
        conv_1x1_gemm(p, pixels, in_dims->c, out_dims->c, input, filter, bias, multiplier, shift, output);
        return TA_OK;
    }
    const ta_conv_scratch_t layout = ta_conv_scratch_layout(p, in_dims, filter_dims, out_dims);
    if (layout.total > 0 && scratch != NULL && scratch_size >= layout.total) {
        conv_im2col(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output,
                    (int8_t *)scratch, &layout);
        return TA_OK;
    }
    if (p->dilation_w == 1) {
        conv_rows(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
        return TA_OK;
    }
    ta_conv2d_ref_loop(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
    return TA_OK;
}
