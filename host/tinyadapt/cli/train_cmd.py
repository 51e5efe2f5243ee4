"""tinyadapt train: fine-tune a deployed int8 model on labelled samples, on the host or a device."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from tinyadapt.cli.train_args import add_budget_arguments, budget_of, load_npy

NAME = "train"
HELP = "fine-tune an int8 model with the sparse on-device update (host target or emulated board)"
DESCRIPTION = """\
Train a model the way a microcontroller does: batch size 1, int8 forward pass, float32
backward pass of only the layers the update scheme touches, SGD with quantization-aware
scaling, inside the SRAM budget. The scheme comes from plan-update's search (its documented
prior; see tinyadapt plan-update --help) unless --bias-depth/--layer give it. Samples stream
in shuffled each epoch; loss and accuracy show live; the evaluation set (--eval-data/
--eval-labels, or else the last 20 % of --data) is scored before and after.

--target host runs the C engine and trainer in-process (exactly the device's code); --target
qemu runs them on an emulated board over the serial link. --save writes the adapted model
as a standard int8 .tflite (the original file with the updated weight and bias buffers),
which `tinyadapt run` and TensorFlow Lite Micro run with the trainer's predictions.
--nvm FILE (with --target qemu) backs the emulated board's NVM with FILE: the session starts
from the parameters a previous session saved there for this model (if any) and SAVEs the
adapted ones there at the end (atomically, as on a board's flash), so training carries over
from one run to the next, as it would across reboots of a device.
Float data (.npy float32) is quantized with the model input's scale and zero point."""
EPILOG = """\
examples:
  tinyadapt train models/digits/digits_cnn.tflite --data x.npy --labels y.npy --epochs 3
  tinyadapt train model.tflite --data x.npy --labels y.npy --eval-data xe.npy --eval-labels ye.npy \\
      --board stm32f746g-disco --save adapted.tflite --report curves.html --json
  tinyadapt train model.tflite --data x.npy --labels y.npy --bias-depth 3 --layer 4:1 --layer 3:0.25
  tinyadapt train model.tflite --data day1.npy --labels y1.npy --target qemu --nvm board.nvm
  tinyadapt train model.tflite --data day2.npy --labels y2.npy --target qemu --nvm board.nvm   # goes on

--json keys: accuracy_before, accuracy_after, peak_sram_bytes (planned on host, measured on a
device), instructions_per_step (null on host), steps, epochs [...], scheme {...}; with --nvm also
nvm {path, resumed_revision (null: started from the base), saved_revision, saved_bytes}."""


def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL.tflite")
    p.add_argument("--data", required=True, metavar="X.npy", help="training samples [N, ...]")
    p.add_argument("--labels", required=True, metavar="Y.npy", help="their integer labels [N]")
    p.add_argument("--eval-data", dest="eval_data", metavar="X.npy", help="evaluation samples")
    p.add_argument("--eval-labels", dest="eval_labels", metavar="Y.npy", help="evaluation labels")
    p.add_argument("--epochs", type=int, default=3, help="passes over the data (default 3)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    p.add_argument("--schedule", choices=["cosine", "constant"], default="cosine",
                   help="learning-rate schedule over the run (default cosine decay to 0)")
    p.add_argument("--seed", type=int, default=0, help="shuffling seed (default 0)")
    p.add_argument("--target", default="host", choices=["host", "qemu"], help="where to train (default host)")
    add_budget_arguments(p)
    p.add_argument("--bias-depth", type=int, dest="bias_depth", help="update the biases of the last K layers")
    p.add_argument("--layer", action="append", default=[], metavar="I:R",
                   help="update the weights of layer I at channel ratio R (repeatable)")
    p.add_argument("--save", metavar="OUT.tflite", help="write the adapted model")
    p.add_argument("--nvm", metavar="FILE", help="--target qemu: the board's NVM file; resume from the parameters "
                                                 "saved there and SAVE the adapted ones back (created erased)")
    p.add_argument("--report", metavar="OUT.png|OUT.html", help="write loss/accuracy curves")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _scheme(args, n_layers: int):
    from tinyadapt.errors import InputError
    from tinyadapt.train.scheme import UpdateScheme

    if args.bias_depth is None and not args.layer:
        return None
    weights = {}
    for item in args.layer:
        m = re.fullmatch(r"(\d+):([0-9.]+)", item)
        if not m:
            raise InputError(f"--layer takes I:R (e.g. 4:0.5), got '{item}'")
        weights[int(m[1])] = float(m[2])
    return UpdateScheme(bias_depth=args.bias_depth or 0, weights=weights)


def run(args) -> int:
    from tinyadapt.convert import convert
    from tinyadapt.errors import InputError
    from tinyadapt.train.graph import build_training, weight_layers
    from tinyadapt.train.search import prior_gains, search
    from tinyadapt.train.session import load_samples, open_target, train

    if args.epochs < 0:
        raise InputError(f"--epochs must be >= 0, got {args.epochs}")
    if not (args.lr >= 0 and np.isfinite(args.lr)):
        raise InputError(f"--lr must be a finite non-negative number, got {args.lr}")
    if (args.eval_data is None) != (args.eval_labels is None):
        raise InputError("--eval-data and --eval-labels go together")
    if args.save and not args.save.endswith(".tflite"):
        raise InputError(f"--save writes a .tflite file, got {args.save}")
    if args.nvm and args.target != "qemu":
        raise InputError("--nvm is the emulated board's NVM: it needs --target qemu")
    if args.nvm and Path(args.nvm).is_dir():
        raise InputError(f"--nvm {args.nvm} is a directory, not an NVM file")
    budget = budget_of(args)
    x_raw, y_raw = load_npy(args.data, "--data"), load_npy(args.labels, "--labels")
    cm = convert(args.model)
    n = len(weight_layers(cm))
    scheme = _scheme(args, n)
    if scheme is None:
        scheme, _ = search(cm, prior_gains(n), budget)
    plan = build_training(cm, scheme, budget=budget)
    x, y = load_samples(plan, x_raw, y_raw, "--data")
    if args.eval_data:
        xe, ye = load_samples(plan, load_npy(args.eval_data, "--eval-data"), load_npy(args.eval_labels, "--eval-labels"),
                              "--eval-data")
    else:
        cut = max(1, int(0.8 * len(y)))
        x, xe, y, ye = x[:cut], x[cut:], y[:cut], y[cut:]
    nvm = {"nvm": args.nvm, "persist": True, "resume": True} if args.nvm else {}
    target = open_target(args.target, plan, board=args.board, **nvm)
    try:
        res = _train_live(args, target, x, y, xe, ye)
        image = target.params()
        peak = target.peak_sram_bytes
        instructions = target.instructions_per_step
    finally:
        target.close()                  # with --nvm: SAVE first
    report = {
        "schema": 1,
        "model": args.model,
        "target": args.target,
        "accuracy_before": res.accuracy_before,
        "accuracy_after": res.accuracy_after,
        "peak_sram_bytes": peak if peak is not None else plan.peak_sram_bytes,
        "peak_sram_source": "device high-water mark" if peak is not None else "planned (host target)",
        "instructions_per_step": instructions,
        "macs_per_step": plan.macs_per_step,
        "steps": res.steps,
        "learning_rate": args.lr,
        "schedule": args.schedule,
        "epochs": res.epochs,
        "scheme": scheme.to_json(),
        "seconds": round(res.seconds, 3),
    }
    if args.nvm:
        saved = target.saved
        report["nvm"] = {"path": args.nvm, "resumed_revision": target.resumed_revision,
                         "saved_revision": saved.revision, "saved_bytes": saved.bytes}
    if args.save:
        from tinyadapt.cli.files import atomic_write
        from tinyadapt.train.tflite_patch import patched_tflite

        atomic_write(args.save, patched_tflite(Path(args.model).read_bytes(), plan, image))
        report["saved"] = args.save
    if args.report:
        from tinyadapt.report.train import write_report

        write_report({**report, "losses": res.losses}, args.report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    from tinyadapt.report.console import human_bytes, stdout

    stdout.print(f"accuracy on {len(ye)} evaluation samples: {100 * res.accuracy_before:.2f} % before, "
                 f"[bold]{100 * res.accuracy_after:.2f} %[/] after {res.steps} steps ({res.seconds:.1f} s)")
    stdout.print(f"scheme: {scheme.describe()}; training step {human_bytes(report['peak_sram_bytes'])} "
                 f"({report['peak_sram_source']})")
    if args.nvm:
        n = report["nvm"]
        start = f"resumed from revision {n['resumed_revision']}" if n["resumed_revision"] else "started from the base"
        stdout.print(f"NVM {args.nvm}: {start}; saved revision {n['saved_revision']} ({n['saved_bytes']:,} B)")
    if args.save:
        stdout.print(f"wrote {args.save}")
    return 0


def _train_live(args, target, x, y, xe, ye):
    from tinyadapt.report.console import progress_enabled, stderr
    from tinyadapt.train.session import train

    if not progress_enabled(args.json):
        res = train(target, x, y, xe, ye, args.epochs, args.lr, seed=args.seed, schedule=args.schedule)
        if not args.json:
            for e in res.epochs:
                stderr.print(f"epoch {e['epoch']}: loss {e['loss']:.4f}, train acc {100 * e['train_accuracy']:.1f} %, "
                             f"eval acc {100 * e['eval_accuracy']:.1f} %")
        return res
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[stats]}"), console=stderr) as bar:
        task = bar.add_task("training", total=args.epochs * len(y), stats="")
        state = {"loss": None}

        def on_step(epoch, k, loss, acc):
            state["loss"] = loss if state["loss"] is None else 0.98 * state["loss"] + 0.02 * loss
            bar.update(task, advance=1, description=f"epoch {epoch + 1}/{args.epochs}",
                       stats=f"loss {state['loss']:.3f}  acc {100 * acc:.1f} %")

        return train(target, x, y, xe, ye, args.epochs, args.lr, seed=args.seed, on_step=on_step,
                     schedule=args.schedule)
