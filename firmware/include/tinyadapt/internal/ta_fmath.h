/*
 * expf and logf of our own, built from + - * / and exponent bit manipulation only, so the
 * host build and a Cortex-M give the same bits (glibc's and newlib's libm do not agree to the
 * last bit). Accurate to a few ulp, which training does not notice.
 */
#ifndef TA_FMATH_H
#define TA_FMATH_H

#include <stdint.h>

/* e^x; 0 below -87 (no subnormal results), x <= 88 assumed. */
float ta_expf(float x);
/* ln x for a positive normal x. */
float ta_logf(float x);

#endif /* TA_FMATH_H */
