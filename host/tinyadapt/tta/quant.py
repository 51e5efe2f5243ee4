"""An exit head as an int8 .tflite (written with convert/tflite_writer.py) and back.

    input  int8 [1, H, W, C]   the backbone's cut tensor (same scale / zero point)
    CONV_2D 1x1, per-channel int8 weights (standardised), no bias      -> z
    DEPTHWISE_CONV_2D 1x1, per-channel int8 weight = gamma, int32 bias = beta, RELU  -> a
    MEAN over H, W                                                      -> p  [1, M]
    FULLY_CONNECTED, per-channel int8 weights, int32 bias               -> logits int8 [1, K]

The affine and FC weight scales are fixed here, with headroom, so that adapted parameters
are requantized into the same int8 / int32 slots: the per-channel multipliers in the blob
never change and the adapted head runs on the unchanged forward kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyadapt.convert.tflite_writer import ModelBuilder, quantize
from tinyadapt.tta.heads import HeadParams, forward, standardise

AFFINE_HEADROOM = 4.0   # gamma may grow 4x (normalisation re-estimation, entropy steps)
FC_HEADROOM = 2.0


def _range(v: np.ndarray, margin: float, relu: bool = False) -> tuple[float, int]:
    lo, hi = (0.0 if relu else float(v.min())), float(v.max())
    lo, hi = min(lo, 0.0), max(hi, 1e-6)
    mid, half = (hi + lo) / 2, (hi - lo) / 2 * margin
    lo, hi = (0.0, hi * margin) if relu else (mid - half, mid + half)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return scale, zp


@dataclass
class HeadQuant:
    """Fixed quantization of one head: activation (scale, zp) and weight scales."""
    x: tuple[float, int]
    z: tuple[float, int]
    a: tuple[float, int]
    p: tuple[float, int]
    logits: tuple[float, int]
    conv_scale: np.ndarray
    gamma_scale: np.ndarray
    fc_scale: np.ndarray

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v.tolist()) for k, v in vars(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> "HeadQuant":
        return cls(**{k: (tuple(v) if k in ("x", "z", "a", "p", "logits") else np.asarray(v, np.float64))
                      for k, v in d.items()})


def calibrate(h: HeadParams, x: np.ndarray, x_quant: tuple[float, int]) -> HeadQuant:
    f = forward(h, x)
    w_hat = standardise(h.conv)
    return HeadQuant(x=x_quant, z=_range(f.z, 1.2), a=_range(f.a, 1.2, relu=True), p=_range(f.p, 1.3, relu=True),
                     logits=_range(f.logits, 1.5),
                     conv_scale=np.maximum(np.abs(w_hat).max(1), 1e-8) / 127.0,
                     gamma_scale=AFFINE_HEADROOM * np.maximum(np.abs(h.gamma), 1e-3) / 127.0,
                     fc_scale=FC_HEADROOM * np.maximum(np.abs(h.fc_w).max(1), 1e-6) / 127.0)


def _q8(v, scale):
    return quantize(v, scale, 0, np.int8)


def int_params(h: HeadParams, q: HeadQuant) -> dict[str, np.ndarray]:
    """The adaptable parameters as the blob stores them (round half away, clamp)."""
    return {"gamma": _q8(h.gamma, q.gamma_scale),
            "beta": quantize(h.beta, q.z[0] * q.gamma_scale, 0, np.int32),
            "fc_w": _q8(h.fc_w, q.fc_scale[:, None]),
            "fc_b": quantize(h.fc_b, q.p[0] * q.fc_scale, 0, np.int32)}


def dequant_params(h: HeadParams, q: HeadQuant) -> HeadParams:
    """The values the int8 head actually uses (what a QAS step's float master rounds to)."""
    ip = int_params(h, q)
    return HeadParams(conv=h.conv, gamma=ip["gamma"] * q.gamma_scale, beta=ip["beta"] * q.z[0] * q.gamma_scale,
                      fc_w=ip["fc_w"] * q.fc_scale[:, None], fc_b=ip["fc_b"] * q.p[0] * q.fc_scale)


def head_tflite(h: HeadParams, q: HeadQuant, hw: tuple[int, int]) -> bytes:
    m, c = h.conv.shape
    k = h.fc_w.shape[0]
    b = ModelBuilder("tinyadapt TTA exit head")
    x = b.input([1, hw[0], hw[1], c], scale=q.x[0], zero_point=q.x[1])
    w_hat = standardise(h.conv)
    wc = b.const(_q8(w_hat, q.conv_scale[:, None]).reshape(m, 1, 1, c), scale=q.conv_scale, quantized_dimension=0)
    bc = b.const(np.zeros(m, np.int32), scale=q.x[0] * q.conv_scale)
    z = b.tensor([1, hw[0], hw[1], m], scale=q.z[0], zero_point=q.z[1])
    b.op("CONV_2D", [x, wc, bc], [z], padding="VALID")
    ip = int_params(h, q)
    wg = b.const(ip["gamma"].reshape(1, 1, 1, m), scale=q.gamma_scale, quantized_dimension=3)
    bg = b.const(ip["beta"], scale=q.z[0] * q.gamma_scale)
    a = b.tensor([1, hw[0], hw[1], m], scale=q.a[0], zero_point=q.a[1])
    b.op("DEPTHWISE_CONV_2D", [z, wg, bg], [a], padding="VALID", depth_multiplier=1, activation="RELU")
    p = b.tensor([1, m], scale=q.p[0], zero_point=q.p[1])
    b.op("MEAN", [a], [p], axis=[1, 2], keep_dims=False)
    wf = b.const(ip["fc_w"], scale=q.fc_scale, quantized_dimension=0)
    bf = b.const(ip["fc_b"], scale=q.p[0] * q.fc_scale)
    out = b.tensor([1, k], scale=q.logits[0], zero_point=q.logits[1])
    b.op("FULLY_CONNECTED", [p, wf, bf], [out])
    b.output(out)
    return b.build()
