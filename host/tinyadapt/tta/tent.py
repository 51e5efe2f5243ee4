"""The float reference: full-model entropy minimisation (TENT) on the host, in NumPy.

The backbone is re-run in float from its dequantized int8 weights; after every CONV_2D,
DEPTHWISE_CONV_2D and FULLY_CONNECTED a per-channel scale and shift (1 and 0 at the start:
the batch-norm affine TENT updates, folded away by the converter) is learned by minimising the
softmax entropy with plain SGD, one sample at a time like the device, backpropagating through
the whole model. It answers "what would adapting the full model in float buy", the reference
the early-exit heads are compared with; it is not something a microcontroller could run.
"""

from __future__ import annotations

import numpy as np

from tinyadapt.convert import ConvertedModel
from tinyadapt.errors import UnsupportedModelError
from tinyadapt.tta.heads import entropy_grad, softmax

_ACT = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}
SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN",
             "RESHAPE", "QUANTIZE", "DEQUANTIZE", "SOFTMAX")


def _deq(t) -> np.ndarray:
    q = np.asarray(t.data).astype(np.float64)
    scale, zp = np.asarray(t.scale, np.float64), np.asarray(t.zero_point, np.float64)
    if scale.size > 1:
        shape = [1] * q.ndim
        shape[t.quantized_dimension] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (q - zp) * scale if t.scale is not None else q


def _pads(in_len, k, stride, dil, padding):
    if padding == "VALID":
        out = (in_len - (k - 1) * dil - 1) // stride + 1
        return out, 0
    out = -(-in_len // stride)
    total = max((out - 1) * stride + (k - 1) * dil + 1 - in_len, 0)
    return out, total // 2


def _taps(x, kh, kw, sh, sw, dh, dw, padding):
    """x [H, W, C] -> patches [OH, OW, kh*kw, C] and what col2im needs."""
    h, w, c = x.shape
    oh, ph = _pads(h, kh, sh, dh, padding)
    ow, pw = _pads(w, kw, sw, dw, padding)
    hp, wp = max(h + 2 * ph + kh * dh, (oh - 1) * sh + (kh - 1) * dh + 1), max(w + 2 * pw + kw * dw, (ow - 1) * sw + (kw - 1) * dw + 1)
    xp = np.zeros((hp, wp, c))
    xp[ph:ph + h, pw:pw + w] = x
    idx = [(i * dh, j * dw) for i in range(kh) for j in range(kw)]
    p = np.stack([xp[a:a + (oh - 1) * sh + 1:sh, b:b + (ow - 1) * sw + 1:sw] for a, b in idx], axis=2)
    return p, (xp.shape, ph, pw, idx, sh, sw, oh, ow, h, w)


def _untaps(dp, geo):
    shape, ph, pw, idx, sh, sw, oh, ow, h, w = geo
    dxp = np.zeros(shape)
    for t, (a, b) in enumerate(idx):
        dxp[a:a + (oh - 1) * sh + 1:sh, b:b + (ow - 1) * sw + 1:sw] += dp[:, :, t]
    return dxp[ph:ph + h, pw:pw + w]


class FloatModel:
    """The backbone in float with TENT's per-channel affine after every weight layer."""

    def __init__(self, m: ConvertedModel):
        g = m.graph
        self.g = g
        for op in g.ops:
            if op.kind not in SUPPORTED:
                raise UnsupportedModelError(f"the float TENT reference has no {op.kind} (supported: {', '.join(SUPPORTED)})")
        self.w, self.b, self.gamma, self.beta = {}, {}, {}, {}
        for op in g.ops:
            if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                w = _deq(g.tensors[op.inputs[1]])
                bias = _deq(g.tensors[op.inputs[2]]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
                o = w.shape[3] if op.kind == "DEPTHWISE_CONV_2D" else w.shape[0]
                self.w[op.index], self.b[op.index] = w, bias if bias is not None else np.zeros(o)
                self.gamma[op.index], self.beta[op.index] = np.ones(o), np.zeros(o)
        self.source = ({k: v.copy() for k, v in self.gamma.items()}, {k: v.copy() for k, v in self.beta.items()})
        t = g.tensors[g.inputs[0]]
        self.in_scale = None if t.scale is None else (float(np.ravel(t.scale)[0]), int(np.ravel(t.zero_point)[0]))

    def reset(self) -> None:
        self.gamma = {k: v.copy() for k, v in self.source[0].items()}
        self.beta = {k: v.copy() for k, v in self.source[1].items()}

    def forward(self, x: np.ndarray):
        g = self.g
        x = np.asarray(x, np.float64)
        if np.dtype(g.tensors[g.inputs[0]].dtype) == np.int8:
            x = (x - self.in_scale[1]) * self.in_scale[0]
        vals = {g.inputs[0]: x.reshape(g.tensors[g.inputs[0]].shape)}
        tape = []
        for op in g.ops:
            a = vals[op.inputs[0]]
            k = op.kind
            out_shape = tuple(g.tensors[op.outputs[0]].shape)
            if k in ("QUANTIZE", "DEQUANTIZE", "RESHAPE"):
                y, rec = a.reshape(out_shape), a.shape
            elif k == "SOFTMAX":
                vals[op.outputs[0]] = a
                tape.append((op, None))
                self.logits_op = op
                break
            elif k in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                o = op.options
                w = self.w[op.index]
                kh, kw = w.shape[1], w.shape[2]
                p, geo = _taps(a[0], kh, kw, o["stride_h"], o["stride_w"], o.get("dilation_hfactor", 1),
                               o.get("dilation_wfactor", 1), o["padding"])
                if k == "CONV_2D":
                    pre = np.einsum("hwtc,otc->hwo", p, w.reshape(w.shape[0], kh * kw, -1))
                else:
                    mult = w.shape[3] // a.shape[3]
                    pr = np.repeat(p, mult, axis=3)
                    pre = np.einsum("hwtc,tc->hwc", pr, w.reshape(kh * kw, -1))
                pre = pre + self.b[op.index]
                y, rec = self._affine_act(op, pre, (p, geo))
                y = y[None]
            elif k == "FULLY_CONNECTED":
                flat = a.reshape(-1, self.w[op.index].shape[1])
                pre = flat @ self.w[op.index].T + self.b[op.index]
                y, rec = self._affine_act(op, pre, flat)
                y = y.reshape(out_shape)
            elif k in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
                o = op.options
                p, geo = _taps(a[0], o["filter_height"], o["filter_width"], o["stride_h"], o["stride_w"], 1, 1,
                               o["padding"])
                if k == "MAX_POOL_2D":
                    arg = p.argmax(2)
                    y = np.take_along_axis(p, arg[:, :, None], 2)[:, :, 0]
                    rec = (arg, geo, p.shape)
                else:
                    y, rec = p.mean(2), (None, geo, p.shape)
                y = y[None]
            elif k == "MEAN":
                axes = tuple(int(v) for v in np.ravel(g.tensors[op.inputs[1]].data))
                y, rec = a.mean(axis=axes).reshape(out_shape), (a.shape, axes)
            vals[op.outputs[0]] = y
            tape.append((op, rec))
        return vals[self.logits_op.outputs[0]].reshape(-1), tape

    def _affine_act(self, op, pre, rec):
        u = pre * self.gamma[op.index] + self.beta[op.index]
        lo, hi = _ACT[op.options.get("activation", "NONE")]
        y = u if lo is None else np.clip(u, lo, hi if hi is not None else np.inf)
        mask = np.ones_like(u) if lo is None else ((u > lo) & (hi is None or True) & (u < (hi if hi is not None else np.inf)))
        return y, (rec, pre, mask)

    def step(self, x: np.ndarray, lr: float) -> tuple[int, float]:
        """Predict, then one entropy-minimisation SGD step on every affine (TENT, batch 1)."""
        logits, tape = self.forward(x)
        p = softmax(logits)
        h = float(-(p * np.log(np.maximum(p, 1e-12))).sum())
        pred = int(np.argmax(logits))
        if lr == 0:
            return pred, h
        g = self.g
        grads = {self.logits_op.inputs[0]: entropy_grad(logits).reshape(g.tensors[self.logits_op.inputs[0]].shape)}
        for op, rec in reversed(tape[:-1]):
            dy = grads.pop(op.outputs[0], None)
            if dy is None:
                continue
            k = op.kind
            if k in ("QUANTIZE", "DEQUANTIZE", "RESHAPE"):
                dx = dy.reshape(rec)
            elif k in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                inner, pre, mask = rec
                du = dy.reshape(pre.shape) * mask
                axes = tuple(range(du.ndim - 1))
                g_gamma, g_beta = (du * pre).sum(axes), du.sum(axes)
                dpre = du * self.gamma[op.index]
                w = self.w[op.index]
                if k == "FULLY_CONNECTED":
                    dx = (dpre @ w).reshape(g.tensors[op.inputs[0]].shape)
                elif k == "CONV_2D":
                    p, geo = inner
                    dp = np.einsum("hwo,otc->hwtc", dpre, w.reshape(w.shape[0], p.shape[2], -1))
                    dx = _untaps(dp, geo)[None]
                else:
                    p, geo = inner
                    c = p.shape[3]
                    mult = w.shape[3] // c
                    dpr = np.einsum("hwc,tc->hwtc", dpre, w.reshape(p.shape[2], -1))
                    dp = dpr.reshape(dpr.shape[:3] + (c, mult)).sum(-1)
                    dx = _untaps(dp, geo)[None]
                self.gamma[op.index] -= lr * g_gamma
                self.beta[op.index] -= lr * g_beta
            elif k in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
                arg, geo, pshape = rec
                d = dy[0]
                if arg is None:
                    dp = np.repeat(d[:, :, None] / pshape[2], pshape[2], axis=2)
                else:
                    dp = np.zeros(pshape)
                    np.put_along_axis(dp, arg[:, :, None], d[:, :, None], 2)
                dx = _untaps(dp, geo)[None]
            elif k == "MEAN":
                shape, axes = rec
                n = int(np.prod([shape[a] for a in axes]))
                dx = np.broadcast_to(np.expand_dims(dy.reshape([s for i, s in enumerate(shape) if i not in axes]), axes),
                                     shape) / n
            else:
                continue
            src = op.inputs[0]
            grads[src] = grads.get(src, 0) + dx
        return pred, h


def run_tent(m: ConvertedModel, x: np.ndarray, lr: float = 1e-3) -> np.ndarray:
    """Predictions of the float backbone adapting with TENT over the stream, in order."""
    fm = FloatModel(m)
    return np.array([fm.step(xi, lr)[0] for xi in x])
