"""ADD, SUB, MUL, QUANTIZE (float32 -> int8), REQUANTIZE (QUANTIZE int8 or uint8 -> int8) and
DEQUANTIZE: bit-exact with TFLite Micro and tflite-runtime (BUILTIN_REF).

Seeded randomized sweeps (each case's seed and parameters are in its id and in every
failure message): ADD/SUB/MUL over random NumPy broadcasts of ranks 0..6 with different
input ranks, constant operands, the same tensor on both sides, log-uniform scales over
several decades (MUL including effective scales > 1, i.e. left shifts), zero points and
fused activations; QUANTIZE over rounding ties and near-ties, saturating values, -0.0;
REQUANTIZE over scale ratios from 1e-3 to 1e3 (and equal scales), from int8 and from uint8
(every uint8 value, zero points 0..255, the converter's uint8 input among them); DEQUANTIZE over scales
spanning the float32 range (subnormal and overflowing results). Then "precision
witnesses": hand-found cases where computing a multiplier or quotient at another precision
(float vs double) changes the output, which pin the precision TFLM uses. Then the in-place
contract (kernel called through ctypes with its output over an input, and the planner
putting an ADD's output over a dying input), converter error paths and engine-side
rejection of corrupt parameters.

tflite-runtime 2.14 aborts the process on broadcasting SUB above 5-D and MUL above 4-D
(TFLM handles up to 8-D): those cases are checked against TFLM only. tflite-runtime also
computes MUL's multiplier from a float32 product of the scales (TFLM: double), which can
put it one LSB off TFLM; where it is, its output must equal an emulation of exactly that.
"""

from __future__ import annotations

import ctypes
import struct
import zlib

import numpy as np
import pytest

from tests.support import ModelBuilder
from tests.support.check import assert_bit_exact, describe_mismatch
from tests.support.reference import run_tflite, run_tflm
from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.quant import activation_range, quantize_multiplier
from tinyadapt.engine.host import HostEngine, library
from tinyadapt.errors import EngineError, UnsupportedModelError

N_CASES = {"ADD": 600, "SUB": 600, "MUL": 600, "QUANTIZE": 300, "REQUANTIZE": 300, "DEQUANTIZE": 300,
           "REQUANTIZE_U8": 100}
SEEDS = {"ADD": 100_000, "SUB": 200_000, "MUL": 300_000, "QUANTIZE": 400_000, "REQUANTIZE": 500_000,
         "DEQUANTIZE": 600_000, "REQUANTIZE_U8": 700_000}
ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]
TFLITE_MAX_RANK = {"ADD": 6, "SUB": 5, "MUL": 4}  # beyond: tflite-runtime aborts on broadcasting
F32 = np.float32


# ------------------------------------------------------------- fixed-point emulation
# gemmlowp / TFLite integer arithmetic in numpy int64, used to prove that the precision
# witnesses below really discriminate (the engine itself is checked against TFLM).
def _srdhm(a, b):
    ab = np.asarray(a, np.int64) * np.int64(b)
    s = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    return np.where(s >= 0, s // (1 << 31), -((-s) // (1 << 31)))


def _rdbpot(x, e):
    mask = (1 << e) - 1
    return (x >> e) + ((x & mask) > ((mask >> 1) + (x < 0)))


def _mbqm(x, m, s):
    x = ((np.asarray(x, np.int64) << max(s, 0)) + 2**31) % 2**32 - 2**31
    return _rdbpot(_srdhm(x, m), max(-s, 0))


def _emulate_add_sub(mults, zps, act, x, y, sign):
    (m1, s1), (m2, s2), (mo, so) = mults
    za, zb, zo = zps
    a = _mbqm((np.asarray(x, np.int64) - za) * (1 << 20), m1, s1)
    b = _mbqm((np.asarray(y, np.int64) - zb) * (1 << 20), m2, s2)
    return np.clip(_mbqm(a + sign * b, mo, so) + zo, *act)


def _round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


# ------------------------------------------------------------------ binary op cases
def _log_uniform(rng, lo_exp: float, hi_exp: float) -> float:
    return float(F32(10.0 ** rng.uniform(lo_exp, hi_exp)))


def _broadcast_shapes(rng) -> tuple[list[int], list[int], list[int]]:
    """Output shape of rank 0..6 and two input shapes (possibly of lower rank) that
    broadcast to exactly it."""
    rank = int(rng.integers(0, 7))
    out = [int(d) for d in rng.choice([1, 2, 3, 4, 5, 7], rank)]
    # Keep cases small: at most ~2000 elements.
    while int(np.prod(out)) > 2000:
        out[int(np.argmax(out))] = 1
    ra = rank if rng.random() < 0.5 else int(rng.integers(0, rank + 1))
    rb = rank if ra < rank else int(rng.integers(0, rank + 1))
    a, b = [], []
    for i in range(rank):  # i-th dimension from the innermost
        d = out[rank - 1 - i]
        has_a, has_b = i < ra, i < rb
        full_a, full_b = has_a, has_b
        if d > 1 and has_a and has_b:
            who = int(rng.integers(0, 3))  # 0: a only, 1: b only, 2: both
            full_a, full_b = who != 1, who != 0
        if has_a:
            a.insert(0, d if full_a else 1)
        if has_b:
            b.insert(0, d if full_b else 1)
    return (a, b, out) if rng.random() < 0.5 else (b, a, out)


def binary_case(kind: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    a_shape, b_shape, out_shape = _broadcast_shapes(rng)
    if not a_shape:  # the reference runners feed no rank-0 inputs: a scalar goes second, as a constant
        a_shape, b_shape = b_shape, a_shape
    if not a_shape:
        a_shape, out_shape = [1], [1] * max(1, len(out_shape))
    c = dict(kind=kind, seed=seed, a_shape=a_shape, b_shape=b_shape, out_shape=out_shape)
    c["same_tensor"] = a_shape == b_shape and rng.random() < 0.08
    c["b_const"] = not c["same_tensor"] and (not b_shape or rng.random() < 0.2)
    c["a_scale"] = _log_uniform(rng, -4, 1)
    c["b_scale"] = c["a_scale"] if c["same_tensor"] else _log_uniform(rng, -4, 1)
    if kind == "MUL":
        # Effective scale a*b/out from 1e-5 to 10 (positive shifts); sometimes down to 1e-12,
        # below 2^-31 where QuantizeMultiplier flushes it to 0.
        hi = 12 if rng.random() < 0.05 else 5
        c["out_scale"] = float(F32(c["a_scale"] * c["b_scale"] * 10.0 ** rng.uniform(-1, hi)))
    else:
        c["out_scale"] = float(F32(max(c["a_scale"], c["b_scale"]) * 10.0 ** rng.uniform(-2, 2)))
    c["a_zp"], c["b_zp"], c["out_zp"] = (int(z) for z in rng.integers(-128, 128, 3))
    if c["same_tensor"]:
        c["b_zp"] = c["a_zp"]
    c["activation"] = str(rng.choice(ACTIVATIONS))
    c["a_data"] = rng.integers(-128, 128, a_shape, dtype=np.int8)
    c["b_data"] = rng.integers(-128, 128, b_shape, dtype=np.int8)
    return c


def binary_label(c: dict) -> str:
    return (f"{c['kind']} seed={c['seed']} {c['a_shape']} {c['b_shape']} -> {c['out_shape']} "
            f"scales=({c['a_scale']:.4g}, {c['b_scale']:.4g}, {c['out_scale']:.4g}) "
            f"zps=({c['a_zp']}, {c['b_zp']}, {c['out_zp']}) act={c['activation']} "
            f"const_b={c['b_const']} same={c['same_tensor']}")


def build_binary(c: dict) -> tuple[bytes, list[np.ndarray]]:
    b = ModelBuilder()
    x = b.input(c["a_shape"], scale=c["a_scale"], zero_point=c["a_zp"])
    inputs = [c["a_data"]]
    if c["same_tensor"]:
        w = x
    elif c["b_const"]:
        w = b.const(np.asarray(c["b_data"], np.int8), scale=c["b_scale"], zero_point=c["b_zp"])
    else:
        w = b.input(c["b_shape"], scale=c["b_scale"], zero_point=c["b_zp"])
        inputs.append(c["b_data"])
    y = b.tensor(c["out_shape"], scale=c["out_scale"], zero_point=c["out_zp"])
    b.op(c["kind"], [x, w], [y], activation=c["activation"])
    b.output(y)
    return b.build(), inputs


def _emulate_tflite_mul(c: dict) -> np.ndarray:
    """MUL as tflite-runtime 2.14 computes it: its Prepare multiplies the float32 scales in
    float32 (TFLM: in double), which changes the multiplier's low bits and, rarely, an output."""
    s1, s2, so = F32(c["a_scale"]), F32(c["b_scale"]), F32(c["out_scale"])
    mult, shift = quantize_multiplier(float(s1 * s2 / so))
    a = np.asarray(c["a_data"], np.int64) - c["a_zp"]
    b = a if c["same_tensor"] else np.asarray(c["b_data"], np.int64) - c["b_zp"]
    lo, hi = activation_range(c["activation"], so, c["out_zp"])
    return np.clip(_mbqm(a * b, mult, shift) + c["out_zp"], lo, hi)


def _check_binary(kind: str, i: int) -> None:
    c = binary_case(kind, SEEDS[kind] + i)
    model, inputs = build_binary(c)
    label = binary_label(c)
    ours = assert_bit_exact(model, inputs, label, check_tflite=False)[0]
    if len(c["out_shape"]) > TFLITE_MAX_RANK[kind]:
        return
    tflite = run_tflite(model, inputs)[0]
    if np.array_equal(ours.reshape(tflite.shape), tflite):
        return
    # The one known disagreement between the references (see _emulate_tflite_mul).
    explained = kind == "MUL" and np.array_equal(_emulate_tflite_mul(c).reshape(tflite.shape), tflite)
    assert explained, f"{label} [tflite-runtime]\n" + describe_mismatch(ours, tflite, "values")


@pytest.mark.parametrize("i", range(N_CASES["ADD"]))
def test_add_random(i):
    _check_binary("ADD", i)


@pytest.mark.parametrize("i", range(N_CASES["SUB"]))
def test_sub_random(i):
    _check_binary("SUB", i)


@pytest.mark.parametrize("i", range(N_CASES["MUL"]))
def test_mul_random(i):
    _check_binary("MUL", i)


def test_binary_sweep_covers_what_it_claims():
    """The generator really produces every rank, lower-rank and rank-0 operands,
    broadcasting on both sides, constants, aliasing, left shifts and flushed multipliers."""
    seen = {"ranks": set(), "lower_rank": 0, "bcast_a": 0, "bcast_b": 0, "const": 0, "same": 0, "scalar": 0}
    for kind in ("ADD", "SUB", "MUL"):
        for i in range(N_CASES[kind]):
            c = binary_case(kind, SEEDS[kind] + i)
            seen["ranks"].add(len(c["out_shape"]))
            seen["lower_rank"] += min(len(c["a_shape"]), len(c["b_shape"])) < len(c["out_shape"])
            seen["bcast_a"] += int(np.prod(c["a_shape"])) < int(np.prod(c["out_shape"]))
            seen["bcast_b"] += int(np.prod(c["b_shape"])) < int(np.prod(c["out_shape"]))
            seen["const"] += c["b_const"]
            seen["same"] += c["same_tensor"]
            seen["scalar"] += not c["b_shape"]
    assert seen["ranks"] == set(range(1, 7)), seen  # rank-0 outputs become [1]: inputs are never rank 0
    assert min(seen["lower_rank"], seen["bcast_a"], seen["bcast_b"], seen["const"], seen["scalar"]) >= 10, seen
    assert seen["same"] >= 3, seen
    shifts = [quantize_multiplier(c["a_scale"] * c["b_scale"] / c["out_scale"])
              for c in (binary_case("MUL", SEEDS["MUL"] + i) for i in range(N_CASES["MUL"]))]
    assert sum(s > 0 for _, s in shifts) >= 10 and sum(s < -17 or m == 0 for m, s in shifts) >= 3


def _exhaustive_binary(kind, scales, zps, activation="NONE"):
    """All 65536 (x, y) int8 pairs through one broadcasting op."""
    b = ModelBuilder()
    x = b.input([256, 1], scale=scales[0], zero_point=zps[0])
    w = b.input([1, 256], scale=scales[1], zero_point=zps[1])
    y = b.tensor([256, 256], scale=scales[2], zero_point=zps[2])
    b.op(kind, [x, w], [y], activation=activation)
    b.output(y)
    allv = np.arange(-128, 128, dtype=np.int8)
    return b.build(), [allv.reshape(256, 1), allv.reshape(1, 256)]


@pytest.mark.parametrize("kind,scales,zps,activation", [
    ("ADD", (0.05, 0.05, 0.1), (0, 0, 0), "NONE"),
    ("ADD", (0.5, 1e-4, 0.01), (-128, 127, 5), "RELU6"),
    ("SUB", (0.02, 0.3, 0.02), (127, -128, -1), "RELU"),
    ("SUB", (3.0, 3.0, 6.0), (-7, 9, 0), "RELU_N1_TO_1"),
    ("MUL", (0.1, 0.1, 1e-4), (3, -3, 0), "NONE"),      # effective scale 100: left shift 7
    ("MUL", (1e-3, 2e-3, 0.5), (-128, -128, 127), "RELU"),
    ("MUL", (1e-6, 1e-6, 1e3), (11, 12, 13), "NONE"),   # effective scale < 2^-31: multiplier 0
])
def test_binary_exhaustive(kind, scales, zps, activation):
    model, inputs = _exhaustive_binary(kind, scales, zps, activation)
    assert_bit_exact(model, inputs, f"{kind} exhaustive scales={scales} zps={zps} {activation}")


# ------------------------------------------------------------------ precision witnesses
def _add_sub_mults(scales, float32_quotients: bool):
    sa, sb, so = (F32(s) for s in scales)
    if float32_quotients:
        tm = F32(2) * max(sa, sb)
        reals = [float(sa / tm), float(sb / tm), float(tm / (F32(1 << 20) * so))]
    else:
        tm = 2 * max(float(sa), float(sb))
        reals = [float(sa) / tm, float(sb) / tm, tm / ((1 << 20) * float(so))]
    return [quantize_multiplier(r) for r in reals]


@pytest.mark.parametrize("kind,scales,zps", [
    # Found by search: float32 quotients in Prepare (as some tflite-micro source revisions
    # have for SUB) would change one output here; TFLM's interpreter computes in double.
    ("SUB", (2.2650017738342285, 0.033537156879901886, 2.021885633468628), (-69, 110, 8)),
    ("ADD", (0.015141152776777744, 0.006617080885916948, 0.009936035610735416), (-8, -87, 35)),
])
def test_add_sub_multipliers_are_double_like_tflm(kind, scales, zps):
    model, inputs = _exhaustive_binary(kind, scales, zps)
    tflm = run_tflm(model, inputs)[0]
    sign = 1 if kind == "ADD" else -1
    x, y = (v.astype(np.int64) for v in inputs)
    as_double = _emulate_add_sub(_add_sub_mults(scales, False), zps, (-128, 127), x, y, sign)
    as_float = _emulate_add_sub(_add_sub_mults(scales, True), zps, (-128, 127), x, y, sign)
    assert np.array_equal(as_double, tflm) and not np.array_equal(as_float, tflm)
    assert_bit_exact(model, inputs, f"{kind} precision witness")


@pytest.mark.parametrize("scales,zps", [
    ((0.018329618498682976, 0.3584621250629425, 1.21387779712677), (49, -105, -42)),
    ((0.015333002433180809, 0.0011660325108096004, 0.002200487069785595), (-22, -15, 111)),
])
def test_mul_multiplier_is_double_like_tflm(scales, zps):
    """A float32 product of the input scales would change outputs here - and tflite-runtime
    2.14 computes it so: TFLM and tflite-runtime disagree, and we match TFLM."""
    model, inputs = _exhaustive_binary("MUL", scales, zps)
    tflm = run_tflm(model, inputs)[0]
    tflite = run_tflite(model, inputs)[0]
    s1, s2, so = (F32(s) for s in scales)
    prod = (inputs[0].astype(np.int64) - zps[0]) * (inputs[1].astype(np.int64) - zps[1])
    as_double = np.clip(_mbqm(prod, *quantize_multiplier(float(s1) * float(s2) / float(so))) + zps[2], -128, 127)
    as_float = np.clip(_mbqm(prod, *quantize_multiplier(float(s1 * s2 / so))) + zps[2], -128, 127)
    assert np.array_equal(as_double, tflm) and not np.array_equal(as_float, tflm)
    assert np.array_equal(as_float, tflite)
    assert_bit_exact(model, inputs, "MUL precision witness", check_tflite=False)


# -------------------------------------------------------------------- QUANTIZE
def quantize_case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 5))
    shape = [int(d) for d in rng.integers(1, 6, rank)]
    scale = F32(10.0 ** rng.uniform(-4, 1.5))
    zp = int(rng.integers(-128, 128))
    n = int(np.prod(shape))
    k = rng.integers(-200, 200, n).astype(np.float64)
    kinds = rng.integers(0, 6, n)
    x = np.empty(n, np.float32)
    typical = F32(rng.normal(0, 60, n)) * scale                                # mostly in range
    tie = F32((k + 0.5) * float(scale))                                         # rounding ties ...
    near = np.nextafter(tie, np.where(rng.random(n) < 0.5, np.inf, -np.inf).astype(np.float32))  # ... and next to them
    exact = F32(k) * scale                                                      # integers
    far = F32(rng.choice([-1, 1], n) * 10.0 ** rng.uniform(2.5, 9, n)) * scale  # saturating, |q| < 2^31
    special = np.array([0.0, -0.0, 1e-30, -1e-30], np.float32)[rng.integers(0, 4, n)]
    for j, src in enumerate((typical, tie, near, exact, far, special)):
        x[kinds == j] = src[kinds == j]
    return dict(seed=seed, shape=shape, scale=float(scale), zp=zp, x=x.reshape(shape))


def build_quantize(shape, scale, zp) -> bytes:
    b = ModelBuilder()
    x = b.input(shape, dtype=np.float32)
    y = b.tensor(shape, scale=scale, zero_point=zp)
    b.op("QUANTIZE", [x], [y])
    b.output(y)
    return b.build()


@pytest.mark.parametrize("i", range(N_CASES["QUANTIZE"]))
def test_quantize_random(i):
    c = quantize_case(SEEDS["QUANTIZE"] + i)
    assert_bit_exact(build_quantize(c["shape"], c["scale"], c["zp"]), [c["x"]],
                     f"QUANTIZE seed={c['seed']} shape={c['shape']} scale={c['scale']:.6g} zp={c['zp']}")


def test_quantize_divides_in_float32_like_tflm():
    """Values where x / scale rounds differently in float32 and in double: the engine
    matches TFLM's float32 division."""
    cases = [(-0.1419568508863449, 0.0022008814848959446), (-19.714685440063477, 0.21313174068927765),
             (-3.916506052017212, 0.08245275914669037), (-59.429100036621094, 0.8675781488418579)]
    for x, s in cases:
        x, s = F32(x), F32(s)
        assert _round_half_away(x / s) != _round_half_away(float(x) / float(s))
        assert_bit_exact(build_quantize([1], float(s), 0), [np.array([x], np.float32)], f"QUANTIZE x={x} scale={s}")


def test_quantize_out_of_int32_range_saturates():
    """|x / scale| >= 2^31, infinities and NaN are undefined behaviour in TFLM's float-to-int
    cast: x86 builds (the references here) give INT32_MIN + zero point, wrapping, i.e. -128
    for zero points >= 0 and 127 for negative ones whatever the input. tinyadapt defines
    them like an Arm FPU (TFLM on a Cortex-M): saturate, NaN -> zero point (ta_quantize.h)."""
    x = np.array([np.inf, -np.inf, np.nan, 3e38, -3e38, 2.2e9, -2.2e9, 0.0], np.float32)
    for zp in (-128, -5, 0, 77, 127):
        m = convert(build_quantize([x.size], 1.0, zp))
        got = HostEngine(m.blob).invoke([x])[0]
        assert got.tolist() == [127, -128, zp, 127, -128, 127, -128, zp], zp


# ------------------------------------------------------------------- REQUANTIZE
def requantize_case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    in_scale = F32(10.0 ** rng.uniform(-4, 1))
    r = rng.random()
    ratio = 1.0 if r < 0.1 else (10.0 ** rng.uniform(-12, -10) if r < 0.13 else 10.0 ** rng.uniform(-3, 3))
    out_scale = F32(float(in_scale) / ratio)
    zps = [int(z) for z in rng.integers(-128, 128, 2)]
    if rng.random() < 0.1:
        zps[1] = zps[0]
    # Every int8 value, in a random shape.
    shape = [[256], [16, 16], [2, 8, 16], [4, 4, 4, 4]][int(rng.integers(0, 4))]
    x = rng.permutation(np.arange(-128, 128)).astype(np.int8).reshape(shape)
    return dict(seed=seed, shape=shape, in_scale=float(in_scale), out_scale=float(out_scale),
                in_zp=zps[0], out_zp=zps[1], x=x)


def build_requantize(c) -> bytes:
    b = ModelBuilder()
    x = b.input(c["shape"], dtype=c["x"].dtype if "x" in c else np.int8, scale=c["in_scale"], zero_point=c["in_zp"])
    y = b.tensor(c["shape"], scale=c["out_scale"], zero_point=c["out_zp"])
    b.op("QUANTIZE", [x], [y])
    b.output(y)
    return b.build()


@pytest.mark.parametrize("i", range(N_CASES["REQUANTIZE"]))
def test_requantize_random(i):
    c = requantize_case(SEEDS["REQUANTIZE"] + i)
    assert_bit_exact(build_requantize(c), [c["x"]],
                     f"REQUANTIZE seed={c['seed']} scales=({c['in_scale']:.6g} -> {c['out_scale']:.6g}) "
                     f"zps=({c['in_zp']} -> {c['out_zp']})")


@pytest.mark.parametrize("in_scale,out_scale,in_zp,out_zp", [
    (0.019672002643346786, 0.025127263739705086, -82, -96),
    (0.0033326272387057543, 0.00249755522236228, -122, -106),
])
def test_requantize_multiplier_is_double_like_tflm(in_scale, out_scale, in_zp, out_zp):
    """A float32 quotient of the scales would change one output here."""
    c = dict(shape=[256], in_scale=in_scale, out_scale=out_scale, in_zp=in_zp, out_zp=out_zp,
             x=np.arange(-128, 128).astype(np.int8))
    model = build_requantize(c)
    tflm = run_tflm(model, [c["x"]])[0]
    q = c["x"].astype(np.int64) - in_zp
    as_double = np.clip(_mbqm(q, *quantize_multiplier(float(F32(in_scale)) / float(F32(out_scale)))) + out_zp,
                        -128, 127)
    as_float = np.clip(_mbqm(q, *quantize_multiplier(float(F32(in_scale) / F32(out_scale)))) + out_zp, -128, 127)
    assert np.array_equal(as_double, tflm) and not np.array_equal(as_float, tflm)
    assert_bit_exact(model, [c["x"]], "REQUANTIZE precision witness")


def requantize_u8_case(seed: int) -> dict:
    """QUANTIZE uint8 -> int8. One case in five is what TFLiteConverter's
    inference_input_type=tf.uint8 writes: equal scales, zero point + 128."""
    c = requantize_case(seed)
    rng = np.random.default_rng(seed + 1)
    if rng.random() < 0.2:
        c["out_scale"] = c["in_scale"]
        c["out_zp"] = int(rng.integers(-128, 128))
        c["in_zp"] = c["out_zp"] + 128
    else:
        c["in_zp"] = int(rng.integers(0, 256))
    c["x"] = rng.permutation(np.arange(256)).astype(np.uint8).reshape(c["shape"])
    return c


@pytest.mark.parametrize("i", range(N_CASES["REQUANTIZE_U8"]))
def test_requantize_from_uint8_random(i):
    c = requantize_u8_case(SEEDS["REQUANTIZE_U8"] + i)
    m = convert(build_requantize(c))
    assert [bf.OPCODE_NAMES[op.opcode] for op in m.ops] == ["REQUANTIZE"]
    assert m.input_tensors()[0].dtype == np.uint8
    assert_bit_exact(build_requantize(c), [c["x"]],
                     f"REQUANTIZE uint8 seed={c['seed']} scales=({c['in_scale']:.6g} -> {c['out_scale']:.6g}) "
                     f"zps=({c['in_zp']} -> {c['out_zp']})")


# ------------------------------------------------------------------- DEQUANTIZE
def dequantize_case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    # Scales over the whole positive float32 range, subnormals included.
    scale = F32(10.0 ** rng.uniform(-44, 38.5))
    if scale == 0:
        scale = F32(1e-45)
    zp = int(rng.integers(-128, 128))
    shape = [[256], [16, 16], [2, 128], [4, 4, 16]][int(rng.integers(0, 4))]
    x = rng.permutation(np.arange(-128, 128)).astype(np.int8).reshape(shape)
    return dict(seed=seed, shape=shape, scale=float(scale), zp=zp, x=x)


def build_dequantize(shape, scale, zp) -> bytes:
    b = ModelBuilder()
    x = b.input(shape, scale=scale, zero_point=zp)
    y = b.tensor(shape, dtype=np.float32)
    b.op("DEQUANTIZE", [x], [y])
    b.output(y)
    return b.build()


@pytest.mark.parametrize("i", range(N_CASES["DEQUANTIZE"]))
def test_dequantize_random(i):
    c = dequantize_case(SEEDS["DEQUANTIZE"] + i)
    outs = assert_bit_exact(build_dequantize(c["shape"], c["scale"], c["zp"]), [c["x"]],
                            f"DEQUANTIZE seed={c['seed']} scale={c['scale']:.6g} zp={c['zp']}")
    # Bitwise too (array_equal does not tell -0.0 from +0.0).
    with np.errstate(over="ignore"):
        ref = (F32(c["scale"]) * (c["x"].astype(np.float32) - F32(c["zp"]))).astype(np.float32)
    assert np.array_equal(outs[0].view(np.int32), ref.view(np.int32).reshape(outs[0].shape))


def test_dequantize_float32_multiply_equals_tflm_double():
    """TFLM computes float(double(scale) * (q - zp)); the engine computes scale * float(q - zp)
    in float32. They agree for every q - zp in [-255, 255] and every finite float32 scale:
    the double product is exact (24 + 8 significant bits), so the cast rounds it once,
    exactly like the float32 multiply. Checked here for 20000 scales drawn uniformly over
    the float32 bit patterns (subnormal to max) plus the extremes."""
    rng = np.random.default_rng(7)
    bits = rng.integers(1, 0x7F800000, 20000, dtype=np.int64).astype(np.uint32)
    scales = np.concatenate([bits.view(np.float32),
                             np.array([1.4e-45, 1.1754942e-38, 1.1754944e-38, 3.4028235e38, 1.0], np.float32)])
    n = np.arange(-255, 256)
    with np.errstate(over="ignore"):
        tflm = (scales[:, None].astype(np.float64) * n[None, :]).astype(np.float32)
        ours = scales[:, None] * n[None, :].astype(np.float32)
    assert np.array_equal(tflm.view(np.int32), ours.view(np.int32))


def test_quantize_dequantize_chain():
    """float32 -> int8 -> int8 (new scale) -> float32 in one model."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.input([3, 7], dtype=np.float32)
    q = b.tensor([3, 7], scale=0.05, zero_point=-3)
    r = b.tensor([3, 7], scale=0.11, zero_point=7)
    d = b.tensor([3, 7], dtype=np.float32)
    b.op("QUANTIZE", [x], [q])
    b.op("QUANTIZE", [q], [r])
    b.op("DEQUANTIZE", [r], [d])
    b.output(q, r, d)
    assert_bit_exact(b.build(), [rng.normal(0, 4, (3, 7)).astype(np.float32)], "QUANTIZE chain")


# ----------------------------------------------------------------------- in place
def _kernel_call(name: str, params: bytes, shapes, datas, out_shape, out_buf):
    lib = library()
    fn = getattr(lib, name)
    fn.restype = ctypes.c_int
    keep = []

    def dims(shape):
        arr = (ctypes.c_int32 * max(1, len(shape)))(*shape)
        keep.append(arr)
        return ctypes.c_int32(len(shape)), arr

    p = ctypes.create_string_buffer(params, len(params))
    args = [p]
    for shape, data in zip(shapes, datas):
        nd, dd = dims(shape)
        args += [nd, dd, ctypes.c_void_p(data.ctypes.data if data is not None else None)]
    nd, dd = dims(out_shape)
    args += [nd, dd, ctypes.c_void_p(out_buf.ctypes.data if out_buf is not None else None)]
    return fn(*args)


@pytest.mark.parametrize("kind", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("seed", range(40))
def test_kernel_output_may_overwrite_full_shape_input(kind, seed):
    """ta_<op>_s8 with its output buffer over the input that has the output's shape gives
    the same result as into a separate buffer (element k is read before it is written)."""
    c = binary_case(kind, 900_000 + seed)
    c["same_tensor"], c["b_const"] = False, False
    if not c["b_shape"]:
        c["b_shape"], c["b_data"] = [1], c["b_data"].reshape(1)
    model, inputs = build_binary(c)
    m = convert(model)
    params = m.ops[0].params
    a, b = (np.ascontiguousarray(v) for v in inputs)
    out = np.zeros(c["out_shape"], np.int8)
    fn = f"ta_{kind.lower()}_s8"
    assert _kernel_call(fn, params, [c["a_shape"], c["b_shape"]], [a, b], c["out_shape"], out) == 0
    expected = run_tflm(model, inputs)[0]
    assert np.array_equal(out.reshape(expected.shape), expected), binary_label(c)
    full = [k for k, v in enumerate((a, b)) if v.size == out.size]
    assert (m.ops[0].inplace_input is None) == (not full) and m.ops[0].inplace_input in full + [None]
    for k in full:
        bufs = [a.copy(), b.copy()]
        _kernel_call(fn, params, [c["a_shape"], c["b_shape"]], bufs, c["out_shape"], bufs[k])
        assert np.array_equal(bufs[k].reshape(expected.shape), expected), f"{binary_label(c)} output over input {k}"


def test_planner_puts_add_output_over_dying_input():
    """x -> MUL(x, c) -> t -> ADD(bias[8], t) -> y: t dies at the ADD, which may write y over
    it (inplace_input = 1, the full-shape operand, not the broadcast bias)."""
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    x = b.input([2, 3, 8], scale=0.05, zero_point=4)
    c = b.const(rng.integers(-128, 128, [3, 1], dtype=np.int8), scale=0.02, zero_point=-1)
    t = b.tensor([2, 3, 8], scale=0.01, zero_point=-7)
    bias = b.input([8], scale=0.03, zero_point=2)
    y = b.tensor([2, 3, 8], scale=0.04, zero_point=1)
    b.op("MUL", [x, c], [t])
    b.op("ADD", [bias, t], [y], activation="RELU")
    b.output(y)
    model = b.build()
    m = convert(model)
    assert m.ops[0].inplace_input == 0 and m.ops[1].inplace_input == 1
    t_blob, y_blob = m.ops[1].inputs[1], m.ops[1].outputs[0]
    assert m.tensors[t_blob].offset == m.tensors[y_blob].offset
    inputs = [rng.integers(-128, 128, [2, 3, 8], dtype=np.int8), rng.integers(-128, 128, [8], dtype=np.int8)]
    assert_bit_exact(model, inputs, "in-place ADD chain")


def test_requantize_in_place_and_constant_inputs_are_never_in_place():
    b = ModelBuilder()
    x = b.input([4, 4], scale=0.05, zero_point=4)
    k = b.const(np.arange(16, dtype=np.int8).reshape(4, 4), scale=0.02, zero_point=0)
    t = b.tensor([4, 4], scale=0.1, zero_point=0)
    y = b.tensor([4, 4], scale=0.1, zero_point=0)
    b.op("QUANTIZE", [x], [t])
    b.op("ADD", [k, t], [y])
    b.output(y)
    m = convert(b.build())
    assert m.ops[0].inplace_input == 0 and m.ops[1].inplace_input == 1


# ------------------------------------------------------------------- error paths
def _single_binary(kind="ADD", a_shape=(2, 3), b_shape=(2, 3), out_shape=(2, 3), dtype=np.int8,
                   scales=(0.1, 0.1, 0.1), per_channel=False, activation="NONE"):
    b = ModelBuilder()
    x = b.input(list(a_shape), dtype=dtype, scale=scales[0])
    ws = [scales[1], scales[1] * 2] if per_channel else scales[1]
    w = b.const(np.zeros(b_shape, dtype), scale=ws, quantized_dimension=len(b_shape) - 1) if per_channel \
        else b.input(list(b_shape), dtype=dtype, scale=scales[1])
    y = b.tensor(list(out_shape), dtype=dtype, scale=scales[2])
    b.op(kind, [x, w], [y], activation=activation)
    b.output(y)
    return b.build()


def _const_into(kind, const_array, out_dtype, scale=0.1, zp=0):
    """kind(constant) -> t, then ADD(input, t): the constant's dtype reaches the op."""
    b = ModelBuilder()
    k = b.const(const_array, scale=scale, zero_point=zp)
    t = b.tensor(const_array.shape, dtype=out_dtype, scale=None if out_dtype == np.float32 else 0.1)
    b.op(kind, [k], [t])
    x = b.input(list(const_array.shape), dtype=out_dtype, scale=None if out_dtype == np.float32 else 0.1)
    y = b.tensor(list(const_array.shape), dtype=out_dtype, scale=None if out_dtype == np.float32 else 0.1)
    b.op("ADD", [x, t], [y])
    b.output(y)
    return b.build()


def _quantize_to(out_dtype, per_channel=False):
    b = ModelBuilder()
    x = b.input([2, 2], dtype=np.float32)
    y = b.tensor([2, 2], dtype=out_dtype, scale=[0.1, 0.2] if per_channel else 0.1,
                 zero_point=[0, 0] if per_channel else 0, quantized_dimension=1)
    b.op("QUANTIZE", [x], [y])
    z = b.tensor([2, 2], dtype=np.float32)
    b.op("DEQUANTIZE", [y], [z])
    b.output(z)
    return b.build()


def _uint8_output():
    """uint8 is only a model input: the converter's uint8 output (QUANTIZE int8 -> uint8) is refused."""
    b = ModelBuilder()
    x = b.input([2, 2], scale=0.1)
    y = b.tensor([2, 2], dtype=np.uint8, scale=0.1, zero_point=128, name="y")
    b.op("QUANTIZE", [x], [y])
    b.output(y)
    return b.build()


ERROR_CASES = {
    "int16 add": (lambda: _single_binary(dtype=np.int16), "int16"),
    "rank 7": (lambda: _single_binary(a_shape=(1,) * 6 + (2,), b_shape=(2,), out_shape=(1,) * 6 + (2,)),
               "rank 7"),
    "no broadcast": (lambda: _single_binary(a_shape=(2, 3), b_shape=(4, 3), out_shape=(4, 3)), "do not broadcast"),
    "wrong output shape": (lambda: _single_binary(a_shape=(2, 3), b_shape=(3,), out_shape=(2, 4)),
                           "output shape [2, 4] is not [2, 3]"),
    "output scale too small": (lambda: _single_binary(scales=(1.0, 1.0, 1e-6)), "output multiplier"),
    "mul per-channel": (lambda: _single_binary("MUL", b_shape=(2, 2), a_shape=(2, 2), out_shape=(2, 2),
                                               per_channel=True), "per-channel"),
    "sub tanh": (lambda: _single_binary("SUB", activation=4), "fused activation TANH"),
    "mul huge multiplier": (lambda: _single_binary("MUL", scales=(1e10, 1e10, 1e-10)), "too large"),
    "quantize to int16": (lambda: _quantize_to(np.int16), "QUANTIZE to int16"),
    "quantize per-channel": (lambda: _quantize_to(np.int8, per_channel=True), "per-channel"),
    "quantize from uint8, zero point 256": (
        lambda: build_requantize(dict(shape=[2, 2], in_scale=0.1, out_scale=0.1, in_zp=256, out_zp=0,
                                      x=np.zeros([2, 2], np.uint8))), "zero point 256, outside uint8"),
    "uint8 output": (lambda: _uint8_output(), "model output tensor 1 'y' (uint8[2, 2]) is uint8"),
    "quantize from int16": (lambda: _const_into("QUANTIZE", np.zeros([2, 2], np.int16), np.int8),
                            "QUANTIZE from int16"),
    "dequantize from int16": (lambda: _const_into("DEQUANTIZE", np.zeros([2, 2], np.int16), np.float32),
                              "DEQUANTIZE from int16"),
    "dequantize from uint8": (lambda: _const_into("DEQUANTIZE", np.zeros([2, 2], np.uint8), np.float32),
                              "DEQUANTIZE from uint8"),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_converter_rejects(name):
    make, message = ERROR_CASES[name]
    with pytest.raises(UnsupportedModelError) as e:
        convert(make())
    text = str(e.value)
    assert message in text, text
    assert "\n" not in text


# ------------------------------------------------------------- corrupt parameters
def _patch_params(blob: bytes, params: bytes, field: int, value: int) -> bytes:
    data_offset = struct.unpack_from("<I", blob, 44)[0]  # ta_model_header_t.data_offset
    at = blob.find(params, data_offset)
    assert at > 0 and blob.find(params, at + 1) < 0
    out = bytearray(blob)
    struct.pack_into("<i", out, at + 4 * field, value)
    struct.pack_into("<I", out, 12, zlib.crc32(bytes(out[bf.CRC_START:])) & 0xFFFFFFFF)
    return bytes(out)


CORRUPT = [
    # (model, field index in the params struct, value)
    ("ADD", 0, 129), ("ADD", 2, 128), ("ADD", 3, 23), ("ADD", 3, -1), ("ADD", 5, 1), ("ADD", 7, -32),
    ("ADD", 8, -5), ("ADD", 9, 1), ("ADD", 10, -129), ("ADD", 11, 128),
    ("SUB", 3, 40), ("SUB", 9, 3),
    ("MUL", 1, -128), ("MUL", 3, -1), ("MUL", 4, 32), ("MUL", 4, -32), ("MUL", 6, -129),
    ("QUANTIZE", 0, 200), ("QUANTIZE", 1, 0x7FC00000), ("QUANTIZE", 1, 0), ("QUANTIZE", 1, -0x40800000),
    ("REQUANTIZE", 0, -129), ("REQUANTIZE", 3, 32), ("REQUANTIZE", 2, -7),
    ("REQUANTIZE_U8", 0, -1), ("REQUANTIZE_U8", 0, 256), ("REQUANTIZE_U8", 1, 128), ("REQUANTIZE_U8", 3, 32),
    ("DEQUANTIZE", 0, 128), ("DEQUANTIZE", 1, 0x7F800000),
]


def _model_for(kind: str) -> bytes:
    if kind in ("ADD", "SUB", "MUL"):
        return _single_binary(kind, a_shape=(2, 3), b_shape=(3,), out_shape=(2, 3), scales=(0.1, 0.2, 0.3))
    if kind == "QUANTIZE":
        return build_quantize([2, 3], 0.1, 3)
    if kind == "REQUANTIZE":
        return build_requantize(dict(shape=[2, 3], in_scale=0.1, out_scale=0.3, in_zp=1, out_zp=2))
    if kind == "REQUANTIZE_U8":
        return build_requantize(dict(shape=[2, 3], in_scale=0.1, out_scale=0.3, in_zp=200, out_zp=2,
                                     x=np.zeros([2, 3], np.uint8)))
    return build_dequantize([2, 3], 0.1, 3)


@pytest.mark.parametrize("kind,field,value", CORRUPT)
def test_engine_rejects_corrupt_params(kind, field, value):
    m = convert(_model_for(kind))
    HostEngine(m.blob)  # the unpatched blob loads
    with pytest.raises(EngineError, match="TA_ERR_CORRUPT"):
        HostEngine(_patch_params(m.blob, m.ops[0].params, field, value))


def test_kernels_reject_bad_arguments():
    lib = library()
    m = convert(_model_for("ADD"))
    a, b, out = np.zeros([2, 3], np.int8), np.zeros([3], np.int8), np.zeros([2, 3], np.int8)
    for fn in ("ta_add_s8", "ta_sub_s8", "ta_mul_s8"):
        params = convert(_model_for(fn[3:6].upper())).ops[0].params
        ok = _kernel_call(fn, params, [[2, 3], [3]], [a, b], [2, 3], out)
        assert ok == 0
        assert _kernel_call(fn, params, [[2, 3], [3]], [a, None], [2, 3], out) == -1
        assert _kernel_call(fn, params, [[2, 3], [3]], [a, b], [2, 3], None) == -1
        assert _kernel_call(fn, params, [[2, 3], [4]], [a, b], [2, 3], out) == -1      # no broadcast
        assert _kernel_call(fn, params, [[2, 3], [3]], [a, b], [1, 2, 3], out) == 0    # leading 1s are free
        assert _kernel_call(fn, params, [[2, 3], [3]], [a, b], [3], out) == -1         # output too small
        assert _kernel_call(fn, params, [[2, 3], [3]], [a, b], [1, 1, 1, 1, 1, 2, 3], out) == -1  # rank 7
    assert m.ops[0].params  # keep the ADD model alive for the loop above
    for fn, ctype in (("ta_quantize_f32_s8", np.float32), ("ta_dequantize_s8_f32", np.int8),
                      ("ta_requantize_s8", np.int8), ("ta_requantize_u8_s8", np.uint8)):
        f = getattr(lib, fn)
        f.restype = ctypes.c_int
        p = ctypes.create_string_buffer(16)
        buf = np.zeros(4, np.float32)
        src = np.zeros(4, ctype)
        assert f(p, ctypes.c_int32(4), ctypes.c_void_p(src.ctypes.data), ctypes.c_void_p(buf.ctypes.data)) == 0
        assert f(p, ctypes.c_int32(0), ctypes.c_void_p(src.ctypes.data), ctypes.c_void_p(buf.ctypes.data)) == -1
        assert f(None, ctypes.c_int32(4), ctypes.c_void_p(src.ctypes.data), ctypes.c_void_p(buf.ctypes.data)) == -1
        assert f(p, ctypes.c_int32(4), None, ctypes.c_void_p(buf.ctypes.data)) == -1
