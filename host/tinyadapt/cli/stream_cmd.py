"""tinyadapt stream: stream a data set through a model on a device, resumable after a crash."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tinyadapt.cli.device_args import add_device_arguments, device_options, device_target
from tinyadapt.errors import DeviceError, InputError
from tinyadapt.cli.plan_args import add_plan_arguments

log = logging.getLogger(__name__)

MIN_BAR = 10   # columns: a shorter bar says nothing the N/M beside it does not

NAME = "stream"
HELP = "stream samples through a model on a device (QEMU or a flashed board), resumably"
DESCRIPTION = """\
Send every sample of --data through MODEL on a device, one INFER request per sample, with a
live progress bar (throughput, and accuracy when --labels are given). Progress is written
atomically to a state file (--state; default <data>.<model>.stream.json in the current
directory), so when the device dies the command stops with one line, and running the same
command again (or --resume STATE) continues where it stopped: no sample is lost and none is
counted twice. Once every sample is done, running it again reports the finished result
(and writes --output) without touching the device; --restart starts over.

--data: .npy [N, *input shape], or [N, *input shape without its batch axis of 1] (a .npz
uses its 'x' array), or .csv with one flattened sample per row; float data for an int8
model input is quantized with the input's scale.
--labels: .npy/.csv/.txt of N class indices (a .npz uses 'y'); accuracy compares them with
the argmax of the model's first output."""
EPILOG = """\
examples:
  tinyadapt stream --model models/digits/digits_cnn.tflite --data x.npy --labels y.npy
  tinyadapt stream --model model.tflite --data x.npy --board stm32f746g-disco --target qemu
  tinyadapt stream --model model.tflite --data x.csv --port /dev/ttyACM0 --output y.npy
  tinyadapt stream --resume x.model.stream.json              (continue after a crash)
  tinyadapt stream --model m.tflite --data x.npy --restart   (start over, discarding the saved progress)
  tinyadapt stream --model m.tflite --data x.npy --inject-faults 0.01 --json   (link torture test)"""


def add_arguments(p) -> None:
    p.add_argument("--model", "-m", metavar="MODEL", help=".tflite model or .tamb blob (with --resume: optional)")
    p.add_argument("--data", "-d", metavar="FILE", help="samples: .npy, .npz or .csv (with --resume: optional)")
    p.add_argument("--labels", "-l", metavar="FILE", help="class index per sample, for live accuracy")
    p.add_argument("--state", metavar="STATE.json", help="where to keep progress (default <data>.<model>.stream.json)")
    p.add_argument("--resume", metavar="STATE.json", help="continue the stream recorded in STATE.json")
    p.add_argument("--restart", action="store_true",
                   help="start over, discarding the progress (finished or not) in the state file")
    p.add_argument("--output", "-o", metavar="Y.npy", help="when complete, save all outputs (.npy; .npz for several)")
    p.add_argument("--limit", type=int, metavar="N", help="stop after N samples (resume later)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (schema 1)")
    add_device_arguments(p, faults=True)
    add_plan_arguments(p, with_board=False)


def run(args) -> int:
    from tinyadapt.cli.run_cmd import load_model_blob
    from tinyadapt.convert.blob import read_blob
    from tinyadapt.cli.files import check_output_path
    from tinyadapt.report.activity import TerminalActivity
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
    if args.resume and args.restart:
        raise InputError("--resume continues a stream and --restart starts it over: pass one of them")
    if args.output:
        check_output_path(args.output)
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
            state = _same_stream(path, blob, args, len(samples))
        if state is None:
            state = new_state(path, args.model, blob, blob_info, args.data, args.labels, len(samples))
            state.save()
    state.label_values = labels

    if state.complete or state.done >= state.total:
        log.info("%s: all %d samples were already done", state.path, state.total)
        return _finish(args, state, None, target, 0.0, 0)

    show = progress_enabled(args.json) and not args.quiet
    with TerminalActivity(show) as activity:
        opts.activity = activity
        dev = open_device(blob, opts, target=target)
    opts.activity = None
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


def _same_stream(path: Path, blob: bytes, args, total: int):
    """The progress in `path` when it is this very stream (same model, data and labels):
    running the command again continues it, or reports it when finished."""
    from tinyadapt.session.stream import StreamState, check_resume

    try:
        old = StreamState.load(path)
        check_resume(old, blob, args.data, args.labels)
        if old.total != total:
            raise InputError(f"{path} expects {old.total} samples, {args.data} has {total}")
    except InputError as exc:
        raise InputError(f"state file {path} holds another stream ({exc}): pass --state to keep both, "
                         "or --restart to start over") from None
    if old.complete:
        log.info("%s: this stream is complete (%d samples); --restart starts it over", path, old.total)
    else:
        log.info("%s: continuing at sample %d of %d", path, old.done, old.total)
    return old


def bar_columns(width: int, total: int, label: str, with_accuracy: bool) -> list:
    """The progress bar's columns for a terminal `width` columns wide. Samples done, rate and
    accuracy always show; the time left, the label, the elapsed time and the bar's length
    give way, in that order, to a narrow terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    width -= 1                              # rich wraps a line that fills the last column
    shown = [MofNCompleteColumn(), TextColumn("{task.fields[rate]:>7.1f}/s")]
    used = (2 * len(str(total)) + 1) + 10   # N/M and the rate, up to 99999.9/s
    if with_accuracy:
        shown.append(TextColumn("{task.fields[acc]}"))
        used += len("acc 100.0%")
    room = width - used - (len(shown) - 1)
    keep = {}
    for name, column, w in (("remaining", TimeRemainingColumn(), 7), ("label", TextColumn("{task.description}"), len(label)),
                            ("elapsed", TimeElapsedColumn(), 7)):
        if room - (w + 1) >= MIN_BAR + 1:
            keep[name] = column
            room -= w + 1
    lead = [keep["label"]] if "label" in keep else []
    if room - 1 >= MIN_BAR:
        lead.append(BarColumn(bar_width=min(40, room - 1)))
    return lead + shown + [keep[k] for k in ("elapsed", "remaining") if k in keep]


def _with_progress_bar(dev, state, samples, labels, limit, stream_samples):
    from rich.console import Console
    from rich.progress import Progress

    from tinyadapt.report.console import terminal_columns

    width = terminal_columns()
    label = dev.board or "device"
    console = Console(stderr=True, highlight=False, width=width)
    with Progress(*bar_columns(width, state.total, label, labels is not None), console=console,
                  transient=False) as progress_bar:
        task = progress_bar.add_task(label, total=state.total, completed=state.done, rate=0.0, acc="")

        def progress(done, total, correct, rate):
            acc = f"acc {100.0 * correct / done:5.1f}%" if correct is not None and done else ""
            progress_bar.update(task, completed=done, rate=rate, acc=acc)

        return stream_samples(dev, state, samples, labels, progress=progress, limit=limit)


def _device_figures(dev, result) -> dict:
    link = dev.link.stats
    out = {"board": dev.board, "device": dev.info.board, "core": dev.info.core,
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
    from tinyadapt.report.counters import counter_fields

    counts = state.instructions
    correct = state.correct
    stats = {"mean": round(sum(counts) / len(counts), 1), "min": min(counts), "max": max(counts)} if counts else None
    summary = {
        "schema": 1, "model": state.model, "data": state.data, "labels": state.labels, "target": target,
        "state": str(state.path), "total": state.total, "done": state.done, "complete": state.complete,
        "started_at": state.done - answered if started_at is None else started_at, "answered": answered,
        "seconds": round(seconds, 6), "samples_per_second": round(answered / seconds, 3) if seconds else None,
        "correct": correct, "accuracy": round(correct / state.done, 6) if correct is not None and state.done else None,
        "counter_unit": state.counter_unit, **counter_fields(state.counter_unit, stats),
        "segments": state.segments, "output": args.output if state.complete and args.output else None,
    }
    summary.update(extra or {})
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        rate = f", {answered / seconds:.1f} samples/s" if seconds and answered else ""
        acc = f", accuracy {100.0 * correct / state.done:.2f}% ({correct}/{state.done})" if correct is not None \
            and state.done else ""
        if state.complete and not answered:
            print(f"stream already complete: {state.done} sample(s){acc}; progress in {state.path} "
                  "(--restart starts over)")
        else:
            status = "complete" if state.complete else \
                f"{state.done} of {state.total} done, continue with --resume {state.path}"
            print(f"streamed {answered} sample(s) in {seconds:.2f} s{rate}{acc}; {status}")
    return 0

