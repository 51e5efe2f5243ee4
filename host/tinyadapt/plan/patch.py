"""Patch-based inference planning (MCUNetV2): choose a split and a tile grid under a budget.

The first `n` ops (the *stage*) run tile by tile: for a p x p grid over the stage
output, each tile's region of every stage tensor is found by walking back through the
stage (a windowed op of kernel k, stride s, dilation d needs input rows
[y0*s - pad, (y1-1)*s - pad + d*(k-1) + 1), clipped at the real image border, where
padding applies), so the stage's full-size intermediate maps never exist. Neighbouring
tiles overlap (the halo): that recomputation is the MAC overhead. The rest of the graph
runs layer by layer.

Streamed plans (StreamNet) avoid that recomputation: the stage output is cut into a few
vertical strips walked top to bottom in row bands; each stage tensor keeps the rows the
next band reads in a small stream buffer, so within a strip no row is computed twice and
only the strips' column overlap is recomputed. More strips mean smaller buffers and more
recomputation: the planner weighs the two by trying both modes.

For every valid split, grid and mode this module computes the exact regions, the MACs,
the instructions estimated from the core's measured costs (plan/estimate.py), and a full
arena plan (the same planner as layer-by-layer, over region and stream buffers; solved
when first asked for), so the peak it reports is the arena the device gets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import BlobTensor, Lowered
from tinyadapt.convert.ops.conv2d import POINTWISE_CHUNK_BYTES
from tinyadapt.plan import scratch
from tinyadapt.plan.memory import MemoryPlan, plan_memory

WINDOW_OPS = {bf.OPCODES[k] for k in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "PAD")}
POINTWISE_OPS = {bf.OPCODES[k] for k in ("ADD", "SUB", "MUL", "LOGISTIC", "HARD_SWISH", "REQUANTIZE",
                                         "QUANTIZE", "DEQUANTIZE", "CONCATENATION")}
# Read their input in full (a stage input, e.g. the NCHW model input) and write each tile's
# output window through their index mapping: the rearranged full-size copy never exists.
GATHER_OPS = {bf.OPCODES[k] for k in ("TRANSPOSE", "RESHAPE")}
MAX_GRID = 8

Region = tuple[int, int, int, int]  # y0, y1, x0, x1 (end exclusive)


@dataclass(frozen=True)
class Window:
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pad_top: int
    pad_left: int

    def input_region(self, out: Region, in_h: int, in_w: int) -> Region:
        y0, y1, x0, x1 = out
        iy0 = y0 * self.sh - self.pad_top
        iy1 = (y1 - 1) * self.sh - self.pad_top + self.dh * (self.kh - 1) + 1
        ix0 = x0 * self.sw - self.pad_left
        ix1 = (x1 - 1) * self.sw - self.pad_left + self.dw * (self.kw - 1) + 1
        return _nonempty(max(iy0, 0), min(iy1, in_h), in_h) + _nonempty(max(ix0, 0), min(ix1, in_w), in_w)


def _nonempty(lo: int, hi: int, size: int) -> tuple[int, int]:
    """An output window that lies wholly in the padding (a tile of a PAD's border, or of a conv
    with a folded bottom PAD) reads no input; its region still needs a row: the nearest one,
    which no tap of that window reads."""
    if lo < hi:
        return lo, hi
    lo = min(lo, size - 1)
    return lo, lo + 1


def window_of(tensors: list[BlobTensor], op: Lowered) -> Window:
    """Geometry from the op's parameter struct (field order of ta_conv2d.h / ta_pool.h / ta_pad.h)."""
    if op.opcode == bf.OPCODES["PAD"]:
        before = struct.unpack_from("<14i", op.params)[2:8]
        return Window(1, 1, 1, 1, 1, 1, before[1], before[2])  # output pixel p is input pixel p - before
    f = struct.unpack_from("<6i", op.params)
    if op.opcode in (bf.OPCODES["CONV_2D"], bf.OPCODES["DEPTHWISE_CONV_2D"]):
        filt = tensors[op.inputs[1]].shape  # conv [O,KH,KW,I], depthwise [1,KH,KW,C]
        return Window(filt[1], filt[2], f[0], f[1], f[2], f[3], f[4], f[5])
    return Window(f[2], f[3], f[0], f[1], 1, 1, f[4], f[5])  # pools: stride, filter, pad


def _union(a: Region | None, b: Region) -> Region:
    if a is None:
        return b
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def _area(r: Region) -> int:
    return (r[1] - r[0]) * (r[3] - r[2])


@dataclass
class Stage:
    n_ops: int
    output: int                 # blob tensor index of the stage output
    inputs: list[int]           # activation tensors the stage reads from outside it
    internal: list[int]         # tensors that exist only inside the stage (become patch tensors)


def find_stages(tensors: list[BlobTensor], ops: list[Lowered], model_outputs: list[int]) -> list[Stage]:
    """Every split n for which ops [0, n) can run tile by tile with one tensor leaving the stage."""
    def act(t: int) -> bool:
        return t >= 0 and tensors[t].kind == bf.KIND_ACTIVATION

    def spatial(t: int) -> bool:
        s = tensors[t].shape
        return len(s) == 4 and s[0] == 1

    def per_row_const(t: int, out: int) -> bool:
        """A constant a [1, 1, width, C] row broadcasts against as the full map does."""
        n = int(np.prod(tensors[t].shape))
        return n == 1 or (n == tensors[t].shape[-1] == tensors[out].shape[3])

    stages = []
    produced: list[int] = []
    for n, op in enumerate(ops, start=1):
        outs_ok = len(op.outputs) == 1 and spatial(op.outputs[0])
        if op.opcode in GATHER_OPS:
            src = op.inputs[0]
            ok = outs_ok and act(src) and src not in produced
            if ok and op.opcode == bf.OPCODES["TRANSPOSE"]:
                perm = struct.unpack_from("<7i", op.params)
                ok = perm[0] == 4 and tensors[src].shape[perm[1]] == 1
        elif op.opcode == bf.OPCODES["PAD"]:
            rank, _, *pads = struct.unpack_from("<14i", op.params)
            ok = (outs_ok and rank == 4 and pads[0] == 0 and pads[6] == 0 and len(op.inputs) == 1
                  and act(op.inputs[0]) and spatial(op.inputs[0]))
        elif op.opcode in WINDOW_OPS:
            ok = outs_ok and act(op.inputs[0]) and spatial(op.inputs[0])
        elif op.opcode in POINTWISE_OPS:
            ins = [t for t in op.inputs if t >= 0]
            same_grid = all(spatial(t) and tensors[t].shape[:3] == tensors[op.outputs[0]].shape[:3]
                            for t in ins if act(t))
            if op.opcode == bf.OPCODES["CONCATENATION"]:
                ok = outs_ok and struct.unpack_from("<i", op.params)[0] == 3 and all(act(t) for t in ins) and same_grid
            else:
                ok = (outs_ok and same_grid and all(act(t) or per_row_const(t, op.outputs[0]) for t in ins)
                      and all(tensors[t].shape == tensors[op.outputs[0]].shape for t in ins if act(t)))
        else:
            ok = False
        if not ok:
            break
        produced.append(op.outputs[0])
        stage_ops = ops[:n]
        later_reads = {t for o in ops[n:] for t in o.inputs if t >= 0} | set(model_outputs)
        leaving = [t for t in produced if t in later_reads]
        outside = sorted({t for o in stage_ops for t in o.inputs if act(t) and t not in produced})
        if len(leaving) != 1 or tensors[leaving[0]].shape[1] < 2:
            continue
        internal = [t for t in produced if t != leaving[0]]
        stages.append(Stage(n_ops=n, output=leaving[0], inputs=outside, internal=internal))
    return stages


@dataclass
class PatchPlan:
    stage: Stage
    grid: int                            # tiles: a grid x grid grid; stream: grid row bands
    tiles: list[Region]                  # stage-output tiles, row-major
    region_tensors: list[int]            # blob tensor indices with a region per tile
    regions: list[list[Region]]          # [tile][region_tensors index]
    capacities: list[int]                # bytes of each region buffer
    macs: int                            # with patching
    base_macs: int                       # layer by layer
    external_inputs: list[int] = field(default_factory=list)  # model inputs kept outside the arena
    stream: bool = False                 # row bands that keep their halo rows (no recomputation)
    strips: int = 1                      # stream mode: vertical strips, each of `grid` bands
    stream_capacities: list[int] = field(default_factory=list)  # stream mode: bytes of each stream buffer
    work: list[list[tuple[int, int]]] = field(default_factory=list)  # [tile][region]: (rows computed, rows kept)
    first_rows: int | None = None        # stream mode: rows of the first band (band_rows), None: even bands
    cost: "PlanCost | None" = None       # estimated instructions (set by candidate_plans)
    # The arena planning problem (full tensors + region and stream buffers), solved on first use:
    # (plan_tensors, plan_ops, inputs, outputs, region_ids, stream_ids).
    problem: tuple | None = field(default=None, repr=False)
    _memory: MemoryPlan | None = field(default=None, repr=False)

    @property
    def memory(self) -> MemoryPlan:
        """The whole arena plan (full tensors + region and stream buffers)."""
        if self._memory is None:
            self._memory = plan_memory(*self.problem[:4])
        return self._memory

    @property
    def region_offsets(self) -> list[int]:
        """Arena offset of each region buffer."""
        return [self.memory.tensor_offsets[self.problem[4][t]] for t in self.region_tensors]

    @property
    def stream_offsets(self) -> list[int]:
        ids = self.problem[5]
        return [self.memory.tensor_offsets[ids[t]] if t in ids else 0 for t in self.region_tensors]

    @property
    def peak_sram_bytes(self) -> int:
        return self.memory.arena_size

    @property
    def mac_overhead(self) -> float:
        return self.macs / self.base_macs - 1.0 if self.base_macs else 0.0

    @property
    def mode(self) -> str:
        return "stream" if self.stream else "tiles"

    @property
    def spec(self) -> tuple:
        """What convert(patch=...) takes to rebuild this plan."""
        if not self.stream:
            return self.stage.n_ops, self.grid
        if self.first_rows is None:
            return self.stage.n_ops, self.grid, "stream", self.strips
        return self.stage.n_ops, self.grid, "stream", self.strips, self.first_rows

    @property
    def grid_label(self) -> str:
        if not self.stream:
            return f"{self.grid}x{self.grid} tiles"
        first = f" (first of {self.first_rows} rows)" if self.first_rows is not None else ""
        return f"{self.grid} row bands{first}" + (f" x {self.strips} strips" if self.strips > 1 else "") + ", streamed"

    @property
    def estimated_overhead(self) -> float | None:
        return self.cost.overhead if self.cost else None

    def summary(self) -> dict:
        """The JSON `patch` object of convert/run/plan: grid is [rows, columns] of tiles
        (p x p tiles, or bands x strips when streamed)."""
        return {"split_ops": self.stage.n_ops, "grid": [self.grid, self.strips if self.stream else self.grid],
                "mode": self.mode, "first_band_rows": self.first_rows, "mac_overhead": round(self.mac_overhead, 4),
                "estimated_instruction_overhead": round(self.cost.overhead, 4) if self.cost else None}


def _split(size: int, parts: int) -> list[tuple[int, int]]:
    bounds = [round(i * size / parts) for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


MAX_EXTERNAL_INPUTS = 4  # TA_MAX_EXTERNAL_INPUTS


def external_candidates(stage: Stage, ops: list[Lowered], inputs: list[int], outputs: list[int]) -> list[int]:
    """Model inputs that only the stage reads: they can stay outside the arena (a frame in
    external memory), since the stage copies each tile's window into a region buffer."""
    later = {t for op in ops[stage.n_ops:] for t in op.inputs}
    return [t for t in stage.inputs if t in inputs[:MAX_EXTERNAL_INPUTS] and t not in later and t not in outputs]


class _Reads:
    """What a stage op reads to compute a region of its output (its window, precomputed)."""

    def __init__(self, tensors, op: Lowered):
        self.out = op.outputs[0]
        self.macs = op.macs
        self.h, self.w = tensors[self.out].shape[1:3]
        self.gather = op.opcode in GATHER_OPS  # reads its input in full: no region
        self.window = window_of(tensors, op) if op.opcode in WINDOW_OPS else None
        if self.window is not None:
            self.srcs = [op.inputs[0]]
            self.src_hw = tuple(tensors[op.inputs[0]].shape[1:3])
        else:
            self.srcs = [t for t in op.inputs if t >= 0]

    def add(self, r: Region, need: dict[int, Region]) -> None:
        if self.gather:
            return
        if self.window is not None:
            src = self.srcs[0]
            need[src] = _union(need.get(src), self.window.input_region(r, *self.src_hw))
        else:
            for src in self.srcs:
                need[src] = _union(need.get(src), r)


def _tile_regions(tensors, ops, stage: Stage, tiles: list[Region], order: list[int]):
    """Recompute mode: every tile computes the whole region its output tile needs."""
    regions, work, macs = [], [], 0
    steps = [_Reads(tensors, op) for op in reversed(ops[:stage.n_ops])]
    for tile in tiles:
        need: dict[int, Region] = {stage.output: tile}
        for step in steps:
            if step.out not in need:
                continue  # a branch that does not reach this tile
            r = need[step.out]
            macs += step.macs * _area(r) // (step.h * step.w)
            step.add(r, need)
        regions.append([need.get(t, (0, 1, 0, 1)) for t in order])
        work.append([(need[t][1] - need[t][0], 0) if t in need else (0, 0) for t in order])
    return regions, work, macs


def band_rows(out_h: int, bands: int, first: int | None = None) -> list[tuple[int, int]] | None:
    """Stream mode's row bands of the stage output: `bands` even bands, or a first band of
    `first` rows and the rest even. The first band reads its whole receptive field at once
    (no earlier band kept rows for it), so with even bands it holds the most rows of every
    stage tensor and sets every region buffer's size; a shorter first band holds about what a
    later band does. None if the bands do not fit the rows."""
    if first is None:
        return _split(out_h, bands) if 1 <= bands <= out_h else None
    if bands < 2 or not 1 <= first <= out_h - (bands - 1):
        return None
    return [(0, first)] + [(first + a, first + b) for a, b in _split(out_h - first, bands - 1)]


def _stream_regions(tensors, ops, stage: Stage, tiles: list[Region], order: list[int], bands: int):
    """Stream mode (StreamNet): the stage output is cut into vertical strips, each walked top
    to bottom in `bands` row bands (tiles are strip-major). Within a strip a tensor's region
    keeps the strip's columns and is the rows [y0, y1) the band reads; its producer computes
    only the rows past the previous band's y1, the rows before come back from the tensor's
    stream buffer, so no row is computed twice (strips recompute their column overlap only).
    Returns None if some tensor's rows would have to go backwards."""
    regions, work, macs, unread = [], [], 0, []
    steps = [_Reads(tensors, op) for op in reversed(ops[:stage.n_ops])]
    for first in range(0, len(tiles), bands):
        strip = tiles[first:first + bands]
        full = (0, tensors[stage.output].shape[1], strip[0][2], strip[0][3])
        cols: dict[int, Region] = {stage.output: full}
        for step in steps:
            if step.out in cols:
                step.add(cols[step.out], cols)
        held: dict[int, Region] = {}
        for tile in strip:
            need: dict[int, Region] = {stage.output: tile}
            read = set()  # tensors some op of this band reads (or the stage output)
            for step in steps:
                out = step.out
                if out in need:
                    read.add(out)
                x0, x1 = cols[out][2:]
                prev = held.get(out, (0, 0, x0, x1))
                y0, y1 = (need[out][0], max(need[out][1], prev[1])) if out in need else prev[:2]
                if y0 < prev[0]:
                    return None
                c0 = max(prev[1], y0)
                need[out] = (y0, y1, x0, x1)
                if c0 < y1:
                    macs += step.macs * (y1 - c0) * (x1 - x0) // (step.h * step.w)
                    step.add((c0, y1, x0, x1), need)
            row, tile_work = [], []
            for t in order:
                x0, x1 = cols[t][2:]
                prev = held.get(t, (0, 0, x0, x1))
                y0, y1 = (need[t][0], max(need[t][1], prev[1])) if t in need else prev[:2]
                if y0 < prev[0] or y0 >= y1:
                    return None
                held[t] = (y0, y1, x0, x1)
                row.append(held[t])
                tile_work.append((y1 - max(prev[1], y0), max(0, min(prev[1], y1) - y0)))
            regions.append(row)
            work.append(tile_work)
            produced = {step.out for step in steps}
            unread.append([t not in read and (t in produced or t not in need) for t in order])
        _trim_unread(regions, work, unread, first, len(regions))
    return regions, work, macs


def _trim_unread(regions, work, unread, start: int, end: int) -> None:
    """Bands of a strip (tiles [start, end)) in which nobody reads a tensor (near the bottom,
    where an earlier band's receptive field already reached the last rows) would otherwise
    hold its whole previous region, and the band before would save all of it to the stream
    buffer: they keep only the rows the next band that reads it needs (one row, the least a
    region holds, if none does), so stream buffers stay at the steady-state halo."""
    for i in range(len(regions[start]) if end > start else 0):
        next_y0 = None
        for k in range(end - 1, start, -1):
            y0, y1, x0, x1 = regions[k][i]
            if unread[k][i]:
                y0 = max(regions[k - 1][i][0], min(y1 - 1, next_y0 if next_y0 is not None else y1 - 1))
                regions[k][i] = (y0, y1, x0, x1)
            next_y0 = y0
        for k in range(start + 1, end):
            prev, (y0, y1) = regions[k - 1][i], regions[k][i][:2]
            work[k][i] = (y1 - max(prev[1], y0), max(0, min(prev[1], y1) - y0))


def plan_patch(tensors: list[BlobTensor], ops: list[Lowered], inputs: list[int], outputs: list[int],
               stage: Stage, grid: int, external_input: bool = False, stream: bool = False,
               strips: int = 1, first: int | None = None) -> PatchPlan | None:
    """external_input: keep the model inputs only the stage reads out of the arena.
    stream: `strips` vertical strips of `grid` row bands each, keeping halo rows instead of
    recomputing them (None if the stage cannot stream); first: rows of the first band (the
    others even; band_rows), or None for even bands."""
    n = stage.n_ops
    external = external_candidates(stage, ops, inputs, outputs) if external_input else []
    _, out_h, out_w, _ = tensors[stage.output].shape
    if stream:
        rows = band_rows(out_h, grid, first)
        if rows is None:
            return None
        tiles = [(y0, y1, x0, x1) for x0, x1 in _split(out_w, strips) for y0, y1 in rows]
    else:
        tiles = [(y0, y1, x0, x1) for y0, y1 in _split(out_h, grid) for x0, x1 in _split(out_w, grid)]
    # Region tensors: every activation a stage op reads or writes by window; a gather op's
    # input is read in full and needs no region (unless another op reads it by window).
    order = sorted({t for op in ops[:n]
                    for t in (op.inputs[1:] + op.outputs if op.opcode in GATHER_OPS else op.inputs + op.outputs)
                    if t >= 0 and tensors[t].kind == bf.KIND_ACTIVATION})
    base_macs = sum(op.macs for op in ops)
    found = (_stream_regions(tensors, ops, stage, tiles, order, grid) if stream
             else _tile_regions(tensors, ops, stage, tiles, order))
    if found is None:
        return None
    regions, work, stage_macs = found
    macs = stage_macs + sum(op.macs for op in ops[n:])
    pixel = [tensors[t].shape[3] * np.dtype(tensors[t].dtype).itemsize for t in order]
    caps = [max(_area(regions[k][i]) for k in range(len(tiles))) * pixel[i] for i in range(len(order))]
    # Stream buffers: the rows each produced tensor keeps for the next tile (stage inputs are
    # copied in whole every tile instead).
    produced = {op.outputs[0] for op in ops[:n]}
    stream_caps = [max([work[k][i][1] * (regions[k][i][3] - regions[k][i][2]) * pixel[i]
                        for k in range(len(tiles))] + [0])
                   if stream and t in produced else 0 for i, t in enumerate(order)]

    # One planning problem: full tensors outside the stage, plus a region buffer per region tensor.
    plan_tensors = list(tensors)
    for t in external:  # not an activation: the arena planner leaves it out
        plan_tensors[t] = replace(tensors[t], kind=bf.KIND_EXTERNAL)
    region_ids = {}
    for t, cap in zip(order, caps):
        region_ids[t] = len(plan_tensors)
        plan_tensors.append(BlobTensor(name=f"{tensors[t].name}@region", dtype=np.dtype(np.int8), shape=(cap,),
                                       kind=bf.KIND_ACTIVATION))
    stream_ids = {}
    for t, cap in zip(order, stream_caps):
        if cap:
            stream_ids[t] = len(plan_tensors)
            plan_tensors.append(BlobTensor(name=f"{tensors[t].name}@stream", dtype=np.dtype(np.int8), shape=(cap,),
                                           kind=bf.KIND_ACTIVATION))
    plan_ops = []
    for i, op in enumerate(ops):
        if i >= n:
            plan_ops.append(op)
            continue
        ins = [region_ids.get(t, t) if t >= 0 and t in region_ids else t for t in op.inputs]
        outs = [region_ids[op.outputs[0]]]
        if i == 0:
            # The stage inputs and output exist in full for the whole stage; each tile starts
            # by copying the inputs' windows into their region buffers.
            ins += stage.inputs + [stage.output] + [region_ids[t] for t in stage.inputs if t in region_ids]
            outs = outs + list(stream_ids.values())  # stream buffers carry rows across tiles
        if i == n - 1:
            ins += stage.inputs + [stage.output] + list(stream_ids.values())
        if op.outputs[0] == stage.output:
            outs_extra = [stage.output]  # copied out of its region after the producer runs
            ins += outs_extra
        # A depthwise op may also overwrite its input region in place (one plane of scratch:
        # the largest input region's area). A pointwise conv may not: its input region can be
        # wider than its output's (a residual branch reads it too), and then pixel k of one is
        # not pixel k of the other. Streaming restores kept output rows before the op runs,
        # which would land on its input: in place only for an output that keeps none.
        in_place = (op.opcode == bf.OPCODES["DEPTHWISE_CONV_2D"] and op.inplace_input is not None
                    and op.inputs[op.inplace_input] in region_ids and op.outputs[0] not in stream_ids)
        # The kernels' scratch follows the regions they run on (ta_conv_eval_region): the most
        # any tile needs, and at least what the full op needs (the firmware's prepare checks that).
        work_bytes, plane = op.scratch_bytes, 0
        if op.opcode in _CONV_OPS:
            work_bytes = max(work_bytes, _region_scratch(tensors, op, order, regions, stream, grid, False))
            if in_place:
                plane = _region_scratch(tensors, op, order, regions, stream, grid, True)
        offset = _pointwise_offset(tensors, op, order, regions, stream, grid) if op.opcode in _CONV_OPS else None
        if offset is not None and not in_place:
            # A pointwise conv may write over its input's region when every tile's input region
            # is the output rows it computes, pixel for pixel; the input then sits `offset` bytes
            # into the output's region (past the kept rows), which ta_op_conv2d.c allows. It runs
            # chunk by chunk through scratch: taken only where it lowers the peak.
            out_c = tensors[op.outputs[0]].shape[3]
            pixels = max((r[order.index(op.outputs[0])][3] - r[order.index(op.outputs[0])][2]) *
                         (r[order.index(op.outputs[0])][1] - r[order.index(op.outputs[0])][0]) for r in regions)
            plan_ops.append(Lowered(opcode=op.opcode, inputs=ins, outputs=outs, params=op.params,
                                    scratch_bytes=work_bytes, inplace_input=0, inplace_optional=True,
                                    inplace_offset=offset,
                                    inplace_scratch=min(pixels, max(1, POINTWISE_CHUNK_BYTES // out_c)) * out_c))
            continue
        plan_ops.append(Lowered(opcode=op.opcode, inputs=ins, outputs=outs, params=op.params,
                                scratch_bytes=work_bytes,
                                inplace_input=op.inplace_input if in_place else None,
                                inplace_smaller=in_place, inplace_scratch=plane))
    return PatchPlan(stage=stage, grid=grid, tiles=tiles, region_tensors=order, regions=regions, capacities=caps,
                     macs=macs, base_macs=base_macs, external_inputs=external, stream=stream,
                     strips=strips if stream else 1, work=work, stream_capacities=stream_caps,
                     first_rows=first if stream else None,
                     problem=(plan_tensors, plan_ops, inputs, outputs, region_ids, stream_ids))


_CONV_OPS = {bf.OPCODES["CONV_2D"], bf.OPCODES["DEPTHWISE_CONV_2D"]}


def _pointwise_offset(tensors, op, order, regions, stream: bool, bands: int) -> int | None:
    """For a 1x1 stride-1 conv of the stage: if in every tile its input's region is exactly the
    output rows it computes (same rows and columns, so pixel k of one is pixel k of the other),
    the bytes its input region may start into its output region: past the rows the output
    keeps from the previous band (the most any tile keeps, aligned). Else None."""
    if op.opcode != bf.OPCODES["CONV_2D"] or not op.inputs or op.inputs[0] not in order:
        return None
    f = tensors[op.inputs[1]].shape
    g = scratch.ConvParams.unpack(op.params)
    if f[1] != 1 or f[2] != 1 or g.stride_h != 1 or g.stride_w != 1 or g.pad_top or g.pad_left:
        return None
    i, o = order.index(op.inputs[0]), order.index(op.outputs[0])
    row_pixel = tensors[op.outputs[0]].shape[3] * np.dtype(tensors[op.outputs[0]].dtype).itemsize
    skip = 0
    for k, tile_regions in enumerate(regions):
        oy0, oy1, ox0, ox1 = tile_regions[o]
        c0 = max(oy0, regions[k - 1][o][1]) if stream and k % bands != 0 else oy0
        if c0 >= oy1:
            continue  # computes nothing in this tile
        if tile_regions[i] != (c0, oy1, ox0, ox1):
            return None
        skip = max(skip, (c0 - oy0) * (ox1 - ox0) * row_pixel)
    return -(-skip // 4) * 4


def _region_scratch(tensors, op, order, regions, stream: bool, bands: int, in_place: bool) -> int:
    """The most kernel scratch conv/depthwise `op` asks for over the tiles, on the regions the
    patch executor gives it: its input's region, the rows of its output's region it computes
    (in stream mode those past the previous band's), padding shifted to the regions' origins."""
    src, dst = op.inputs[0], op.outputs[0]
    if src not in order or dst not in order:
        return 0
    i, o = order.index(src), order.index(dst)
    geometry = scratch.ConvParams.unpack(op.params)
    f_d = tuple(int(d) for d in tensors[op.inputs[1]].shape)
    c_in, c_out = int(tensors[src].shape[3]), int(tensors[dst].shape[3])
    depthwise = op.opcode == bf.OPCODES["DEPTHWISE_CONV_2D"]
    size = scratch.depthwise_inplace if in_place else (scratch.depthwise if depthwise else scratch.conv2d)
    most = 0
    for k, tile_regions in enumerate(regions):
        iy0, iy1, ix0, ix1 = tile_regions[i]
        oy0, oy1, ox0, ox1 = tile_regions[o]
        if stream and k % bands != 0:
            oy0 = max(oy0, regions[k - 1][o][1])
        if oy0 >= oy1 or iy0 >= iy1 or ox0 >= ox1 or ix0 >= ix1:
            continue
        shifted = geometry.shifted(iy0 + geometry.pad_top - oy0 * geometry.stride_h,
                                   ix0 + geometry.pad_left - ox0 * geometry.stride_w)
        most = max(most, size(shifted, (1, iy1 - iy0, ix1 - ix0, c_in), f_d, (1, oy1 - oy0, ox1 - ox0, c_out)))
    return most


# Band counts tried for stream plans: a few, and bands of three rows down to one.
STREAM_BAND_ROWS = (1, 2, 3)
STREAM_STRIPS = (1, 2, 3, 4, 6)


def stream_grids(out_h: int, max_grid: int = MAX_GRID) -> list[int]:
    counts = {g for g in (2, 3, 4, 6, 8) if g <= max_grid} | {-(-out_h // r) for r in STREAM_BAND_ROWS}
    return sorted(c for c in counts if 2 <= c <= out_h)


def stream_bands(out_h: int, max_grid: int = MAX_GRID) -> list[tuple[int, int | None]]:
    """(bands, first band rows) tried for stream plans: the even bands of stream_grids, and for
    each of their heights h a first band one to FIRST_SHORTER rows shorter, then bands of h."""
    out = [(g, None) for g in stream_grids(out_h, max_grid)]
    for h in sorted({-(-out_h // g) for g, _ in out}):
        for first in range(max(1, h - FIRST_SHORTER), h):
            out.append((1 + -(-(out_h - first) // h), first))
    return out


FIRST_SHORTER = 2


def candidate_plans(tensors, ops, inputs, outputs, max_grid: int = MAX_GRID,
                    external_input: bool = False, core: str | None = None) -> list[PatchPlan]:
    """Every split x grid in both modes (p x p tiles that recompute halos, and row bands that
    stream them), each with its exact arena plan and its estimated instructions on `core`."""
    from tinyadapt.plan.estimate import estimate_plan, load_costs

    table = load_costs(core)
    plans = []
    for stage in find_stages(tensors, ops, outputs):
        out_h, out_w = tensors[stage.output].shape[1:3]
        for grid in range(2, min(max_grid, out_h, out_w) + 1):
            plans.append(plan_patch(tensors, ops, inputs, outputs, stage, grid, external_input))
        for strips in STREAM_STRIPS:
            if strips > out_w:
                continue
            for grid, first in stream_bands(out_h, max_grid):
                plan = plan_patch(tensors, ops, inputs, outputs, stage, grid, external_input, stream=True,
                                  strips=strips, first=first)
                if plan is not None:
                    plans.append(plan)
    for plan in plans:
        plan.cost = estimate_plan(table, tensors, ops, plan)
    return plans


def patch_section(plan: PatchPlan) -> bytes:
    """The blob's patch plan (ta_patch_header_t, ta_patch_tensor_t[], ta_region_t[]), offsets
    relative to the section start; the writer rebases them. In stream mode a tile's region of
    a tensor is the rows its buffer holds; the rows computed are those past the previous
    tile's region (docs/SPEC.md, "Patch plan")."""
    n_regions = len(plan.region_tensors)
    header_size, tensor_size = 16, 12
    tensors_off = header_size
    regions_off = tensors_off + tensor_size * n_regions
    mode = bf.PATCH_MODE_STREAM if plan.stream else bf.PATCH_MODE_TILES
    out = bytearray(struct.pack("<HHHHII", plan.stage.n_ops, len(plan.tiles), n_regions, mode, tensors_off,
                                regions_off))
    for t, off, cap in zip(plan.region_tensors, plan.region_offsets, plan.capacities):
        out += struct.pack("<HHII", t, 0, off, cap)
    for tile_regions in plan.regions:
        for y0, y1, x0, x1 in tile_regions:
            out += struct.pack("<hhhh", y0, y1, x0, x1)
    if plan.stream:  # bands per strip, then ta_stream_buffer_t[n_regions]
        out += struct.pack("<I", plan.grid)
        for off, cap in zip(plan.stream_offsets, plan.stream_capacities):
            out += struct.pack("<II", off, cap)
    return bytes(out)
