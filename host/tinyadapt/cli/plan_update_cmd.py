"""tinyadapt plan-update: which parameters on-device training updates, under an SRAM budget."""

from __future__ import annotations

import json

from tinyadapt.cli.train_args import add_budget_arguments, budget_of, load_npy

NAME = "plan-update"
HELP = "choose the sparse update scheme (bias depth, layers, channel ratios) under an SRAM budget"
DESCRIPTION = """\
Plan on-device training (sparse update, arXiv 2206.15472). The scheme updates the biases of
the last k weight layers and the weights of a few layers, each at a channel ratio of 1/8,
1/4, 1/2 or 1 (the kept channels are those of largest L2 norm). Layers are the model's
CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED ops numbered from 0 in execution order.

With --data/--labels, a contribution analysis measures each candidate on that data (one epoch
of training on 80 %, accuracy on the other 20 %, with the host target: the device's training
code) and the search keeps the best sum of gains whose training step fits the budget. Without
data, the documented prior replaces the measurements: the gain of the biases of the last k of
n layers is 2 sqrt(k/n) points and the weights of layer i at ratio r 4 ((i+1)/n)^2 sqrt(r)
points (later layers and more channels matter more, with diminishing returns; the last 8
layers are candidates). With no budget at all, every candidate with a positive gain is taken.

The reported peak is the exact training-step plan: the arena (forward activations the
backward pass needs, gradients, scratch; a patch-based start of the forward pass when that
is what fits) plus the parameter RAM (RAM copies and float masters of what is updated)."""
EPILOG = """\
examples:
  tinyadapt plan-update models/digits/digits_cnn.tflite --budget 32768
  tinyadapt plan-update model.tflite --board stm32f746g-disco --json
  tinyadapt plan-update models/digits/digits_cnn.tflite --budget 20000 --data x.npy --labels y.npy

--json keys: peak_sram_bytes, full_update_peak_bytes (full backpropagation in the same engine),
bias_depth, layers [{index, channel_ratio}], gain_points (with data), arena_bytes,
param_ram_bytes, macs_per_step, full_update_macs_per_step, fits."""


def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL.tflite")
    add_budget_arguments(p)
    p.add_argument("--data", metavar="X.npy", help="samples for the contribution analysis")
    p.add_argument("--labels", metavar="Y.npy", help="their integer labels")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate of the analysis runs (default 0.01)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def run(args) -> int:
    from tinyadapt.convert import convert
    from tinyadapt.errors import InputError
    from tinyadapt.train.search import plan_update
    from tinyadapt.train.session import load_samples

    if (args.data is None) != (args.labels is None):
        raise InputError("--data and --labels go together")
    budget = budget_of(args)
    cm = convert(args.model)
    x = y = None
    if args.data:
        from tinyadapt.train.graph import build_training
        from tinyadapt.train.scheme import UpdateScheme

        probe = build_training(cm, UpdateScheme(bias_depth=1))
        x, y = load_samples(probe, load_npy(args.data, "--data"), load_npy(args.labels, "--labels"), "--data")
    plan, report = plan_update(cm, budget, x, y, lr=args.lr)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["fits"] else 1
    from tinyadapt.report.console import human_bytes, stdout

    layers = ", ".join(f"{x['index']} (x{x['channel_ratio']:g})" for x in report["layers"]) or "none"
    stdout.print(f"{report['model']}: {report['weight_layers']} weight layers"
                 + (f", budget {human_bytes(budget)}" if budget else ""))
    stdout.print(f"  biases of the last {report['bias_depth']} layers; weights of layers {layers}")
    stdout.print(f"  training step: {human_bytes(report['peak_sram_bytes'])} ({report['peak_sram_bytes']:,} B = "
                 f"arena {report['arena_bytes']:,} + parameters {report['param_ram_bytes']:,})"
                 + (f", forward starts patch by patch ({report['patch']['split_ops']} ops, "
                    + (f"{report['patch']['grid'][0]}x{report['patch']['grid'][1]} tiles)" if report["patch"]["mode"] == "tiles"
                       else f"{report['patch']['bands']} streamed row bands x {report['patch']['strips']} strips)")
                    if report["patch"] else ""))
    stdout.print(f"  full backpropagation: {human_bytes(report['full_update_peak_bytes'])} "
                 f"({report['full_update_peak_bytes'] / report['peak_sram_bytes']:.1f}x more); MACs per step "
                 f"{report['macs_per_step']:,} vs {report['full_update_macs_per_step']:,}")
    if "gain_points" in report:
        stdout.print(f"  measured gain: +{report['gain_points']} points over {report['base_accuracy']} % (summed)")
    if not report["fits"]:
        stdout.print(f"[red]the smallest scheme found needs {report['peak_sram_bytes']:,} B, over the budget[/]")
        return 1
    return 0
