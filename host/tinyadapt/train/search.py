"""Choosing the update scheme under a memory budget (ALGORITHMS.md section 2).

Contribution analysis: with data, each candidate is measured on its own: the biases of the
last k layers (k from a short list), and the weights of one layer at one channel ratio. Each
trains one epoch on 80 % of the data with the host target (the device's own training code)
and is scored on the other 20 %: its gain in accuracy points over the untrained model. Gains
are assumed to add up, and the search keeps the best sum whose training step fits the budget.
Without data, a documented prior stands in for the measured gains (`prior_gains`).

A scheme's memory during the search is an estimate (the step planned layer by layer, the
ops before the first saved activation counted at the patch-based inference floor); the
chosen scheme is then planned exactly (build_training with the budget) and its figure is
what plan-update reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from tinyadapt.convert import ConvertedModel
from tinyadapt.errors import TinyAdaptError
from tinyadapt.train.graph import TrainPlan, build_training, weight_layers
from tinyadapt.train.scheme import RATIOS, UpdateScheme

log = logging.getLogger(__name__)

MAX_WEIGHT_CANDIDATES = 8  # the last layers: the paper finds the later layers matter most


@dataclass
class Gains:
    bias: dict[int, float]                       # bias depth -> gain (accuracy points)
    weights: dict[tuple[int, float], float]      # (layer, ratio) -> gain
    measured: bool
    base_accuracy: float | None = None
    notes: list[str] = field(default_factory=list)


def bias_depths(n: int) -> list[int]:
    return sorted({k for k in (1, 2, 4, 8, n // 4, n // 2, n) if 1 <= k <= n})


def prior_gains(n_layers: int) -> Gains:
    """Without data: deeper bias updates and later, wider weight updates are worth more, with
    diminishing returns (sqrt of the channel ratio); weights count more than biases."""
    bias = {k: 2.0 * np.sqrt(k / n_layers) for k in bias_depths(n_layers)}
    weights = {}
    for i in range(max(0, n_layers - MAX_WEIGHT_CANDIDATES), n_layers):
        for r in RATIOS:
            weights[(i, r)] = 4.0 * ((i + 1) / n_layers) ** 2 * np.sqrt(r)
    return Gains(bias, weights, measured=False)


def _accuracy(trainer, xs, ys) -> float:
    return float(np.mean([trainer.eval(x)[1] == int(y) for x, y in zip(xs, ys)]))


def measure_gains(cm: ConvertedModel, x: np.ndarray, y: np.ndarray, lr: float = 0.01, epochs: int = 1,
                  seed: int = 0) -> Gains:
    """Contribution analysis on (x, y) with the host target."""
    from tinyadapt.engine.host import HostTrainer

    n = len(weight_layers(cm))
    order = np.random.default_rng(seed).permutation(len(y))
    cut = max(1, int(0.8 * len(y)))
    tr_i, va_i = order[:cut], order[cut:] if cut < len(y) else order[:cut]

    def score(scheme: UpdateScheme) -> float | None:
        try:
            trainer = HostTrainer(build_training(cm, scheme).blob)
        except TinyAdaptError as exc:
            log.info("candidate %s skipped: %s", scheme.describe(), exc)
            return None
        for _ in range(epochs):
            for i in tr_i:
                trainer.step(x[i], int(y[i]), lr)
        return 100.0 * _accuracy(trainer, x[va_i], y[va_i])

    base = None
    probe = HostTrainer(build_training(cm, UpdateScheme(bias_depth=1)).blob)
    base = 100.0 * _accuracy(probe, x[va_i], y[va_i])
    gains = Gains({}, {}, measured=True, base_accuracy=base)
    for k in bias_depths(n):
        acc = score(UpdateScheme(bias_depth=k))
        if acc is not None:
            gains.bias[k] = acc - base
    for i in range(max(0, n - MAX_WEIGHT_CANDIDATES), n):
        for r in RATIOS:
            acc = score(UpdateScheme(weights={i: r}))
            if acc is None:
                break  # no backward path from this layer: no ratio will do
            gains.weights[(i, r)] = acc - base
    return gains


class MemoryEstimator:
    """Training-step SRAM of a scheme, fast enough for a search (see the module docstring)."""

    def __init__(self, cm: ConvertedModel):
        self.cm = cm
        floor = cm.plan.arena_size
        try:
            floor = min([floor] + [p.peak_sram_bytes for p in cm.patch_candidates()])
        except TinyAdaptError:
            pass
        self.forward_floor = floor
        self._cache: dict[tuple, int] = {}

    def __call__(self, scheme: UpdateScheme) -> int:
        key = (scheme.bias_depth, tuple(sorted(scheme.weights.items())))
        if key not in self._cache:
            plan = build_training(self.cm, scheme)
            nf = plan.n_forward_ops
            read = {t for op in plan.ops[nf:] for t in op.inputs}
            first = min([i for i, op in enumerate(plan.ops[:nf]) if any(t in read for t in op.outputs)] + [nf])
            tail = max(plan.memory.live_bytes(i) for i in range(first, len(plan.ops)))
            self._cache[key] = plan.param_ram_bytes + max(tail, min(self.forward_floor, plan.arena_bytes))
        return self._cache[key]


def search(cm: ConvertedModel, gains: Gains, budget: int | None) -> tuple[UpdateScheme, float]:
    """The scheme with the largest summed gain whose estimated step fits `budget`."""
    estimate = MemoryEstimator(cm)

    def fits(s: UpdateScheme) -> bool:
        if budget is None:
            return True
        try:
            return estimate(s) <= budget
        except TinyAdaptError:
            return False

    best, best_gain = None, -np.inf
    for k, gk in sorted(gains.bias.items(), key=lambda kv: -kv[1]):
        scheme = UpdateScheme(bias_depth=k)
        if not fits(scheme):
            continue
        total = gk
        while True:  # greedy: the best positive addition (or ratio upgrade) that still fits
            options = []
            for (i, r), g in gains.weights.items():
                cur = scheme.weights.get(i)
                delta = g - (gains.weights[(i, cur)] if cur else 0.0)
                if g > 0 and delta > 0 and (cur is None or r > cur):
                    options.append((delta, i, r))
            added = False
            for delta, i, r in sorted(options, reverse=True):
                trial = UpdateScheme(scheme.bias_depth, {**scheme.weights, i: r})
                if fits(trial):
                    scheme, total, added = trial, total + delta, True
                    break
            if not added:
                break
        if total > best_gain:
            best, best_gain = scheme, total
    if best is None:
        needs = []
        for k in bias_depths(len(weight_layers(cm))):
            try:
                needs.append(estimate(UpdateScheme(bias_depth=k)))
            except TinyAdaptError:
                continue
        detail = f": the smallest bias-only update needs about {min(needs)} bytes" if needs else ""
        raise TinyAdaptError(f"{cm.source}: no update scheme fits {budget} bytes{detail}")
    return best, best_gain


def plan_update(cm: ConvertedModel, budget: int | None, x=None, y=None, lr: float = 0.01,
                epochs: int = 1) -> tuple[TrainPlan, dict]:
    """Choose and plan the scheme; the plan-update report (keys of `tinyadapt plan-update --json`)."""
    n = len(weight_layers(cm))
    gains = measure_gains(cm, x, y, lr, epochs) if x is not None else prior_gains(n)
    scheme, gain = search(cm, gains, budget)
    plan = build_training(cm, scheme, budget=budget)
    full = build_training(cm, UpdateScheme.full(n))
    report = {
        "schema": 1,
        "model": cm.source,
        "budget_bytes": budget,
        "peak_sram_bytes": plan.peak_sram_bytes,
        "arena_bytes": plan.arena_bytes,
        "param_ram_bytes": plan.param_ram_bytes,
        "fits": budget is None or plan.peak_sram_bytes <= budget,
        "full_update_peak_bytes": full.peak_sram_bytes,
        "bias_depth": scheme.bias_depth,
        "layers": scheme.to_json()["layers"],
        "weight_layers": n,
        "patch": _patch_json(plan.patch),
        "macs_per_step": plan.macs_per_step,
        "full_update_macs_per_step": full.macs_per_step,
        "gains": "measured" if gains.measured else "prior (no data)",
    }
    if gains.measured:
        report["gain_points"] = round(float(gain), 2)
        report["base_accuracy"] = round(float(gains.base_accuracy), 2)
    return plan, report


def _patch_json(p) -> dict | None:
    """How the step's forward pass starts: tiles (grid x grid) or streamed row bands."""
    if p is None:
        return None
    if getattr(p, "stream", False):
        return {"split_ops": p.stage.n_ops, "mode": "stream", "bands": p.grid, "strips": p.strips}
    return {"split_ops": p.stage.n_ops, "mode": "tiles", "grid": [p.grid, p.grid]}
