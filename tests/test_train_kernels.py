"""Backward reference kernels (kernels/ref/ta_*_backward_f32.c) against the NumPy float
reference (host/tinyadapt/train/reference.py), called directly through ctypes.

Seeded random sweeps over shapes, strides, dilations, top/left padding (the bottom/right one
follows from the output size, so odd sizes with stride 2 pad asymmetrically), depth
multipliers, and the accumulate mode (a second consumer adding its share).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from tinyadapt.convert.ops.conv2d import out_size, pad_before
from tinyadapt.engine.host import library
from tinyadapt.train import reference as ref

F32P = ctypes.POINTER(ctypes.c_float)
I8P = ctypes.POINTER(ctypes.c_int8)


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class ConvParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top",
                                             "pad_left", "depth_multiplier", "input_offset", "output_offset",
                                             "act_min", "act_max")]


class Rows(ctypes.Structure):
    """ta_op_rows_t: output channels whose weights come from `rows` instead of the filter."""
    _fields_ = [("op", ctypes.c_uint16), ("n", ctypes.c_uint16), ("channels", ctypes.POINTER(ctypes.c_int32)),
                ("rows", I8P)]


def rows_case(rng, wq, depthwise):
    """A random kept subset of output channels with new int8 weights: (Rows, the arrays it
    points at, the filter as the kernels must see it)."""
    co = wq.shape[3] if depthwise else wq.shape[0]
    kept = np.sort(rng.choice(co, size=int(rng.integers(1, co + 1)), replace=False)).astype(np.int32)
    eff = wq.copy()
    new = rng.integers(-127, 128, size=(len(kept),) + (wq.shape[1:] if not depthwise else wq.shape[1:3]))
    for k, ch in enumerate(kept):
        if depthwise:
            eff[0, :, :, ch] = new[k]
        else:
            eff[ch] = new[k]
    rows = eff[..., kept] if depthwise else eff[kept]
    rows = np.ascontiguousarray(rows, dtype=np.int8)
    r = Rows(0, len(kept), kept.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), rows.ctypes.data_as(I8P))
    return r, (kept, rows), eff


class PoolParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("stride_h", "stride_w", "filter_h", "filter_w", "pad_h", "pad_w",
                                             "act_min", "act_max")]


def f32(a):
    a = np.array(a, dtype=np.float32)  # a copy: kernels write into it
    return a, a.ctypes.data_as(F32P)


def i8(a):
    a = np.ascontiguousarray(a, dtype=np.int8)
    return a, a.ctypes.data_as(I8P)


def close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * max(1.0, float(np.abs(want).max())), err_msg=what)


def conv_case(seed, depthwise):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3))
    h, w = (int(v) for v in rng.integers(1, 9, size=2))
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 3, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
    padding = rng.choice(["SAME", "VALID"])
    oh, ow = out_size(padding, h, kh, sh, dh), out_size(padding, w, kw, sw, dw)
    if oh < 1 or ow < 1:
        padding, oh, ow = "SAME", out_size("SAME", h, kh, sh, dh), out_size("SAME", w, kw, sw, dw)
    pt, pl = pad_before(h, kh, sh, dh, oh), pad_before(w, kw, sw, dw, ow)
    ci = int(rng.integers(1, 6))
    m = int(rng.integers(1, 3)) if depthwise else 1
    co = ci * m if depthwise else int(rng.integers(1, 7))
    wshape = (1, kh, kw, co) if depthwise else (co, kh, kw, ci)
    return dict(n=n, h=h, w=w, ci=ci, co=co, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pt=pt, pl=pl, oh=oh, ow=ow,
                m=m, wq=rng.integers(-127, 128, size=wshape).astype(np.int8),
                scale=rng.uniform(0.001, 0.05, size=co).astype(np.float32),
                xq=rng.integers(-128, 128, size=(n, h, w, ci)).astype(np.int8), xzp=int(rng.integers(-128, 128)),
                xs=np.float32(rng.uniform(0.005, 0.1)), dy=rng.normal(size=(n, oh, ow, co)).astype(np.float32),
                acc=rng.normal(size=(n, h, w, ci)).astype(np.float32), rng=rng)


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
@pytest.mark.parametrize("seed", range(40))
def test_conv_backward_matches_numpy(seed, depthwise):
    c = conv_case(seed * 2 + depthwise, depthwise)
    lib = library()
    p = ConvParams(c["sh"], c["sw"], c["dh"], c["dw"], c["pt"], c["pl"], c["m"], -c["xzp"], 0, -128, 127)
    din, dfl, dout = (Dims(c["n"], c["h"], c["w"], c["ci"]),
                      Dims(*((1, c["kh"], c["kw"], c["co"]) if depthwise else (c["co"], c["kh"], c["kw"], c["ci"]))),
                      Dims(c["n"], c["oh"], c["ow"], c["co"]))
    wf = c["wq"].astype(np.float64) * (c["scale"] if depthwise else c["scale"][:, None, None, None])
    xf = (c["xq"].astype(np.float64) - c["xzp"]) * float(c["xs"])
    dx_ref, dw_ref, _ = ref.conv2d_backward(xf, wf, c["dy"].astype(np.float64), (c["sh"], c["sw"]),
                                            (c["dh"], c["dw"]), (c["pt"], c["pl"]), depthwise)
    name = "ta_depthwise_conv2d_backward" if depthwise else "ta_conv2d_backward"
    wq, wp = i8(c["wq"])
    sc, scp = f32(c["scale"])
    dy, dyp = f32(c["dy"])
    for accumulate in (0, 1):
        dx, dxp = f32(c["acc"] if accumulate else np.full(c["acc"].shape, np.nan))
        getattr(lib, name + "_input_f32")(ctypes.byref(p), ctypes.byref(din), ctypes.byref(dfl), ctypes.byref(dout),
                                          dyp, wp, None, scp, accumulate, dxp)
        close(dx, dx_ref + (c["acc"] if accumulate else 0), f"dx, accumulate={accumulate}, {c}")
    # Kept channels' weights from RAM rows: the gradient is the one of the filter they make.
    rows, keep, eff = rows_case(c["rng"], c["wq"], depthwise)
    eff_f = eff.astype(np.float64) * (c["scale"] if depthwise else c["scale"][:, None, None, None])
    dx_rows, _, _ = ref.conv2d_backward(xf, eff_f, c["dy"].astype(np.float64), (c["sh"], c["sw"]),
                                        (c["dh"], c["dw"]), (c["pt"], c["pl"]), depthwise)
    dx, dxp = f32(np.full(c["acc"].shape, np.nan))
    getattr(lib, name + "_input_f32")(ctypes.byref(p), ctypes.byref(din), ctypes.byref(dfl), ctypes.byref(dout),
                                      dyp, wp, ctypes.byref(rows), scp, 0, dxp)
    close(dx, dx_rows, f"dx with rows {keep[0]}, {c}")
    xq, xp = i8(c["xq"])
    for ch in range(c["co"]):
        row = c["kh"] * c["kw"] * (1 if depthwise else c["ci"])
        g, gp = f32(np.full(row, np.nan))
        getattr(lib, name + "_filter_f32")(ctypes.byref(p), ctypes.byref(din), xp, c["xzp"], ctypes.c_float(c["xs"]),
                                           ctypes.byref(dfl), ctypes.byref(dout), dyp, ch, gp)
        want = dw_ref[0, :, :, ch].ravel() if depthwise else dw_ref[ch].ravel()
        close(g, want, f"dW channel {ch}")


@pytest.mark.parametrize("seed", range(10))
def test_fully_connected_backward_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    b, i, o = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 12))
    wq = rng.integers(-127, 128, size=(o, i)).astype(np.int8)
    f_off = int(rng.integers(-3, 4))
    scale = rng.uniform(0.001, 0.05, size=o).astype(np.float32)
    xq = rng.integers(-128, 128, size=(b, i)).astype(np.int8)
    xzp, xs = int(rng.integers(-128, 128)), np.float32(0.03)
    dy = rng.normal(size=(b, o)).astype(np.float32)
    wf = (wq.astype(np.float64) + f_off) * scale[:, None]
    xf = (xq.astype(np.float64) - xzp) * float(xs)
    dx_ref, dw_ref, _ = ref.fully_connected_backward(xf, wf, dy.astype(np.float64))
    lib = library()
    _, wp = i8(wq)
    _, sp = f32(scale)
    dy_, dyp = f32(dy)
    prior = rng.normal(size=(b, i)).astype(np.float32)
    for accumulate in (0, 1):
        dx, dxp = f32(prior if accumulate else np.full((b, i), np.nan))
        lib.ta_fully_connected_backward_input_f32(b, i, o, dyp, wp, None, f_off, sp, accumulate, dxp)
        close(dx, dx_ref + (prior if accumulate else 0), "FC dx")
    rows, keep, eff = rows_case(rng, wq, False)
    dx_rows, _, _ = ref.fully_connected_backward(xf, (eff.astype(np.float64) + f_off) * scale[:, None],
                                                 dy.astype(np.float64))
    dx, dxp = f32(np.full((b, i), np.nan))
    lib.ta_fully_connected_backward_input_f32(b, i, o, dyp, wp, ctypes.byref(rows), f_off, sp, 0, dxp)
    close(dx, dx_rows, f"FC dx with rows {keep[0]}")
    _, xp = i8(xq)
    for ch in range(o):
        g, gp = f32(np.full(i, np.nan))
        lib.ta_fully_connected_backward_filter_f32(b, i, o, xp, xzp, ctypes.c_float(xs), dyp, ch, gp)
        close(g, dw_ref[ch], f"FC dW channel {ch}")


@pytest.mark.parametrize("seed", range(12))
def test_avgpool_backward_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    n, h, w, c = 1, int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 5))
    fh, fw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    padding = rng.choice(["SAME", "VALID"])
    oh, ow = out_size(padding, h, fh, sh, 1), out_size(padding, w, fw, sw, 1)
    ph, pw = pad_before(h, fh, sh, 1, oh), pad_before(w, fw, sw, 1, ow)
    dy = rng.normal(size=(n, oh, ow, c)).astype(np.float32)
    want = ref.avgpool_backward((n, h, w, c), dy.astype(np.float64), (fh, fw), (sh, sw), (ph, pw))
    p = PoolParams(sh, sw, fh, fw, ph, pw, -128, 127)
    _, dyp = f32(dy)
    dx, dxp = f32(np.full((n, h, w, c), np.nan))
    library().ta_avgpool_backward_f32(ctypes.byref(p), ctypes.byref(Dims(n, h, w, c)), ctypes.byref(Dims(n, oh, ow, c)),
                                      dyp, 0, dxp)
    close(dx, want, "avgpool dx")


@pytest.mark.parametrize("seed", range(8))
def test_mean_and_pad_backward_match_numpy(seed):
    rng = np.random.default_rng(seed)
    nd = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 5, size=nd))
    axes = [i for i in range(nd) if rng.random() < 0.5] or [nd - 1]
    mask = sum(1 << a for a in axes)
    kept = [d for i, d in enumerate(shape) if i not in axes]
    dy = rng.normal(size=kept or [1]).astype(np.float32)
    dims = (ctypes.c_int32 * 6)(*shape)
    prior = rng.normal(size=shape).astype(np.float32)
    _, dyp = f32(dy)
    dx, dxp = f32(prior)
    library().ta_mean_backward_f32(nd, dims, mask, dyp, 1, dxp)
    close(dx, prior + ref.mean_backward(shape, axes, dy.astype(np.float64)), "mean dx")

    before = [int(v) for v in rng.integers(0, 3, size=nd)]
    after = [int(v) for v in rng.integers(0, 3, size=nd)]
    dyp_arr = rng.normal(size=[b + d + a for b, d, a in zip(before, shape, after)]).astype(np.float32)
    _, dyp = f32(dyp_arr)
    dx, dxp = f32(np.full(shape, np.nan))
    library().ta_pad_backward_f32(nd, dims, (ctypes.c_int32 * 6)(*before), (ctypes.c_int32 * 6)(*after), dyp, 0, dxp)
    close(dx, ref.pad_backward(shape, before, dyp_arr.astype(np.float64)), "pad dx")


def test_activation_mask_zeroes_saturated_outputs():
    y = np.array([-128, -127, 0, 5, 6, 127], dtype=np.int8)
    dy, dyp = f32(np.ones(6))
    _, yp = i8(y)
    library().ta_act_mask_f32(yp, 6, -128, 6, dyp)  # ReLU6 with zero point -128: bounds -128 and 6
    np.testing.assert_array_equal(dy, ref.act_mask(y, -128, 6))
    assert dy.tolist() == [0, 1, 1, 1, 0, 0]


@pytest.mark.parametrize("kind", [0, 1], ids=["cross_entropy", "entropy"])
@pytest.mark.parametrize("seed", range(10))
def test_softmax_loss_matches_numpy(seed, kind):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(2, 20))
    q = rng.integers(-128, 128, size=depth).astype(np.int8)
    zp, scale, beta = int(rng.integers(-128, 128)), float(rng.uniform(0.01, 0.3)), float(rng.uniform(0.5, 2))
    label = int(rng.integers(0, depth))
    want_loss, want_grad = ref.softmax_loss((q.astype(np.float64) - zp) * np.float32(scale), beta, kind, label)
    _, qp = i8(q)
    g, gp = f32(np.full(depth, np.nan))
    lib = library()
    lib.ta_softmax_loss_f32.restype = ctypes.c_float
    loss = lib.ta_softmax_loss_f32(depth, qp, zp, ctypes.c_float(scale), ctypes.c_float(beta), kind, label, gp)
    assert abs(loss - want_loss) <= 1e-5 * max(1.0, abs(want_loss))
    close(g, want_grad, "softmax loss grad")


def test_own_expf_logf_are_accurate():
    lib = library()
    lib.ta_expf.restype = ctypes.c_float
    lib.ta_expf.argtypes = [ctypes.c_float]
    lib.ta_logf.restype = ctypes.c_float
    lib.ta_logf.argtypes = [ctypes.c_float]
    for v in np.linspace(-86, 0, 997):
        assert abs(lib.ta_expf(v) - np.exp(np.float64(np.float32(v)))) <= 4e-7 * np.exp(v) + 1e-45
    assert lib.ta_expf(-100.0) == 0.0
    for v in np.geomspace(1e-30, 1e30, 997):
        v = float(np.float32(v))
        assert abs(lib.ta_logf(v) - np.log(v)) <= 2e-7 * max(1.0, abs(np.log(v)))


@pytest.mark.parametrize("seed", range(8))
def test_maxpool_backward_matches_numpy(seed):
    rng = np.random.default_rng(100 + seed)
    n, h, w, c = 1, int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 5))
    fh, fw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    padding = rng.choice(["SAME", "VALID"])
    oh, ow = out_size(padding, h, fh, sh, 1), out_size(padding, w, fw, sw, 1)
    ph, pw = pad_before(h, fh, sh, 1, oh), pad_before(w, fw, sw, 1, ow)
    x = rng.integers(-128, 128, size=(n, h, w, c)).astype(np.int8)
    x[0, 0, 0, 0] = x[0, 0, min(1, w - 1), 0]  # a tie: the first tap takes the gradient
    dy = rng.normal(size=(n, oh, ow, c)).astype(np.float32)
    want = ref.maxpool_backward(x, dy.astype(np.float64), (fh, fw), (sh, sw), (ph, pw), -100, 120)
    p = PoolParams(sh, sw, fh, fw, ph, pw, -100, 120)
    _, xp = i8(x)
    _, dyp = f32(dy)
    dx, dxp = f32(np.full((n, h, w, c), np.nan))
    library().ta_maxpool_backward_f32(ctypes.byref(p), ctypes.byref(Dims(n, h, w, c)), xp,
                                      ctypes.byref(Dims(n, oh, ow, c)), dyp, 0, dxp)
    close(dx, want, "maxpool dx")


@pytest.mark.parametrize("kind", ["conv", "depthwise", "fc"])
@pytest.mark.parametrize("seed", range(12))
def test_rows_kernels_recompute_kept_channels_bit_exactly(seed, kind):
    """ta_*_rows_s8 (the forward pass of a partly kept layer: the blob's filter, then the kept
    channels from RAM rows) gives the bytes the whole kernel gives on the filter they make."""
    depthwise = kind == "depthwise"
    c = conv_case(seed * 3 + 1, depthwise)
    rng = c["rng"]
    lib = library()
    co = c["co"]
    i32 = lambda a: np.ascontiguousarray(a, dtype=np.int32)  # noqa: E731
    bias = i32(rng.integers(-5000, 5000, size=co))
    mult = i32(rng.integers(1 << 30, (1 << 31) - 1, size=co))
    shift = i32(rng.integers(-10, 1, size=co))
    I32P = ctypes.POINTER(ctypes.c_int32)
    bp, mp, shp = (a.ctypes.data_as(I32P) for a in (bias, mult, shift))
    if kind == "fc":
        b, i = c["n"], c["ci"] * c["h"]
        wq = rng.integers(-127, 128, size=(co, i)).astype(np.int8)
        xq = rng.integers(-128, 128, size=(b, i)).astype(np.int8)

        class FcParams(ctypes.Structure):
            _fields_ = [(n, ctypes.c_int32) for n in ("input_offset", "filter_offset", "output_offset",
                                                     "act_min", "act_max")]
        p = FcParams(int(rng.integers(-127, 129)), 0, int(rng.integers(-128, 128)), -128, 127)
        rows, keep, eff = rows_case(rng, wq, False)
        want, got = np.zeros((b, co), np.int8), np.zeros((b, co), np.int8)
        lib.ta_fully_connected_s8(ctypes.byref(p), b, i, co, i8(xq)[1], i8(eff)[1], bp, mp, shp,
                                  want.ctypes.data_as(I8P))
        assert lib.ta_fully_connected_s8(ctypes.byref(p), b, i, co, i8(xq)[1], i8(wq)[1], bp, mp, shp,
                                         got.ctypes.data_as(I8P)) == 0
        assert lib.ta_fully_connected_rows_s8(ctypes.byref(p), b, i, co, i8(xq)[1], rows.n, rows.channels, rows.rows,
                                              bp, mp, shp, got.ctypes.data_as(I8P)) == 0
        np.testing.assert_array_equal(got, want)
        return
    p = ConvParams(c["sh"], c["sw"], c["dh"], c["dw"], c["pt"], c["pl"], c["m"], -c["xzp"],
                   int(rng.integers(-128, 128)), -128, 127)
    din, dfl, dout = (Dims(c["n"], c["h"], c["w"], c["ci"]),
                      Dims(*((1, c["kh"], c["kw"], co) if depthwise else (co, c["kh"], c["kw"], c["ci"]))),
                      Dims(c["n"], c["oh"], c["ow"], co))
    rows, keep, eff = rows_case(rng, c["wq"], depthwise)
    name = "ta_depthwise_conv2d" if depthwise else "ta_conv2d"
    want, got = (np.zeros((c["n"], c["oh"], c["ow"], co), np.int8) for _ in range(2))
    args = (ctypes.byref(p), ctypes.byref(din), i8(c["xq"])[1], ctypes.byref(dfl))
    assert getattr(lib, name + "_s8")(*args, i8(eff)[1], bp, mp, shp, ctypes.byref(dout), want.ctypes.data_as(I8P)) == 0
    assert getattr(lib, name + "_s8")(*args, i8(c["wq"])[1], bp, mp, shp, ctypes.byref(dout),
                                      got.ctypes.data_as(I8P)) == 0
    assert getattr(lib, name + "_rows_s8")(*args, rows.n, rows.channels, rows.rows, bp, mp, shp, ctypes.byref(dout),
                                           got.ctypes.data_as(I8P)) == 0
    np.testing.assert_array_equal(got, want)
