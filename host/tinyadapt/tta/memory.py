"""SRAM of one adaptation step, ours next to full-model entropy minimisation, both in our engine.

Ours: the backbone's arena (planned by plan/memory.py) plus, for the head the step touches,
either its arena and the per-channel statistics ("input"/"norm": no backward pass), or its
training step as train-core's planner lays it out (arena + parameter RAM, "entropy").

Full model: train-core's planner for the whole backbone with every weight and bias updated
(UpdateScheme.full). When the planner cannot build it (an op without a backward kernel yet,
e.g. MAX_POOL_2D), the same quantities are estimated from the forward plan instead, and the
figure says so: every activation the backward pass reads kept for it (each int8 activation of
the forward, none reused), plus float32 gradients of the largest activation, plus the
parameter RAM the trainer keeps (int8 overlay + float32 master per weight, int32 + float32 per
bias). The same estimate on the heads is printed beside the planner's so it can be judged.
"""

from __future__ import annotations

import numpy as np

from tinyadapt.convert import ConvertedModel
from tinyadapt.convert import blob_format as bf
from tinyadapt.errors import TinyAdaptError


def estimate_full_training(m: ConvertedModel) -> int:
    acts = [t for t in m.tensors if t.kind == bf.KIND_ACTIVATION]
    retained = sum(t.nbytes for t in acts)
    largest = max(int(np.prod(t.shape)) for t in acts)
    param_ram = 0
    for op in m.ops:
        if getattr(op.source, "kind", "") in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            param_ram += m.tensors[op.inputs[1]].nbytes * 5 + m.tensors[op.inputs[2]].nbytes * 2
    return retained + 2 * 4 * largest + param_ram


def full_model_step(m: ConvertedModel) -> tuple[int, str]:
    """(bytes, how they were obtained) for full-model entropy minimisation on the backbone."""
    from tinyadapt.train.graph import build_training, weight_layers
    from tinyadapt.train.scheme import UpdateScheme

    try:
        plan = build_training(m, UpdateScheme.full(len(weight_layers(m))))
        return plan.peak_sram_bytes, "planned"
    except TinyAdaptError as exc:
        return estimate_full_training(m), f"estimated ({exc})"


def ours_step(pm, parts: set[str]) -> int:
    """Peak SRAM of our adaptation step for a prepared model and adaptation parts."""
    bb = pm.backbone_model.peak_sram_bytes
    stats_in = 2 * 4 * len(pm.input_mean) if "input" in parts else 0
    if "entropy" in parts:
        heads = [p.peak_sram_bytes for p in pm.train_plans()]
    else:
        heads = [h.peak_sram_bytes + (2 * 4 * len(mu) if "norm" in parts else 0)
                 for h, mu in zip(pm.head_models, pm.z_mean)]
    return bb + max(heads) + stats_in
