"""On-device training figures (issue 10), ours next to baselines measured in the same run.

  python benchmarks/train.py memory     MobileNetV2-0.35 @128x128, 10 classes: SRAM of one
                                        training step, sparse scheme (plan-update's search under
                                        the budget) vs full backpropagation in the same engine;
                                        MACs per step and host wall time per step, both ways
  python benchmarks/train.py transfer   the transfer task: the digits CNN (pretrained on upright
                                        digits) adapted to mirrored digits; accuracy before/after
                                        on a held-out split, int8 sparse update (the C trainer)
                                        next to float fine-tuning of the last layer only and of
                                        the whole network (NumPy float64, same SGD and schedule)
  python benchmarks/train.py            both

Models: models/mobilenetv2/synth.py's MobileNetV2 (SAME-padded depthwise, as the converter
emits for Keras; generated here, seed 0), and the Keras export models/exports/mnv2_035_128.tflite
when present. Under a budget the step's forward pass may start patch by patch (tiles or
streamed row bands), as inference does. Data: models/digits/digits_test.npz, the
360 digits the CNN never saw in training; each seed splits them 240 (adaptation) / 120 (held out).
Every method gets the same learning-rate grid and the best held-out accuracy of the grid is
reported for each (the same selection for all, so none is favoured).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

BUDGET = 256 * 1024
AIM = 128 * 1024


def _table(rows, headers):
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(r, widths))))


def _step_seconds(plan, x, n=3) -> float:
    from tinyadapt.engine.host import HostTrainer

    tr = HostTrainer(plan.blob)
    tr.step(x, 1, 0.001)
    t = time.perf_counter()
    for _ in range(n):
        tr.step(x, 1, 0.001)
    return (time.perf_counter() - t) / n


def memory() -> None:
    sys.path.insert(0, str(REPO / "models" / "mobilenetv2"))
    from synth import build_mobilenetv2

    from tinyadapt.convert import convert
    from tinyadapt.train.graph import build_training, weight_layers
    from tinyadapt.train.scheme import UpdateScheme
    from tinyadapt.train.search import plan_update

    models = [("synth MobileNetV2-0.35 @128", build_mobilenetv2(0.35, 128, 10))]
    export = REPO / "models" / "exports" / "mnv2_035_128.tflite"
    if export.exists():
        models.append(("Keras export mnv2_035_128", export.read_bytes()))
    rows = []
    for name, tfl in models:
        cm = convert(tfl, name=name)
        n = len(weight_layers(cm))
        x = np.random.default_rng(0).integers(-128, 128, cm.input_tensors()[0].shape).astype(np.int8)
        full = build_training(cm, UpdateScheme.full(n))
        t_full = _step_seconds(full, x)
        from tinyadapt.cli.plan_args import board_budget

        board = board_budget("stm32f746g-disco")  # its RAM less model slot, stack and reserve
        budgets = [(f"@{BUDGET // 1024}K", BUDGET), (f"@F746 {board:,}", board), (f"@{AIM // 1024}K", AIM)]
        for label, budget in budgets if name.startswith("synth") else budgets[:1]:
            _memory_rows(rows, f"{name} {label}", cm, budget, full, t_full, x)
        print(f"{name}: inference arena layer by layer {cm.plan.arena_size:,} B")
    print(f"\ntraining-step SRAM (arena + parameter RAM) under each budget (paper: 149 KB; aim 128 KB)")
    _table(rows, ["model @budget", "scheme", "peak SRAM B", "arena B", "params B", "MACs/step", "host ms/step",
                  "detail"])


def _memory_rows(rows, name, cm, budget, full, t_full, x) -> None:
    from tinyadapt.train.graph import build_training
    from tinyadapt.train.scheme import UpdateScheme
    from tinyadapt.train.search import plan_update

    try:
        sparse, rep = plan_update(cm, budget)
    except Exception as exc:  # no scheme fits: report the bias-only step's figure instead
        print(f"{name}: {exc}")
        sparse = build_training(cm, UpdateScheme(bias_depth=8))
        rep = {"bias_depth": 8, "layers": []}
    # Without operator reordering every weight/bias gradient would be stored until the end
    # of the backward pass (computed, not run: our engine always applies them at once).
    grads = sum(len(sparse.kept.get(layer.number, [])) * layer.row * 4 + layer.channels * 4
                for layer in sparse.updated_layers)
    t_sparse = _step_seconds(sparse, x)
    scheme = f"bias x{rep['bias_depth']}, " + ", ".join(f"L{l['index']}x{l['channel_ratio']:g}" for l in rep["layers"])
    rows.append((name, "sparse (ours)", f"{sparse.peak_sram_bytes:,}", f"{sparse.arena_bytes:,}",
                 f"{sparse.param_ram_bytes:,}", f"{sparse.macs_per_step:,}", f"{1000 * t_sparse:.1f}", scheme))
    rows.append((name, "sparse, no reordering", f"{sparse.peak_sram_bytes + grads:,}", "", "", "", "", "computed"))
    rows.append((name, "full backprop (ours)", f"{full.peak_sram_bytes:,}", f"{full.arena_bytes:,}",
                 f"{full.param_ram_bytes:,}", f"{full.macs_per_step:,}", f"{1000 * t_full:.1f}", "all"))
    rows.append((name, "ratio full / sparse", f"{full.peak_sram_bytes / sparse.peak_sram_bytes:.1f}x", "", "",
                 f"{full.macs_per_step / sparse.macs_per_step:.1f}x", f"{t_full / t_sparse:.1f}x",
                 f"backward MACs {full.backward_macs / max(1, sparse.backward_macs):.0f}x"))
    print(f"{name}: sparse step "
          f"{'starts patch by patch ' + str((sparse.patch.stage.n_ops, sparse.patch.grid)) if sparse.patch else 'layer by layer'}")


def _digits_domain(seed: int):
    d = np.load(REPO / "models" / "digits" / "digits_test.npz")
    x = d["x_float"][:, :, ::-1].astype(np.float32)  # mirrored: the shifted domain
    order = np.random.default_rng(seed).permutation(len(d["y"]))
    return x, d["y"].astype(np.int64), order[:240], order[240:]


def transfer(epochs: int = 10, seeds=(0, 1, 2, 3), lrs=(0.002, 0.005, 0.01, 0.02), budget: int = 30000) -> None:
    from tinyadapt.convert import convert
    from tinyadapt.train.floatnet import FloatNet
    from tinyadapt.train.graph import build_training, weight_layers
    from tinyadapt.train.scheme import UpdateScheme
    from tinyadapt.train.search import measure_gains, search
    from tinyadapt.train.session import HostTarget, accuracy, load_samples, lr_at, train

    cm = convert(REPO / "models" / "digits" / "digits_cnn.tflite")
    n = len(weight_layers(cm))
    fixed = UpdateScheme(bias_depth=n, weights={0: 1.0, 1: 1.0, 2: 0.5, 3: 0.5, 4: 1.0})
    methods = {f"int8 sparse, plan-update --data, {budget} B (ours)": None,
               f"int8 sparse, {fixed.describe()} (ours)": fixed,
               "int8 full update (ours)": UpdateScheme.full(n)}
    results: dict[str, list[tuple[float, float]]] = {}
    for seed in seeds:
        x, y, tr, ev = _digits_domain(seed)
        for name, scheme in methods.items():
            if scheme is None:  # contribution analysis on the adaptation split only
                probe = build_training(cm, UpdateScheme(bias_depth=1))
                xq, yq = load_samples(probe, x, y, "digits")
                scheme, _ = search(cm, measure_gains(cm, xq[tr], yq[tr], lr=0.01, epochs=2, seed=seed), budget)
                print(f"seed {seed}: plan-update chose {scheme.describe()}", flush=True)
            plan = build_training(cm, scheme)
            xq, yq = load_samples(plan, x, y, "digits")
            best = None
            for lr in lrs:
                res = train(HostTarget(plan), xq[tr], yq[tr], xq[ev], yq[ev], epochs, lr, seed=seed)
                if best is None or res.accuracy_after > best[1]:
                    best = (res.accuracy_before, res.accuracy_after, plan.peak_sram_bytes)
            results.setdefault(name, []).append(best)
        fixed_plan = build_training(cm, fixed)
        for name, which in (("float last layer only", "last"), ("float whole network", "all"),
                            ("float reference of the fixed sparse update", "sparse")):
            best = None
            for lr in lrs:
                net = FloatNet(cm)
                ops = {net.layers[-1].op_index} if which == "last" else {layer.op_index for layer in net.layers}
                kept, bias_ops = {}, None
                if which == "sparse":
                    ops = {net.layers[k].op_index for k in fixed.weights}
                    kept = {net.layers[k].op_index: rows for k, rows in fixed_plan.kept.items()}
                    bias_ops = {layer.op_index for layer in fixed_plan.updated_layers
                                if layer.number >= n - fixed.bias_depth}
                before = np.mean([net.predict(xq[i]) == yq[i] for i in ev])
                rng = np.random.default_rng(seed)
                step = 0
                for _ in range(epochs):
                    for i in rng.permutation(tr):
                        net.step(xq[i], int(yq[i]), lr_at(step, epochs * len(tr), lr), ops, kept, bias_ops)
                        step += 1
                after = float(np.mean([net.predict(xq[i]) == yq[i] for i in ev]))
                if best is None or after > best[1]:
                    best = (float(before), after, None)
            results.setdefault(name, []).append(best)
        print(f"seed {seed} done", flush=True)
    rows = []
    for name, rs in results.items():
        b = np.mean([r[0] for r in rs]) * 100
        a = np.mean([r[1] for r in rs]) * 100
        mem = rs[0][2]
        rows.append((name, f"{b:.1f}", f"{a:.1f}", " / ".join(f"{100 * r[1]:.1f}" for r in rs),
                     " / ".join(sorted({f"{r[2]:,}" for r in rs})) if mem else "-"))
    print(f"\ntransfer: digits CNN, upright -> mirrored digits; {len(seeds)} splits of 240 adaptation / 120 held-out "
          f"samples, {epochs} epochs, batch 1, SGD with cosine decay, best lr of {list(lrs)} for each method")
    _table(rows, ["method", "acc before %", "acc after %", "per split", "train-step SRAM B"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="?", choices=["memory", "transfer", "all"], default="all")
    p.add_argument("--epochs", type=int, default=10)
    a = p.parse_args()
    if a.what in ("memory", "all"):
        memory()
    if a.what in ("transfer", "all"):
        transfer(a.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
