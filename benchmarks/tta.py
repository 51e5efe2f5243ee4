"""Early-exit test-time adaptation (issue 11), measured in one run on the host target.

For each shipped data set (digits, BasicMotions): tta-prepare on the source training split
(2 exits), then
  * source data (the held-out test split): accuracy of the backbone, of the prepared model
    answering at its last exit only, and with early exits; MACs saved by early exits;
  * every stream (control "none" and each shift, the shift from 20 % of the stream on):
    accuracy with no adaptation (the C early-exit runner), with ours (default mode, and the
    others with --modes), and full-model TENT in float (the host reference); rollbacks;
  * the adaptation step's SRAM next to full-model entropy minimisation, both planned for our
    engine (train-core's planner).

  * with --qemu: on QEMU mps2-an386 (Cortex-M4), instructions per sample of the source split
    with early exits (ADAPT_INFER) next to INFER of the whole backbone, the device's arena
    high-water mark, and shifted streams adapted on the device in the default mode (every
    answer checked against the host session), with the adaptation step's SRAM measured by
    the device (ADAPT_STATUS: arena high-water mark + adaptation state).

    .venv/bin/python benchmarks/tta.py [--modes input+norm,entropy] [--qemu] [--json] [--no-probation]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from tinyadapt.tta.datasets import load  # noqa: E402
from tinyadapt.tta.memory import full_model_step, ours_step  # noqa: E402
from tinyadapt.tta.model import PreparedModel, to_model_input  # noqa: E402
from tinyadapt.tta.prepare import prepare, write  # noqa: E402
from tinyadapt.tta.session import DEFAULT_MODE, AdaptConfig, parse_mode, run_stream  # noqa: E402
from tinyadapt.tta.streams import SHIFTS, make_stream  # noqa: E402
from tinyadapt.tta.tent import run_tent  # noqa: E402


PROBATION = True   # the C loop's probation (AdaptConfig.probation); --no-probation turns it off


def _x(pm, x):
    return to_model_input(x.reshape((len(x),) + tuple(pm.input_shape)), pm.input_dtype, pm.input_scale, pm.input_zp)


def on_qemu(pm, x, y, streams, log) -> dict:
    from tinyadapt.session.device import DeviceOptions
    from tinyadapt.tta.device import DeviceRunner

    opts = DeviceOptions(timeout=20.0)   # a loaded 2-core machine slows QEMU down
    with DeviceRunner(pm, opts) as dev:
        res = [dev.infer(xi) for xi in x]
        full = [dev.session.client.run([np.ascontiguousarray(xi).tobytes()])[1].instructions for xi in x[:20]]
        arena = dev.metrics().arena_used
    ours = float(np.mean([n for _, n in res]))
    out = {"instructions_early_exit": ours, "instructions_full_backbone": float(np.mean(full)),
           "accuracy_source": float(np.mean([r.prediction for r, _ in res] == y)), "arena_used": int(arena),
           "streams": {}}
    log(f"  QEMU mps2-an386: {ours:,.0f} instructions per source sample with early exits, "
        f"{out['instructions_full_backbone']:,.0f} for the whole backbone (INFER) "
        f"({1 - ours / out['instructions_full_backbone']:+.1%} saved); arena high-water {arena:,} B")
    # the default mode adapting on the device, every answer checked against the host session
    for stream in streams:
        xs = _x(pm, stream.x)
        cfg = AdaptConfig(probation=PROBATION)
        sess = run_stream(pm, xs, cfg)
        with DeviceRunner(pm, opts, adapt=cfg.mode, cfg=cfg) as dev:
            got = [dev.infer(xi)[0] for xi in xs]
            st = dev.status()
        same = all((r.exit, r.prediction, r.macs, np.float32(r.entropy)) ==
                   (h.exit, h.prediction, h.macs, np.float32(h.entropy)) for r, h in zip(got, sess.steps))
        acc = float(np.mean([r.prediction for r in got] == stream.y))
        out["streams"][stream.name] = {"accuracy_adapted_on_device": acc, "equals_host": same,
                                       "rollbacks_device": st.rollbacks, "rollbacks_host": sess.rollbacks,
                                       "arena_used_adapting": st.arena_used, "adapt_state_bytes": st.state_bytes,
                                       "peak_sram_bytes_measured": st.arena_used + st.state_bytes}
        log(f"  QEMU {stream.name} adapted on the device ({cfg.mode}): {100 * acc:.1f} %, "
            f"{st.rollbacks} rollbacks, every answer equal to the host's: {same}; adaptation step SRAM measured "
            f"{st.arena_used + st.state_bytes:,} B (arena high-water {st.arena_used:,} B + state {st.state_bytes:,} B)")
    return out


def bench(name: str, modes: list[str], folder: Path, log, qemu: bool = False, seeds: int = 1) -> dict:
    ds = load(name)
    man = prepare(str(ds.model), ds.train.x, ds.train.y, exits=2, augment_rolls=7 if name == "basicmotions" else 0,
                  log=lambda *a: None)
    write(man, folder / f"{name}.tta")
    pm = PreparedModel(folder / f"{name}.tta")
    # source data: the held-out split, in the model's input format
    x = _x(pm, ds.test.x)
    runner = pm.open().runner()
    early = [runner.infer(xi) for xi in x]
    last = [r for r in (pm.open().runner([-1.0] * (len(pm.exits) - 1) + [1e30]).infer(xi) for xi in x)]
    bb = pm.backbone_model
    from tinyadapt.engine.host import HostEngine

    eng = HostEngine(bb.blob)
    bb_pred = np.array([int(np.argmax(eng.invoke([xi])[0])) for xi in x])
    src = {"samples": len(x), "backbone_accuracy": float((bb_pred == ds.test.y).mean()),
           "last_exit_accuracy": float(np.mean([r.prediction for r in last] == ds.test.y)),
           "early_exit_accuracy": float(np.mean([r.prediction for r in early] == ds.test.y)),
           "exit_rate": [float(np.mean([r.exit == k for r in early])) for k in range(len(pm.exits))],
           "macs_saved": 1 - float(np.mean([r.macs for r in early])) / pm.macs_full,
           "exits_after_ops": [e["cut_op"] - 1 for e in pm.exits]}
    log(f"{name}: source test split ({len(x)}): backbone {src['backbone_accuracy']:.3f}, last exit only "
        f"{src['last_exit_accuracy']:.3f}, early exits {src['early_exit_accuracy']:.3f} "
        f"(exit rate {[round(v, 3) for v in src['exit_rate']]}), MACs saved {src['macs_saved']:.1%}")
    rows = []
    for shift in SHIFTS[name]:
        s = make_stream(name, shift)
        xs = _x(pm, s.x)
        base_r = [runner.infer(xi) for xi in xs]
        base = np.array([r.prediction for r in base_r])
        row = {"stream": s.name, "samples": len(xs), "no_adapt": float((base == s.y).mean()),
               "no_adapt macs_saved": 1 - float(np.mean([r.macs for r in base_r])) / pm.macs_full}
        for mode in modes:
            sess = run_stream(pm, xs, AdaptConfig(mode=mode, probation=PROBATION))
            pred = np.array([st.prediction for st in sess.steps])
            row[mode] = float((pred == s.y).mean())
            row[f"{mode} rollbacks"] = sess.rollbacks
            row[f"{mode} macs_saved"] = 1 - float(np.mean([st.macs for st in sess.steps])) / pm.macs_full
        if seeds > 1:
            # the health check's verdicts depend on which samples it compares with the source
            accs = [float(np.mean([st.prediction for st in run_stream(pm, xs, AdaptConfig(seed=k, probation=PROBATION)).steps] == s.y))
                    for k in range(seeds)]
            row[f"{DEFAULT_MODE} over seeds"] = {"min": min(accs), "mean": float(np.mean(accs)), "max": max(accs)}
        row["tent_float"] = float((run_tent(bb, xs, 1e-3) == s.y).mean())
        rows.append(row)
        log(f"  {s.name:24s} no adaptation {100 * row['no_adapt']:5.1f}  " +
            "  ".join(f"{m} {100 * row[m]:5.1f} ({100 * (row[m] - row['no_adapt']):+5.1f}, "
                      f"{row[f'{m} rollbacks']} rb)" for m in modes) +
            f"  TENT float {100 * row['tent_float']:5.1f}" +
            "  MACs saved: no adaptation " + f"{100 * row['no_adapt macs_saved']:.1f} %, " +
            ", ".join(f"{m} {100 * row[f'{m} macs_saved']:.1f} %" for m in modes) +
            (f"  {DEFAULT_MODE} over {seeds} seeds: min {100 * row[f'{DEFAULT_MODE} over seeds']['min']:.1f} "
             f"mean {100 * row[f'{DEFAULT_MODE} over seeds']['mean']:.1f} max "
             f"{100 * row[f'{DEFAULT_MODE} over seeds']['max']:.1f}" if seeds > 1 else ""))
    full, how = full_model_step(bb)
    mem = {"full_model_entropy_minimisation": full, "full_model_source": how}
    for mode in modes:
        mem[mode] = ours_step(pm, parse_mode(mode))
    log("  adaptation step SRAM: " + ", ".join(f"{m} {mem[m]:,} B ({full / mem[m]:.1f}x less)" for m in modes) +
        f"; full-model entropy minimisation {full:,} B ({how.split(' (')[0]})")
    res = {"source": src, "streams": rows, "memory": mem}
    if qemu:
        shifts = ["contrast", "blur"] if name == "digits" else ["offset", "gain", "noise"]
        res["qemu"] = on_qemu(pm, x, ds.test.y, [make_stream(name, sh) for sh in shifts], log)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default=f"{DEFAULT_MODE},entropy", help="adaptation modes to compare")
    ap.add_argument("--datasets", default="digits,basicmotions")
    ap.add_argument("--qemu", action="store_true", help="also measure on QEMU (builds the firmware)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-probation", action="store_true",
                    help="run the C loop without probation (the previous default), for comparison")
    ap.add_argument("--seeds", type=int, default=1,
                    help="also run the default mode with this many seeds of the source-comparison sampling")
    a = ap.parse_args()
    global PROBATION
    PROBATION = not a.no_probation
    modes = a.modes.split(",")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.datasets.split(","):
            out[name] = bench(name, modes, Path(tmp), log=(lambda *m: None) if a.json else print, qemu=a.qemu, seeds=a.seeds)
    if a.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
