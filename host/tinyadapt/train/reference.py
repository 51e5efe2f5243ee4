"""NumPy float reference of the training math (float64), written independently of the C kernels.

Used three ways: the tests compare every backward kernel with it, the float baselines of the
transfer benchmark (last-layer and whole-network fine-tuning) run on it, and the QAS sparse
update can be replayed with it (`qas_sgd`). Layouts are TFLite's: activations NHWC, conv
filters [C_out, KH, KW, C_in], depthwise filters [1, KH, KW, C_out], FC filters [out, in].
"""

from __future__ import annotations

import numpy as np


def _taps(out_len: int, stride: int, pad: int, k: int, dil: int, in_len: int):
    """For tap k: output positions whose input coordinate is inside, and those coordinates."""
    o = np.arange(out_len)
    i = o * stride - pad + k * dil
    ok = (i >= 0) & (i < in_len)
    return o[ok], i[ok]


def conv2d(x, w, b, stride=(1, 1), dil=(1, 1), pad=(0, 0), out_hw=None, depthwise=False):
    """Float convolution (no activation). x [N,H,W,Ci]; pad = (top, left); out_hw (H, W)."""
    n, h, wd, ci = x.shape
    kh, kw = w.shape[1:3]
    co = w.shape[3] if depthwise else w.shape[0]
    oh, ow = out_hw
    y = np.zeros((n, oh, ow, co))
    m = co // ci if depthwise else 1
    for ky in range(kh):
        oy, iy = _taps(oh, stride[0], pad[0], ky, dil[0], h)
        for kx in range(kw):
            ox, ix = _taps(ow, stride[1], pad[1], kx, dil[1], wd)
            patch = x[:, iy][:, :, ix]  # [N, |oy|, |ox|, Ci]
            if depthwise:
                contrib = np.repeat(patch, m, axis=3) * w[0, ky, kx]
            else:
                contrib = patch @ w[:, ky, kx, :].T
            y[:, oy[:, None], ox[None, :], :] += contrib
    if b is not None:
        y += b
    return y


def conv2d_backward(x, w, dy, stride=(1, 1), dil=(1, 1), pad=(0, 0), depthwise=False):
    """(dx, dw, db) of conv2d given dy."""
    n, h, wd, ci = x.shape
    kh, kw = w.shape[1:3]
    co = dy.shape[3]
    oh, ow = dy.shape[1:3]
    m = co // ci if depthwise else 1
    dx = np.zeros_like(x, dtype=np.float64)
    dw = np.zeros_like(w, dtype=np.float64)
    for ky in range(kh):
        oy, iy = _taps(oh, stride[0], pad[0], ky, dil[0], h)
        for kx in range(kw):
            ox, ix = _taps(ow, stride[1], pad[1], kx, dil[1], wd)
            g = dy[:, oy][:, :, ox]  # [N, |oy|, |ox|, Co]
            patch = x[:, iy][:, :, ix]
            if depthwise:
                dx_tap = (g * w[0, ky, kx]).reshape(*g.shape[:3], ci, m).sum(axis=4)
                dw[0, ky, kx] += (g * np.repeat(patch, m, axis=3)).sum(axis=(0, 1, 2))
            else:
                dx_tap = g @ w[:, ky, kx, :]
                dw[:, ky, kx, :] += np.einsum("nyxo,nyxi->oi", g, patch)
            dx[:, iy[:, None], ix[None, :], :] += dx_tap
    return dx, dw, dy.sum(axis=(0, 1, 2))


def fully_connected_backward(x, w, dy):
    """x [B, in], w [out, in], dy [B, out] -> (dx, dw, db)."""
    return dy @ w, dy.T @ x, dy.sum(axis=0)


def avgpool_backward(in_shape, dy, filt, stride, pad):
    """Average pool whose divisor counts only the taps inside the input (TFLite)."""
    n, h, w, c = in_shape
    dx = np.zeros(in_shape)
    for oy in range(dy.shape[1]):
        y0 = oy * stride[0] - pad[0]
        ys = range(max(0, y0), min(h, y0 + filt[0]))
        for ox in range(dy.shape[2]):
            x0 = ox * stride[1] - pad[1]
            xs = range(max(0, x0), min(w, x0 + filt[1]))
            cnt = len(ys) * len(xs)
            if cnt:
                dx[:, ys.start:ys.stop, xs.start:xs.stop, :] += dy[:, oy:oy + 1, ox:ox + 1, :] / cnt
    return dx


def mean_backward(in_shape, axes, dy):
    keep = [1 if i in axes else d for i, d in enumerate(in_shape)]
    count = int(np.prod([in_shape[i] for i in axes]))
    return np.broadcast_to(dy.reshape(keep) / count, in_shape).copy()


def pad_backward(in_shape, before, dy):
    sl = tuple(slice(b, b + d) for b, d in zip(before, in_shape))
    return dy[sl].copy()


def act_mask(y_q, act_min, act_max):
    return ((y_q > act_min) & (y_q < act_max)).astype(np.float64)


def softmax_loss(z_real, beta, kind, label):
    """Loss and dL/dx for logits x (z = beta * x): kind 0 cross-entropy, 1 entropy."""
    z = beta * np.asarray(z_real, dtype=np.float64)
    z = z - z.max()
    p = np.exp(z) / np.exp(z).sum()
    logp = z - np.log(np.exp(z).sum())
    if kind == 0:
        g = p.copy()
        g[label] -= 1.0
        return float(-logp[label]), beta * g
    h = float(-(p * logp).sum())
    return h, beta * (-p * (logp + h))


def qas_sgd(w_master, b_master, dw_real, db_real, s_w, s_x, lr):
    """One SGD step with quantization-aware scaling on int-domain masters.

    s_w [C] per output channel (dw_real [C, ...]); the int-domain gradients are s_W dL/dW and
    s_b dL/db (s_b = s_W s_x), scaled by s_W^-2 and s_b^-2."""
    shape = (-1,) + (1,) * (np.ndim(dw_real) - 1)
    sw = np.asarray(s_w, dtype=np.float64).reshape(shape) if dw_real is not None else None
    w_new = None if w_master is None else np.clip(w_master - lr * (sw * dw_real) / sw ** 2, -127, 127)
    sb = np.asarray(s_w, dtype=np.float64) * s_x
    b_new = None if b_master is None else b_master - lr * (sb * db_real) / sb ** 2
    return w_new, b_new


def round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)
