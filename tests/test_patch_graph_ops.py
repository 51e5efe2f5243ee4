"""What converters put in the graph, for layer-by-layer and patch plans: explicit PADs (folded
into the conv/pool that reads them where exact, windowed in a stage where not), a leading
TRANSPOSE / QUANTIZE / RESHAPE on the model input, per-channel and scalar elementwise
constants, HARD_SWISH, LOGISTIC and channel concatenation inside a stage. Every model is
bit-exact against TFLite Micro layer by layer, and every split at several grids (tiles that
recompute halos, and streamed row bands) equals it."""

from __future__ import annotations

import numpy as np
import pytest

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.engine.host import HostEngine
from tinyadapt.plan.patch import find_stages
from tests.support.arena_check import check_blob
from tests.support.reference import run_tflm
from tests.test_patch import Net

GRIDS = (2, 3)
N_RANDOM = 30
OPNAME = {v: k for k, v in bf.OPCODES.items()}


class GraphNet(Net):
    """Net with the ops and idioms of exported graphs."""

    def __init__(self, rng, start: str = "nhwc"):
        super().__init__(rng)
        _, h, w, c = self.x_shape
        if start == "nchw":  # PyTorch layout: the graph starts with TRANSPOSE
            sc, zp = self.b.quant(self.x)
            self.b._tensors.pop()  # noqa: SLF001 (replace the NHWC input by an NCHW one)
            self.b._inputs.pop()  # noqa: SLF001
            self.x_shape = (1, c, h, w)
            self.x = self.b.input(self.x_shape, np.int8, scale=sc, zero_point=zp)
            self.t = self.b.tensor((1, h, w, c), np.int8, scale=sc, zero_point=zp)
            self.b.op("TRANSPOSE", [self.x], [self.t], perm=[0, 2, 3, 1])
        elif start == "float":  # float input, QUANTIZE at the edge
            q = self.t
            self.b._inputs.pop()  # noqa: SLF001
            self.x = self.b.input(self.x_shape, np.float32)
            self.b.op("QUANTIZE", [self.x], [q])
            self.t = q
        elif start == "flat":  # a flattened frame, RESHAPE to NHWC
            sc, zp = self.b.quant(self.x)
            self.b._tensors.pop()  # noqa: SLF001
            self.b._inputs.pop()  # noqa: SLF001
            self.x_shape = (1, h * w * c)
            self.x = self.b.input(self.x_shape, np.int8, scale=sc, zero_point=zp)
            self.t = self.b.tensor((1, h, w, c), np.int8, scale=sc, zero_point=zp)
            self.b.op("RESHAPE", [self.x], [self.t], new_shape=[1, h, w, c])
        self.shape = (1, h, w, c)

    def pad(self, top, bottom, left, right, value: int | None = None, channels=(0, 0)):
        """PAD (pad value = zero point) or PADV2 with a constant value."""
        _, h, w, c = self.shape
        sc, zp = self.b.quant(self.t)
        shape = (1, h + top + bottom, w + left + right, c + sum(channels))
        y = self.b.tensor(shape, np.int8, scale=sc, zero_point=zp)
        pads = [[0, 0], [top, bottom], [left, right], list(channels)]
        if value is None:
            self.b.op("PAD", [self.t], [y], paddings=pads)
        else:
            self.b.op("PADV2", [self.t], [y], paddings=pads, constant_value=value)
        self.t, self.shape = y, shape

    def const_op(self, kind: str, broadcast: str):
        _, h, w, c = self.shape
        shape = {"channel": (c,), "channel4": (1, 1, 1, c), "scalar": (1,)}[broadcast]
        k = self.b.const(self.rng.integers(-100, 100, size=shape, dtype=np.int8), scale=0.03,
                         zero_point=int(self.rng.integers(-10, 10)))
        y = self.act(self.shape)
        self.b.op(kind, [self.t, k], [y])
        self.t = y

    def unary(self, kind: str):
        y = (self.b.tensor(self.shape, np.int8, scale=1 / 256, zero_point=-128) if kind == "LOGISTIC"
             else self.act(self.shape))
        self.b.op(kind, [self.t], [y])
        self.t = y

    def concat(self):
        src, shape = self.t, self.shape
        sc, zp = float(self.rng.uniform(0.05, 0.2)), int(self.rng.integers(-20, 20))
        parts = []
        for cout in (int(self.rng.integers(1, 5)), int(self.rng.integers(1, 5))):
            self.t, self.shape = src, shape
            self.conv(cout, int(self.rng.choice([1, 3])), relu=False)
            # TFLM's int8 concatenation needs the inputs' quantization equal to the output's.
            self.b._tensors[self.t].scale = sc  # noqa: SLF001
            self.b._tensors[self.t].zero_point = zp  # noqa: SLF001
            parts.append((self.t, self.shape[3]))
        y = self.b.tensor((1,) + shape[1:3] + (sum(c for _, c in parts),), np.int8, scale=sc, zero_point=zp)
        self.b.op("CONCATENATION", [t for t, _ in parts], [y], axis=3)
        self.t, self.shape = y, (1,) + shape[1:3] + (sum(c for _, c in parts),)


def _input(rng, net) -> np.ndarray:
    if net.start == "float":
        return rng.uniform(-3, 3, size=net.x_shape).astype(np.float32)
    return rng.integers(-128, 128, size=net.x_shape, dtype=np.int8)


def random_graph(seed: int):
    rng = np.random.default_rng(seed)
    start = str(rng.choice(["nhwc", "nchw", "float", "flat"]))
    net = GraphNet(rng, start)
    net.start = start
    for _ in range(int(rng.integers(2, 7))):
        choice = int(rng.integers(0, 8))
        if choice == 0:  # Keras' stride-2 idiom: PAD (0,1) then VALID
            net.pad(0, 1, 0, 1)
            net.conv(0, 3, s=2, padding="VALID", depthwise=True, dm=int(rng.choice([1, 2])))
        elif choice == 1:  # PyTorch's: symmetric PAD, VALID conv
            p = int(rng.choice([1, 2]))
            net.pad(p, p, p, p)
            net.conv(int(rng.integers(1, 6)), 2 * p + 1, s=int(rng.choice([1, 2])), padding="VALID")
        elif choice == 2:  # PAD before a pool; MAX folds when the value is -128, AVERAGE never
            kind = str(rng.choice(["MAX_POOL_2D", "AVERAGE_POOL_2D"]))
            net.pad(1, 1, 1, 1, value=int(rng.choice([-128, 5])) if rng.random() < 0.5 else None)
            net.pool(kind, 3, int(rng.choice([1, 2])), "VALID")
        elif choice == 3:
            net.const_op(str(rng.choice(["ADD", "MUL", "SUB"])), str(rng.choice(["channel", "channel4", "scalar"])))
        elif choice == 4:
            net.unary(str(rng.choice(["HARD_SWISH", "LOGISTIC"])))
        elif choice == 5:
            net.concat()
        elif choice == 6:  # a PAD that cannot fold: another pad value, or channels too
            net.pad(1, 0, 0, 1, value=7) if rng.random() < 0.5 else net.pad(1, 1, 1, 1, channels=(1, 2))
            net.conv(int(rng.integers(1, 5)), 3, padding="SAME")
        else:
            net.residual()
    return net.tail(), net


def _check_every_plan(model_bytes: bytes, x: np.ndarray, label: str) -> int:
    base = convert(model_bytes)
    check_blob(base.blob)
    expected = HostEngine(base.blob).invoke([x])[0]
    ref = run_tflm(model_bytes, [x])[0]
    assert np.array_equal(expected.reshape(ref.shape), ref), f"{label}: layer by layer differs from TFLM"
    cases = 0
    # Tiles on the grids, and streamed row bands (one strip, and two) in as many bands.
    for spec in sorted({p.spec for p in base.patch_candidates() if p.grid in GRIDS and p.strips <= 2}, key=str):
        patched = convert(model_bytes, patch=spec)
        check_blob(patched.blob)
        got = HostEngine(patched.blob).invoke([x])[0]
        assert np.array_equal(got, expected), f"{label}: {spec}"
        cases += 1
    return cases


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_exported_idioms_every_split_bit_exact(seed):
    model_bytes, net = random_graph(seed)
    x = _input(np.random.default_rng(500 + seed), net)
    _check_every_plan(model_bytes, x, f"seed {seed} ({net.start})")


def test_random_graphs_reach_into_stages():
    """The generator is not vacuous: stages start at TRANSPOSE / QUANTIZE / RESHAPE and hold
    windowed PADs, constant broadcasts, concatenations and activations."""
    seen = set()
    for seed in range(N_RANDOM):
        model_bytes, _ = random_graph(seed)
        m = convert(model_bytes)
        for stage in find_stages(m.tensors, m.ops, m.outputs):
            seen |= {OPNAME[op.opcode] for op in m.ops[:stage.n_ops]}
    assert {"TRANSPOSE", "QUANTIZE", "RESHAPE", "PAD", "CONCATENATION", "MUL", "HARD_SWISH", "LOGISTIC",
            "MAX_POOL_2D", "AVERAGE_POOL_2D", "DEPTHWISE_CONV_2D"} <= seen, seen


def _single(pad_kw: dict, reader: str, zp: int = 3, readers: int = 1):
    rng = np.random.default_rng(7)
    net = GraphNet(rng)
    net.conv(4, 1, relu=reader == "MAX_POOL_2D")  # after ReLU the zero point is -128
    if reader != "MAX_POOL_2D":
        net.b._tensors[net.t].zero_point = zp  # noqa: SLF001
    src = net.t
    net.pad(**pad_kw)
    padded = net.t
    for _ in range(readers):
        net.t, net.shape = padded, net.b.shape(padded)
        if reader == "CONV_2D":
            net.conv(3, 3, s=2, padding="VALID")
        elif reader == "DEPTHWISE_CONV_2D":
            net.conv(0, 3, s=2, padding="VALID", depthwise=True)
        else:
            net.pool(reader, 3, 2, "VALID")
    del src
    return net


@pytest.mark.parametrize("reader,pad_kw,folds", [
    ("DEPTHWISE_CONV_2D", dict(top=0, bottom=1, left=0, right=1), True),        # Keras stride 2
    ("CONV_2D", dict(top=1, bottom=1, left=1, right=1), True),                  # PyTorch
    ("CONV_2D", dict(top=2, bottom=0, left=1, right=2), True),                  # asymmetric
    ("CONV_2D", dict(top=3, bottom=0, left=0, right=0), False),                 # beyond the filter's reach
    ("DEPTHWISE_CONV_2D", dict(top=1, bottom=1, left=1, right=1, value=3), True),   # PADV2 = zero point
    ("DEPTHWISE_CONV_2D", dict(top=1, bottom=1, left=1, right=1, value=9), False),  # another value
    ("CONV_2D", dict(top=1, bottom=1, left=1, right=1, channels=(0, 2)), False),    # channel padding
    ("MAX_POOL_2D", dict(top=1, bottom=1, left=1, right=1), True),              # zero point -128
    ("MAX_POOL_2D", dict(top=1, bottom=1, left=1, right=1, value=0), False),    # 0 beats some inputs
    ("AVERAGE_POOL_2D", dict(top=1, bottom=1, left=1, right=1), False),         # TFLM averages valid taps
])
def test_pad_folds_exactly_where_exact(reader, pad_kw, folds):
    net = _single(pad_kw, reader)
    model_bytes = net.tail()
    m = convert(model_bytes)
    kinds = [OPNAME[op.opcode] for op in m.ops]
    assert ("PAD" not in kinds) == folds, kinds
    x = np.random.default_rng(1).integers(-128, 128, size=net.x_shape, dtype=np.int8)
    assert _check_every_plan(model_bytes, x, f"{reader} {pad_kw}") > 0


def test_pad_read_by_two_ops_stays_and_runs_windowed():
    net = _single(dict(top=1, bottom=1, left=1, right=1), "CONV_2D", readers=2)
    # Join the two readers so both feed the output.
    a = net.b._ops[-2][3][0]  # noqa: SLF001
    b = net.t
    y = net.act(net.shape)
    net.b.op("ADD", [a, b], [y])
    net.t = y
    model_bytes = net.tail()
    m = convert(model_bytes)
    assert "PAD" in [OPNAME[op.opcode] for op in m.ops]
    x = np.random.default_rng(2).integers(-128, 128, size=net.x_shape, dtype=np.int8)
    assert _check_every_plan(model_bytes, x, "shared PAD") > 0
    assert any(OPNAME[op.opcode] == "PAD" for s in find_stages(m.tensors, m.ops, m.outputs) for op in m.ops[:s.n_ops])


def test_folding_removes_the_padded_copy_from_the_peak():
    """Layer by layer, the padded copy next to its input set the peak; folded, it is gone."""
    rng = np.random.default_rng(3)
    net = GraphNet(rng)
    net.conv(24, 1)
    net.pad(1, 1, 1, 1)
    net.conv(0, 3, padding="VALID", depthwise=True)
    model_bytes = net.tail()
    m = convert(model_bytes)
    _, h, w, _ = net.x_shape
    assert "PAD" not in [OPNAME[op.opcode] for op in m.ops]
    assert m.peak_sram_bytes < net.x_shape[1] * net.x_shape[2] * 24 + (h + 2) * (w + 2) * 24
