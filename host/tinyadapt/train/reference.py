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


def maxpool_backward(x_q, dy, filt, stride, pad, act_min=-128, act_max=127):
    """Gradient to the first (row-major) maximum of each window; none where the output clamped."""
    n, h, w, c = x_q.shape
    dx = np.zeros(x_q.shape)
    for b in range(n):
        for oy in range(dy.shape[1]):
            y0 = oy * stride[0] - pad[0]
            ys = range(max(0, y0), min(h, y0 + filt[0]))
            for ox in range(dy.shape[2]):
                x0 = ox * stride[1] - pad[1]
                xs = range(max(0, x0), min(w, x0 + filt[1]))
                win = x_q[b, ys.start:ys.stop, xs.start:xs.stop, :].reshape(-1, c)
                k = np.argmax(win, axis=0)
                for ch in range(c):
                    if act_min < win[k[ch], ch] < act_max:
                        dx[b, ys.start + k[ch] // len(xs), xs.start + k[ch] % len(xs), ch] += dy[b, oy, ox, ch]
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
    b_new = None if b_master is None else np.clip(b_master - lr * (sb * db_real) / sb ** 2, -2147483520, 2147483520)
    return w_new, b_new


def replay_step(blob: bytes, read, image: bytes, label: int, lr: float, kind: int = 0) -> tuple[float, bytes]:
    """The training step of a TRAIN blob, recomputed in float64 from the forward activations.

    read(index) returns tensor `index` as the engine saw it after the forward pass (parameters:
    their current RAM copies). Returns (loss, the parameter image the step should produce)."""
    import struct

    from tinyadapt.convert.blob import read_blob
    from tinyadapt.train.params import param_slots

    info = read_blob(blob)
    slots = {s.op: s for s in param_slots(info, blob)[0]}
    out = bytearray(image)
    grads: dict[int, np.ndarray] = {}
    loss = 0.0

    def give(t: int, g: np.ndarray, acc: bool) -> None:
        if t >= 0:
            g = g.reshape(info.tensors[t].shape)
            grads[t] = grads[t] + g if acc else g

    for i in range(info.n_forward_ops, len(info.ops)):
        op = info.ops[i]
        name = op.name
        if name == "LOSS_GRAD":
            beta, scale, zp, _ = struct.unpack("<ffii", op.params)
            q = read(op.inputs[0]).astype(np.float64).ravel()
            loss, g = softmax_loss((q - zp) * np.float32(scale), beta, kind, label)
            give(op.outputs[0], g, False)
            continue
        if name in ("CONV_2D_BACKWARD", "DEPTHWISE_CONV_2D_BACKWARD", "FULLY_CONNECTED_BACKWARD"):
            n_int = (len(op.params) - 4) // 4
            p = struct.unpack(f"<{n_int}i", op.params[:n_int * 4])
            x_scale = struct.unpack_from("<f", op.params, n_int * 4)[0]
            flags = p[-1]
            x_idx, w_idx, _, y_idx, dy_idx, s_idx, _ = op.inputs
            y = read(y_idx)
            act_min, act_max = (p[3], p[4]) if name.startswith("FULLY") else (p[9], p[10])
            dy = grads.pop(dy_idx) * act_mask(y, act_min, act_max)
            w = read(w_idx).astype(np.float64)
            s = read(s_idx).astype(np.float64)
            x_zp = -p[0] if name.startswith("FULLY") else -p[7]
            depthwise = name.startswith("DEPTHWISE")
            if name.startswith("FULLY"):
                wf = (w + p[1]) * s[:, None]
                dyb = dy.reshape(-1, w.shape[0])
                dx = dyb @ wf
                give(op.outputs[0], dx, bool(flags & 4))
                if flags & 1:
                    xf = (read(x_idx).astype(np.float64).reshape(dyb.shape[0], -1) - x_zp) * x_scale
                    dw = dyb.T @ xf
                db = dyb.sum(axis=0)
            else:
                stride, dil, pad = (p[0], p[1]), (p[2], p[3]), (p[4], p[5])
                wf = w * (s if depthwise else s[:, None, None, None])
                in_t = x_idx if x_idx >= 0 else op.outputs[0]
                if in_t < 0:  # the deepest layer, bias only: no input needed
                    dx, dw, db = None, np.zeros((1, 1, 1, 1)), dy.reshape(-1, dy.shape[-1]).sum(axis=0)
                    slot = slots.get(i)
                else:
                    xf = (read(x_idx).astype(np.float64) - x_zp) * x_scale if x_idx >= 0 else \
                        np.zeros(info.tensors[in_t].shape)
                    dx, dw, db = conv2d_backward(xf, wf, dy, stride, dil, pad, depthwise)
                if dx is not None:
                    give(op.outputs[0], dx, bool(flags & 4))
                if depthwise:
                    dw = dw[0].reshape(-1, dw.shape[3]).T  # [C, taps]
                else:
                    dw = dw.reshape(dw.shape[0], -1)
            slot = slots.get(i)
            if slot is None:
                continue
            if slot.bias_master_at is not None:
                bm = slot.bias_masters(bytes(out)).astype(np.float64)
                _, new_b = qas_sgd(None, bm, None, db, s, x_scale, lr)
                new_b = new_b.astype(np.float32)
                out[slot.bias_master_at:slot.bias_master_at + 4 * slot.channels] = new_b.tobytes()
            if slot.master_at is not None:
                wm = slot.weight_masters(bytes(out)).astype(np.float64)
                new_w, _ = qas_sgd(wm, None, dw[slot.kept], None, s[slot.kept], x_scale, lr)
                new_w = new_w.astype(np.float32)
                out[slot.master_at:slot.master_at + new_w.nbytes] = new_w.tobytes()
            continue
        flags = struct.unpack_from("<i", op.params, len(op.params) - 4)[0]
        if name == "ADD_BACKWARD":
            act_min, act_max, _ = struct.unpack("<3i", op.params)
            dy = grads.pop(op.inputs[1]) * act_mask(read(op.inputs[0]), act_min, act_max)
            give(op.outputs[0], dy, bool(flags & 4))
            give(op.outputs[1], dy, bool(flags & 8))
        elif name == "AVERAGE_POOL_2D_BACKWARD":
            sh, sw, fh, fw, ph, pw, amin, amax, _ = struct.unpack("<9i", op.params)
            dy = grads.pop(op.inputs[1]) * act_mask(read(op.inputs[0]), amin, amax)
            give(op.outputs[0], avgpool_backward(info.tensors[op.outputs[0]].shape, dy, (fh, fw), (sh, sw), (ph, pw)),
                 bool(flags & 4))
        elif name == "MAX_POOL_2D_BACKWARD":
            sh, sw, fh, fw, ph, pw, amin, amax, _ = struct.unpack("<9i", op.params)
            give(op.outputs[0], maxpool_backward(read(op.inputs[0]), grads.pop(op.inputs[1]), (fh, fw), (sh, sw),
                                                 (ph, pw), amin, amax), bool(flags & 4))
        elif name == "MEAN_BACKWARD":
            ndim, mask, _ = struct.unpack("<3i", op.params)
            shape = info.tensors[op.outputs[0]].shape
            give(op.outputs[0], mean_backward(shape, [a for a in range(ndim) if mask >> a & 1],
                                              grads.pop(op.inputs[0])), bool(flags & 4))
        elif name == "PAD_BACKWARD":
            v = struct.unpack("<15i", op.params)
            give(op.outputs[0], pad_backward(info.tensors[op.outputs[0]].shape, v[2:2 + v[0]], grads.pop(op.inputs[0])),
                 bool(flags & 4))
        elif name == "RESHAPE_BACKWARD":
            give(op.outputs[0], grads.pop(op.inputs[0]), bool(flags & 4))
        else:
            raise ValueError(f"no reference for {name}")
    return loss, bytes(out)
