"""SRAM of one adaptation step, ours next to full-model entropy minimisation, both in our engine.

Ours: the backbone's arena (planned by plan/memory.py) plus, for "input"/"norm" (no backward
pass), the device's layout of heads, statistics and the loop's work area (ours_step), or for
"entropy" the largest head's training step as train-core's planner lays it out (arena +
parameter RAM).

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


def _a16(n: int) -> int:
    return (n + 15) & ~15


def ours_step(pm, parts: set[str]) -> int:
    """Peak SRAM of our adaptation step for a prepared model and adaptation parts.

    "input" / "norm": the device's arena layout (firmware/app/ta_tta_commands.c), from the same
    C code: the backbone's arena with each head placed where the backbone's plan leaves room
    at its cut (ta_tta_head_base), then the per-channel statistics and folded affines, then the
    loop's work area (ta_tta_adapt_need: the sample's snapshot, the last good state, the
    histograms). The adaptation state structures outside the arena are not counted here.
    "entropy": the backbone's arena beside the largest head's training step."""
    bb = pm.backbone_model.peak_sram_bytes
    if "entropy" in parts:
        stats_in = 2 * 4 * len(pm.input_mean) if "input" in parts else 0
        return bb + max(p.peak_sram_bytes for p in pm.train_plans()) + stats_in
    from tinyadapt.tta.session import AdaptConfig, Session

    arenas = [h.peak_sram_bytes for h in pm.head_models]
    bases = pm.open().runner().head_bases(arenas)
    end = max([bb] + [b + a for b, a in zip(bases, arenas)])
    m, c = sum(len(mu) for mu in pm.z_mean), len(pm.input_mean)
    state = 8 * c + 8 * m + 4 * m + ((m + 3) & ~3)
    mode = "+".join(p for p in ("input", "norm") if p in parts)
    work = Session(pm, AdaptConfig(mode=mode)).adapter.need if mode else 0
    return _a16(_a16(end) + state) + work if mode else _a16(end) + state
