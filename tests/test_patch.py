"""Patch-based inference: bit-identical to layer-by-layer execution (and so to TFLite
Micro) for every valid split and grid of randomized models, odd sizes, residual ADDs,
and the example models, with tiles that recompute halos and with streamed row bands that
compute each halo once; memory plans checked by the independent checker."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.engine.host import HostEngine
from tinyadapt.errors import EngineError, PlanError
from tests.support.arena_check import check_blob
from tests.support.paths import REPO
from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder

N_RANDOM_MODELS = 150
GRIDS = (2, 3, 5)
STREAM_STRIPS = (1, 3)  # with band counts 2, 3 and one band per output row


def sampled(plan) -> bool:
    if not plan.stream:
        return plan.grid in GRIDS
    out_h = plan.tiles[plan.grid - 1][1]  # the first strip's last band ends at the bottom
    return plan.strips in STREAM_STRIPS and (plan.grid in (2, 3) or plan.grid == out_h)


class Net:
    """A random CNN prefix (conv / depthwise / pool / residual blocks) and a non-spatial tail."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.b = ModelBuilder()
        h, w = int(rng.integers(5, 26)), int(rng.integers(5, 26))
        c = int(rng.integers(1, 5))
        self.x_shape = (1, h, w, c)
        self.x = self.b.input(self.x_shape, np.int8, scale=0.05, zero_point=int(rng.integers(-20, 20)))
        self.t, self.shape = self.x, self.x_shape

    def act(self, shape, relu=False):
        scale = float(self.rng.uniform(0.02, 0.2))
        zp = -128 if relu else int(self.rng.integers(-30, 30))
        return self.b.tensor(shape, np.int8, scale=scale, zero_point=zp)

    def out_hw(self, k, s, d, padding):
        _, h, w, _ = self.shape
        eff = d * (k - 1) + 1
        if padding == "SAME":
            return -(-h // s), -(-w // s)
        return (h - eff) // s + 1, (w - eff) // s + 1

    def conv(self, cout, k, s=1, d=1, padding="SAME", depthwise=False, dm=1, relu=True):
        oh, ow = self.out_hw(k, s, d, padding)
        if oh < 1 or ow < 1:
            return False
        cin = self.shape[3]
        cout = cin * dm if depthwise else cout
        fshape = (1, k, k, cout) if depthwise else (cout, k, k, cin)
        wq = self.rng.integers(-127, 128, size=fshape, dtype=np.int8)
        ws = self.rng.uniform(0.002, 0.02, size=cout).astype(np.float32)
        xs = self.b.quant(self.t)[0]
        bias = self.b.const(self.rng.integers(-2000, 2000, size=cout).astype(np.int32),
                            scale=(xs * ws).astype(np.float32), zero_point=np.zeros(cout, np.int64))
        wt = self.b.const(wq, scale=ws, zero_point=np.zeros(cout, np.int64),
                          quantized_dimension=3 if depthwise else 0)
        y = self.act((1, oh, ow, cout), relu)
        opts = dict(padding=padding, stride_h=s, stride_w=s, dilation_h=d, dilation_w=d,
                    activation="RELU" if relu else "NONE")
        if depthwise:
            self.b.op("DEPTHWISE_CONV_2D", [self.t, wt, bias], [y], depth_multiplier=dm, **opts)
        else:
            self.b.op("CONV_2D", [self.t, wt, bias], [y], **opts)
        self.t, self.shape = y, (1, oh, ow, cout)
        return True

    def pool(self, kind, k, s, padding):
        oh, ow = self.out_hw(k, s, 1, padding)
        if oh < 1 or ow < 1:
            return False
        sc, zp = self.b.quant(self.t)
        y = self.b.tensor((1, oh, ow, self.shape[3]), np.int8, scale=sc, zero_point=zp)
        self.b.op(kind, [self.t], [y], padding=padding, stride_h=s, stride_w=s, filter_h=k, filter_w=k)
        self.t, self.shape = y, (1, oh, ow, self.shape[3])
        return True

    def residual(self):
        skip, skip_shape = self.t, self.shape
        c = skip_shape[3]
        self.conv(c * 2, 1)
        self.conv(0, 3, depthwise=True)
        self.conv(c, 1, relu=False)
        y = self.act(skip_shape)
        self.b.op("ADD", [skip, self.t], [y])
        self.t, self.shape = y, skip_shape

    def tail(self, classes=5):
        sc, zp = self.b.quant(self.t)
        m = self.b.tensor((1, self.shape[3]), np.int8, scale=sc, zero_point=zp)
        self.b.op("MEAN", [self.t], [m], axis=[1, 2], keep_dims=False)
        wt = self.b.const(self.rng.integers(-127, 128, size=(classes, self.shape[3]), dtype=np.int8), scale=0.01,
                          zero_point=0)
        y = self.act((1, classes))
        self.b.op("FULLY_CONNECTED", [m, wt, -1], [y])
        self.b.output(y)
        return self.b.build()


def random_model(seed: int) -> tuple[bytes, tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    net = Net(rng)
    for _ in range(int(rng.integers(2, 7))):
        choice = rng.integers(0, 5)
        if choice == 0:
            net.conv(int(rng.integers(1, 9)), int(rng.choice([1, 3, 5])), s=int(rng.choice([1, 2])),
                     padding=str(rng.choice(["SAME", "VALID"])))
        elif choice == 1:
            d = int(rng.choice([1, 2]))
            net.conv(0, 3, s=1 if d == 2 else int(rng.choice([1, 2])), d=d, depthwise=True,
                     dm=int(rng.choice([1, 2])), padding=str(rng.choice(["SAME", "VALID"])))
        elif choice == 2:
            net.pool(str(rng.choice(["MAX_POOL_2D", "AVERAGE_POOL_2D"])), int(rng.choice([2, 3])),
                     int(rng.choice([1, 2])), str(rng.choice(["SAME", "VALID"])))
        else:
            net.residual()
    return net.tail(), net.x_shape


def layer_by_layer(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    return HostEngine(convert(model_bytes).blob).invoke([x])[0]


@pytest.mark.parametrize("seed", range(N_RANDOM_MODELS))
def test_random_models_every_split_and_grid_bit_exact(seed):
    model_bytes, x_shape = random_model(seed)
    rng = np.random.default_rng(1000 + seed)
    x = rng.integers(-128, 128, size=x_shape, dtype=np.int8)
    base = convert(model_bytes)
    expected = HostEngine(base.blob).invoke([x])[0]
    assert np.array_equal(expected, run_tflm(model_bytes, [x])[0].reshape(expected.shape))
    cases = 0
    for spec in sorted({p.spec for p in base.patch_candidates() if sampled(p)}, key=str):
        patched = convert(model_bytes, patch=spec)
        check_blob(patched.blob)
        got = HostEngine(patched.blob).invoke([x])[0]
        assert np.array_equal(got, expected), f"seed {seed}: {spec}"
        if patched.patch.stream and patched.patch.strips == 1:  # no row computed twice
            assert patched.patch.macs <= patched.patch.base_macs, spec
        cases += 1
    test_random_models_every_split_and_grid_bit_exact.cases = getattr(
        test_random_models_every_split_and_grid_bit_exact, "cases", 0) + cases


def test_mobilenet_patch_plans_bit_exact_and_smaller():
    path = REPO / "models/mobilenetv2/mobilenetv2_96.tflite"
    x = np.load(REPO / "models/mobilenetv2/mobilenetv2_96_sample.npz")["x"][:2]
    base = convert(path)
    expected = [HostEngine(base.blob).invoke([xi[None]])[0] for xi in x]
    plans = base.patch_candidates()
    assert min(p.peak_sram_bytes for p in plans) < base.peak_sram_bytes / 3
    picks = [min(plans, key=lambda p: p.peak_sram_bytes)] + sorted(plans, key=lambda p: p.mac_overhead)[:2]
    for p in picks:
        patched = convert(path, patch=p.spec)
        assert patched.peak_sram_bytes == p.peak_sram_bytes <= base.peak_sram_bytes
        check_blob(patched.blob)
        engine = HostEngine(patched.blob)
        for xi, e in zip(x, expected):
            assert np.array_equal(engine.invoke([xi[None]])[0], e), p.spec


def test_budget_picks_the_cheapest_that_fits_or_says_what_would():
    path = REPO / "models/mobilenetv2/mobilenetv2_96.tflite"
    base = convert(path)
    plans = base.patch_candidates()
    budget = sorted(p.peak_sram_bytes for p in plans)[len(plans) // 3]
    chosen = convert(path, budget=budget)
    assert chosen.peak_sram_bytes <= budget
    assert chosen.patch.cost.instructions == min(p.cost.instructions for p in plans if p.peak_sram_bytes <= budget)
    assert convert(path, budget=base.peak_sram_bytes).patch is None  # fits layer by layer: no patching
    smallest = min(p.peak_sram_bytes for p in plans)
    with pytest.raises(PlanError, match=f"smallest achievable peak is {smallest} bytes"):
        convert(path, budget=smallest - 1)


@pytest.mark.parametrize("stride,padding", [(1, "SAME"), (2, "SAME"), (2, "VALID"), (1, "VALID")])
def test_depthwise_runs_in_place_and_stays_bit_exact(stride, padding):
    """Depthwise (multiplier 1) writes its output over its input, one channel plane at a time.
    (96 channels: the fast kernel's padded copies are part of the in-place scratch, and in
    place must save more than that.)"""
    rng = np.random.default_rng(stride * 10 + len(padding))
    net = Net(rng)
    net.conv(96, 1)
    net.conv(0, 3, s=stride, padding=padding, depthwise=True)
    net.conv(8, 1)
    model_bytes = net.tail()
    model = convert(model_bytes)
    dw = next(i for i, op in enumerate(model.ops) if op.source.kind == "DEPTHWISE_CONV_2D")
    assert dw in model.plan.in_place and model.plan.scratch_sizes[dw] > 0
    check_blob(model.blob)
    x = rng.integers(-128, 128, size=net.x_shape, dtype=np.int8)
    ours = HostEngine(model.blob).invoke([x])[0]
    assert np.array_equal(ours, run_tflm(model_bytes, [x])[0].reshape(ours.shape))


# --------------------------------------------------------------------------- streamed halos
MBV2 = REPO / "models/mobilenetv2/mobilenetv2_96.tflite"


def test_stream_computes_each_halo_once_and_weighs_buffers_against_recompute():
    """Full-width bands compute every MAC once; strips trade recomputed columns for smaller
    buffers; both bit-exact, with arenas the independent checker accepts."""
    x = np.load(REPO / "models/mobilenetv2/mobilenetv2_96_sample.npz")["x"][:2]
    base = convert(MBV2)
    expected = [HostEngine(base.blob).invoke([xi[None]])[0] for xi in x]
    tiles = convert(MBV2, patch=(6, 8))
    rows = convert(MBV2, patch=(6, 24, "stream", 1))
    strips = convert(MBV2, patch=(6, 24, "stream", 3))
    assert rows.patch.macs == rows.patch.base_macs < tiles.patch.macs
    assert rows.patch.macs < strips.patch.macs < tiles.patch.macs
    assert strips.peak_sram_bytes < rows.peak_sram_bytes
    assert max(rows.patch.stream_capacities) > 0  # halo rows kept, not recomputed
    for m in (rows, strips):
        check_blob(m.blob)
        engine = HostEngine(m.blob)
        for xi, e in zip(x, expected):
            assert np.array_equal(engine.invoke([xi[None]])[0], e), m.patch.spec


def test_budget_picks_the_cheapest_estimated_plan_that_fits():
    base = convert(MBV2)
    plans = base.patch_candidates()
    budget = 40_000
    chosen = convert(MBV2, budget=budget)
    fitting = [p for p in plans if p.peak_sram_bytes <= budget]
    assert chosen.peak_sram_bytes <= budget and chosen.patch.stream
    assert chosen.patch.cost.instructions == min(p.cost.instructions for p in fitting)
    # Cheaper than the least-MAC-overhead tile plan that fits, by the estimate.
    best_tiles = min((p for p in fitting if not p.stream), key=lambda p: p.mac_overhead)
    assert chosen.patch.cost.instructions < best_tiles.cost.instructions


def _patch_section(blob: bytes) -> tuple[int, int, int, int, int]:
    """(absolute offset of ta_patch_header_t, n_tiles, n_regions, mode, absolute offset of the regions)."""
    data_off, _, patch_off = struct.unpack_from("<III", blob, 44)  # header: data_offset, data_size, patch_offset
    head = data_off + patch_off
    _, n_tiles, n_regions, mode, _, r_off = struct.unpack_from("<HHHHII", blob, head)
    return head, n_tiles, n_regions, mode, data_off + r_off


def test_loader_refuses_stream_plans_that_go_backwards_or_overflow_a_stream_buffer():
    blob = convert(MBV2, patch=(6, 12, "stream", 2)).blob
    head, n_tiles, n_regions, mode, regions = _patch_section(blob)
    assert mode == bf.PATCH_MODE_STREAM
    streams = regions + 8 * n_tiles * n_regions + 4  # after the regions: u32 bands, then the buffers
    kept = max(range(n_regions), key=lambda r: struct.unpack_from("<II", blob, streams + 8 * r)[1])
    cap = struct.unpack_from("<I", blob, streams + 8 * kept + 4)[0]
    assert cap > 0

    def rejected(fmt: str, at: int, *values) -> bool:
        b = bytearray(blob)
        struct.pack_into(fmt, b, at, *values)
        struct.pack_into("<I", b, 12, zlib.crc32(bytes(b[bf.CRC_START:])) & 0xFFFFFFFF)
        with pytest.raises(EngineError) as info:
            HostEngine(bytes(b))
        return "TA_ERR_CORRUPT" in str(info.value)

    assert rejected("<hh", regions + 8 * (n_regions + kept), 0, 1)  # band 2's rows end above band 1's
    assert rejected("<I", streams + 8 * kept + 4, cap - 1)          # kept rows overflow the stream buffer
    assert rejected("<I", streams - 4, n_tiles + 1)                 # bands per strip do not divide the tiles
    assert rejected("<H", head + 6, 7)                              # an unknown mode


EXPORTS = REPO / "models" / "exports"


@pytest.mark.parametrize("name", ["mnv2_035_128", "mnv3s_min_96", "torch_mix_64"])
def test_streamed_plans_on_converter_exports_bit_exact(name):
    """TFLiteConverter exports (folded PADs, HARD_SWISH, squeeze-and-excite, a PyTorch-layout
    input): streamed plans at a shallow and a deep split, one strip and two, equal layer by layer."""
    path = EXPORTS / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout (models/exports, from the patch-exports work)")
    base = convert(path)
    x = np.random.default_rng(7).integers(-128, 128, size=base.input_tensors()[0].shape, dtype=np.int8)
    expected = HostEngine(base.blob).invoke([x])[0]
    streams = [p for p in base.patch_candidates() if p.stream and p.strips in (1, 2)]
    splits = sorted({p.stage.n_ops for p in streams})
    picks = [p for p in streams if p.stage.n_ops in (splits[len(splits) // 4], splits[-1])]
    for strips in (1, 2):
        for split in (splits[len(splits) // 4], splits[-1]):
            plan = max((p for p in picks if p.strips == strips and p.stage.n_ops == split), key=lambda p: p.grid)
            m = convert(path, patch=plan.spec)
            check_blob(m.blob)
            assert np.array_equal(HostEngine(m.blob).invoke([x])[0], expected), (name, plan.spec)


def test_stream_buffers_keep_the_steady_state_halo_at_the_bottom():
    """Near the bottom an early band's receptive field already reaches the last rows, so later
    bands read nothing of the early tensors. They keep only what a later reader needs, not
    their whole last region: the person_detect-class export at 12 bands x 2 strips keeps one
    row of conv_pw_1 (dw_2's 3x3 stride-2 halo), where it kept four, and is bit-exact."""
    path = EXPORTS / "person_mnv1_025_96.tflite"
    base = convert(path)
    m = convert(path, patch=(8, 12, "stream", 2))
    plan = m.patch
    pw1 = next(i for i, t in enumerate(plan.region_tensors) if m.tensors[t].name.endswith("conv_pw_1/Conv2D"))
    width = max(r[pw1][3] - r[pw1][2] for r in plan.regions)
    assert plan.stream_capacities[pw1] == 1 * width * 16
    assert max(w[pw1][1] for w in plan.work) == 1
    # Bands that read nothing of a tensor compute nothing of it either: MACs are unchanged.
    assert plan.macs < plan.base_macs * 1.05
    check_blob(m.blob)
    x = np.random.default_rng(8).integers(-128, 128, size=base.input_tensors()[0].shape, dtype=np.int8)
    assert np.array_equal(HostEngine(m.blob).invoke([x])[0], HostEngine(base.blob).invoke([x])[0])


def test_short_first_band_holds_what_a_later_band_does():
    """The first band reads its whole receptive field at once; with even bands it holds the most
    rows of every tensor. A first band of one output row, then bands of two, holds no more rows
    of the widest stage tensor (conv_pw_1, 48x48x16) than a later band, so its region buffer
    shrinks, and the plan stays bit-exact."""
    path = EXPORTS / "person_mnv1_025_96.tflite"
    base = convert(path)
    even = convert(path, patch=(8, 6, "stream", 2)).patch
    short = convert(path, patch=(8, 7, "stream", 2, 1))
    plan = short.patch
    assert plan.spec == (8, 7, "stream", 2, 1) and [t[:2] for t in plan.tiles[:3]] == [(0, 1), (1, 3), (3, 5)]
    pw1 = next(i for i, t in enumerate(plan.region_tensors) if base.tensors[t].name.endswith("conv_pw_1/Conv2D"))
    rows = [r[pw1][1] - r[pw1][0] for r in plan.regions]
    assert rows[0] <= max(rows[1:]) and plan.capacities[pw1] < even.capacities[pw1]
    check_blob(short.blob)
    x = np.random.default_rng(9).integers(-128, 128, size=base.input_tensors()[0].shape, dtype=np.int8)
    assert np.array_equal(HostEngine(short.blob).invoke([x])[0], HostEngine(base.blob).invoke([x])[0])
    with pytest.raises(PlanError, match="first band of 12 rows"):
        convert(path, patch=(8, 7, "stream", 2, 12))


def test_widening_pointwise_conv_writes_over_its_input_region():
    """In a stream plan conv_pw_1 (1x1, 8 -> 16 channels) reads exactly the rows it computes, so
    its input region may sit inside its output region, past the row the output keeps from the
    band before: ta_op_conv2d.c writes the first pixels in order and the rest from the last one
    down, never over an input it has not read. The person_detect-class export then fits
    issue 13's 22,118 bytes with the frame in SRAM (the planner picks such a plan), bit-exact."""
    path = EXPORTS / "person_mnv1_025_96.tflite"
    base = convert(path)
    m = convert(path, budget=22_118)
    plan = m.patch
    assert plan is not None and m.peak_sram_bytes <= 22_118
    staged = plan.problem[1]
    wide = [i for i in sorted(plan.memory.in_place) if i < plan.stage.n_ops and staged[i].inplace_offset]
    assert wide, "no widening pointwise conv runs in place"
    i = wide[0]
    src, dst = (plan.problem[4][base.ops[i].inputs[0]], plan.problem[4][base.ops[i].outputs[0]])
    offsets = plan.memory.tensor_offsets
    assert offsets[dst] < offsets[src] < offsets[dst] + plan.problem[0][dst].nbytes
    assert offsets[src] - offsets[dst] == staged[i].inplace_offset
    check_blob(m.blob)
    rng = np.random.default_rng(10)
    for _ in range(3):
        x = rng.integers(-128, 128, size=base.input_tensors()[0].shape, dtype=np.int8)
        assert np.array_equal(HostEngine(m.blob).invoke([x])[0], HostEngine(base.blob).invoke([x])[0])
    # Every plan of a sample with an in-place pointwise conv of the stage is bit-exact too (input
    # region at the output's start, or some rows in; in-order and backward chunks).
    x = rng.integers(-128, 128, size=base.input_tensors()[0].shape, dtype=np.int8)
    expected = HostEngine(base.blob).invoke([x])[0]
    for spec in [(8, 4), (8, 12, "stream", 2), (8, 5, "stream", 1, 1), (6, 4, "stream", 3)]:
        p = convert(path, patch=spec)
        check_blob(p.blob)
        assert np.array_equal(HostEngine(p.blob).invoke([x])[0], expected), spec
