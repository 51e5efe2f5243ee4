"""tinyadapt adapt: stream unlabelled samples through a prepared TTA model that adapts itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tinyadapt.errors import InputError

NAME = "adapt"
HELP = "stream samples through a prepared TTA model with early exits and test-time adaptation"
DESCRIPTION = """\
Stream --stream through OUT (made by tta-prepare) one sample at a time, with early exits and
test-time adaptation at batch size 1, no labels (docs/TTA.md). --labels only score: they are
never given to the model. The same stream also runs through the prepared model with
adaptation off (the early-exit runner of engine/ta_tta.c) and, unless --no-reference,
through the float backbone adapting with full-model TENT (the host reference).

--mode picks the adaptation: input (re-estimate input statistics), norm (re-estimate each
head's conv statistics), entropy (entropy minimisation of the heads' affine and FC with the
trainer), or a '+' join; default input+norm. A health check rolls back (counted) when the
model collapses or adapting does worse than not adapting. --save-heads writes the adapted
heads' parameter image (what the device's store keeps under the TTA tag).

--json keys: accuracy_no_adapt, accuracy_adapted, accuracy_tent_float, exit_rate (per exit,
adapted run), macs_saved (fraction of the backbone's MACs, adapted run, including the source
runs of the health check), macs_saved_no_adapt, peak_sram_bytes (adaptation step, planned),
full_model_peak_sram_bytes, rollbacks. With --target qemu: device_instructions_per_sample
(no adaptation), device_instructions_full_backbone (INFER of the whole backbone),
device_arena_used_bytes (METRICS), and for the modes the device runs itself (input, norm,
input+norm: the same C loop with its health check, every answer checked against the host's)
accuracy_adapted_device, device_rollbacks, device_peak_sram_bytes (measured: the arena's
high-water mark while adapting plus the adaptation state, ADAPT_STATUS),
device_arena_used_bytes_adapting, device_adapt_state_bytes."""
EPILOG = """\
examples:
  tinyadapt adapt digits.tta --stream x.npy --labels y.npy
  tinyadapt adapt digits.tta --stream x.npy --labels y.npy --report adapt.html --json
  tinyadapt adapt imu.tta --stream x.npy --mode input+entropy --save-heads heads.bin
  (streams from the shipped data: python -m tinyadapt.tta.streams digits contrast -o x.npy --labels y.npy)"""


def add_arguments(p) -> None:
    from tinyadapt.tta.session import DEFAULT_MODE, MODES

    p.add_argument("prepared", metavar="OUT", help="prepared model folder (tta-prepare)")
    p.add_argument("--stream", "-s", required=True, metavar="X.npy", help="samples in stream order")
    p.add_argument("--labels", "-l", metavar="Y.npy", help="labels, for scoring only")
    p.add_argument("--target", default="host", choices=["host", "qemu"],
                   help="host (default): everything in-process; qemu: also on an emulated board over the "
                        "protocol (ADAPT_*): the no-adaptation run and, with input / norm / input+norm, "
                        "the device adapting by itself, both checked against the host")
    p.add_argument("--board", help="board for --target qemu (default qemu-an386)")
    p.add_argument("--mode", default=DEFAULT_MODE, choices=MODES, help=f"adaptation (default {DEFAULT_MODE})")
    p.add_argument("--lr", type=float, default=2e-4, help="entropy minimisation's learning rate")
    p.add_argument("--tent-lr", type=float, default=1e-3, help="the float TENT reference's learning rate")
    p.add_argument("--no-reference", action="store_true", help="skip the float TENT reference")
    p.add_argument("--report", metavar="R.html", help="write a report (.html or .png)")
    p.add_argument("--save-heads", metavar="FILE", help="write the adapted heads' parameter image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-probation", action="store_true",
                   help="let unproven adapted statistics answer at once (docs/TTA.md, Safety)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (schema 1)")


def run(args) -> int:
    from tinyadapt.cli.files import atomic_write
    from tinyadapt.convert.blob import read_blob
    from tinyadapt.session.stream import load_labels, load_stream_data
    from tinyadapt.tta.memory import full_model_step, ours_step
    from tinyadapt.tta.model import PreparedModel
    from tinyadapt.tta.session import AdaptConfig, Session, parse_mode

    pm = PreparedModel(args.prepared)
    x = load_stream_data(args.stream, read_blob(pm.backbone_model.blob))
    y = load_labels(args.labels, len(x)) if args.labels else None
    if len(x) == 0:
        raise InputError(f"{args.stream} holds no samples")
    if args.report and not args.report.endswith((".html", ".png")):
        raise InputError("--report must end in .html or .png")
    parts = parse_mode(args.mode)
    if not 0 <= args.seed < 2**32:
        raise InputError(f"--seed must be in [0, 2**32), not {args.seed}")
    live = not args.json and not args.quiet and sys.stderr.isatty()

    # no adaptation: the C early-exit runner, exactly the device's path
    runner = pm.open().runner()
    base = [runner.infer(xi) for xi in x]
    base_pred = np.array([r.prediction for r in base])
    if args.board and args.target != "qemu":
        raise InputError("--board is for --target qemu")

    cfg = AdaptConfig(mode=args.mode, lr=args.lr, seed=args.seed, probation=not args.no_probation)
    sess = Session(pm, cfg)
    correct = 0
    for i, xi in enumerate(x):
        st = sess.step(xi)
        if y is not None:
            correct += int(st.prediction == y[i])
        if live and (i % 20 == 0 or i == len(x) - 1):
            ex = np.bincount([s.exit for s in sess.steps], minlength=len(pm.exits)) / (i + 1)
            acc = f", accuracy {correct / (i + 1):.3f}" if y is not None else ""
            print(f"\r{i + 1}/{len(x)}{acc}, exits {' '.join(f'{e:.2f}' for e in ex)}, rollbacks {sess.rollbacks}",
                  end="", file=sys.stderr)
    if live:
        print(file=sys.stderr)
    pred = np.array([s.prediction for s in sess.steps])
    exits = np.array([s.exit for s in sess.steps])
    tent_pred = None
    if not args.no_reference and y is not None:
        from tinyadapt.tta.tent import run_tent

        tent_pred = run_tent(pm.backbone_model, x, args.tent_lr)

    device = {}
    if args.target == "qemu":
        device = _on_qemu(pm, x, base, args.board, y, cfg, sess.steps if parts and "entropy" not in parts else None)

    full, how = full_model_step(pm.backbone_model)
    ours = ours_step(pm, parts)
    acc = (lambda p: None if y is None else round(float((p == y).mean()), 4))
    summary = {
        "schema": 1, "model": args.prepared, "stream": args.stream, "samples": int(len(x)), "target": args.target,
        "mode": args.mode,
        "accuracy_no_adapt": acc(base_pred), "accuracy_adapted": acc(pred),
        "accuracy_tent_float": acc(tent_pred) if tent_pred is not None else None,
        "exit_rate": [round(float((exits == k).mean()), 4) for k in range(len(pm.exits))],
        "exit_rate_no_adapt": [round(float(np.mean([r.exit == k for r in base])), 4) for k in range(len(pm.exits))],
        "macs_saved": round(1 - float(np.mean([s.macs for s in sess.steps])) / pm.macs_full, 4),
        "macs_saved_no_adapt": round(1 - float(np.mean([r.macs for r in base])) / pm.macs_full, 4),
        "peak_sram_bytes": ours, "peak_sram_source": "planned (host)",
        "full_model_peak_sram_bytes": full, "full_model_peak_sram_source": how,
        "rollbacks": sess.rollbacks, "updates": sess.updates, **device,
    }
    if args.save_heads:
        atomic_write(args.save_heads, sess.head_params())
    if args.report:
        from tinyadapt.tta.report import write_report

        if y is None:
            raise InputError("--report needs --labels (it plots accuracy)")
        curves = {"no adaptation": base_pred == y, f"ours ({args.mode})": pred == y}
        if tent_pred is not None:
            curves["full-model TENT, float"] = tent_pred == y
        write_report(args.report, {k: v for k, v in summary.items() if k != "schema"}, curves, exits)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        if y is not None:
            tent = f", full-model TENT (float) {summary['accuracy_tent_float']:.3f}" if tent_pred is not None else ""
            print(f"accuracy: no adaptation {summary['accuracy_no_adapt']:.3f}, adapted {summary['accuracy_adapted']:.3f}{tent}")
        print(f"exit rate {summary['exit_rate']}, MACs saved {summary['macs_saved']:.1%} "
              f"(no adaptation {summary['macs_saved_no_adapt']:.1%}), rollbacks {sess.rollbacks}")
        print(f"adaptation step SRAM {ours:,} B; full-model entropy minimisation {full:,} B ({how.split(' (')[0]})")
        if "device_peak_sram_bytes" in device:
            print(f"on the device: accuracy {device.get('accuracy_adapted_device')}, rollbacks "
                  f"{device['device_rollbacks']}, adaptation step SRAM {device['device_peak_sram_bytes']:,} B (measured)")
    return 0


def _on_qemu(pm, x, base, board, y, cfg, steps) -> dict:
    """Run the stream without adaptation on QEMU (the device must answer like the host), and,
    for the modes the device runs (input / norm), adapting on the device with the health check
    (ADAPT_SELECT mode 1-3): every answer must equal the host session's `steps`."""
    from tinyadapt.errors import DeviceError
    from tinyadapt.session.device import DeviceOptions
    from tinyadapt.tta.device import DeviceRunner

    instructions = []
    out = {}
    if steps is not None:
        with DeviceRunner(pm, DeviceOptions(board=board), adapt=cfg.mode, cfg=cfg) as dev:
            pred = []
            for i, (xi, h) in enumerate(zip(x, steps)):
                r, _ = dev.infer(xi)
                if (r.exit, r.prediction, r.macs, np.float32(r.entropy)) != (h.exit, h.prediction, h.macs,
                                                                              np.float32(h.entropy)):
                    raise DeviceError(f"sample {i}: adapting, the device answered exit {r.exit} class "
                                      f"{r.prediction}, the host session exit {h.exit} class {h.prediction}")
                pred.append(r.prediction)
            st = dev.status()
        out.update({"device_adapted_matches_host": True, "device_rollbacks": st.rollbacks,
                    "device_arena_used_bytes_adapting": st.arena_used, "device_adapt_state_bytes": st.state_bytes,
                    "device_peak_sram_bytes": st.arena_used + st.state_bytes,
                    "device_peak_sram_source": "measured: arena high-water (backbone, heads, adaptation work "
                                               "area) + adaptation state (ADAPT_STATUS)"})
        if y is not None:
            out["accuracy_adapted_device"] = round(float((np.array(pred) == y).mean()), 4)
    with DeviceRunner(pm, DeviceOptions(board=board)) as dev:
        for i, (xi, h) in enumerate(zip(x, base)):
            r, n = dev.infer(xi)
            if (r.exit, r.prediction, r.macs) != (h.exit, h.prediction, h.macs):
                raise DeviceError(f"sample {i}: the device answered exit {r.exit} class {r.prediction}, "
                                  f"the host target exit {h.exit} class {h.prediction}")
            instructions.append(n)
        full = dev.session.client.run([np.ascontiguousarray(x[0]).tobytes()])[1].instructions
        m = dev.metrics()
    return {"device_instructions_per_sample": round(float(np.mean(instructions))),
            "device_instructions_full_backbone": int(full),
            "device_arena_used_bytes": int(m.arena_used), "device_matches_host": True, **out}
