"""tinyadapt metrics: a device's counters and a model's per-layer instruction profile."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from tinyadapt.cli.device_args import add_device_arguments, device_options, device_target
from tinyadapt.errors import InputError
from tinyadapt.cli.plan_args import add_plan_arguments

log = logging.getLogger(__name__)

NAME = "metrics"
HELP = "measure a model on a device: per-layer instructions, arena and stack high-water marks"
DESCRIPTION = """\
Run MODEL once on a device with per-op profiling and print the instructions (cycles on a
real board, nanoseconds on the POSIX port) each layer took, with its share and count per
MAC, then the device's METRICS counters: frames, CRC errors, NAKs, duplicates, invokes, and the arena and stack
bytes actually touched (high-water marks of painted memory). On QEMU (-icount shift=7) the
counts are exact and repeat run to run. Without --model, only the device counters of a
flashed board (--port) are read. The JSON names the unit (counter_unit) and puts the counts
under "instructions", "cycles" or "time_ns" (and "count"); "instructions" is null on a
device that does not count instructions."""
EPILOG = """\
examples:
  tinyadapt metrics --model models/digits/digits_cnn.tflite
  tinyadapt metrics --model model.tflite --input x.npy --board qemu-an500 --json
  tinyadapt metrics --model model.tflite --html report.html --png profile.png
  tinyadapt metrics --port /dev/ttyACM0                        (counters of a flashed board)"""


def add_arguments(p) -> None:
    p.add_argument("--model", "-m", metavar="MODEL", help=".tflite model or .tamb blob to profile")
    p.add_argument("--input", "-i", metavar="X.npy",
                   help="sample to profile with (the first one of a stack; default: zeros at the input zero point)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (schema 1)")
    p.add_argument("--html", metavar="REPORT.html", help="write an HTML report with the profile plot")
    p.add_argument("--png", metavar="REPORT.png", help="write the profile plot as PNG")
    add_device_arguments(p)
    add_plan_arguments(p, with_board=False)


def _sample(path: str | None, blob_info) -> list[np.ndarray]:
    from tinyadapt.cli.files import load_npy
    from tinyadapt.session.samples import TensorSpec, as_samples

    xs = []
    for k, index in enumerate(blob_info.inputs):
        t = blob_info.tensors[index]
        if path is None:
            fill = t.zero_point if np.dtype(t.dtype) == np.int8 else 0
            xs.append(np.full(t.shape, fill, dtype=t.dtype))
            continue
        if len(blob_info.inputs) > 1:
            raise InputError("--input takes models with one input; this one has several (omit --input)")
        stack, _ = as_samples(load_npy(path), TensorSpec(f"input {k}", t.shape, t.dtype), path)
        xs.append(stack[0])
    return xs


def run(args) -> int:
    from tinyadapt.cli.files import check_output_path
    from tinyadapt.report.device import device_report, print_report, write_html, write_png

    target = device_target(args)
    for path in (args.png, args.html):
        if path:
            check_output_path(path)
    if args.model is None:
        if target != "device":
            raise InputError("metrics needs --model (or --port for the counters of a flashed board)")
        report = _counters_only(args)
    else:
        report = _profile(args, target)
    if args.png:
        write_png(report, args.png)
    if args.html:
        write_html(report, args.html)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.quiet:
        print_report(report)
        for path in (args.png, args.html):
            if path:
                print(f"wrote {path}")
    return 0


def _profile(args, target: str) -> dict:
    from tinyadapt.cli.run_cmd import load_model_blob
    from tinyadapt.convert.blob import read_blob
    from tinyadapt.device.frames import Feature
    from tinyadapt.report.activity import TerminalActivity
    from tinyadapt.report.console import progress_enabled
    from tinyadapt.report.device import device_report
    from tinyadapt.session.device import open_device

    opts = device_options(args, Path(args.model).stem)
    with TerminalActivity(progress_enabled(args.json) and not args.quiet) as activity:
        blob, _ = load_model_blob(args.model, args, activity)
        blob_info = read_blob(blob)
        macs = None
        if Path(args.model).suffix == ".tflite":
            from tinyadapt.convert import convert

            macs = [int(op.macs) for op in convert(args.model).ops]
        inputs = _sample(args.input, blob_info)
        opts.activity = activity
        dev = open_device(blob, opts, target=target)
    with dev:
        profile = bool(dev.info.features & Feature.PROFILE)
        if not profile:
            log.warning("this firmware has no per-op profiling: only the total is measured")
        _, result = dev.run_sample(inputs, profile=profile)
        metrics = dev.metrics()
        return device_report(dev.info, metrics, model=args.model, invoke=result,
                             op_names=[op.name for op in blob_info.ops], macs=macs, link=dev.link.stats,
                             board=dev.board, target=target)


def _counters_only(args) -> dict:
    from tinyadapt.device.backends.serial_port import SerialBackend
    from tinyadapt.device.client import DeviceClient
    from tinyadapt.device.link import Link
    from tinyadapt.report.device import device_report

    with SerialBackend(args.port, baudrate=args.baud) as backend:
        with Link(backend.open_port(), timeout=args.timeout, retries=args.retries) as link:
            client = DeviceClient(link)
            info = client.hello()
            return device_report(info, client.metrics(), link=link.stats, board=info.board, target="device")
