"""Instruction estimates for layer-by-layer and patch plans, from costs measured on the core.

A plan's instructions are estimated op by op as

    per_mac[kind] * MACs + per_call[kind] * calls + per_row[kind] * output rows

(a patch stage op is called once per tile on a region, so it pays its fixed and per-row
costs once per tile), plus what the patch executor itself does: per byte copied into or
out of region buffers or moved to keep stream rows, and a fixed cost per tile and region.
The coefficients are fitted by benchmarks/patch_costs.py from per-op instruction counts
measured on QEMU with -icount, one table per core (costs/<core>.json, committed data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.errors import PlanError

COSTS_DIR = Path(__file__).resolve().parent / "costs"
DEFAULT_CORE = "cortex-m4"
# Depthwise in place (the plane-at-a-time kernel, what MobileNets run layer by layer) and out
# of place (the channel-group kernel: a patch stage op whose output keeps stream rows) cost
# differently per MAC and per call.
KINDS = ("conv_1x1", "conv", "depthwise", "depthwise_oop", "pool", "elementwise", "other")
_POOLS = {bf.OPCODES["AVERAGE_POOL_2D"], bf.OPCODES["MAX_POOL_2D"]}
_ELEMENTWISE = {bf.OPCODES[k] for k in ("ADD", "SUB", "MUL", "LOGISTIC", "HARD_SWISH", "REQUANTIZE",
                                        "QUANTIZE", "DEQUANTIZE")}


def op_kind(tensors, op) -> str:
    if op.opcode == bf.OPCODES["CONV_2D"]:
        f = tensors[op.inputs[1]].shape  # [C_out, KH, KW, C_in]
        return "conv_1x1" if f[1] == 1 and f[2] == 1 else "conv"
    if op.opcode == bf.OPCODES["DEPTHWISE_CONV_2D"]:
        return "depthwise" if op.inplace_input is not None else "depthwise_oop"
    if op.opcode in _POOLS:
        return "pool"
    if op.opcode in _ELEMENTWISE:
        return "elementwise"
    return "other"


@dataclass(frozen=True)
class CostTable:
    core: str
    per_mac: dict[str, float]
    per_call: dict[str, float]
    per_row: dict[str, float]
    dispatch: float           # engine: per layer-by-layer op call, outside the op
    stage_call: float         # patch executor: per stage op call (once per tile), outside the op
    copy_per_byte: float      # patch executor: window copies, stream rows saved and restored
    per_tile: float           # patch executor: per tile
    per_tile_region: float    # patch executor: per tile and region tensor
    source: str = ""

    def op(self, kind: str, macs: float, calls: float, rows: float) -> float:
        return self.per_mac[kind] * macs + self.per_call[kind] * calls + self.per_row[kind] * rows



def cores() -> list[str]:
    return sorted(p.stem.replace("_", "-") for p in COSTS_DIR.glob("*.json"))


@lru_cache(maxsize=None)
def load_costs(core: str | None = None) -> CostTable:
    core = core or DEFAULT_CORE
    path = COSTS_DIR / f"{core.replace('-', '_')}.json"
    if not path.is_file():
        raise PlanError(f"no measured instruction costs for core {core} (have: {', '.join(cores()) or 'none'}; "
                        "benchmarks/patch_costs.py measures them)")
    raw = json.loads(path.read_text())
    for f in ("per_mac", "per_call", "per_row"):  # a table fitted before a kind existed: its nearest
        for kind, like in (("depthwise_oop", "depthwise"),):
            raw[f].setdefault(kind, raw[f][like])
    return CostTable(core=raw["core"], per_mac=raw["per_mac"], per_call=raw["per_call"], per_row=raw["per_row"],
                     dispatch=raw["dispatch"], stage_call=raw["stage_call"], copy_per_byte=raw["copy_per_byte"],
                     per_tile=raw["per_tile"], per_tile_region=raw["per_tile_region"], source=raw.get("source", ""))


@dataclass(frozen=True)
class PlanCost:
    instructions: float        # estimated, the whole inference with this plan
    base_instructions: float   # estimated, layer by layer

    @property
    def overhead(self) -> float:
        return self.instructions / self.base_instructions - 1.0


@dataclass(frozen=True)
class Work:
    """What one op does over an inference: MACs, calls, output rows; and its kind."""
    kind: str
    macs: float
    calls: int
    rows: int


def layer_work(tensors, ops) -> list[Work]:
    return [Work(op_kind(tensors, op), op.macs, 1, _rows(tensors, op.outputs[0]) if op.outputs else 1)
            for op in ops]


def _rows(tensors, t: int) -> int:
    s = tensors[t].shape
    return s[1] if len(s) == 4 else 1


def plan_work(tensors, ops, plan) -> tuple[list[Work], float, int]:
    """Per-op work with the patch plan (stage ops summed over tiles), bytes the executor copies
    or moves, and the number of (tile, region) visits."""
    n = plan.stage.n_ops
    slot = {t: k for k, t in enumerate(plan.region_tensors)}
    produced = {op.outputs[0] for op in ops[:n]}
    work = []
    staged = plan.problem[1][:n] if plan.problem else ops[:n]  # in place as the patch plan allows
    for op, planned in zip(ops[:n], staged):
        out = op.outputs[0]
        h, w = tensors[out].shape[1:3]
        k = slot[out]
        macs, calls, rows = 0.0, 0, 0
        for tile, tile_work in enumerate(plan.work):
            computed = tile_work[k][0]
            if computed <= 0:
                continue
            y0, y1, x0, x1 = plan.regions[tile][k]
            cols = x1 - x0
            macs += op.macs * computed * cols / (h * w)
            calls += 1
            rows += computed
        work.append(Work(op_kind(tensors, planned), macs, calls, rows))
    work += layer_work(tensors, ops[n:])
    copied = 0.0
    for t, k in slot.items():
        pixel = tensors[t].shape[3] * np.dtype(tensors[t].dtype).itemsize
        for tile, tile_work in enumerate(plan.work):
            computed, kept = tile_work[k]
            y0, y1, x0, x1 = plan.regions[tile][k]
            if t not in produced:  # a stage input: its whole window is copied in
                copied += (y1 - y0) * (x1 - x0) * pixel
            elif t == plan.stage.output:  # copied out as it is computed
                copied += computed * (x1 - x0) * pixel
            if plan.stream and t in produced:  # kept rows: saved, then restored
                copied += 2 * kept * (x1 - x0) * pixel
    return work, copied, len(plan.tiles) * len(slot)


def estimate_layer_by_layer(table: CostTable, tensors, ops) -> float:
    return sum(table.op(w.kind, w.macs, w.calls, w.rows) for w in layer_work(tensors, ops)) + table.dispatch * len(ops)


def estimate_plan(table: CostTable, tensors, ops, plan) -> PlanCost:
    work, copied, visits = plan_work(tensors, ops, plan)
    n = plan.stage.n_ops
    total = (sum(table.op(w.kind, w.macs, w.calls, w.rows) for w in work)
             + table.dispatch * (len(ops) - n) + table.stage_call * sum(w.calls for w in work[:n])
             + table.copy_per_byte * copied + table.per_tile * len(plan.tiles) + table.per_tile_region * visits)
    return PlanCost(instructions=total, base_instructions=estimate_layer_by_layer(table, tensors, ops))
