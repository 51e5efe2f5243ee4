"""tinyadapt tta-prepare: attach early-exit heads to an int8 model for test-time adaptation."""

from __future__ import annotations

import json
from pathlib import Path

from tinyadapt.errors import InputError

NAME = "tta-prepare"
HELP = "cut a model into submodules with early-exit heads, for test-time adaptation (TinyTTA)"
DESCRIPTION = """\
Prepare MODEL for early-exit test-time adaptation (docs/TTA.md). The int8 backbone stays as
it is; at op boundaries where a single activation is live, a small exit head (1x1 conv with
weight standardisation, per-channel affine, ReLU, global average pooling, fully connected) is
trained in NumPy on the backbone's int8 activations for --data/--labels (the source data),
quantized to int8 and written as its own .tflite. --exits K heads are kept: the deepest one
always answers; the earlier ones are those saving the most MACs while the early-exit policy
stays within --max-drop of the last exit's accuracy on a held-out quarter of the data, and
whose arena fits --board (or --budget) next to the backbone's. Each early exit gets an entropy
threshold calibrated there.

OUT is a folder: manifest.json, backbone.tflite, head_<k>.tflite, heads.npz. --data takes the
model's input dtype or float32 (quantized with the input's scale for an int8 model)."""
EPILOG = """\
examples:
  tinyadapt tta-prepare models/digits/digits_cnn.tflite --data x.npy --labels y.npy -o digits.tta
  tinyadapt tta-prepare model.tflite --data x.npy --labels y.npy --exits 3 --board stm32f746g-disco -o m.tta --json
  (source data for the shipped models: python -m tinyadapt.tta.streams --help)"""


def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL", help="int8 .tflite model")
    p.add_argument("--data", "-d", required=True, metavar="X.npy", help="source samples [N, *input shape]")
    p.add_argument("--labels", "-l", required=True, metavar="Y.npy", help="class index per sample")
    p.add_argument("--exits", type=int, default=2, metavar="K", help="number of exits, 1..4 (default 2)")
    p.add_argument("--board", metavar="BOARD", help="board whose SRAM the backbone plus each head must fit")
    p.add_argument("--budget", type=int, metavar="BYTES", help="SRAM budget in bytes instead of --board")
    p.add_argument("--max-drop", type=float, default=0.01, metavar="F",
                   help="accuracy early exits may cost on held-out source data (default 0.01)")
    p.add_argument("--epochs", type=int, default=60, metavar="N", help="head training epochs (default 60)")
    p.add_argument("--augment-shifts", type=int, default=0, metavar="N",
                   help="add N circularly time-shifted copies of each training series (small sensor sets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", "-o", required=True, metavar="OUT", help="the prepared model's folder")
    p.add_argument("--json", action="store_true", help="print a JSON summary (schema 1)")


def run(args) -> int:
    from tinyadapt.convert import convert
    from tinyadapt.convert.blob import read_blob
    from tinyadapt.session.stream import load_labels, load_stream_data
    from tinyadapt.tta.prepare import prepare, write

    if not Path(args.model).is_file():
        raise InputError(f"model file {args.model} does not exist")
    if args.epochs < 1:
        raise InputError("--epochs must be at least 1")
    budget = args.budget
    if budget is None and args.board:
        from tinyadapt.cli.plan_args import board_budget

        budget = board_budget(args.board)
    info = read_blob(convert(args.model).blob)
    x = load_stream_data(args.data, info)
    y = load_labels(args.labels, len(x))
    quiet = args.json or args.quiet
    man = prepare(args.model, x, y, exits=args.exits, budget=budget, max_drop=args.max_drop, seed=args.seed,
                  epochs=args.epochs, augment_rolls=args.augment_shifts, log=(lambda *a: None) if quiet else print)
    write(man, args.output)
    cal = man["calibration"]
    summary = {"schema": 1, "model": args.model, "output": args.output, "exits": [
        {"after_op": e["cut_op"] - 1, "threshold": e["threshold"], "macs_backbone": e["macs_backbone"],
         "macs_head": e["macs_head"], "head_arena_bytes": e["head_arena_bytes"]} for e in man["exits"]],
        "macs_full": man["macs_full"], "backbone_arena_bytes": man["backbone_arena_bytes"], **cal}
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        print(f"wrote {args.output}: {len(man['exits'])} exits, held-out accuracy {cal['early_exit_accuracy']:.3f} "
              f"(last exit only {cal['last_exit_accuracy']:.3f}), MACs saved {cal['macs_saved']:.1%}")
    return 0
