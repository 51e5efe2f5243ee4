"""On-device training step, device-measured on QEMU: SRAM of a training step (the painted
training-step arena's high-water + parameter RAM, TRAIN_INFO) and instructions per step
(TRAIN_STEP's count, -icount shift=7, exact), the parameter image SAVE persists (written once
to the emulator's NVM file after the steps, when it fits a slot), for the sparse update scheme vs full
backpropagation in our engine, next to what the host plan predicts for the same blob.

    .venv/bin/python benchmarks/train_device.py [--model M.tflite] [--board B] [--steps N] [--json]

Default model: the Keras MobileNetV2-0.35 at 128x128 export (models/exports/mnv2_035_128.tflite),
else the digits CNN. The sparse scheme is plan-update's choice under the board's budget (what
`tinyadapt train --board B` trains), or the default scheme when no scheme fits. Each scheme runs on an image with the blob compiled
in and no RAM slot, linked with the board's budget (`--board stm32f746g-disco`: the F746's
320 KiB RAM on the emulated Cortex-M7); a scheme whose step does not fit that budget is run on
the plain QEMU board (mps2-an500, 4 MiB) instead and marked so.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from tinyadapt.cli.plan_args import board_budget, budget_bytes  # noqa: E402
from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.device.backends.qemu import QemuBackend  # noqa: E402
from tinyadapt.device.boards import emulation_host, load_board  # noqa: E402
from tinyadapt.device.build import build_image  # noqa: E402
from tinyadapt.device.client import SLOT_BUILTIN, DeviceClient  # noqa: E402
from tinyadapt.device.link import Link  # noqa: E402
from tinyadapt.device.nvm import nvm_file  # noqa: E402
from tinyadapt.errors import TinyAdaptError  # noqa: E402
from tinyadapt.train.graph import build_training, weight_layers  # noqa: E402
from tinyadapt.train.scheme import UpdateScheme, default_scheme  # noqa: E402
from tinyadapt.train.search import plan_update  # noqa: E402

MNV2 = REPO / "models" / "exports" / "mnv2_035_128.tflite"
DIGITS = REPO / "models" / "digits" / "digits_cnn.tflite"


def fits(board, plan) -> bool:
    room = board.ram_size - board.stack_size - 16 * 1024        # .data/.bss of the app, generously
    return plan.peak_sram_bytes + 64 <= room


def profile_step(c, plan, rng, size: int) -> dict:
    """One more step with the per-op profile (TRAIN_STEP flag; the per-op counter reads add a
    few hundred instructions per op): instructions in the forward pass, the loss, the backward
    ops' input gradients and masks ("backward"), and the parameter updates (weight gradients of
    the kept channels and SGD on the masters, "update"), and the costliest backward ops."""
    from tinyadapt.convert import blob_format as bf

    x = rng.integers(-128, 128, size=size, dtype=np.int8).tobytes()
    total = c.train_step(int(rng.integers(0, 10)), 0.01, x, profile=True).instructions
    ops = c.train_profile_read(0, len(plan.ops))
    nf = plan.n_forward_ops
    phases = {"forward": sum(o[2] for o in ops[:nf]), "loss": ops[nf][2],
              "backward": sum(o[2] - o[3] for o in ops[nf + 1:]), "update": sum(o[3] for o in ops[nf + 1:])}
    names = {v: k for k, v in bf.BACKWARD_OPCODES.items()}
    top = sorted(ops[nf + 1:], key=lambda o: -o[2])[:6]
    return {"profiled_step_instructions": total, **{f"{k}_instructions": v for k, v in phases.items()},
            "hooks_and_rest_instructions": total - sum(phases.values()),
            "top_backward_ops": [{"op": o[0], "name": names.get(o[1], str(o[1])), "instructions": o[2],
                                  "update": o[3]} for o in top]}


def run_scheme(board, plan, steps: int, rng, tmp: Path) -> dict:
    host_board = board if fits(board, plan) else emulation_host(board)
    image = build_image(host_board, blob=plan.blob, name="train_bench", emulate=True,
                        extra_make_args=["RAM_SLOT_SIZE=0"])
    qemu_board = emulation_host(host_board)
    nvm = nvm_file(qemu_board.name, tmp / f"{qemu_board.name}-{plan.param_image_bytes}.bin",
                   qemu_board.raw["nvm_size"])
    q = QemuBackend(image.built_for.qemu_machine, image.elf, nvm=nvm)
    q.start()
    try:
        c = DeviceClient(Link(q.open_port(), timeout=600.0, retries=1))
        c.hello()
        c.select(SLOT_BUILTIN)
        info = c.train_info()
        if not info.ready:
            raise TinyAdaptError(f"the device did not bind the trainer (status {info.restore_status})")
        size = c.model.input_sizes[0]
        counts = []
        t0 = time.monotonic()
        for _ in range(steps):
            x = rng.integers(-128, 128, size=size, dtype=np.int8).tobytes()
            r = c.train_step(int(rng.integers(0, 10)), 0.01, x)
            counts.append(r.instructions)
        wall = (time.monotonic() - t0) / steps
        profile = profile_step(c, plan, rng, size)
        info = c.train_info()
        saved = None
        if info.nvm and info.image_bytes <= info.store_capacity:   # SAVE: what a session persists
            r = c.save()
            saved = {"bytes": r.bytes, "instructions": r.instructions}
    finally:
        q.stop()
    return {"ran_on": host_board.name, "peak_sram_bytes": info.peak_sram_bytes,
            "step_arena_used_bytes": info.step_arena_used, "param_ram_bytes": info.param_bytes,
            "param_image_bytes": info.image_bytes, "store_capacity_bytes": info.store_capacity, "save": saved,
            "instructions_per_step": int(np.median(counts)), "instructions_min_max": [min(counts), max(counts)],
            "plan_peak_sram_bytes": plan.peak_sram_bytes, "plan_arena_bytes": plan.arena_bytes,
            "macs_per_step": plan.macs_per_step, "wall_seconds_per_step": round(wall, 2),
            "fits_board": fits(board, plan), "profile": profile}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: benchmarks/train_device.py --board stm32f746g-disco --steps 3")
    ap.add_argument("--model", default=None)
    ap.add_argument("--board", default="stm32f746g-disco")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--bias-depth", type=int, default=None, help="sparse scheme: biases of the last N layers")
    ap.add_argument("--layer", action="append", default=[], metavar="I:R",
                    help="sparse scheme: weights of layer I at channel ratio R (repeatable)")
    ap.add_argument("--budget", type=budget_bytes, default=None, metavar="BYTES",
                    help="plan the sparse scheme under this SRAM budget instead of the board's "
                         "(e.g. 128KiB); the image is still linked for --board")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model = Path(args.model) if args.model else (MNV2 if MNV2.is_file() else DIGITS)
    try:
        board = load_board(args.board)
        budget = args.budget if args.budget is not None else board_budget(board.name)
        cm = convert(model)
        n = len(weight_layers(cm))
        notes = []
        if args.bias_depth is not None or args.layer:
            weights = {int(i): float(r) for i, r in (s.split(":") for s in args.layer)}
            scheme = UpdateScheme(bias_depth=args.bias_depth or 0, weights=weights)
            # planned under the board's budget like plan-update's choice (patch-based forward start)
            sparse_plan, sparse_name = build_training(cm, scheme, budget=budget), "sparse (given scheme)"
        else:
            try:        # the scheme `tinyadapt train --board B` would choose
                sparse_plan, _ = plan_update(cm, budget)
                sparse_name = "sparse (plan-update)"
            except TinyAdaptError as exc:
                notes.append(f"plan-update under {budget:,} B: {exc}; the default scheme is measured instead")
                sparse_plan, sparse_name = build_training(cm, default_scheme(n)), "sparse (default scheme)"
        plans = {sparse_name: sparse_plan, "full backprop": build_training(cm, UpdateScheme.full(n))}
        rng = np.random.default_rng(0)
        rows = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, plan in plans.items():
                rows[name] = dict(run_scheme(board, plan, args.steps, rng, Path(tmp)), scheme=plan.scheme.describe())
    except TinyAdaptError as exc:
        print(f"train_device.py: {exc}", file=sys.stderr)
        return 1
    sparse, full = rows[sparse_name], rows["full backprop"]
    ratios = {"sram_full_over_sparse": round(full["peak_sram_bytes"] / sparse["peak_sram_bytes"], 2),
              "instructions_full_over_sparse": round(full["instructions_per_step"] / sparse["instructions_per_step"], 2)}
    out = {"model": str(model), "board": args.board, "budget": budget, "steps": args.steps, "schemes": rows, **ratios, "notes": notes}
    out["instructions_bound_full_over_sparse_forward"] = round(
        full["instructions_per_step"] / sparse["profile"]["forward_instructions"], 2)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{model.name}: training step on QEMU (-icount), image for {args.board}, sparse scheme planned under "
          f"{budget:,} B, {args.steps} steps each")
    print(f"{'scheme':26} {'ran on':18} {'peak SRAM (dev)':>16} {'arena hw':>10} {'param RAM':>10} "
          f"{'plan peak':>10} {'instr/step':>14} {'MACs/step':>12}")
    for name, r in rows.items():
        print(f"{name:26} {r['ran_on']:18} {r['peak_sram_bytes']:>16,} {r['step_arena_used_bytes']:>10,} "
              f"{r['param_ram_bytes']:>10,} {r['plan_peak_sram_bytes']:>10,} {r['instructions_per_step']:>14,} "
              f"{r['macs_per_step']:>12,}")
    print(f"full / sparse: SRAM x{ratios['sram_full_over_sparse']}, instructions x{ratios['instructions_full_over_sparse']}")
    print("where a step's instructions go (one profiled step; hooks: the per-op counter reads):")
    for name, r in rows.items():
        p = r["profile"]
        print(f"  {name:24} forward {p['forward_instructions']:>12,}  loss {p['loss_instructions']:>8,}  "
              f"backward {p['backward_instructions']:>12,}  update {p['update_instructions']:>11,}  "
              f"hooks {p['hooks_and_rest_instructions']:>9,}")
        print("    costliest backward ops: " + ", ".join(
            f"{o['op']} {o['name']} {o['instructions']:,} (update {o['update']:,})" for o in p["top_backward_ops"]))
    fwd = sparse["profile"]["forward_instructions"]
    print(f"bound: the sparse step runs the whole forward pass ({fwd:,} instructions), so full / sparse cannot "
          f"exceed {full['instructions_per_step']:,} / {fwd:,} = x{out['instructions_bound_full_over_sparse_forward']}")
    for name, r in rows.items():
        sv = r["save"]
        done = (f"SAVE wrote {sv['bytes']:,} B in {sv['instructions']:,} instructions" if sv else
                f"SAVE does not fit the store ({r['store_capacity_bytes']:,} B per slot)")
        print(f"{name}: parameter image {r['param_image_bytes']:,} B (of {r['param_ram_bytes']:,} B parameter RAM); "
              f"{done}")
    for note in notes:
        print(f"note: {note}")
    for name, r in rows.items():
        if not r["fits_board"]:
            print(f"note: {name} does not fit {args.board} (peak {r['plan_peak_sram_bytes']:,} B > RAM "
                  f"{board.ram_size:,} B): measured on {r['ran_on']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
