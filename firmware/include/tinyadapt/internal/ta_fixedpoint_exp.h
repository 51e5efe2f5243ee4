/*
 * Fixed-point transcendental functions with the exact rounding of gemmlowp's
 * fixedpoint.h (which TFLite Micro vendors as micro/kernels/internal/fixedpoint.h):
 * exp on negative values, 1/(1+x), logistic, tanh, the reciprocal used by
 * softmax, and the int16 primitives of the quantized HARD_SWISH.
 *
 * Notation: a "Qn" value is an int32 raw integer r representing r / 2^(31-n),
 * i.e. gemmlowp's FixedPoint<int32_t, n> (n integer bits, 31-n fractional bits).
 * Where gemmlowp's template parameter n is a compile-time constant, these
 * functions take it as an argument; callers pass constants, so a compiler
 * folds the branches away.
 *
 * gemmlowp's plain +, - and unary - on raw int32 values wrap on overflow in
 * practice (two's complement); the ta_fx_add/sub/neg helpers make that wrap
 * explicit so no path here has signed-overflow undefined behaviour.
 */
#ifndef TA_FIXEDPOINT_EXP_H
#define TA_FIXEDPOINT_EXP_H

#include <stdint.h>

#include "tinyadapt/internal/ta_fixedpoint.h"

/* ---------------------------------------------------------------- int32 primitives */

static inline int32_t ta_fx_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t ta_fx_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

static inline int32_t ta_fx_neg(int32_t a)
{
    return (int32_t)(0u - (uint32_t)a);
}

static inline int32_t ta_fx_and(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a & (uint32_t)b);
}

/* Product of two fixed-point values: Qm * Qn = Q(m+n), same raw operation. */
static inline int32_t ta_fx_mul(int32_t a, int32_t b)
{
    return ta_nn_sat_rounding_doubling_high_mul(a, b);
}

/* Leading zero bits of x (32 for 0), like CountLeadingZeros<uint32_t>. */
static inline int ta_fx_clz32(uint32_t x)
{
    if (x == 0u) {
        return 32;
    }
    int n = 0;
    if ((x & 0xFFFF0000u) == 0u) { n += 16; x <<= 16; }
    if ((x & 0xFF000000u) == 0u) { n += 8; x <<= 8; }
    if ((x & 0xF0000000u) == 0u) { n += 4; x <<= 4; }
    if ((x & 0xC0000000u) == 0u) { n += 2; x <<= 2; }
    if ((x & 0x80000000u) == 0u) { n += 1; }
    return n;
}

/* SaturatingRoundingMultiplyByPOT<exponent> for exponent in [1, 30]: a left
 * shift that saturates. gemmlowp saturates every x beyond +-(2^(31-e) - 1), so
 * -2^(31-e), whose exact shift would be INT32_MIN, also maps to INT32_MIN. */
static inline int32_t ta_fx_sat_shl(int32_t x, int exponent)
{
    const int32_t threshold = ((int32_t)1 << (31 - exponent)) - 1;
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* SaturatingRoundingMultiplyByPOT for any exponent in [-31, 30]: saturating
 * left shift if positive, rounding (half away from zero) right shift if negative. */
static inline int32_t ta_fx_mul_by_pot(int32_t x, int exponent)
{
    if (exponent > 0) {
        return ta_fx_sat_shl(x, exponent);
    }
    if (exponent < 0) {
        return ta_nn_rounding_divide_by_pot(x, -exponent);
    }
    return x;
}

/* Rescale<dst_bits>(Q<src_bits> x): the same real value with a different number of integer bits. */
static inline int32_t ta_fx_rescale(int32_t x, int src_bits, int dst_bits)
{
    return ta_fx_mul_by_pot(x, src_bits - dst_bits);
}

/* RoundingHalfSum: (a + b) / 2 rounded half away from zero (VRHADD). */
static inline int32_t ta_fx_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2); /* C division truncates toward zero, like C++ */
}

/* ---------------------------------------------------------------- exp */

/* exp(a) for a in [-1/4, 0), a and the result in Q0: a 4th-order Taylor
 * expansion around -1/8. The raw constants are gemmlowp's (exp(-1/8), 1/3 in Q0). */
static inline int32_t ta_fx_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t k_exp_minus_one_eighth = 1895147668;
    const int32_t k_one_third = 715827883;
    const int32_t x = ta_fx_add(a, (int32_t)1 << 28); /* a + 1/8 */
    const int32_t x2 = ta_fx_mul(x, x);
    const int32_t x3 = ta_fx_mul(x2, x);
    const int32_t x4 = ta_fx_mul(x2, x2);
    const int32_t x4_over_4 = ta_nn_rounding_divide_by_pot(x4, 2);
    /* x^4/24 + x^3/6 + x^2/2 = ((x^4/4 + x^3) / 3 + x^2) / 2 */
    const int32_t poly = ta_nn_rounding_divide_by_pot(
        ta_fx_add(ta_fx_mul(ta_fx_add(x4_over_4, x3), k_one_third), x2), 1);
    return ta_fx_add(k_exp_minus_one_eighth, ta_fx_mul(k_exp_minus_one_eighth, ta_fx_add(x, poly)));
}

/*
 * exp(a) for a <= 0; a in Q<integer_bits> (0..29), the result in Q0 (exp(0)
 * returns the Q0 maximum). gemmlowp splits -a into a multiple of 1/4 plus a
 * remainder in (0, 1/4]: the remainder goes through the Taylor polynomial, and
 * each set bit of the multiple of 1/4 (worth 2^e, e = -2..4, when the format
 * has room for it) multiplies in the constant exp(-2^e).
 */
static inline int32_t ta_fx_exp_on_negative_values(int32_t a, int integer_bits)
{
    static const int32_t k_exp_minus_pow2[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1)   */
        290630308,  /* exp(-2)   */
        39332535,   /* exp(-4)   */
        720401,     /* exp(-8)   */
        242,        /* exp(-16)  */
    };
    const int frac_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = ta_fx_sub(ta_fx_and(a, one_quarter - 1), one_quarter);
    int32_t result = ta_fx_exp_on_interval_between_negative_one_quarter_and_0_excl(
        ta_fx_rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0));
    const int32_t remainder = ta_fx_sub(a_mod_quarter_minus_one_quarter, a);
    for (int e = -2; e <= 4; ++e) {
        if (integer_bits > e && (ta_fx_and(remainder, (int32_t)1 << (frac_bits + e)) != 0)) {
            result = ta_fx_mul(result, k_exp_minus_pow2[e + 2]);
        }
    }
    if (integer_bits > 5) {
        /* Below -32, exp underflows Q0 anyway; gemmlowp returns exactly 0. */
        const int32_t minus_32 = -((int32_t)1 << (36 - integer_bits));
        if (a < minus_32) {
            result = 0;
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* ---------------------------------------------------------------- division */

/* Shared Newton-Raphson core of 1/(1+x) and (1-x)/(1+x): returns 1/(1+a) in Q2
 * for a in [0, 1) in Q0 (gemmlowp's 48/17 - 32/17 * d initial guess, 3 iterations). */
static inline int32_t ta_fx_newton_reciprocal_q2(int32_t a)
{
    const int32_t k_48_over_17 = 1515870810;      /* Q2 */
    const int32_t k_neg_32_over_17 = -1010580540; /* Q2 */
    const int32_t k_one_q2 = (int32_t)1 << 29;
    const int32_t half_denominator = ta_fx_rounding_half_sum(a, INT32_MAX); /* (1 + a) / 2 in Q0 */
    int32_t x = ta_fx_add(k_48_over_17, ta_fx_mul(half_denominator, k_neg_32_over_17));
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = ta_fx_mul(half_denominator, x);      /* Q2 */
        const int32_t one_minus = ta_fx_sub(k_one_q2, half_denominator_times_x);      /* Q2 */
        x = ta_fx_add(x, ta_fx_rescale(ta_fx_mul(x, one_minus), 4, 2));              /* Q2*Q2 = Q4 */
    }
    return x; /* 1 / half_denominator = 2 / (1 + a), in Q2 */
}

/* 1 / (1 + a) for a in [0, 1); a and the result in Q0. */
static inline int32_t ta_fx_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    /* x holds 2/(1+a) in Q2; the same raw value read as Q1 is 1/(1+a). */
    return ta_fx_rescale(ta_fx_newton_reciprocal_q2(a), 1, 0);
}

/* (1 - a) / (1 + a) for a in [0, 1); a and the result in Q0. */
static inline int32_t ta_fx_one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    return ta_fx_rescale(ta_fx_sub(ta_fx_newton_reciprocal_q2(a), (int32_t)1 << 29), 2, 0);
}

/*
 * gemmlowp/TFLite GetReciprocal: for x > 0 in Q<x_integer_digits>, returns a
 * Q0 value s and sets *num_bits_over_unit = k such that 1/x = s * 2^-k
 * (x normalised to [1, 2) by its leading zeros, then 1/(1 + (x - 1))).
 */
static inline int32_t ta_fx_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit)
{
    const int headroom_plus_one = ta_fx_clz32((uint32_t)x);
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    const uint32_t shifted = headroom_plus_one >= 32 ? 0u : ((uint32_t)x << headroom_plus_one);
    const int32_t shifted_minus_one = (int32_t)(shifted - 0x80000000u);
    return ta_fx_one_over_one_plus_x_for_x_in_0_1(shifted_minus_one);
}

/* ---------------------------------------------------------------- logistic, tanh */

/* logistic(a) = 1 / (1 + exp(-a)); a in Q<integer_bits> (0..29), the result in Q0. */
static inline int32_t ta_fx_logistic(int32_t a, int integer_bits)
{
    if (a == 0) {
        return (int32_t)1 << 30; /* one half */
    }
    const int positive = a > 0;
    const int32_t abs_a = positive ? a : ta_fx_neg(a);
    const int32_t if_positive =
        ta_fx_one_over_one_plus_x_for_x_in_0_1(ta_fx_exp_on_negative_values(ta_fx_neg(abs_a), integer_bits));
    return positive ? if_positive : ta_fx_sub(INT32_MAX, if_positive);
}

/* tanh(a) = (1 - exp(-2|a|)) / (1 + exp(-2|a|)) with the sign of a; a in
 * Q<integer_bits> (0..28), the result in Q0. */
static inline int32_t ta_fx_tanh(int32_t a, int integer_bits)
{
    if (a == 0) {
        return 0;
    }
    const int negative = a < 0;
    const int32_t minus_abs_a = negative ? a : ta_fx_neg(a);
    /* The raw value of -|a| in Q<n> is -2|a| in Q<n+1>. */
    const int32_t t = ta_fx_one_minus_x_over_one_plus_x_for_x_in_0_1(
        ta_fx_exp_on_negative_values(minus_abs_a, integer_bits + 1));
    return negative ? ta_fx_neg(t) : t;
}

/* ---------------------------------------------------------------- int16 primitives */

/* Two's-complement wrap of an int to int16, like an implicit C++ narrowing conversion. */
static inline int16_t ta_fx16_wrap(int32_t v)
{
    const int32_t low = (int32_t)((uint32_t)v & 0xFFFFu);
    return (int16_t)(low >= 0x8000 ? low - 0x10000 : low);
}

/* gemmlowp SaturatingRoundingDoublingHighMul<int16_t>: round(a * b / 2^15) (VQRDMULH.S16). */
static inline int16_t ta_fx16_sat_rounding_doubling_high_mul(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* TFLite SaturatingDoublingHighMul<int16_t>: a * b / 2^15 truncated toward zero (VQDMULH.S16). */
static inline int16_t ta_fx16_sat_doubling_high_mul(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

/*
 * gemmlowp RoundingDivideByPOT<int16_t>, exponent in [0, 31]. The mask
 * 2^exponent - 1 is narrowed to int16, so from exponent 16 on it is -1: then a
 * non-negative x rounds to 1 and a negative x to -1. TFLite's HARD_SWISH can
 * reach that case, so it is reproduced, not "fixed".
 */
static inline int16_t ta_fx16_rounding_divide_by_pot(int16_t x, int exponent)
{
    const int16_t mask = ta_fx16_wrap((int32_t)((1LL << exponent) - 1));
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = ta_fx16_wrap(((int32_t)mask >> 1) + (x < 0 ? 1 : 0));
    return ta_fx16_wrap(((int32_t)x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* TFLite SaturatingLeftShift<int16_t>: value * 2^amount clamped to int16, amount in [0, 30]. */
static inline int16_t ta_fx16_sat_left_shift(int16_t value, int amount)
{
    const int64_t r = (int64_t)value * ((int64_t)1 << amount);
    return (int16_t)(r > INT16_MAX ? INT16_MAX : (r < INT16_MIN ? INT16_MIN : r));
}

#endif /* TA_FIXEDPOINT_EXP_H */
