"""tinyadapt run: run a model on samples from .npy files and save the raw outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tinyadapt.cli.device_args import add_device_arguments, device_options, device_target
from tinyadapt.cli.plan_args import add_plan_arguments
from tinyadapt.cli.files import atomic_save_npy, check_output_path, load_npy
from tinyadapt.errors import InputError, TinyAdaptError

NAME = "run"
HELP = "run a model on input samples (.npy) and save its raw outputs"
DESCRIPTION = """\
Run MODEL on the sample(s) in --input and write the model's raw output tensor(s) to
--output. The input holds one sample of the model's input shape and dtype, or a stack of
samples along a new first axis ([N, 1, 28, 28, 1], or [N, 28, 28, 1] for a model input of
[1, 28, 28, 1], as 'stream' takes them); the output is one sample, or a stack
[N, *output shape], in the model's output dtype. The host target runs the tinyadapt C engine in-process (the same C code the device
runs); the qemu target builds the firmware for --board, starts it on QEMU and runs every
sample over the serial protocol (with --json: instructions per sample, and the arena bytes
the device actually touched as peak_sram_bytes); --port runs on a flashed board, which
reports cycles (or, the POSIX port, time_ns) instead of instructions."""
EPILOG = """\
examples:
  tinyadapt run models/digits/digits_cnn.tflite --input x.npy --output y.npy
  tinyadapt run model.tflite --input x.npy --output y.npy --json
  tinyadapt run model.tflite -i x.npy -o y.npy --target qemu --board qemu-an500 --json
  tinyadapt run model.tflite -i x.npy -o y.npy --target qemu --board stm32f746g-disco   (F746 budget on QEMU)
  tinyadapt run model.tflite -i x.npy -o y.npy --port /dev/ttyACM0                      (a flashed board)
  (a model with several inputs takes --input once per input; several outputs need --output y.npz)"""

TARGETS = ["host", "qemu", "device"]


def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL", help=".tflite model (converted on the fly) or a .tamb blob")
    p.add_argument("--input", "-i", action="append", required=True, metavar="X.npy",
                   help="input samples (repeat for each model input, in order)")
    p.add_argument("--output", "-o", required=True, metavar="Y.npy", help="where to save the outputs (.npy or .npz)")
    p.add_argument("--target", default=None, choices=TARGETS,
                   help="where to run: host (default), qemu (emulated board), device (a flashed board on --port)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (schema 1)")
    add_device_arguments(p, target=False, faults=True)
    add_plan_arguments(p, with_board=False)


def load_model_blob(path: str, args=None, activity=None) -> tuple[bytes, dict]:
    """A .tflite (converted now, planned under the command's budget or board) or an existing
    blob; returns (blob, info for JSON)."""
    from tinyadapt.cli.plan_args import plan_kwargs
    from tinyadapt.convert import convert

    if Path(path).suffix in (".tamb", ".bin"):
        try:
            return Path(path).read_bytes(), {}
        except OSError as exc:
            raise TinyAdaptError(f"cannot read {path}: {exc.strerror}") from None
    if activity is not None:
        activity.step(f"converting {Path(path).name}")
    model = convert(path, **(plan_kwargs(args, board=getattr(args, "board", None)) if args is not None else {}))
    info = {"peak_sram_bytes": model.peak_sram_bytes, "layer_by_layer_peak_bytes": model.layer_by_layer_peak_bytes,
            "patch": (model.patch.summary() if model.patch else None)}
    return model.blob, info


def run(args) -> int:
    from tinyadapt.convert.blob import read_blob
    from tinyadapt.report.activity import TerminalActivity
    from tinyadapt.report.console import progress_enabled
    from tinyadapt.session.run import run_samples
    from tinyadapt.session.samples import TensorSpec, as_samples

    args.target = device_target(args, default="host")
    if args.target not in TARGETS:
        raise TinyAdaptError(f"target '{args.target}' is not available in this build (available: {', '.join(TARGETS)})")
    if args.target == "host" and (args.board or args.inject_faults):
        raise InputError("--board and --inject-faults are for --target qemu")
    check_output_path(args.output)
    with TerminalActivity(progress_enabled(args.json) and not args.quiet) as activity:
        blob, info = load_model_blob(args.model, args, activity)
        meta = read_blob(blob)
        if len(args.input) != len(meta.inputs):
            raise InputError(f"the model has {len(meta.inputs)} input(s), {len(args.input)} --input given")
        specs = [TensorSpec(f"input {k}", meta.tensors[i].shape, meta.tensors[i].dtype)
                 for k, i in enumerate(meta.inputs)]
        stacks, stacked = [], []
        for path, spec in zip(args.input, specs):
            xs, s = as_samples(load_npy(path), spec, path)
            stacks.append(xs)
            stacked.append(s)
        n = len(stacks[0])
        if any(len(s) != n for s in stacks) or len(set(stacked)) > 1:
            raise InputError("all --input files must hold the same number of samples")
        if len(meta.outputs) > 1 and not args.output.endswith(".npz"):
            raise InputError(f"the model has {len(meta.outputs)} outputs: use an .npz --output")

        t0 = time.perf_counter()
        device = device_options(args, Path(args.model).stem) if args.target != "host" else None
        result = run_samples(args.target, blob, stacks, activity=activity, device=device)
    seconds = time.perf_counter() - t0
    outs = result.outputs if stacked[0] else [o[0] for o in result.outputs]
    if len(outs) == 1 and not args.output.endswith(".npz"):
        atomic_save_npy(args.output, outs[0])
    else:
        atomic_save_npy(args.output, {f"output_{k}": o for k, o in enumerate(outs)})

    summary = {"schema": 1, "model": args.model, "target": args.target, "samples": n,
               "output": args.output, "seconds": round(seconds, 6),
               "outputs": [{"shape": list(o.shape), "dtype": o.dtype.name} for o in outs], **info}
    summary.update(result.extra)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        print(f"ran {n} sample(s) on {args.target} in {seconds:.3f} s -> {args.output}")
    return 0
