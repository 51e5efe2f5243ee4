"""Synthesize full-int8 MobileNetV2 .tflite models of any width and resolution, without TensorFlow.

The graph is the one the TFLite converter emits for Keras
``MobileNetV2(alpha=alpha, input_shape=(r, r, 3), include_top=True,
weights=None, classes=classes)`` converted with full-integer quantization
(see ``make.py`` and ``mobilenetv2_96.tflite`` next to this file, the
converter's output for alpha 0.35 at 96x96 that this generator mirrors):

* ``Conv1``: CONV_2D 3x3 stride 2 SAME + RELU6, ``_make_divisible(32 * alpha, 8)``
  filters (Keras' BatchNorm folded into weights and bias, as the converter does);
* 17 inverted-residual blocks: 1x1 CONV_2D expansion (x6) + RELU6 (not in block 0),
  DEPTHWISE_CONV_2D 3x3 stride 1/2 SAME + RELU6 (Keras' ZeroPadding2D(correct_pad)
  + VALID is fused into SAME by the converter: same padding for odd and even
  sizes), 1x1 CONV_2D projection (linear) and a residual ADD when the stride
  is 1 and the channel counts match;
* ``Conv_1``: 1x1 CONV_2D (VALID, Keras' default) to 1280 channels
  (``_make_divisible(1280 * alpha, 8)`` when alpha > 1) + RELU6;
* MEAN over axes (1, 2), keep_dims False; FULLY_CONNECTED to ``classes``; SOFTMAX
  (output scale 1/256, zero point -128).

Quantization follows the converter: int8 activations with per-tensor scale and
zero point, int8 weights with per-channel symmetric scales (quantized dimension 0
for CONV_2D / FULLY_CONNECTED, 3 for DEPTHWISE_CONV_2D), int32 biases with
scale input_scale * weight_scale[c]. Input: scale 1/127.5, zero point 0 (the
[-1, 1] MobileNetV2 input range).

The weights are random, so the model is useless as a classifier: it exists for
memory-planning and patch-based-inference benchmarks. To keep activations alive
through 50+ layers, every convolution gets a data-dependent "BatchNorm" folded
into it: kernels are drawn N(0, 1) / sqrt(fan_in), a float (numpy) forward pass
over a few seeded random inputs measures each output channel's mean and
variance, and the folded kernel and bias normalise it (times a random gamma,
plus a random beta). Each activation tensor's quantization comes from the same
pass (0.1st / 99.9th percentiles; RELU6 outputs [0, min(p99.9, 6)] with zero
point -128). The pass uses the quantized weights and fake-quantizes every
activation, so it tracks what the int8 model computes. The classifier is
centred the same way (its bias cancels each class's mean logit) and scaled so
the logits have a standard deviation of 3 over the calibration inputs: the
softmax output then depends on the input instead of being a constant.

Everything is drawn from ``np.random.default_rng(seed)``, and the calibration
pass works on exact integers (int8 values times int8 weights, accumulated in
float64 below 2**53), so the same arguments give the same bytes whatever BLAS's
thread count or summation order. ``build_mobilenetv2_with_stats`` also returns
the MAC count, parameter count and weight bytes.

Usage::

    python models/mobilenetv2/synth.py --alpha 1.0 --resolution 224 -o /tmp/mbv2_100_224.tflite

or from Python: ``build_mobilenetv2(alpha, resolution, classes=1000, seed=0) -> bytes``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from tests.support.tflite_builder import ModelBuilder, quantize  # noqa: E402

__all__ = ["build_mobilenetv2", "build_mobilenetv2_with_stats", "mobilenetv2_layers",
           "make_divisible", "ModelStats"]

INPUT_SCALE = 1.0 / 127.5
INPUT_ZERO_POINT = 0
N_CALIBRATION = 8           # random inputs in the float calibration pass
BN_EPSILON = 1e-3           # Keras BatchNormalization's default
LOGIT_STD = 3.0             # target spread of the (centred) logits
PCT_LO, PCT_HI = 0.1, 99.9  # activation range percentiles

# (expansion t, output channels c, repeats n, first stride s) -- MobileNetV2 table 2,
# exactly the _inverted_res_block calls of keras.applications.MobileNetV2.
_BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """keras.applications.mobilenet_v2._make_divisible."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # do not round down by more than 10 %
        new_v += divisor
    return new_v


def _same_out(size: int, stride: int) -> int:
    return -(-size // stride)


# --------------------------------------------------------------------------- architecture
@dataclass
class Layer:
    """One TFLite operator of the synthesized graph (shapes without the batch axis)."""
    kind: str        # conv | dw | add | mean | fc | softmax
    name: str        # Keras layer name
    in_shape: tuple  # (H, W, C) or (C,)
    out_shape: tuple
    kernel: int = 1
    stride: int = 1
    padding: str = "SAME"
    activation: str = "NONE"
    residual_of: int | None = None   # add: index (in the layer list) of the skip's producer

    @property
    def macs(self) -> int:
        if self.kind == "conv":
            h, w, o = self.out_shape
            return h * w * o * self.kernel * self.kernel * self.in_shape[-1]
        if self.kind == "dw":
            h, w, c = self.out_shape
            return h * w * c * self.kernel * self.kernel
        if self.kind == "fc":
            return self.in_shape[-1] * self.out_shape[-1]
        return 0

    @property
    def params(self) -> int:
        """Weights + biases (BatchNorm folded)."""
        if self.kind == "conv":
            o = self.out_shape[-1]
            return o * self.kernel * self.kernel * self.in_shape[-1] + o
        if self.kind == "dw":
            c = self.out_shape[-1]
            return c * self.kernel * self.kernel + c
        if self.kind == "fc":
            return self.in_shape[-1] * self.out_shape[-1] + self.out_shape[-1]
        return 0


def mobilenetv2_layers(alpha: float, resolution: int, classes: int = 1000) -> list[Layer]:
    """The operator list of Keras MobileNetV2(alpha, (r, r, 3), include_top=True) as TFLite ops."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    if classes < 1:
        raise ValueError(f"classes must be positive, got {classes}")
    layers: list[Layer] = []
    h = w = int(resolution)
    c = make_divisible(32 * alpha, 8)
    oh, ow = _same_out(h, 2), _same_out(w, 2)
    layers.append(Layer("conv", "Conv1", (h, w, 3), (oh, ow, c), 3, 2, "SAME", "RELU6"))
    h, w = oh, ow
    block_id = 0
    for t, filters, n, s in _BLOCKS:
        for i in range(n):
            stride = s if i == 0 else 1
            prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
            block_in = len(layers) - 1
            in_c = c
            out_c = make_divisible(int(filters * alpha), 8)
            if block_id:
                e = t * in_c
                layers.append(Layer("conv", prefix + "expand", (h, w, in_c), (h, w, e), 1, 1,
                                    "SAME", "RELU6"))
            else:
                e = in_c
            oh, ow = _same_out(h, stride), _same_out(w, stride)
            layers.append(Layer("dw", prefix + "depthwise", (h, w, e), (oh, ow, e), 3, stride,
                                "SAME", "RELU6"))
            h, w = oh, ow
            layers.append(Layer("conv", prefix + "project", (h, w, e), (h, w, out_c), 1, 1,
                                "SAME", "NONE"))
            if stride == 1 and in_c == out_c:
                layers.append(Layer("add", prefix + "add", (h, w, out_c), (h, w, out_c),
                                    residual_of=block_in))
            c = out_c
            block_id += 1
    last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    layers.append(Layer("conv", "Conv_1", (h, w, c), (h, w, last), 1, 1, "VALID", "RELU6"))
    layers.append(Layer("mean", "global_average_pooling2d", (h, w, last), (last,)))
    layers.append(Layer("fc", "predictions", (last,), (classes,)))
    layers.append(Layer("softmax", "predictions_softmax", (classes,), (classes,)))
    return layers


@dataclass
class ModelStats:
    alpha: float
    resolution: int
    classes: int
    macs: int
    params: int           # int8 weights + int32 biases, counted as values
    weight_bytes: int     # bytes of all constant buffers (weights, biases, MEAN axis)
    model_bytes: int
    n_ops: int
    seconds: float
    activation_scales: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- float ops
def _same_pad(x: np.ndarray, k: int, stride: int) -> tuple[np.ndarray, int, int]:
    """Zero-pad NHWC x the way TFLite's SAME padding does; returns (padded, oh, ow)."""
    _, h, w, _ = x.shape
    oh, ow = _same_out(h, stride), _same_out(w, stride)
    ph = max((oh - 1) * stride + k - h, 0)
    pw = max((ow - 1) * stride + k - w, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    return xp, oh, ow


def _taps(xp: np.ndarray, k: int, stride: int, oh: int, ow: int):
    for i in range(k):
        for j in range(k):
            yield i, j, xp[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]


def _conv(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """x NHWC, w [O, k, k, I] -> NHWC (no bias), SAME padding (== VALID for 1x1)."""
    o, k, _, i = w.shape
    n = x.shape[0]
    if k == 1 and stride == 1:
        y = x.reshape(-1, i) @ w.reshape(o, i).T
        return y.reshape(x.shape[:3] + (o,))
    xp, oh, ow = _same_pad(x, k, stride)
    cols = np.concatenate([t for _, _, t in _taps(xp, k, stride, oh, ow)], axis=-1)
    y = cols.reshape(-1, k * k * i) @ w.reshape(o, k * k * i).T
    return y.reshape(n, oh, ow, o)


def _dwconv(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """x NHWC, w [1, k, k, C] -> NHWC (no bias), SAME padding."""
    k = w.shape[1]
    xp, oh, ow = _same_pad(x, k, stride)
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    for i, j, t in _taps(xp, k, stride, oh, ow):
        y += t * w[0, i, j]
    return y


def _range_quant(y: np.ndarray, relu6: bool) -> tuple[float, int]:
    """(scale, zero_point) for an activation tensor from calibration values y."""
    flat = np.asarray(y, np.float64).reshape(-1)
    if relu6:
        hi = min(float(np.percentile(flat, PCT_HI)), 6.0)
        hi = max(hi, 1e-3)
        return float(np.float32(hi / 255.0)), -128
    lo, hi = np.percentile(flat, [PCT_LO, PCT_HI])
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-6:
        hi = lo + 1e-3
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return scale, zp


def _requant(y: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """Quantize float y to int8 and return the integer values minus the zero point (float64)."""
    return np.clip(np.round(y / scale) + zp, -128, 127) - zp


def _quant_weights(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8 along ``axis``: (int8 weights, float64 scales)."""
    red = tuple(a for a in range(w.ndim) if a != axis)
    amax = np.max(np.abs(w), axis=red)
    scales = np.where(amax > 0, amax / 127.0, 1e-6)
    shape = [1] * w.ndim
    shape[axis] = -1
    return quantize(w, scales.reshape(shape), 0, np.int8), scales


def _quant_bias(b: np.ndarray, in_scale: float, w_scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b_scales = np.float64(in_scale) * w_scales.astype(np.float64)
    q = np.clip(np.round(b / b_scales), -2**31, 2**31 - 1).astype(np.int32)
    return q, b_scales


# --------------------------------------------------------------------------- builder
# The calibration pass carries every activation as its int8 values minus the zero
# point, in float64, and multiplies them with the int8 weights: every accumulator is
# an integer below 2**53, so BLAS computes it exactly whatever its summation order
# or thread count, and the output bytes do not depend on them. The float value of a
# tensor is (those integers) * scale.
def build_mobilenetv2_with_stats(alpha: float, resolution: int, classes: int = 1000,
                                 seed: int = 0) -> tuple[bytes, ModelStats]:
    """The .tflite bytes and a ModelStats summary (MACs, params, sizes, build time)."""
    t0 = time.perf_counter()
    layers = mobilenetv2_layers(alpha, resolution, classes)
    rng = np.random.default_rng(seed)
    b = ModelBuilder(description=f"tinyadapt synthetic MobileNetV2 alpha={alpha} "
                                 f"{resolution}x{resolution} classes={classes} seed={seed}")

    r = int(resolution)
    s_in0 = float(np.float32(INPUT_SCALE))
    x_tensor = b.input([1, r, r, 3], scale=s_in0, zero_point=INPUT_ZERO_POINT, name="input")
    xq = rng.integers(-128, 128, size=(N_CALIBRATION, r, r, 3)).astype(np.float64)

    # Per layer output: (tensor index, int values - zero point as float64, scale, zero point).
    outs: list[tuple[int, np.ndarray, float, int]] = []
    cur = (x_tensor, xq - INPUT_ZERO_POINT, s_in0, INPUT_ZERO_POINT)
    scales = {"input": (s_in0, INPUT_ZERO_POINT)}
    skips = {L.residual_of for L in layers if L.kind == "add"}

    for L in layers:
        t_in, a, s_in, _ = cur
        n_out = L.out_shape[-1]
        if L.kind in ("conv", "dw"):
            if L.kind == "conv":
                fan_in = L.kernel * L.kernel * L.in_shape[-1]
                w = rng.standard_normal((n_out, L.kernel, L.kernel, L.in_shape[-1])) / np.sqrt(fan_in)
                qdim = 0
            else:
                fan_in = L.kernel * L.kernel
                w = rng.standard_normal((1, L.kernel, L.kernel, n_out)) / np.sqrt(fan_in)
                qdim = 3
            gamma = rng.uniform(0.75, 1.25, n_out)
            beta = rng.normal(0.0, 0.25, n_out)
            # Folding a per-channel BatchNorm multiplies a channel's kernel by a positive
            # factor g, which leaves its symmetric int8 quantization unchanged except for
            # the scale: quantize the raw kernel once, fold g into the scale.
            wq, ws_raw = _quant_weights(w, qdim)
            wf = wq.astype(np.float64)
            acc = _conv(a, wf, L.stride) if L.kind == "conv" else _dwconv(a, wf, L.stride)
            z = acc.reshape(-1, n_out) * (s_in * ws_raw)
            mean, var = z.mean(axis=0), z.var(axis=0)
            del z
            g = gamma / np.sqrt(var + BN_EPSILON)
            w_scales = (ws_raw * g).astype(np.float32).astype(np.float64)
            bq, b_scales = _quant_bias(beta - mean * g, s_in, w_scales)
            # What the int8 layer computes before the output rounding, in float.
            y = acc
            y += bq
            y *= b_scales
            del acc
            relu6 = L.activation == "RELU6"
            if relu6:
                np.clip(y, 0.0, 6.0, out=y)
            s_out, zp_out = _range_quant(y, relu6)
            w_t = b.const(wq, scale=w_scales.astype(np.float32), quantized_dimension=qdim,
                          name=L.name + "/weights")
            b_t = b.const(bq, scale=b_scales.astype(np.float32), name=L.name + "/bias")
            o_t = b.tensor((1,) + L.out_shape, scale=s_out, zero_point=zp_out,
                           name=L.name + ("/Relu6" if relu6 else ""))
            opts = dict(padding=L.padding, stride_h=L.stride, stride_w=L.stride,
                        activation=L.activation)
            if L.kind == "conv":
                b.op("CONV_2D", [t_in, w_t, b_t], [o_t], **opts)
            else:
                b.op("DEPTHWISE_CONV_2D", [t_in, w_t, b_t], [o_t], depth_multiplier=1, **opts)
        elif L.kind == "add":
            t_skip, a_skip, s_skip, _ = outs[L.residual_of]
            y = a * s_in + a_skip * s_skip
            s_out, zp_out = _range_quant(y, False)
            o_t = b.tensor((1,) + L.out_shape, scale=s_out, zero_point=zp_out, name=L.name)
            b.op("ADD", [t_skip, t_in], [o_t], activation="NONE")
        elif L.kind == "mean":
            y = a.mean(axis=(1, 2)) * s_in
            s_out, zp_out = _range_quant(y, False)
            o_t = b.tensor([1, n_out], scale=s_out, zero_point=zp_out, name=L.name)
            b.op("MEAN", [t_in], [o_t], axis=[1, 2], keep_dims=False)
        elif L.kind == "fc":
            fan_in = L.in_shape[-1]
            w = rng.standard_normal((n_out, fan_in)) / np.sqrt(fan_in)
            wq, ws_raw = _quant_weights(w, 0)
            acc = a @ wq.astype(np.float64).T
            z = acc * (s_in * ws_raw)
            # Data-dependent classifier init: centre every class's logit, and spread them
            # all to LOGIT_STD with one common gain (classes keep their relative spreads).
            mean = z.mean(axis=0)
            std = float(np.std(z - mean))
            gain = LOGIT_STD / std if std > 0 else 1.0
            w_scales = (ws_raw * gain).astype(np.float32).astype(np.float64)
            bq, b_scales = _quant_bias(-mean * gain, s_in, w_scales)
            y = (acc + bq) * b_scales
            s_out, zp_out = _range_quant(y, False)
            w_t = b.const(wq, scale=w_scales.astype(np.float32), quantized_dimension=0,
                          name=L.name + "/weights")
            b_t = b.const(bq, scale=b_scales.astype(np.float32), name=L.name + "/bias")
            o_t = b.tensor([1, n_out], scale=s_out, zero_point=zp_out, name=L.name + "/logits")
            b.op("FULLY_CONNECTED", [t_in, w_t, b_t], [o_t], activation="NONE", keep_num_dims=False)
        elif L.kind == "softmax":
            s_out, zp_out = float(np.float32(1.0 / 256.0)), -128
            y = None  # the last op: nothing consumes its calibration values
            o_t = b.tensor([1, n_out], scale=s_out, zero_point=zp_out, name="output")
            b.op("SOFTMAX", [t_in], [o_t], beta=1.0)
        else:  # pragma: no cover
            raise AssertionError(L.kind)
        cur = (o_t, None if y is None else _requant(y, s_out, zp_out), s_out, zp_out)
        del y
        outs.append(cur)
        if L.kind == "add":  # the skip's values are not needed any more
            outs[L.residual_of] = outs[L.residual_of][:1] + (None,) + outs[L.residual_of][2:]
        if len(outs) >= 2 and len(outs) - 2 not in skips:  # keep only skip sources
            outs[-2] = outs[-2][:1] + (None,) + outs[-2][2:]
        scales[L.name] = (s_out, zp_out)

    b.output(cur[0])
    model = b.build()
    weight_bytes = sum(len(buf) for buf in b._buffers if buf)
    stats = ModelStats(
        alpha=float(alpha), resolution=r, classes=int(classes),
        macs=sum(L.macs for L in layers), params=sum(L.params for L in layers),
        weight_bytes=weight_bytes, model_bytes=len(model), n_ops=len(layers),
        seconds=time.perf_counter() - t0, activation_scales=scales)
    return model, stats


def build_mobilenetv2(alpha: float, resolution: int, classes: int = 1000, seed: int = 0) -> bytes:
    """A full-int8 MobileNetV2 .tflite (random weights, calibrated quantization) as bytes."""
    return build_mobilenetv2_with_stats(alpha, resolution, classes, seed)[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--alpha", type=float, default=1.0, help="width multiplier (default 1.0)")
    p.add_argument("--resolution", type=int, default=224, help="input height = width (default 224)")
    p.add_argument("--classes", type=int, default=1000, help="classifier outputs (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--output", required=True, help="output .tflite path")
    args = p.parse_args(argv)
    model, st = build_mobilenetv2_with_stats(args.alpha, args.resolution, args.classes, args.seed)
    Path(args.output).write_bytes(model)
    print(f"wrote {args.output}: MobileNetV2 alpha={st.alpha} {st.resolution}x{st.resolution} "
          f"classes={st.classes} seed={args.seed}: {st.n_ops} ops, {st.macs / 1e6:.1f} M MACs, "
          f"{st.params / 1e6:.3f} M params, {st.weight_bytes} weight bytes, "
          f"{st.model_bytes} model bytes, built in {st.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
