"""Kernel backends and the kernel regression guard.

Instructions per inference, per model and per op type, of the reference kernels (KERNELS=ref)
and the Cortex-M DSP kernels (KERNELS=dsp), measured on QEMU mps2-an386 (Cortex-M4F) with
-icount shift=7 (instructions = timer ticks / 3.2; exact and repeatable run to run). The two
builds' outputs are compared too (they must be identical).

The counts are checked against a committed table (benchmarks/kernel_counts.json): any model
total or op type more than 1 % (and more than 100 instructions) slower than the table fails
the run (exit 1) with a line naming it. `--update` writes the measured counts into the table instead (only the models
measured in this run; the others keep their entries).

Per op type = the op's own instructions from a profiled invoke (the per-op hook's timer reads
are inside the window, the same few dozen instructions per op in every run); the model total
is an unprofiled invoke (no hook installed), i.e. what a user's invoke costs.

Next to them, the TensorFlow Lite Micro + CMSIS-NN figures quoted in ../shared/ENVIRONMENT.md
(measured on the same emulated core with TFLM's release build); they are NOT measured by
this script: only micro_speech has a whole-model figure there.

    .venv/bin/python benchmarks/kernels.py                       # every model, check the table
    .venv/bin/python benchmarks/kernels.py --models digits,basicmotions --kernels ref,dsp
    .venv/bin/python benchmarks/kernels.py --update              # rewrite the table
    .venv/bin/python benchmarks/kernels.py --json                # machine-readable

Models: models/digits, models/basicmotions, models/mobilenetv2 (96x96), and every .tflite in
../shared/models (TINYADAPT_SHARED_MODELS overrides the folder; skipped when absent).
One sample each (the model's test data where the repo has it, else seeded random input).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.convert.blob_format import OPCODE_NAMES  # noqa: E402

TABLE = REPO / "benchmarks" / "kernel_counts.json"
TOLERANCE = 0.01          # slower than the table by more than this fails...
SLACK = 100               # ...and by more than this many instructions: the engine's own per-op
                          # dispatch (in every whole-model count) moves by a few dozen when the
                          # engine changes, which is 1 % of a 3-op model like hello_world
MACHINE = "mps2-an386"
CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED = 1, 2, 3
MAC_KINDS = ("conv 1x1", "conv other", "depthwise", "fully connected")

# Quoted from ../shared/ENVIRONMENT.md ("The speed to beat"), not measured here.
TFLM_CMSIS_NN_MODELS = {"micro_speech_quantized": 1_495_420}
TFLM_REFERENCE_MODELS = {"micro_speech_quantized": 9_310_330}
QUOTED_LAYERS = {
    "conv 1x1": "1.5-3.1 (small layers up to 6.6)",
    "conv other": "first 3x3 stride-2 conv: 4.1-4.8",
    "depthwise": "3x3: 6.9-11.3, typically 8-9 (micro_speech's: 4.57)",
    "fully connected": "1.9",
}
QUOTED_MODELS_TEXT = ("whole MobileNet-style models: 2.65-4.28/MAC with CMSIS-NN, 12-18 with TFLM's reference kernels; "
                      "micro_speech_quantized: 1,495,420 (4.45/MAC) with CMSIS-NN, 9,310,330 with reference kernels")


def shared_models_dir() -> Path:
    return Path(os.environ.get("TINYADAPT_SHARED_MODELS", REPO.parent / "shared" / "models"))


def all_models() -> dict[str, tuple[Path, np.ndarray | None]]:
    """name -> (tflite path, one input sample or None for seeded random input)."""
    m = REPO / "models"
    out: dict[str, tuple[Path, np.ndarray | None]] = {
        "digits": (m / "digits" / "digits_cnn.tflite", np.load(m / "digits" / "digits_test.npz")["x"][:1]),
        "basicmotions": (m / "basicmotions" / "basicmotions_imu.tflite",
                         np.load(m / "basicmotions" / "basicmotions_test.npz")["x"][:1]),
        "mobilenetv2_96": (m / "mobilenetv2" / "mobilenetv2_96.tflite",
                           np.load(m / "mobilenetv2" / "mobilenetv2_96_sample.npz")["x"][:1]),
    }
    shared = shared_models_dir()
    if shared.is_dir():
        for path in sorted(shared.glob("*.tflite")):
            out[path.stem] = (path, None)
    return out


def sample_for(model, given: np.ndarray | None) -> np.ndarray:
    if given is not None:
        return given
    t = model.tensors[model.inputs[0]]
    rng = np.random.default_rng(0)
    dtype = np.dtype(t.dtype)
    if dtype.kind == "f":
        return rng.standard_normal(t.shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, t.shape, dtype=dtype)


def op_kind(model, op) -> str:
    if op.opcode == CONV_2D:
        f = model.tensors[op.inputs[1]].shape        # [C_out, KH, KW, C_in]
        return "conv 1x1" if f[1] == 1 and f[2] == 1 else "conv other"
    return {DEPTHWISE_CONV_2D: "depthwise", FULLY_CONNECTED: "fully connected"}.get(
        op.opcode, OPCODE_NAMES.get(op.opcode, f"OP_{op.opcode}").lower())


def run(blob: bytes, x: np.ndarray, kernels: str, board: str):
    from tinyadapt.session.device import DeviceOptions, open_device

    with open_device(blob, DeviceOptions(board=board, kernels=kernels, timeout=600.0)) as dev:
        outs, plain = dev.run_sample([x])
        _, profiled = dev.run_sample([x], profile=True)
        metrics = dev.metrics()
    return b"".join(o.tobytes() for o in outs), plain.instructions, profiled.profile, metrics


def measure(name: str, path: Path, given: np.ndarray | None, kernel_sets: list[str], board: str) -> dict:
    model = convert(path, name=name)
    x = sample_for(model, given)
    row: dict = {"model": name, "macs": int(sum(op.macs for op in model.ops)), "ops": {}, "kernels": {}}
    for op in model.ops:
        kind = op_kind(model, op)
        entry = row["ops"].setdefault(kind, {"count": 0, "macs": 0})
        entry["count"] += 1
        entry["macs"] += int(op.macs)
    outputs = {}
    for kernels in kernel_sets:
        out, total, profile, metrics = run(model.blob, x, kernels, board)
        outputs[kernels] = out
        per_kind: dict[str, int] = {}
        for op, prof in zip(model.ops, profile):
            kind = op_kind(model, op)
            per_kind[kind] = per_kind.get(kind, 0) + int(prof.instructions)
        row["kernels"][kernels] = {"total": int(total), "ops": per_kind, "stack_used": int(metrics.stack_used)}
    row["outputs_identical"] = len(set(outputs.values())) == 1
    return row


def compare(rows: list[dict], table: dict, tolerance: float = TOLERANCE) -> tuple[list[str], list[str]]:
    """(regressions, notes): every count more than `tolerance` above its table entry is a regression."""
    bad, notes = [], []
    for r in rows:
        known = table.get("models", {}).get(r["model"])
        if known is None:
            notes.append(f"{r['model']}: not in the table (run with --update to add it)")
            continue
        for kernels, got in r["kernels"].items():
            ref = known.get(kernels)
            if ref is None:
                notes.append(f"{r['model']} {kernels}: not in the table")
                continue
            pairs = [("whole model", got["total"], ref.get("total"))]
            pairs += [(kind, n, ref.get("ops", {}).get(kind)) for kind, n in sorted(got["ops"].items())]
            for what, n, old in pairs:
                if old is None:
                    notes.append(f"{r['model']} {kernels} {what}: not in the table")
                elif n > old * (1 + tolerance) and n - old > SLACK:
                    bad.append(f"SLOWER: {r['model']} KERNELS={kernels} {what}: {n:,} instructions, table {old:,} "
                               f"(+{100 * (n / old - 1):.1f} %)")
                elif n < old * (1 - tolerance) and old - n > SLACK:
                    notes.append(f"faster: {r['model']} KERNELS={kernels} {what}: {n:,} instructions, table {old:,} "
                                 f"({100 * (n / old - 1):.1f} %); --update records it")
    return bad, notes


def update_table(table: dict, rows: list[dict]) -> dict:
    models = dict(table.get("models", {}))
    for r in rows:
        entry = dict(models.get(r["model"], {}))
        for kernels, got in r["kernels"].items():
            entry[kernels] = {"total": got["total"], "ops": dict(sorted(got["ops"].items()))}
        models[r["model"]] = entry
    return {"machine": MACHINE, "icount": "shift=7", "unit": "instructions = timer ticks / 3.2",
            "tolerance": TOLERANCE, "models": dict(sorted(models.items()))}


def print_tables(rows: list[dict], board_name: str = "qemu-an386") -> None:
    from tinyadapt.device.boards import load_board
    board = load_board(board_name)
    print(f"Instructions per inference on QEMU {board.qemu_machine} ({board.core}), -icount shift=7, measured in this run "
          "(unprofiled invoke; stack = the device's high-water mark)")
    print(f"{'model':<24}{'MACs':>12}{'ref instr':>13}{'ref/MAC':>9}{'dsp instr':>13}{'dsp/MAC':>9}"
          f"{'ref/dsp':>9}{'CMSIS-NN':>13}{'vs CMSIS':>9}  outputs")
    for r in rows:
        k = r["kernels"]
        macs = max(r["macs"], 1)
        ref, dsp = k.get("ref", {}).get("total"), k.get("dsp", {}).get("total")
        cm = TFLM_CMSIS_NN_MODELS.get(r["model"])
        print(f"{r['model']:<24}{r['macs']:>12,}"
              f"{(f'{ref:,}' if ref else '-'):>13}{(f'{ref / macs:.2f}' if ref else '-'):>9}"
              f"{(f'{dsp:,}' if dsp else '-'):>13}{(f'{dsp / macs:.2f}' if dsp else '-'):>9}"
              f"{(f'{ref / dsp:.2f}x' if ref and dsp else '-'):>9}"
              f"{(f'{cm:,}' if cm else 'n/a'):>13}{(f'{cm / dsp:.2f}x' if cm and dsp else '-'):>9}  "
              f"{'identical' if r['outputs_identical'] else 'DIFFER'}")
    print("\nBy op type (the ops' own instructions from a profiled invoke; /MAC for MAC ops, /op otherwise)")
    print(f"{'model':<24}{'op type':<18}{'ops':>4}{'MACs':>11}{'ref':>12}{'dsp':>12}{'ref/MAC':>9}{'dsp/MAC':>9}"
          "   TFLM+CMSIS-NN /MAC, quoted")
    for r in rows:
        for kind, info in sorted(r["ops"].items(), key=lambda kv: -max(v["ops"].get(kv[0], 0)
                                                                         for v in r["kernels"].values())):
            ref = r["kernels"].get("ref", {}).get("ops", {}).get(kind)
            dsp = r["kernels"].get("dsp", {}).get("ops", {}).get(kind)
            per = info["macs"] if kind in MAC_KINDS and info["macs"] else None
            print(f"{r['model']:<24}{kind:<18}{info['count']:>4}{info['macs']:>11,}"
                  f"{(f'{ref:,}' if ref is not None else '-'):>12}{(f'{dsp:,}' if dsp is not None else '-'):>12}"
                  f"{(f'{ref / per:.2f}' if per and ref else ''):>9}{(f'{dsp / per:.2f}' if per and dsp else ''):>9}"
                  f"   {QUOTED_LAYERS.get(kind, '')}")
    print(f"\nTFLM + CMSIS-NN, quoted from ../shared/ENVIRONMENT.md (not measured in this run): {QUOTED_MODELS_TEXT}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="instructions per inference, per model and op type, ref vs dsp kernels on QEMU "
                    "(Cortex-M4), checked against benchmarks/kernel_counts.json",
        epilog="examples:\n  benchmarks/kernels.py\n  benchmarks/kernels.py --models digits,basicmotions\n"
               "  benchmarks/kernels.py --update\n  benchmarks/kernels.py --board qemu-an500 --no-check",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="comma-separated model names (default: all)")
    ap.add_argument("--kernels", default="ref,dsp", help="comma-separated backends (default: ref,dsp)")
    ap.add_argument("--board", default="qemu-an386", help="QEMU board (the table is for qemu-an386)")
    ap.add_argument("--table", type=Path, default=TABLE, help="the committed table of counts")
    ap.add_argument("--update", action="store_true", help="write the measured counts into the table")
    ap.add_argument("--no-check", action="store_true", help="measure and print only")
    ap.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = ap.parse_args(argv)

    available = all_models()
    names = list(available) if not args.models else [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)} (known: {', '.join(available)})", file=sys.stderr)
        return 2
    kernel_sets = [k.strip() for k in args.kernels.split(",") if k.strip()]
    if not kernel_sets or any(k not in ("ref", "dsp") for k in kernel_sets):
        print(f"error: --kernels takes ref and/or dsp, not {args.kernels!r}", file=sys.stderr)
        return 2
    if not shared_models_dir().is_dir():
        print(f"note: {shared_models_dir()} is absent: its models are skipped", file=sys.stderr)

    from tinyadapt.errors import UnsupportedModelError

    rows = []
    for n in names:
        try:
            rows.append(measure(n, available[n][0], available[n][1], kernel_sets, args.board))
        except UnsupportedModelError as e:   # e.g. keyword_scrambled's SVDF: not a kernel of ours
            if args.models:
                print(f"error: {e}", file=sys.stderr)
                return 2
            print(f"note: {n} skipped: {e}", file=sys.stderr)
    names = [r["model"] for r in rows]
    differ = [r["model"] for r in rows if not r["outputs_identical"]]

    table = json.loads(args.table.read_text()) if args.table.is_file() else {}
    if args.update:
        if differ:
            print(f"error: ref and dsp outputs differ on {', '.join(differ)}: table not updated", file=sys.stderr)
            return 1
        if args.board != "qemu-an386":
            print("error: the table holds qemu-an386 counts; --update needs --board qemu-an386", file=sys.stderr)
            return 2
        tmp = args.table.with_suffix(".tmp")
        tmp.write_text(json.dumps(update_table(table, rows), indent=1) + "\n")
        tmp.replace(args.table)
        bad, notes = [], [f"{args.table}: updated for {', '.join(names)}"]
    elif args.no_check or args.board != "qemu-an386":
        bad, notes = [], []
    else:
        bad, notes = compare(rows, table)

    if args.json:
        print(json.dumps({"machine": args.board, "icount": "shift=7", "models": rows, "regressions": bad,
                          "notes": notes, "quoted_tflm_cmsis_nn": {"models": TFLM_CMSIS_NN_MODELS,
                                                                   "layers": QUOTED_LAYERS,
                                                                   "source": "../shared/ENVIRONMENT.md"}}, indent=1))
    else:
        print_tables(rows, args.board)
        for line in notes:
            print(line)
    for line in bad:
        print(line, file=sys.stderr)
    for name in differ:
        print(f"DIFFER: {name}: the ref and dsp builds' outputs are not identical", file=sys.stderr)
    if bad:
        print(f"error: {len(bad)} kernel count(s) more than {TOLERANCE:.0%} slower than {args.table.name}",
              file=sys.stderr)
    return 1 if bad or differ else 0


if __name__ == "__main__":
    sys.exit(main())
