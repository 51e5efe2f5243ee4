"""A float64 NumPy copy of a converted int8 model (dequantized weights and biases, float
activations, fused ReLU/ReLU6), trainable with plain SGD on any set of layers: the float
fine-tuning baselines (last layer only, whole network) next to the int8 sparse update.

Only the ops the backward pass supports are allowed (plus SOFTMAX at the end and QUANTIZE /
DEQUANTIZE at the edges)."""

from __future__ import annotations

import struct

import numpy as np

from tinyadapt.convert import ConvertedModel
from tinyadapt.convert import blob_format as bf
from tinyadapt.errors import UnsupportedModelError
from tinyadapt.train import reference as ref
from tinyadapt.train.graph import weight_layers

_ACT = {"NONE": (-np.inf, np.inf), "RELU": (0.0, np.inf), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


class FloatNet:
    def __init__(self, cm: ConvertedModel):
        self.cm = cm
        self.layers = weight_layers(cm)
        self.params: dict[int, list[np.ndarray]] = {}  # op index -> [w, b]
        for layer in self.layers:
            w = layer.weights.astype(np.float64)
            w = w * (layer.scales if layer.kind == "DEPTHWISE_CONV_2D" else
                     layer.scales.reshape((-1,) + (1,) * (w.ndim - 1)))
            op = cm.ops[layer.op_index]
            x_scale = cm.tensors[op.inputs[0]].scale
            if layer.bias >= 0:
                b = np.frombuffer(cm.tensors[layer.bias].data, np.int32).astype(np.float64) * layer.scales * x_scale
            else:
                b = np.zeros(layer.channels)
            self.params[layer.op_index] = [w, b]
        t = cm.tensors[cm.inputs[0]]
        self.in_scale, self.in_zp = t.scale, t.zero_point
        for op in cm.ops:
            name = bf.OPCODE_NAMES[op.opcode]
            if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D",
                            "MAX_POOL_2D", "MEAN", "PAD", "RESHAPE", "SOFTMAX", "QUANTIZE", "DEQUANTIZE"):
                raise UnsupportedModelError(f"{cm.source}: the float reference has no {name}")

    def _act(self, op):
        return _ACT[op.source.options.get("activation", "NONE")] if op.source is not None else _ACT["NONE"]

    def forward(self, x_q: np.ndarray):
        """Logits (before the final softmax) and the tape for backward."""
        cm = self.cm
        vals = {cm.inputs[0]: (x_q.astype(np.float64) - self.in_zp) * self.in_scale}
        tape = []
        logits = None
        for i, op in enumerate(cm.ops):
            name = bf.OPCODE_NAMES[op.opcode]
            p = struct.unpack(f"<{len(op.params) // 4}i", op.params)
            x = vals.get(op.inputs[0])
            if name == "SOFTMAX":
                logits = x
                continue
            if name in ("QUANTIZE", "DEQUANTIZE", "RESHAPE"):
                y = x.reshape(cm.tensors[op.outputs[0]].shape)
            elif name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w, b = self.params[i]
                y = ref.conv2d(x, w, b, (p[0], p[1]), (p[2], p[3]), (p[4], p[5]),
                               cm.tensors[op.outputs[0]].shape[1:3], name == "DEPTHWISE_CONV_2D")
            elif name == "FULLY_CONNECTED":
                w, b = self.params[i]
                y = (x.reshape(-1, w.shape[1]) @ w.T + b).reshape(cm.tensors[op.outputs[0]].shape)
            elif name == "ADD":
                y = x + vals[op.inputs[1]]
            elif name == "MEAN":
                axes = tuple(a for a in range(p[0]) if p[1] >> a & 1)
                y = x.mean(axis=axes).reshape(cm.tensors[op.outputs[0]].shape)
            elif name == "PAD":
                y = np.pad(x, [(p[2 + k], p[8 + k]) for k in range(p[0])])
            elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
                sh, sw, fh, fw, ph, pw = p[:6]
                oh, ow = cm.tensors[op.outputs[0]].shape[1:3]
                y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
                for oy in range(oh):
                    for ox in range(ow):
                        y0, x0 = oy * sh - ph, ox * sw - pw
                        win = x[:, max(0, y0):min(x.shape[1], y0 + fh), max(0, x0):min(x.shape[2], x0 + fw)]
                        y[:, oy, ox] = win.max(axis=(1, 2)) if name == "MAX_POOL_2D" else win.mean(axis=(1, 2))
            lo, hi = self._act(op) if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD",
                                                "AVERAGE_POOL_2D", "MAX_POOL_2D") else _ACT["NONE"]
            pre = y
            y = np.clip(y, lo, hi)
            tape.append((i, name, p, x, pre, y, lo, hi))
            vals[op.outputs[0]] = y
            if op.outputs[0] in cm.outputs and logits is None:
                logits = y
        return logits.ravel(), tape, vals

    def predict(self, x_q) -> int:
        return int(np.argmax(self.forward(x_q)[0]))

    def step(self, x_q, label: int, lr: float, train_ops: set[int], kept: dict | None = None,
             bias_ops: set[int] | None = None) -> float:
        """One SGD step; returns the loss. train_ops: op indices whose weights are updated, all
        output channels unless kept[op] lists the kept ones; bias_ops: op indices whose biases
        are updated (default: train_ops). The float form of the int8 sparse update: QAS makes
        the int-domain step equal to this float SGD step."""
        kept = kept or {}
        bias_ops = set(train_ops) if bias_ops is None else set(bias_ops)
        cm = self.cm
        beta = 1.0
        for op in cm.ops:
            if bf.OPCODE_NAMES[op.opcode] == "SOFTMAX":
                beta = float(op.source.options.get("beta", 1.0))
        z, tape, vals = self.forward(x_q)
        loss, gz = ref.softmax_loss(z, beta, 0, label)
        logits_t = cm.ops[tape[-1][0]].outputs[0]
        grads = {logits_t: gz.reshape(vals[logits_t].shape)}
        deepest = min(set(train_ops) | bias_ops)
        for i, name, p, x, pre, y, lo, hi in reversed(tape):
            op = cm.ops[i]
            g = grads.pop(op.outputs[0], None)
            if g is None or i < deepest:
                continue
            g = g * ((pre > lo) & (pre < hi))
            xin = op.inputs[0]
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w, b = self.params[i]
                dx, dw, db = ref.conv2d_backward(x, w, g, (p[0], p[1]), (p[2], p[3]), (p[4], p[5]),
                                                 name == "DEPTHWISE_CONV_2D")
                if i in train_ops:
                    rows = kept.get(i)
                    if rows is None:
                        w -= lr * dw
                    elif name == "DEPTHWISE_CONV_2D":
                        w[..., rows] -= lr * dw[..., rows]
                    else:
                        w[rows] -= lr * dw[rows]
                if i in bias_ops:
                    b -= lr * db
            elif name == "FULLY_CONNECTED":
                w, b = self.params[i]
                g2 = g.reshape(-1, w.shape[0])
                x2 = x.reshape(-1, w.shape[1])
                dx = (g2 @ w).reshape(x.shape)
                if i in train_ops:
                    rows = kept.get(i)
                    dw = g2.T @ x2
                    if rows is None:
                        w -= lr * dw
                    else:
                        w[rows] -= lr * dw[rows]
                if i in bias_ops:
                    b -= lr * g2.sum(axis=0)
            elif name == "ADD":
                other = op.inputs[1]
                grads[other] = grads.get(other, 0) + g
                dx = g
            elif name == "MEAN":
                dx = ref.mean_backward(x.shape, [a for a in range(p[0]) if p[1] >> a & 1], g)
            elif name == "PAD":
                dx = ref.pad_backward(x.shape, [p[2 + k] for k in range(p[0])], g)
            elif name == "AVERAGE_POOL_2D":
                dx = ref.avgpool_backward(x.shape, g, (p[2], p[3]), (p[0], p[1]), (p[4], p[5]))
            elif name == "MAX_POOL_2D":
                dx = _maxpool_backward_float(x, g, p)
            else:
                dx = g.reshape(x.shape)
            grads[xin] = grads.get(xin, 0) + dx
        return loss


def _maxpool_backward_float(x, g, p):
    sh, sw, fh, fw, ph, pw = p[:6]
    dx = np.zeros_like(x)
    for oy in range(g.shape[1]):
        for ox in range(g.shape[2]):
            y0, x0 = max(0, oy * sh - ph), max(0, ox * sw - pw)
            y1, x1 = min(x.shape[1], oy * sh - ph + fh), min(x.shape[2], ox * sw - pw + fw)
            win = x[:, y0:y1, x0:x1].reshape(x.shape[0], -1, x.shape[3])
            k = win.argmax(axis=1)
            for b in range(x.shape[0]):
                for c in range(x.shape[3]):
                    dx[b, y0 + k[b, c] // (x1 - x0), x0 + k[b, c] % (x1 - x0), c] += g[b, oy, ox, c]
    return dx
