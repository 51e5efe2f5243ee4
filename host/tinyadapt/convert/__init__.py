"""The converter's front door: .tflite -> validated, planned, serialized model blob."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyadapt.convert.blob import write_blob
from tinyadapt.convert.ir import Graph
from tinyadapt.convert.lowering import BlobTensor, LowerContext, Lowered, registry
from tinyadapt.convert.tflite_reader import read_tflite
from tinyadapt.errors import UnsupportedModelError
from tinyadapt.plan.memory import MemoryPlan, plan_memory

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
    plan: MemoryPlan
    blob: bytes

    @property
    def peak_sram_bytes(self) -> int:
        return self.plan.arena_size

    def input_tensors(self) -> list[BlobTensor]:
        return [self.tensors[i] for i in self.inputs]

    def output_tensors(self) -> list[BlobTensor]:
        return [self.tensors[i] for i in self.outputs]


def supported_ops() -> list[str]:
    return sorted(registry())


def convert(source: str | Path | bytes, name: str | None = None) -> ConvertedModel:
    """Read, validate, lower and plan a .tflite model; raises a TinyAdaptError subclass on bad input."""
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
        if dtype not in (np.dtype(np.int8), np.dtype(np.float32)):
            role = "input" if index in graph.inputs else "output"
            raise UnsupportedModelError(
                f"{label}: model {role} {t.describe()} is {dtype.name if dtype else t.dtype}; "
                "tinyadapt runs int8 models (int8 or float32 at the edges)")
    ops = []
    for op in graph.ops:
        lowered = table[op.kind](ctx, op)
        lowered.source = op
        ops.append(lowered)
    inputs = [ctx.ref(i) for i in graph.inputs]
    outputs = [ctx.ref(i) for i in graph.outputs]
    if len(ctx.tensors) > _MAX_TENSORS:
        raise UnsupportedModelError(f"{label}: {len(ctx.tensors)} tensors, the blob format holds {_MAX_TENSORS}")
    plan = plan_memory(ctx.tensors, ops, inputs, outputs)
    blob = write_blob(ctx.tensors, ops, inputs, outputs, plan)
    return ConvertedModel(source=label, graph=graph, tensors=ctx.tensors, ops=ops, inputs=inputs,
                          outputs=outputs, plan=plan, blob=blob)
