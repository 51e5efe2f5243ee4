"""The converter's front door: .tflite -> validated, planned, serialized model blob."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyadapt.convert.blob import write_blob
from tinyadapt.convert.fold import drop_unused, fold_pads
from tinyadapt.convert.ir import Graph
from tinyadapt.convert.lowering import BlobTensor, LowerContext, Lowered, registry
from tinyadapt.convert.tflite_reader import read_tflite
from tinyadapt.errors import PlanError, UnsupportedModelError
from tinyadapt.plan.memory import MemoryPlan, plan_memory
from tinyadapt.plan.patch import PatchPlan, band_rows, candidate_plans, find_stages, plan_patch

__all__ = ["ConvertedModel", "convert", "supported_ops"]

_MAX_TENSORS = 32767  # tensor indices are int16 in the blob


@dataclass
class ConvertedModel:
    source: str
    graph: Graph
    tensors: list[BlobTensor]
    ops: list[Lowered]
    inputs: list[int]
    outputs: list[int]
    plan: MemoryPlan                 # the arena plan the blob uses
    blob: bytes
    layer_by_layer_peak_bytes: int = 0
    patch: PatchPlan | None = None   # set when the first stage runs patch by patch

    @property
    def peak_sram_bytes(self) -> int:
        return self.plan.arena_size

    def patch_candidates(self, external_input: bool = False, core: str | None = None) -> list[PatchPlan]:
        return candidate_plans(self.tensors, self.ops, self.inputs, self.outputs, external_input=external_input,
                               core=core)

    def input_tensors(self) -> list[BlobTensor]:
        return [self.tensors[i] for i in self.inputs]

    def output_tensors(self) -> list[BlobTensor]:
        return [self.tensors[i] for i in self.outputs]


def supported_ops() -> list[str]:
    return sorted(registry())


def convert(source: str | Path | bytes, name: str | None = None, *, budget: int | None = None,
            budget_name: str = "the", patch: tuple | None = None,
            external_input: bool = False, core: str | None = None) -> ConvertedModel:
    """Read, validate, lower and plan a .tflite model; raises a TinyAdaptError subclass on bad input.

    budget: peak SRAM bytes allowed; when layer-by-layer execution needs more, the patch
    plan with the fewest estimated instructions on `core` (plan/estimate.py) that fits is
    chosen (PlanError if none does).
    patch: (n_stage_ops, grid) or (n_stage_ops, grid, "tiles" | "stream"[, strips[, first]]) to
    force a patch plan instead (tiles: grid x grid tiles recomputing halos; stream: `strips`
    vertical strips of grid row bands, keeping halo rows, the first band `first` rows and the
    others even if given; PatchPlan.spec gives it).
    external_input: a patch plan keeps the model input out of the arena (the caller binds
    it, e.g. a camera frame in external memory; only the patch stage reads it)."""
    label = name or (str(source) if not isinstance(source, (bytes, bytearray)) else "<model>")
    graph = read_tflite(source, name=label) if isinstance(source, (bytes, bytearray)) else read_tflite(source)
    table = registry()
    # The op list first: an unsupported op is the root cause even when it also brings odd dtypes.
    for op in graph.ops:
        if op.kind not in table:
            raise UnsupportedModelError(
                f"{label}: {op.describe()} is not supported by tinyadapt "
                f"(supported: {', '.join(sorted(table))})")
    ctx = LowerContext(graph, label)
    for index in graph.inputs + graph.outputs:
        t = graph.tensors[index]
        if t.is_const:
            continue
        dtype = None if isinstance(t.dtype, str) else np.dtype(t.dtype)
        role = "input" if index in graph.inputs else "output"
        # uint8 only in: a camera frame that QUANTIZE turns into int8 (inference_input_type=tf.uint8).
        edge = (np.int8, np.float32, np.uint8) if role == "input" else (np.int8, np.float32)
        if dtype not in [np.dtype(d) for d in edge]:
            raise UnsupportedModelError(
                f"{label}: model {role} {t.describe()} is {dtype.name if dtype else t.dtype}; "
                "tinyadapt runs int8 models (int8 or float32 at the edges, or a uint8 input)")
    ops = []
    for op in graph.ops:
        try:
            lowered = table[op.kind](ctx, op)
        except (IndexError, KeyError, ValueError, TypeError, ZeroDivisionError, OverflowError) as exc:
            # The op modules rely on the operand counts, ranks and options TFLite's converter
            # writes; a corrupt file that breaks them is refused here, in one line.
            raise UnsupportedModelError(
                f"{label}: {op.describe()} does not have the operands, shapes or options it needs "
                f"({len(op.inputs)} inputs, {len(op.outputs)} outputs; {type(exc).__name__}: {exc})") from None
        lowered.source = op
        ops.append(lowered)
    inputs = [ctx.ref(i) for i in graph.inputs]
    outputs = [ctx.ref(i) for i in graph.outputs]
    # Explicit PADs merge into the conv/pool reading them where that is exact (convert/fold.py).
    tensors, ops, inputs, outputs = drop_unused(ctx.tensors, fold_pads(ctx.tensors, ops, outputs), inputs, outputs)
    if len(tensors) > _MAX_TENSORS:
        raise UnsupportedModelError(f"{label}: {len(tensors)} tensors, the blob format holds {_MAX_TENSORS}")
    plan = plan_memory(tensors, ops, inputs, outputs)
    chosen = None
    if patch is not None:
        chosen = _forced_patch(label, tensors, ops, inputs, outputs, *patch, external_input=external_input,
                               core=core)
    elif budget is not None and plan.arena_size > budget:
        chosen = choose_patch(label, plan.arena_size,
                              candidate_plans(tensors, ops, inputs, outputs, external_input=external_input,
                                              core=core),
                              budget, budget_name)
    elif external_input and budget is None:
        raise PlanError(f"{label}: an external input needs a patch plan: give a budget or a patch split")
    if chosen is not None and external_input and not chosen.external_inputs:
        raise PlanError(f"{label}: the input cannot stay outside the arena: ops after the patch stage read it")
    blob = write_blob(tensors, ops, inputs, outputs, chosen.memory if chosen else plan, chosen)
    return ConvertedModel(source=label, graph=graph, tensors=tensors, ops=ops, inputs=inputs,
                          outputs=outputs, plan=chosen.memory if chosen else plan, blob=blob,
                          layer_by_layer_peak_bytes=plan.arena_size, patch=chosen)


def _forced_patch(label, tensors, ops, inputs, outputs, n_stage_ops: int, grid: int, mode: str = "tiles",
                  strips: int = 1, first: int | None = None, external_input: bool = False,
                  core: str | None = None) -> PatchPlan:
    if mode not in ("tiles", "stream"):
        raise PlanError(f"{label}: patch mode {mode!r}: use 'tiles' or 'stream'")
    stages = {s.n_ops: s for s in find_stages(tensors, ops, outputs)}
    if n_stage_ops not in stages:
        raise PlanError(f"{label}: the first {n_stage_ops} ops cannot run patch by patch "
                        f"(valid splits: {', '.join(map(str, sorted(stages))) or 'none'})")
    out_h, out_w = tensors[stages[n_stage_ops].output].shape[1:3]
    limit = out_h if mode == "stream" else min(out_h, out_w)
    if first is not None and (mode != "stream" or band_rows(out_h, grid, first) is None):
        raise PlanError(f"{label}: a first band of {first} rows and {grid - 1} more bands does not fit "
                        f"the stage output's {out_h} rows" if mode == "stream" else
                        f"{label}: a first band's rows apply to stream mode only")
    if not 1 <= grid <= limit or not 1 <= strips <= out_w:
        what = f"{grid} row bands x {strips} strips" if mode == "stream" else f"a {grid}x{grid} grid"
        raise PlanError(f"{label}: {what} does not fit the stage output {out_h}x{out_w}")
    plan = plan_patch(tensors, ops, inputs, outputs, stages[n_stage_ops], grid, external_input,
                      stream=mode == "stream", strips=strips, first=first)
    if plan is None:
        raise PlanError(f"{label}: the first {n_stage_ops} ops cannot stream row bands")
    from tinyadapt.plan.estimate import estimate_plan, load_costs

    plan.cost = estimate_plan(load_costs(core), tensors, ops, plan)
    return plan


def choose_patch(label: str, layer_peak: int, plans: list[PatchPlan], budget: int,
                 budget_name: str = "the") -> PatchPlan:
    """The fewest estimated instructions among plans within budget (then the least MAC
    overhead, then the smallest peak), or a PlanError saying what would fit.
    budget_name names whose budget it is in the message ("the", or a board)."""
    # Cheapest first; a plan's arena is planned only when it is tried.
    by_cost = sorted(plans, key=lambda p: (p.cost.instructions if p.cost else float("inf"), p.mac_overhead))
    for p in by_cost:
        if p.peak_sram_bytes <= budget:
            return p
    where = f"does not fit {budget_name} {budget}-byte SRAM budget for the activation arena"
    if not plans:
        raise PlanError(f"{label}: {where}: it needs {layer_peak} bytes layer by layer, and no prefix of the "
                        "model can run patch by patch")
    best = min(plans, key=lambda p: p.peak_sram_bytes)
    smallest = min(best.peak_sram_bytes, layer_peak)
    raise PlanError(f"{label}: {where}: layer by layer needs {layer_peak}, the smallest achievable peak is "
                    f"{smallest} bytes (patch stage of {best.stage.n_ops} ops, {best.grid_label})")
