/*
 * Building blocks of the Cortex-M DSP kernels (firmware/kernels/dsp): packed 16-bit
 * multiply-accumulates on sign-extended int8 lanes, dot-product loops, a requantization
 * that gives ta_nn_requantize's bits in 3 instructions for the usual shifts (instead of
 * about 20), and an output offset + activation clamp for two outputs at a time.
 *
 * Operands are read as unaligned words (LDR; Cortex-M3 and later allow it unless
 * SCB->CCR.UNALIGN_TRP is set, which no port does): tensors at odd channel offsets need
 * no special case.
 *
 * On a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4/M7/M33/M55) each
 * helper is one instruction. Anywhere else (the host build, a Cortex-M0/M3) the same
 * names are plain C with the same results, so the DSP kernels' lane bookkeeping can
 * be compiled and tested off target; define TA_NN_SIMD_PORTABLE to force that path.
 *
 * Lanes: a word read from int8 memory holds bytes b0 (lowest address) .. b3.
 *   ta_nn_sxtb16(w)          = { b0, b2 }   as two int16 (low half, high half)
 *   ta_nn_sxtb16_ror8(w)     = { b1, b3 }
 *   ta_nn_sxtab16(o, w)      = { b0 + o.lo, b2 + o.hi }   (the input offset comes free)
 *   ta_nn_sxtab16_ror8(o, w) = { b1 + o.lo, b3 + o.hi }
 * so a dot product of four int8 pairs is two SMLADs on the even and the odd lanes:
 *   acc += x0*w0 + x2*w2;  acc += x1*w1 + x3*w3
 * Integer addition mod 2^32 is associative and commutative, and SMLAD/SMLAxy wrap the
 * accumulator (they only set the sticky Q flag), so summing in this order gives the
 * same bits as the reference kernels' wrapping left-to-right sums.
 */
#ifndef TA_NN_SIMD_H
#define TA_NN_SIMD_H

#include <stdint.h>
#include <string.h>

/* For loops compiled once per value of a constant flag (and to keep hot helpers inline). */
#if defined(__GNUC__) || defined(__clang__)
#define TA_NN_ALWAYS_INLINE inline __attribute__((always_inline))
#define TA_NN_NOINLINE __attribute__((noinline))
#else
#define TA_NN_ALWAYS_INLINE inline
#define TA_NN_NOINLINE
#endif

#if defined(__ARM_FEATURE_DSP) && !defined(TA_NN_SIMD_PORTABLE)
#include <arm_acle.h>
#define TA_NN_SIMD_DSP 1

static inline int32_t ta_nn_sxtb16(int32_t w) { return __sxtb16(w); }

static inline int32_t ta_nn_sxtab16(int32_t o, int32_t w) { return __sxtab16(o, w); }

/* GCC 12 has no __ror and does not fold a rotate into SXTB16's operand: spell it out. */
static inline int32_t ta_nn_sxtb16_ror8(int32_t w)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}

static inline int32_t ta_nn_sxtab16_ror8(int32_t o, int32_t w)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(o), "r"(w));
    return r;
}

static inline int32_t ta_nn_smlad(int32_t x, int32_t y, int32_t acc) { return __smlad(x, y, acc); }
static inline int32_t ta_nn_smlabb(int32_t x, int32_t y, int32_t acc) { return __smlabb(x, y, acc); }
static inline int32_t ta_nn_smlatt(int32_t x, int32_t y, int32_t acc) { return __smlatt(x, y, acc); }
static inline int32_t ta_nn_smlatb(int32_t x, int32_t y, int32_t acc) { return __smlatb(x, y, acc); }

#else /* portable C with the same results */

static inline int32_t ta_nn_lo16_(int32_t x) { return (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xFFFFu); }
static inline int32_t ta_nn_hi16_(int32_t x) { return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16); }
static inline int32_t ta_nn_byte_(int32_t w, int i) { return (int32_t)(int8_t)(uint8_t)((uint32_t)w >> (8 * i)); }
static inline int32_t ta_nn_pack16_(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

static inline int32_t ta_nn_sxtb16(int32_t w) { return ta_nn_pack16_(ta_nn_byte_(w, 0), ta_nn_byte_(w, 2)); }
static inline int32_t ta_nn_sxtb16_ror8(int32_t w) { return ta_nn_pack16_(ta_nn_byte_(w, 1), ta_nn_byte_(w, 3)); }

/* Each half adds modulo 2^16, as SXTAB16 does. */
static inline int32_t ta_nn_sxtab16(int32_t o, int32_t w)
{
    return ta_nn_pack16_(ta_nn_lo16_(o) + ta_nn_byte_(w, 0), ta_nn_hi16_(o) + ta_nn_byte_(w, 2));
}

static inline int32_t ta_nn_sxtab16_ror8(int32_t o, int32_t w)
{
    return ta_nn_pack16_(ta_nn_lo16_(o) + ta_nn_byte_(w, 1), ta_nn_hi16_(o) + ta_nn_byte_(w, 3));
}

static inline int32_t ta_nn_smlad(int32_t x, int32_t y, int32_t acc)
{
    const uint32_t p = (uint32_t)(ta_nn_lo16_(x) * ta_nn_lo16_(y)) + (uint32_t)(ta_nn_hi16_(x) * ta_nn_hi16_(y));
    return (int32_t)((uint32_t)acc + p);
}

static inline int32_t ta_nn_smlabb(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(ta_nn_lo16_(x) * ta_nn_lo16_(y)));
}

static inline int32_t ta_nn_smlatt(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(ta_nn_hi16_(x) * ta_nn_hi16_(y)));
}

static inline int32_t ta_nn_smlatb(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(ta_nn_hi16_(x) * ta_nn_lo16_(y)));
}

#endif

/* Four int8 from any address: Cortex-M3 and later load unaligned words in one LDR,
 * which is what GCC makes of this memcpy. */
static inline int32_t ta_nn_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void ta_nn_write_s8x4(int8_t *p, int32_t v) { memcpy(p, &v, sizeof v); }

/* Both int16 halves set to v (an input offset, |v| <= 32767). */
static inline int32_t ta_nn_dup16(int32_t v) { return (int32_t)(((uint32_t)v << 16) | ((uint32_t)v & 0xFFFFu)); }

/*
 * Requantization, split into what depends on the channel (ta_nn_requant_make, once per
 * channel) and what runs per output.
 *
 * ta_nn_requantize is  RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << l, m), r)
 * with l = max(shift, 0), r = max(-shift, 0). Both steps are rewritten, exactly:
 *  - gemmlowp's high multiply (a*m + (a*m >= 0 ? 2^30 : 1 - 2^30)) / 2^31, truncated,
 *    equals floor((a*m + 2^30) / 2^31) = floor((a * 2m + 2^31) / 2^32) for every a, m
 *    (with a*m = -(q*2^31 + s), 0 <= s < 2^31, both are -(q + [s > 2^30])). 2m does not
 *    fit in int32, but m2 = 2m - k*2^32 does, k in {-1, 0, 1} (k = 1 for every multiplier
 *    QuantizeMultiplier makes, [2^30, 2^31)), so it is SMMULR(a, m2) + k*a: SMMULR is
 *    floor((a*m2 + 2^31) / 2^32). Two instructions (SMMULR, MLA) instead of a 64-bit
 *    multiply-accumulate with a preloaded nudge, a shift and an or.
 *    gemmlowp saturates a = m = INT32_MIN; the kernels take these paths only when no
 *    multiplier is INT32_MIN (ta_nn_requant_fast_ok), and then hm >= -2^31 + 1.
 *  - RoundingDivideByPOT(hm, e), round half away from zero, is floor((hm + 2^(e-1)) / 2^e)
 *    for hm >= 0 and floor((hm - 1 + 2^(e-1)) / 2^e) below zero, i.e.
 *    SMMULR(hm + (hm >> 31), 2^(32-e)), which needs 2^(32-e) in int32: e >= 2. hm - 1
 *    cannot overflow (hm > INT32_MIN, above). Two instructions instead of six.
 * Layers nearly always scale down by 4 or more (e >= 2, and then there is no left
 * shift): ta_nn_requant_r2 is then four instructions. ta_nn_requant takes any shift in
 * [-31, 31] (the kernels check the range first) with the mask-and-threshold rounding.
 */
typedef struct {
    int32_t m2;    /* 2 * multiplier, wrapped to int32 */
    int32_t k;     /* (2 * multiplier - m2) / 2^32 */
    int32_t p2;    /* 2^(32 - right) when right >= 2, else 0 */
    int32_t r2;    /* ta_nn_requant_r2 applies: right >= 2 and k == 1 */
    int32_t left;  /* left shift, 0..31 */
    int32_t right; /* right shift, 0..31 */
    int32_t mask;  /* 2^right - 1 */
    int32_t half;  /* mask >> 1: round-half threshold for a non-negative value */
} ta_nn_requant_t;

static inline ta_nn_requant_t ta_nn_requant_make(int32_t multiplier, int32_t shift)
{
    ta_nn_requant_t q;
    q.m2 = (int32_t)((uint32_t)multiplier << 1);
    q.k = multiplier >= (1 << 30) ? 1 : (multiplier < -(1 << 30) ? -1 : 0);
    q.left = shift > 0 ? shift : 0;
    q.right = shift > 0 ? 0 : -shift;
    q.p2 = q.right >= 2 ? (int32_t)(1u << (32 - q.right)) : 0;
    q.r2 = q.right >= 2 && q.k == 1;
    q.mask = (int32_t)((1u << q.right) - 1u);
    q.half = q.mask >> 1;
    return q;
}

/* ta_nn_requant_r2 applies (a right shift of 2 or more, a multiplier in [2^30, 2^31)). */
static inline int ta_nn_requant_is_r2(const ta_nn_requant_t *q) { return q->r2; }

/* floor((a * b + 2^31) / 2^32) */
static inline int32_t ta_nn_smmulr(int32_t a, int32_t b)
{
#if defined(TA_NN_SIMD_DSP)
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    /* >> of a negative int64 is arithmetic with GCC and Clang (and C23). */
    return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
#endif
}

/* The high multiply: floor((a * 2m + 2^31) / 2^32), in (INT32_MIN, INT32_MAX]. */
static inline int32_t ta_nn_requant_hm(int32_t a, const ta_nn_requant_t *q)
{
    return (int32_t)((uint32_t)q->k * (uint32_t)a + (uint32_t)ta_nn_smmulr(a, q->m2));
}

/* Any shift in [-31, 31]. */
static inline int32_t ta_nn_requant(int32_t x, const ta_nn_requant_t *q)
{
    const int32_t hm = ta_nn_requant_hm((int32_t)((uint32_t)x << q->left), q);
    /* Round half away from zero: the threshold is one higher below zero. */
    const int32_t threshold = q->half - (hm >> 31);
    return (hm >> q->right) + ((hm & q->mask) > threshold ? 1 : 0);
}

/* acc + floor((a * b + 2^31) / 2^32), mod 2^32 */
static inline int32_t ta_nn_smmlar(int32_t a, int32_t b, int32_t acc)
{
#if defined(TA_NN_SIMD_DSP)
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return (int32_t)((uint32_t)acc + (uint32_t)ta_nn_smmulr(a, b));
#endif
}

/* ta_nn_requant_is_r2 channels (no left shift then, and k = 1): three instructions,
 * SMMLAR (high multiply plus a), ADD (hm - 1 below zero), SMMULR (rounding divide).
 * The result lies within +-2^29 (|hm| < 2^31, divided by 4 or more). */
static inline int32_t ta_nn_requant_r2(int32_t x, const ta_nn_requant_t *q)
{
    const int32_t hm = ta_nn_smmlar(x, q->m2, x);
    return ta_nn_smmulr((int32_t)((uint32_t)hm + (uint32_t)(hm >> 31)), q->p2);
}

/* r2 a compile-time constant at the call: the kernels instantiate their loops twice. */
static inline int32_t ta_nn_requant_sel(int32_t x, const ta_nn_requant_t *q, const int r2)
{
    return r2 ? ta_nn_requant_r2(x, q) : ta_nn_requant(x, q);
}

/*
 * Output offset and activation clamp for two outputs at once, in the int16 halves of a
 * word: the offset added with wrap-around (as the reference does), SSAT to int16, then
 * max/min against the packed bounds with SSUB16 + SEL (SEL picks per lane by the GE
 * flags SSUB16 sets): 9 instructions for two outputs instead of 14. Exact, as the
 * bounds lie in [-128, 127]: saturating at +-32767 changes no clamped result.
 */
typedef struct {
    int32_t offset; /* output offset */
    int32_t off2;   /* output offset in both halves */
    int32_t lo2;    /* act_min in both halves */
    int32_t hi2;    /* act_max in both halves */
} ta_nn_act2_t;

static inline ta_nn_act2_t ta_nn_act2_make(int32_t output_offset, int32_t act_min, int32_t act_max)
{
    ta_nn_act2_t a;
    a.offset = output_offset;
    a.off2 = ta_nn_dup16(output_offset);
    a.lo2 = ta_nn_dup16(act_min);
    a.hi2 = ta_nn_dup16(act_max);
    return a;
}

/* lo in bits 0..15, hi in bits 16..31 (PKHBT) */
static inline int32_t ta_nn_pack16(int32_t lo, int32_t hi)
{
#if defined(TA_NN_SIMD_DSP)
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
#else
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
#endif
}

/* Per signed byte lane: max(a, b) and min(a, b) (SSUB8 sets each lane's GE flag when
 * a - b >= 0, SEL picks by it; the pair stays in one asm, as SEL reads the flags). */
static inline int32_t ta_nn_max_s8x4(int32_t a, int32_t b)
{
#if defined(TA_NN_SIMD_DSP)
    int32_t r, t;
    __asm__("ssub8 %[t], %[a], %[b]\n\t"
            "sel   %[r], %[a], %[b]"
            : [r] "=r"(r), [t] "=&r"(t)
            : [a] "r"(a), [b] "r"(b)
            : "cc");
    return r;
#else
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) {
        const int32_t x = ta_nn_byte_(a, i), y = ta_nn_byte_(b, i);
        r |= ((uint32_t)(x > y ? x : y) & 0xFFu) << (8 * i);
    }
    return (int32_t)r;
#endif
}

static inline int32_t ta_nn_min_s8x4(int32_t a, int32_t b)
{
#if defined(TA_NN_SIMD_DSP)
    int32_t r, t;
    __asm__("ssub8 %[t], %[a], %[b]\n\t"
            "sel   %[r], %[b], %[a]"
            : [r] "=r"(r), [t] "=&r"(t)
            : [a] "r"(a), [b] "r"(b)
            : "cc");
    return r;
#else
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) {
        const int32_t x = ta_nn_byte_(a, i), y = ta_nn_byte_(b, i);
        r |= ((uint32_t)(x < y ? x : y) & 0xFFu) << (8 * i);
    }
    return (int32_t)r;
#endif
}

/* max(v, lo2), then min(., hi2), per int16 lane */
static inline int32_t ta_nn_clamp16x2_(int32_t v, const ta_nn_act2_t *a)
{
#if defined(TA_NN_SIMD_DSP)
    int32_t t;
    /* SEL reads the GE flags of the SSUB16 just before it: keep each pair in one asm. */
    __asm__("ssub16 %[t], %[v], %[lo]\n\t"
            "sel    %[v], %[v], %[lo]\n\t"
            "ssub16 %[t], %[v], %[hi]\n\t"
            "sel    %[v], %[hi], %[v]"
            : [v] "+&r"(v), [t] "=&r"(t)
            : [lo] "r"(a->lo2), [hi] "r"(a->hi2)
            : "cc");
    return v;
#else
    uint32_t r = 0;
    for (int i = 0; i < 2; ++i) {
        int32_t x = ta_nn_lo16_((int32_t)((uint32_t)v >> (16 * i)));
        x = x < ta_nn_lo16_(a->lo2) ? ta_nn_lo16_(a->lo2) : x;
        x = x > ta_nn_lo16_(a->hi2) ? ta_nn_lo16_(a->hi2) : x;
        r |= ((uint32_t)x & 0xFFFFu) << (16 * i);
    }
    return (int32_t)r;
#endif
}

static inline int32_t ta_nn_ssat16_(int32_t x)
{
#if defined(TA_NN_SIMD_DSP)
    return __ssat(x, 16);
#else
    return x > 32767 ? 32767 : (x < -32768 ? -32768 : x);
#endif
}

/* clamp(r0 + offset) in bits 0..15, clamp(r1 + offset) in bits 16..31 (each an int8 value). */
static inline int32_t ta_nn_clamp2(int32_t r0, int32_t r1, const ta_nn_act2_t *a)
{
    const int32_t x0 = (int32_t)((uint32_t)r0 + (uint32_t)a->offset);
    const int32_t x1 = (int32_t)((uint32_t)r1 + (uint32_t)a->offset);
    return ta_nn_clamp16x2_(ta_nn_pack16(ta_nn_ssat16_(x0), ta_nn_ssat16_(x1)), a);
}

/* The same for |r0|, |r1| < 2^31 - 128 (ta_nn_requant_r2 results), where r + offset
 * cannot wrap: saturate first, then add the offset to both lanes with QADD16 (exact by
 * the argument above: a lane that saturates ends beyond the bounds either way). */
static inline int32_t ta_nn_clamp2_r2(int32_t r0, int32_t r1, const ta_nn_act2_t *a)
{
    const int32_t v = ta_nn_pack16(ta_nn_ssat16_(r0), ta_nn_ssat16_(r1));
#if defined(TA_NN_SIMD_DSP)
    return ta_nn_clamp16x2_(__qadd16(v, a->off2), a);
#else
    const int32_t lo = ta_nn_ssat16_(ta_nn_lo16_(v) + ta_nn_lo16_(a->off2));
    const int32_t hi = ta_nn_ssat16_(ta_nn_hi16_(v) + ta_nn_lo16_(a->off2));
    return ta_nn_clamp16x2_(ta_nn_pack16(lo, hi), a);
#endif
}

/* Requantize two outputs and clamp them; r2 a constant (see ta_nn_requant_sel). */
static inline int32_t ta_nn_finish2(int32_t acc0, const ta_nn_requant_t *q0, int32_t acc1,
                                    const ta_nn_requant_t *q1, const ta_nn_act2_t *a, const int r2)
{
    if (r2) {
        return ta_nn_clamp2_r2(ta_nn_requant_r2(acc0, q0), ta_nn_requant_r2(acc1, q1), a);
    }
    return ta_nn_clamp2(ta_nn_requant(acc0, q0), ta_nn_requant(acc1, q1), a);
}

/* The fast requantization's precondition for n channels: shifts in [-31, 31] (as the
 * reference requires) and no multiplier INT32_MIN (where only the reference saturates). */
static inline int ta_nn_requant_fast_ok(const int32_t *multiplier, const int32_t *shift, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        if (multiplier[i] == INT32_MIN || shift[i] < -31 || shift[i] > 31) {
            return 0;
        }
    }
    return 1;
}

/*
 * Dot products of int8 vectors (n elements; any n, any alignment), the input side
 * offset by `offset` (the negated input zero point: each x + offset must fit in int16,
 * so |offset| <= 32640), added to int32 accumulators with wrap-around. Four elements
 * per step: one word load per operand, two sign extensions, two SMLADs per pair.
 */

/* Two inputs x two weight rows: acc[0] += xa.wa, acc[1] += xa.wb, acc[2] += xb.wa,
 * acc[3] += xb.wb. Each extended input word serves both rows and each extended weight
 * word both inputs: 20 instructions per 16 multiply-accumulates. */
static inline void ta_nn_dot_2x2_s8(const int8_t *xa, const int8_t *xb, const int8_t *wa, const int8_t *wb,
                                    int32_t n, int32_t offset, int32_t acc[4])
{
    const int32_t off2 = ta_nn_dup16(offset);
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int32_t k = n >> 2; k > 0; --k) {
        const int32_t x = ta_nn_read_s8x4(xa), y = ta_nn_read_s8x4(xb);
        xa += 4;
        xb += 4;
        const int32_t x02 = ta_nn_sxtab16(off2, x), x13 = ta_nn_sxtab16_ror8(off2, x);
        const int32_t y02 = ta_nn_sxtab16(off2, y), y13 = ta_nn_sxtab16_ror8(off2, y);
        int32_t w = ta_nn_read_s8x4(wa);
        wa += 4;
        int32_t w02 = ta_nn_sxtb16(w), w13 = ta_nn_sxtb16_ror8(w);
        a0 = ta_nn_smlad(x02, w02, a0);
        a0 = ta_nn_smlad(x13, w13, a0);
        a2 = ta_nn_smlad(y02, w02, a2);
        a2 = ta_nn_smlad(y13, w13, a2);
        w = ta_nn_read_s8x4(wb);
        wb += 4;
        w02 = ta_nn_sxtb16(w);
        w13 = ta_nn_sxtb16_ror8(w);
        a1 = ta_nn_smlad(x02, w02, a1);
        a1 = ta_nn_smlad(x13, w13, a1);
        a3 = ta_nn_smlad(y02, w02, a3);
        a3 = ta_nn_smlad(y13, w13, a3);
    }
    for (int32_t k = n & 3; k > 0; --k) {
        const int32_t x = *xa++ + offset, y = *xb++ + offset, v = *wa++, u = *wb++;
        a0 = (int32_t)((uint32_t)a0 + (uint32_t)(x * v));
        a1 = (int32_t)((uint32_t)a1 + (uint32_t)(x * u));
        a2 = (int32_t)((uint32_t)a2 + (uint32_t)(y * v));
        a3 = (int32_t)((uint32_t)a3 + (uint32_t)(y * u));
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* One input x two weight rows: acc[0] += x.wa, acc[1] += x.wb. */
static inline void ta_nn_dot_1x2_s8(const int8_t *x, const int8_t *wa, const int8_t *wb, int32_t n, int32_t offset,
                                    int32_t acc[2])
{
    const int32_t off2 = ta_nn_dup16(offset);
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t k = n >> 2; k > 0; --k) {
        const int32_t v = ta_nn_read_s8x4(x);
        x += 4;
        const int32_t x02 = ta_nn_sxtab16(off2, v), x13 = ta_nn_sxtab16_ror8(off2, v);
        int32_t w = ta_nn_read_s8x4(wa);
        wa += 4;
        a0 = ta_nn_smlad(x02, ta_nn_sxtb16(w), a0);
        a0 = ta_nn_smlad(x13, ta_nn_sxtb16_ror8(w), a0);
        w = ta_nn_read_s8x4(wb);
        wb += 4;
        a1 = ta_nn_smlad(x02, ta_nn_sxtb16(w), a1);
        a1 = ta_nn_smlad(x13, ta_nn_sxtb16_ror8(w), a1);
    }
    for (int32_t k = n & 3; k > 0; --k) {
        const int32_t v = *x++ + offset;
        a0 = (int32_t)((uint32_t)a0 + (uint32_t)(v * *wa++));
        a1 = (int32_t)((uint32_t)a1 + (uint32_t)(v * *wb++));
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* One input x one weight row. */
static inline int32_t ta_nn_dot_1x1_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t offset, int32_t acc)
{
    const int32_t off2 = ta_nn_dup16(offset);
    for (int32_t k = n >> 2; k > 0; --k) {
        const int32_t v = ta_nn_read_s8x4(x), u = ta_nn_read_s8x4(w);
        x += 4;
        w += 4;
        acc = ta_nn_smlad(ta_nn_sxtab16(off2, v), ta_nn_sxtb16(u), acc);
        acc = ta_nn_smlad(ta_nn_sxtab16_ror8(off2, v), ta_nn_sxtb16_ror8(u), acc);
    }
    for (int32_t k = n & 3; k > 0; --k) {
        acc = (int32_t)((uint32_t)acc + (uint32_t)((*x++ + offset) * *w++));
    }
    return acc;
}

/*
 * The 1x1-convolution inner loop: acc[0] += x.w, acc[1] += x.(w + d), acc[2] += (x + d).w,
 * acc[3] += (x + d).(w + d) over n raw int8 elements (no input offset: the caller adds
 * offset * sum(w) once per channel, which is the same sum mod 2^32). Pixel p+1 of a 1x1
 * convolution is `depth` bytes after pixel p, and so is output channel c+1's filter row
 * after channel c's: one offset register serves both, which leaves exactly the 14
 * registers the loop needs (4 accumulators, 4 extended inputs, 2 temporaries, 2 pointers,
 * the offset, the count). GCC spills one of them when the same loop is written in C,
 * so on the DSP path it is written out: 22 instructions per 16 multiply-accumulates.
 * (Unrolling it twice made the code around it spill more and was slower overall.)
 */
static inline void ta_nn_dot_2x2_raw_s8(const int8_t *x, const int8_t *w, int32_t d, int32_t n, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t k = n >> 2;
#if defined(TA_NN_SIMD_DSP)
#define TA_NN_DOT_2X2_STEP                          \
    "ldr     %[r], [%[x], %[d]]\n\t"                \
    "sxtb16  %[y02], %[r]\n\t"                      \
    "sxtb16  %[y13], %[r], ror #8\n\t"              \
    "ldr     %[r], [%[x]], #4\n\t"                  \
    "sxtb16  %[x02], %[r]\n\t"                      \
    "sxtb16  %[x13], %[r], ror #8\n\t"              \
    "ldr     %[r], [%[w], %[d]]\n\t"                \
    "sxtb16  %[e], %[r]\n\t"                        \
    "smlad   %[a1], %[x02], %[e], %[a1]\n\t"        \
    "smlad   %[a3], %[y02], %[e], %[a3]\n\t"        \
    "sxtb16  %[e], %[r], ror #8\n\t"                \
    "smlad   %[a1], %[x13], %[e], %[a1]\n\t"        \
    "smlad   %[a3], %[y13], %[e], %[a3]\n\t"        \
    "ldr     %[r], [%[w]], #4\n\t"                  \
    "sxtb16  %[e], %[r]\n\t"                        \
    "smlad   %[a0], %[x02], %[e], %[a0]\n\t"        \
    "smlad   %[a2], %[y02], %[e], %[a2]\n\t"        \
    "sxtb16  %[e], %[r], ror #8\n\t"                \
    "smlad   %[a0], %[x13], %[e], %[a0]\n\t"        \
    "smlad   %[a2], %[y13], %[e], %[a2]\n\t"
    if (k > 0) {
        int32_t x02, x13, y02, y13, r, e;
        __asm__("1:\n\t" TA_NN_DOT_2X2_STEP
                "subs    %[k], %[k], #1\n\t"
                "bne     1b\n\t"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w),
                  [k] "+r"(k), [x02] "=&r"(x02), [x13] "=&r"(x13), [y02] "=&r"(y02), [y13] "=&r"(y13),
                  [r] "=&r"(r), [e] "=&r"(e)
                : [d] "r"(d)
                : "cc", "memory");
    }
#undef TA_NN_DOT_2X2_STEP
#else
    for (; k > 0; --k) {
        const int32_t u = ta_nn_read_s8x4(x), v = ta_nn_read_s8x4(x + d);
        const int32_t wa = ta_nn_read_s8x4(w), wb = ta_nn_read_s8x4(w + d);
        x += 4;
        w += 4;
        a0 = ta_nn_smlad(ta_nn_sxtb16_ror8(u), ta_nn_sxtb16_ror8(wa), ta_nn_smlad(ta_nn_sxtb16(u), ta_nn_sxtb16(wa), a0));
        a1 = ta_nn_smlad(ta_nn_sxtb16_ror8(u), ta_nn_sxtb16_ror8(wb), ta_nn_smlad(ta_nn_sxtb16(u), ta_nn_sxtb16(wb), a1));
        a2 = ta_nn_smlad(ta_nn_sxtb16_ror8(v), ta_nn_sxtb16_ror8(wa), ta_nn_smlad(ta_nn_sxtb16(v), ta_nn_sxtb16(wa), a2));
        a3 = ta_nn_smlad(ta_nn_sxtb16_ror8(v), ta_nn_sxtb16_ror8(wb), ta_nn_smlad(ta_nn_sxtb16(v), ta_nn_sxtb16(wb), a3));
    }
#endif
    for (k = n & 3; k > 0; --k) {
        const int32_t u = x[0], v = x[d], wa = w[0], wb = w[d];
        ++x;
        ++w;
        a0 = (int32_t)((uint32_t)a0 + (uint32_t)(u * wa));
        a1 = (int32_t)((uint32_t)a1 + (uint32_t)(u * wb));
        a2 = (int32_t)((uint32_t)a2 + (uint32_t)(v * wa));
        a3 = (int32_t)((uint32_t)a3 + (uint32_t)(v * wb));
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Sum of n int8 (wrapping), for the offset * sum(w) term of the raw dot products.
 * On the DSP path four bytes per USADA8 (sum of |a_i - b_i| over unsigned bytes): with
 * the sign bits flipped the bytes are w + 128, and b = 0. */
static inline int32_t ta_nn_sum_s8(const int8_t *w, int32_t n)
{
    uint32_t s = 0;
    int32_t i = 0;
#if defined(TA_NN_SIMD_DSP)
    for (; i + 3 < n; i += 4) {
        s = __usada8((uint32_t)ta_nn_read_s8x4(w + i) ^ 0x80808080u, 0u, s);
    }
    s -= 128u * (uint32_t)i;
#endif
    for (; i < n; ++i) {
        s += (uint32_t)(int32_t)w[i];
    }
    return (int32_t)s;
}

/* offset * s + acc mod 2^32 (no signed overflow). */
static inline int32_t ta_nn_mla_wrap(int32_t offset, int32_t s, int32_t acc)
{
    return (int32_t)((uint32_t)offset * (uint32_t)s + (uint32_t)acc);
}

/*
 * The filter taps k = 0..taps-1 whose input coordinate origin + k * dilation lies in
 * [0, size): first..last, or 0 when there are none. The reference tests each tap; the
 * fast kernels work this out once per output row or pixel. 32-bit arithmetic suffices
 * under ta_conv_args_ok (|padding| + the filter's reach from the last output fits in
 * int32), and with dilation 1 (nearly always) there is no division.
 */
static inline int ta_nn_valid_taps(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *first,
                                   int32_t *last)
{
    if (dilation == 1 || taps == 1) {
        const int32_t k0 = origin < 0 ? -origin : 0;
        const int32_t k1 = origin > size - taps ? size - 1 - origin : taps - 1;
        *first = k0;
        *last = k1;
        return k0 <= k1;
    }
    if (origin >= size) {
        *first = 0;
        *last = -1;
        return 0;
    }
    /* -origin <= |pad| and (taps - 1) * dilation + |pad| fit in int32, so does -origin + dilation - 1. */
    const uint32_t k0 = origin < 0 ? ((uint32_t)-origin + (uint32_t)dilation - 1u) / (uint32_t)dilation : 0u;
    /* size - 1 - origin >= 0 here and, as -origin <= |pad|, below 2^32. */
    const uint32_t reach = ((uint32_t)size - 1u - (uint32_t)origin) / (uint32_t)dilation;
    const uint32_t k1 = reach < (uint32_t)(taps - 1) ? reach : (uint32_t)(taps - 1);
    *first = (int32_t)(k0 < (uint32_t)taps ? k0 : (uint32_t)taps);
    *last = (int32_t)k1;
    return k0 <= k1;
}

#endif /* TA_NN_SIMD_H */
