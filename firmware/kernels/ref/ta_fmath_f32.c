#include "tinyadapt/internal/ta_fmath.h"

#include <string.h>

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float ta_expf(float x)
{
    if (x < -87.0f) {
        return 0.0f;
    }
    if (x > 88.0f) {
        x = 88.0f;
    }
    /* x = k ln2 + r with |r| <= ln2 / 2; ln2 split in two (Cody-Waite) so k * ln2_hi is exact. */
    const float t = x * 1.44269504f;
    const int32_t k = (int32_t)(t < 0.0f ? t - 0.5f : t + 0.5f);
    const float r = (x - (float)k * 0.693145751953125f) - (float)k * 1.428606765330187e-6f;
    /* Taylor to degree 7 on |r| <= 0.347: relative error below 1e-7. */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^k as two factors keeps each one a normal number for k in [-126, 127]. */
    const int32_t k1 = k / 2, k2 = k - k / 2;
    return p * from_bits((uint32_t)(k1 + 127) << 23) * from_bits((uint32_t)(k2 + 127) << 23);
}

float ta_logf(float x)
{
    /* x = 2^e * m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m - 1) / (m + 1). */
    const uint32_t u = to_bits(x);
    int32_t e = (int32_t)((u >> 23) & 0xFFu) - 127;
    float m = from_bits((u & 0x007FFFFFu) | 0x3F800000u);
    if (m > 1.41421356f) {
        m *= 0.5f;
        e += 1;
    }
    const float s = (m - 1.0f) / (m + 1.0f);
    const float s2 = s * s;
    float p = 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return (float)e * 0.693147182f + 2.0f * s * p;
}
