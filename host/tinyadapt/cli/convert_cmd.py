"""tinyadapt convert: .tflite -> model blob (and/or C header), with a per-layer report."""

from __future__ import annotations

import json
from pathlib import Path

from tinyadapt.cli.files import atomic_write
from tinyadapt.cli.plan_args import add_plan_arguments, plan_kwargs

NAME = "convert"
HELP = "convert a .tflite model into a tinyadapt model blob or C header"
DESCRIPTION = """\
Read an int8 .tflite model, check that every op, dtype and option is supported, plan the
activation memory (tensor lifetimes, buffer sharing, in-place ops) and write a compact,
CRC-protected model blob for the tinyadapt engine (docs/SPEC.md). Prints a per-layer report:
op, output shape, MACs, weight bytes, activation bytes and the bytes live at that layer,
with totals and the peak SRAM (all activation memory the engine needs: inputs, outputs and
scratch)."""
EPILOG = """\
examples:
  tinyadapt convert models/digits/digits_cnn.tflite                 # report only
  tinyadapt convert model.tflite -o model.tamb                      # write the blob
  tinyadapt convert model.tflite -o model.h --symbol g_model        # C header for firmware
  tinyadapt convert model.tflite --json | jq .peak_sram_bytes       # machine-readable
  tinyadapt convert model.tflite --budget 200000 -o model.tamb      # patch-based if needed to fit
  tinyadapt convert model.tflite --patch 13,4 -o model.tamb         # first 13 ops on a 4x4 grid
  tinyadapt convert model.tflite --patch 6,24,stream,3 -o m.tamb    # 24 row bands in 3 strips, halos kept"""


def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL.tflite", help="int8 TFLite flatbuffer")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write the blob (.tamb / .bin) or, for a name ending in .h, a C header")
    p.add_argument("--symbol", default=None, help="C array name for a .h output (default: from the file name)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (schema 1) instead of a table")
    add_plan_arguments(p)


def run(args) -> int:
    from tinyadapt.convert import convert
    from tinyadapt.convert.cheader import blob_to_c_header, c_identifier
    from tinyadapt.report.console import print_layers, stdout
    from tinyadapt.report.layers import convert_report

    model = convert(args.model, **plan_kwargs(args))
    report = convert_report(model)
    if args.output:
        out = Path(args.output)
        if out.suffix == ".h":
            symbol = args.symbol or c_identifier(out.stem)
            atomic_write(out, blob_to_c_header(model.blob, symbol, f"from {Path(args.model).name}"))
        else:
            atomic_write(out, model.blob)
        report["output"] = str(out)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.quiet:
        print_layers(report)
        if args.output:
            stdout.print(f"wrote {args.output}")
    return 0
