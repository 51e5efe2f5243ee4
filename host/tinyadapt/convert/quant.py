"""Quantization arithmetic done on the host exactly as TFLite Micro does it in Prepare.

TFLM computes multipliers in double precision from float32 scales; Python floats are
IEEE doubles and numpy.float32 gives float32 rounding, so each formula below mirrors the
C++ expression's precision step by step. A one-ulp difference in a multiplier can flip
an output by one LSB, so the order of operations matters.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> int:
    """std::round / TfLiteRound."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = q * 2^(shift - 31), q in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: same encoding, shift must be <= 0."""
    q, shift = quantize_multiplier(real)
    if shift > 0:
        raise ValueError(f"multiplier {real} is not smaller than one")
    return q, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    q, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError(f"multiplier {real} is not greater than one")
    return q, shift


def f32(x) -> np.float32:
    return np.float32(x)


def float_round(x: np.float32) -> int:
    """TfLiteRound on a float (roundf: half away from zero)."""
    return round_half_away(float(x))


def activation_range(activation: str, scale: np.float32, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: f / scale is a float32 division in TFLM."""
    def quantize(f: float) -> int:
        return zero_point + float_round(np.float32(f) / np.float32(scale))

    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    if activation in ("NONE", None):
        return qmin, qmax
    raise ValueError(activation)


def per_channel_multipliers(input_scale: np.float32, filter_scales: np.ndarray,
                            output_scale: np.float32, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: per channel, in double:
    input_scale * filter_scale / output_scale."""
    mult = np.zeros(channels, dtype=np.int32)
    shift = np.zeros(channels, dtype=np.int32)
    per_channel = len(filter_scales) > 1
    for c in range(channels):
        fs = float(np.float32(filter_scales[c] if per_channel else filter_scales[0]))
        mult[c], shift[c] = quantize_multiplier(float(input_scale) * fs / float(output_scale))
    return mult, shift
