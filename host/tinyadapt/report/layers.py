"""Per-layer and total figures of a converted model (the `convert` report)."""

from __future__ import annotations

import numpy as np

from tinyadapt.convert import ConvertedModel
from tinyadapt.convert import blob_format as bf

JSON_SCHEMA_VERSION = 1


def layer_rows(model: ConvertedModel) -> list[dict]:
    rows = []
    for i, op in enumerate(model.ops):
        ins = [model.tensors[t] for t in op.inputs if t >= 0]
        outs = [model.tensors[t] for t in op.outputs]
        consts = [t for t in ins if t.kind == bf.KIND_CONST]
        acts = [t for t in ins + outs if t.kind == bf.KIND_ACTIVATION]
        rows.append({
            "index": i,
            "op": bf.OPCODE_NAMES[op.opcode],
            "tflite_op": op.source.kind if op.source else None,
            "input_shapes": [list(t.shape) for t in ins if t.kind == bf.KIND_ACTIVATION],
            "output_shapes": [list(t.shape) for t in outs],
            "macs": int(op.macs),
            "weight_bytes": int(sum(t.nbytes for t in consts)),
            "activation_bytes": int(sum(t.nbytes for t in acts)),
            "live_bytes": int(model.plan.live_bytes(i)),
            "scratch_bytes": int(model.plan.scratch_sizes.get(i, 0)),
            "in_place": i in model.plan.in_place,
        })
    return rows


def _io(model: ConvertedModel, indices: list[int]) -> list[dict]:
    out = []
    for i in indices:
        t = model.tensors[i]
        out.append({"name": t.name, "shape": list(t.shape), "dtype": np.dtype(t.dtype).name,
                    "scale": t.scale, "zero_point": t.zero_point})
    return out


def convert_report(model: ConvertedModel) -> dict:
    rows = layer_rows(model)
    weights = sum(t.nbytes for t in model.tensors if t.kind == bf.KIND_CONST)
    return {
        "schema": JSON_SCHEMA_VERSION,
        "model": model.source,
        "ops": len(model.ops),
        "tensors": len(model.tensors),
        "peak_sram_bytes": int(model.peak_sram_bytes),
        "layer_by_layer_peak_bytes": int(model.layer_by_layer_peak_bytes),
        "patch": (model.patch.summary() if model.patch else None),
        "weights_bytes": int(weights),
        "blob_bytes": len(model.blob),
        "macs": int(model.patch.macs if model.patch else sum(r["macs"] for r in rows)),
        "inputs": _io(model, model.inputs),
        "outputs": _io(model, model.outputs),
        "layers": rows,
    }
