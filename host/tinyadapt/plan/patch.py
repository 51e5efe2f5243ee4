"""Patch-based inference planning (MCUNetV2): choose a split and a tile grid under a budget.

The first `n` ops (the *stage*) run tile by tile: for a p x p grid over the stage
output, each tile's region of every stage tensor is found by walking back through the
stage (a windowed op of kernel k, stride s, dilation d needs input rows
[y0*s - pad, (y1-1)*s - pad + d*(k-1) + 1), clipped at the real image border, where
padding applies), so the stage's full-size intermediate maps never exist. Neighbouring
tiles overlap (the halo): that recomputation is the MAC overhead. The rest of the graph
runs layer by layer.

For every valid split and grid this module computes the exact regions, the MACs, and a
full arena plan (the same planner as layer-by-layer, over region buffers), so the peak it
reports is the arena the device gets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import BlobTensor, Lowered
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
    grid: int
    tiles: list[Region]                  # stage-output tiles, row-major
    region_tensors: list[int]            # blob tensor indices with a region per tile
    regions: list[list[Region]]          # [tile][region_tensors index]
    capacities: list[int]                # bytes of each region buffer
    region_offsets: list[int]            # arena offset of each region buffer
    memory: MemoryPlan                   # the whole arena plan (full tensors + region buffers)
    macs: int                            # with patching
    base_macs: int                       # layer by layer
    external_inputs: list[int] = field(default_factory=list)  # model inputs kept outside the arena

    @property
    def peak_sram_bytes(self) -> int:
        return self.memory.arena_size

    @property
    def mac_overhead(self) -> float:
        return self.macs / self.base_macs - 1.0 if self.base_macs else 0.0


def _split(size: int, parts: int) -> list[tuple[int, int]]:
    bounds = [round(i * size / parts) for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


MAX_EXTERNAL_INPUTS = 4  # TA_MAX_EXTERNAL_INPUTS


def external_candidates(stage: Stage, ops: list[Lowered], inputs: list[int], outputs: list[int]) -> list[int]:
    """Model inputs that only the stage reads: they can stay outside the arena (a frame in
    external memory), since the stage copies each tile's window into a region buffer."""
    later = {t for op in ops[stage.n_ops:] for t in op.inputs}
    return [t for t in stage.inputs if t in inputs[:MAX_EXTERNAL_INPUTS] and t not in later and t not in outputs]


def plan_patch(tensors: list[BlobTensor], ops: list[Lowered], inputs: list[int], outputs: list[int],
               stage: Stage, grid: int, external_input: bool = False) -> PatchPlan:
    """external_input: keep the model inputs only the stage reads out of the arena."""
    n = stage.n_ops
    external = external_candidates(stage, ops, inputs, outputs) if external_input else []
    _, out_h, out_w, _ = tensors[stage.output].shape
    tiles = [(y0, y1, x0, x1) for y0, y1 in _split(out_h, grid) for x0, x1 in _split(out_w, grid)]
    # Region tensors: every activation a stage op reads or writes by window; a gather op's
    # input is read in full and needs no region (unless another op reads it by window).
    order = sorted({t for op in ops[:n]
                    for t in (op.inputs[1:] + op.outputs if op.opcode in GATHER_OPS else op.inputs + op.outputs)
                    if t >= 0 and tensors[t].kind == bf.KIND_ACTIVATION})
    slot = {t: i for i, t in enumerate(order)}
    base_macs = sum(op.macs for op in ops)
    macs = sum(op.macs for op in ops[n:])
    regions = []
    for tile in tiles:
        need: dict[int, Region] = {stage.output: tile}
        for op in reversed(ops[:n]):
            out = op.outputs[0]
            if out not in need:
                continue  # a branch that does not reach this tile
            r = need[out]
            oh, ow = tensors[out].shape[1:3]
            macs += op.macs * _area(r) // (oh * ow)
            if op.opcode in GATHER_OPS:
                continue  # reads its input in full
            if op.opcode in WINDOW_OPS:
                src = op.inputs[0]
                need[src] = _union(need.get(src), window_of(tensors, op).input_region(r, *tensors[src].shape[1:3]))
            else:
                for src in op.inputs:
                    if src >= 0:
                        need[src] = _union(need.get(src), r)
        regions.append([need.get(t, (0, 1, 0, 1)) for t in order])
    caps = [max(_area(regions[k][i]) for k in range(len(tiles))) * tensors[t].shape[3] * np.dtype(tensors[t].dtype).itemsize
            for i, t in enumerate(order)]

    # One planning problem: full tensors outside the stage, plus a region buffer per region tensor.
    plan_tensors = list(tensors)
    for t in external:  # not an activation: the arena planner leaves it out
        plan_tensors[t] = replace(tensors[t], kind=bf.KIND_EXTERNAL)
    region_ids = {}
    for t, cap in zip(order, caps):
        region_ids[t] = len(plan_tensors)
        plan_tensors.append(BlobTensor(name=f"{tensors[t].name}@region", dtype=np.dtype(np.int8), shape=(cap,),
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
        if i == n - 1:
            ins += stage.inputs + [stage.output]
        if op.outputs[0] == stage.output:
            outs_extra = [stage.output]  # copied out of its region after the producer runs
            ins += outs_extra
        # A depthwise op may also overwrite its input region in place (one plane of scratch:
        # the largest input region's area). A pointwise conv may not: its input region can be
        # wider than its output's (a residual branch reads it too), and then pixel k of one is
        # not pixel k of the other.
        in_place = (op.opcode == bf.OPCODES["DEPTHWISE_CONV_2D"] and op.inplace_input is not None
                    and op.inputs[op.inplace_input] in region_ids)
        plane = 0
        if in_place:
            k = order.index(op.inputs[op.inplace_input])
            plane = max(_area(tile_regions[k]) for tile_regions in regions)
        plan_ops.append(Lowered(opcode=op.opcode, inputs=ins, outputs=outs, params=op.params,
                                scratch_bytes=op.scratch_bytes,
                                inplace_input=op.inplace_input if in_place else None,
                                inplace_smaller=in_place, inplace_scratch=plane))
    memory = plan_memory(plan_tensors, plan_ops, inputs, outputs)
    return PatchPlan(stage=stage, grid=grid, tiles=tiles, region_tensors=order, regions=regions, capacities=caps,
                     region_offsets=[memory.tensor_offsets[region_ids[t]] for t in order], memory=memory,
                     macs=macs, base_macs=base_macs, external_inputs=external)


def candidate_plans(tensors, ops, inputs, outputs, max_grid: int = MAX_GRID,
                    external_input: bool = False) -> list[PatchPlan]:
    plans = []
    for stage in find_stages(tensors, ops, outputs):
        out_h, out_w = tensors[stage.output].shape[1:3]
        for grid in range(2, min(max_grid, out_h, out_w) + 1):
            plans.append(plan_patch(tensors, ops, inputs, outputs, stage, grid, external_input))
    return plans


def patch_section(plan: PatchPlan) -> bytes:
    """The blob's patch plan (ta_patch_header_t, ta_patch_tensor_t[], ta_region_t[]), offsets
    relative to the section start; the writer rebases them."""
    n_regions = len(plan.region_tensors)
    header_size, tensor_size = 16, 12
    tensors_off = header_size
    regions_off = tensors_off + tensor_size * n_regions
    out = bytearray(struct.pack("<HHHHII", plan.stage.n_ops, len(plan.tiles), n_regions, 0, tensors_off, regions_off))
    for t, off, cap in zip(plan.region_tensors, plan.region_offsets, plan.capacities):
        out += struct.pack("<HHII", t, 0, off, cap)
    for tile_regions in plan.regions:
        for y0, y1, x0, x1 in tile_regions:
            out += struct.pack("<hhhh", y0, y1, x0, x1)
    return bytes(out)
