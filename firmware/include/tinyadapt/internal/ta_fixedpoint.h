/*
 * Fixed-point arithmetic with the exact rounding of gemmlowp and TFLite
 * Micro's reference kernels ("double rounding": a saturating rounding
 * doubling high multiply, then a rounding right shift). Every int8 kernel
 * requantizes through these, so they decide bit-exactness.
 */
#ifndef TA_FIXEDPOINT_H
#define TA_FIXEDPOINT_H

#include <stdint.h>

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating
 * the single overflow case INT32_MIN * INT32_MIN. */
static inline int32_t ta_nn_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    /* Division, not a shift: gemmlowp truncates toward zero here. */
    return (int32_t)((ab + nudge) / (1LL << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent, rounding half away from zero. */
static inline int32_t ta_nn_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + ((x < 0) ? 1 : 0);
    return (x >> exponent) + ((remainder > threshold) ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier: x * multiplier * 2^shift, multiplier in Q31. */
static inline int32_t ta_nn_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left_shift = shift > 0 ? shift : 0;
    const int right_shift = shift > 0 ? 0 : -shift;
    /* Wrapping like the reference: the product is computed in 32 bits. */
    const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
    return ta_nn_rounding_divide_by_pot(ta_nn_sat_rounding_doubling_high_mul(shifted, multiplier),
                                        right_shift);
}

/* TFLite MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0). */
static inline int32_t ta_nn_requantize_smaller_than_one(int32_t x, int32_t multiplier, int32_t shift)
{
    return ta_nn_rounding_divide_by_pot(ta_nn_sat_rounding_doubling_high_mul(x, multiplier), -shift);
}

/* TFLite MultiplyByQuantizedMultiplierGreaterThanOne (shift >= 0). */
static inline int32_t ta_nn_requantize_greater_than_one(int32_t x, int32_t multiplier, int32_t shift)
{
    return ta_nn_sat_rounding_doubling_high_mul((int32_t)((uint32_t)x << shift), multiplier);
}

/* Two's-complement wrapping add: what the reference kernels' int32 accumulators do in
 * practice, without the undefined behaviour when a deep filter or a corrupt bias
 * overflows them. */
static inline int32_t ta_nn_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t ta_nn_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

#endif /* TA_FIXEDPOINT_H */
