"""tinyadapt stream: stream a data set through a model on a device, resumable after a crash."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tinyadapt.cli.device_args import add_device_arguments, device_options, device_target
from tinyadapt.errors import DeviceError, InputError
from tinyadapt.cli.plan_args import add_plan_arguments

log = logging.getLogger(__name__)

NAME = "stream"
HELP = "stream samples through a model on a device (QEMU or a flashed board), resumably"
DESCRIPTION = """\
Send every sample of --data through MODEL on a device, one INFER request per sample, with a
live progress bar (throughput, and accuracy when --labels are given). Progress is written
atomically to a state file (--state; default <data>.<model>.stream.json in the current
directory), so when the device dies the command stops with one line, and --resume STATE
continues where it stopped: no sample is lost and none is counted twice.

--data: .npy [N, *input shape] (a .npz uses its 'x' array), or .csv with one flattened
sample per row; float data for an int8 model input is quantized with the input's scale.
--labels: .npy/.csv/.txt of N class indices (a .npz uses 'y'); accuracy compares them with
the argmax of the model's first output."""
EPILOG = """\
examples:
  tinyadapt stream --model models/digits/digits_cnn.tflite --data x.npy --labels y.npy
  tinyadapt stream --model model.tflite --data x.npy --board stm32f746g-disco --target qemu
  tinyadapt stream --model model.tflite --data x.csv --port /dev/ttyACM0 --output y.npy
  tinyadapt stream --resume x.model.stream.json              (continue after a crash)
  tinyadapt stream --model m.tflite --data x.npy --inject-faults 0.01 --json   (link torture test)"""


def add_arguments(p) -> None:
    p.add_argument("--model", "-m", metavar="MODEL", help=".tflite model or .tamb blob (with --resume: optional)")
    p.add_argument("--data", "-d", metavar="FILE", help="samples: .npy, .npz or .csv (with --resume: optional)")
    p.add_argument("--labels", "-l", metavar="FILE", help="class index per sample, for live accuracy")
    p.add_argument("--state", metavar="STATE.json", help="where to keep progress (default <data>.<model>.stream.json)")
    p.add_argument("--resume", metavar="STATE.json", help="continue the stream recorded in STATE.json")
    p.add_argument("--restart", action="store_true", help="start over even if the state file holds progress")
    p.add_argument("--output", "-o", metavar="Y.npy", help="when complete, save all outputs (.npy; .npz for several)")
    p.add_argument("--limit", type=int, metavar="N", help="stop after N samples (resume later)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (schema 1)")
    add_device_arguments(p, faults=True)
    add_plan_arguments(p, with_board=False)


def run(args) -> int:
    from tinyadapt.cli.run_cmd import load_model_blob
    from tinyadapt.convert.blob import read_blob
    from tinyadapt.report.console import progress_enabled
    from tinyadapt.session.device import open_device
    from tinyadapt.session.stream import (StreamState, check_resume, load_labels, load_stream_data, new_state,
                                          stream_samples)

    state = None
    if args.resume:
        state = StreamState.load(args.resume)
        args.model = args.model or state.model
        args.data = args.data or state.data
        if args.labels is None and state.labels:
            args.labels = state.labels
    if not args.model or not args.data:
        raise InputError("stream needs --model and --data (or --resume STATE.json)")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    target = device_target(args)
    opts = device_options(args, Path(args.model).stem)
    blob, _info = load_model_blob(args.model, args)
    blob_info = read_blob(blob)
    samples = load_stream_data(args.data, blob_info)
    labels = load_labels(args.labels, len(samples)) if args.labels else None

    if state is not None:
        check_resume(state, blob, args.data, args.labels)
        if state.total != len(samples):
            raise InputError(f"{args.resume} expects {state.total} samples, {args.data} has {len(samples)}")
    else:
        path = Path(args.state or f"{Path(args.data).stem}.{Path(args.model).stem}.stream.json")
        if path.exists() and not args.restart:
            try:
                old = StreamState.load(path)
                held = f" ({old.done} of {old.total} samples done)"
            except InputError:
                held = ""
            raise InputError(f"state file {path} already exists{held}: pass --resume {path} to continue, "
                             "or --restart to start over")
        state = new_state(path, args.model, blob, blob_info, args.data, args.labels, len(samples))
        state.save()
    state.label_values = labels

    if state.complete or state.done >= state.total:
        log.info("%s: all %d samples were already done", state.path, state.total)
        return _finish(args, state, None, target, 0.0, 0)

    show = progress_enabled(args.json) and not args.quiet
    dev = open_device(blob, opts, target=target)
    try:
        if show:
            result = _with_progress_bar(dev, state, samples, labels, args.limit, stream_samples)
        else:
            result = stream_samples(dev, state, samples, labels, limit=args.limit)
        extra = _device_figures(dev, result)
    finally:
        dev.close()
    extra.update(_proxy_figures(dev))
    return _finish(args, state, extra, target, result.seconds, result.answered, result.started_at)


def _with_progress_bar(dev, state, samples, labels, limit, stream_samples):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from tinyadapt.report.console import stderr

    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:>7.1f} samples/s"), TextColumn("{task.fields[acc]}"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=stderr, transient=False) as bar:
        task = bar.add_task(f"streaming on {dev.board or 'device'}", total=state.total, completed=state.done,
                            rate=0.0, acc="")

        def progress(done, total, correct, rate):
            acc = f"acc {100.0 * correct / done:5.1f}%" if correct is not None and done else ""
            bar.update(task, completed=done, rate=rate, acc=acc)

        return stream_samples(dev, state, samples, labels, progress=progress, limit=limit)


def _device_figures(dev, result) -> dict:
    link = dev.link.stats
    out = {"board": dev.board, "device": dev.info.board, "core": dev.info.core, "counter_unit": dev.counter_unit,
           "link": link.as_dict()}
    try:
        out["device_metrics"] = dev.metrics().as_dict()
    except DeviceError as exc:   # the device is gone: the stream result stands without its counters
        log.warning("could not read the device metrics: %s", exc)
    return out


def _proxy_figures(dev) -> dict:
    proxy = getattr(dev.backend, "proxy", None)
    return {"faults": proxy.stats.as_dict()} if proxy is not None else {}


def _finish(args, state, extra, target, seconds, answered, started_at=None) -> int:
    from tinyadapt.cli.files import atomic_save_npy

    if state.complete and args.output:
        outs = state.output_arrays()
        if len(outs) == 1 and not args.output.endswith(".npz"):
            atomic_save_npy(args.output, outs[0])
        else:
            atomic_save_npy(args.output, {f"output_{k}": o for k, o in enumerate(outs)})
    counts = state.instructions
    correct = state.correct
    summary = {
        "schema": 1, "model": state.model, "data": state.data, "labels": state.labels, "target": target,
        "state": str(state.path), "total": state.total, "done": state.done, "complete": state.complete,
        "started_at": state.done - answered if started_at is None else started_at, "answered": answered,
        "seconds": round(seconds, 6), "samples_per_second": round(answered / seconds, 3) if seconds else None,
        "correct": correct, "accuracy": round(correct / state.done, 6) if correct is not None and state.done else None,
        "instructions": {"mean": round(sum(counts) / len(counts), 1), "min": min(counts), "max": max(counts)}
        if counts else None,
        "segments": state.segments, "output": args.output if state.complete and args.output else None,
    }
    summary.update(extra or {})
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        rate = f", {answered / seconds:.1f} samples/s" if seconds and answered else ""
        acc = f", accuracy {100.0 * correct / state.done:.2f}% ({correct}/{state.done})" if correct is not None \
            and state.done else ""
        status = "complete" if state.complete else f"{state.done} of {state.total} done, continue with --resume {state.path}"
        print(f"streamed {answered} sample(s) in {seconds:.2f} s{rate}{acc}; {status}")
    return 0

