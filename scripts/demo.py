"""The tinyadapt demo: real int8 models on an emulated microcontroller, checked against
TensorFlow Lite Micro.

1. Convert the digits CNN (models/digits) and plan its memory.
2. Run its held-out test split on the host target (the C engine in-process) and on
   TensorFlow Lite Micro: accuracy, peak SRAM next to TFLM's arena, bit-exactness.
3. Build firmware with the model compiled in for an emulated Cortex-M4 board (QEMU
   mps2-an386), boot it, stream the test split over a real serial link, and report what
   the device measured: accuracy, instructions per inference, arena and stack high-water
   marks, flash and RAM use.
4. Patch-based inference (MCUNetV2): MobileNetV2 0.35 at 144x144 does not fit the
   STM32F746G-DISCO's SRAM layer by layer; the planner runs its first stage tile by
   tile, and the emulated board (QEMU mps2-an500, Cortex-M7, linked with the F746's
   budgets) runs it bit-exactly.
5. On-device adaptation: the digits CNN, pretrained on upright digits, meets mirrored ones.
   QEMU trains it with the sparse update (TRAIN_STEP), SAVEs the parameters to the board's
   NVM (a file that outlives the emulator), and a new emulator boots, restores them, and
   scores the held-out split with the adapted accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))
sys.path.insert(0, str(REPO / "models" / "mobilenetv2"))

from tinyadapt.cli.plan_args import board_budget  # noqa: E402
from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.device.boards import load_board  # noqa: E402
from tinyadapt.device.build import build_image  # noqa: E402
from tinyadapt.engine.host import HostEngine  # noqa: E402
from tinyadapt.reference import run_tflm, tflm_arena_head  # noqa: E402
from tinyadapt.report.console import human_bytes, print_layers, stdout  # noqa: E402
from tinyadapt.report.layers import convert_report  # noqa: E402
from tinyadapt.session.device import DeviceOptions, open_device  # noqa: E402

QEMU_BOARD = "qemu-an386"
PATCH_BOARD = "stm32f746g-disco"


def verdict(ok: bool, what: str) -> str:
    return f"[bold green]{what}[/]" if ok else f"[bold red]NOT {what}[/]"


def host_vs_tflm(model, model_bytes: bytes, x: np.ndarray, y: np.ndarray, figures: dict) -> tuple[np.ndarray, bool]:
    stdout.rule("2. Host target vs TensorFlow Lite Micro")
    shape = model.input_tensors()[0].shape
    engine = HostEngine(model.blob)
    t0 = time.perf_counter()
    ours = np.stack([engine.invoke([xi.reshape(shape)])[0].ravel() for xi in x])
    t_ours = time.perf_counter() - t0
    ref = np.stack([run_tflm(model_bytes, [xi.reshape(shape)])[0].ravel() for xi in x])
    exact = bool(np.array_equal(ours, ref))
    head = tflm_arena_head(model_bytes)
    stdout.print(f"accuracy   tinyadapt {np.mean(ours.argmax(1) == y):.2%}   TFLite Micro {np.mean(ref.argmax(1) == y):.2%}"
                 f"   ({len(x)} held-out digits)")
    stdout.print(f"peak SRAM  tinyadapt {model.peak_sram_bytes:,} B   TFLite Micro arena head {head:,} B")
    stdout.print(f"host time  {1e6 * t_ours / len(x):.0f} us per inference")
    stdout.print(verdict(exact, f"bit-exact: all {len(x)} outputs identical to TensorFlow Lite Micro"))
    figures.update(samples=len(x), accuracy_host=float(np.mean(ours.argmax(1) == y)),
                   accuracy_tflm=float(np.mean(ref.argmax(1) == y)), identical_to_tflm=exact,
                   peak_sram_bytes=model.peak_sram_bytes, tflm_arena_head_bytes=head)
    return ours, exact


def on_qemu(model, x: np.ndarray, y: np.ndarray, host_out: np.ndarray, figures: dict) -> bool:
    stdout.rule(f"3. On an emulated Cortex-M4 ({QEMU_BOARD}, QEMU mps2-an386)")
    build = build_image(load_board(QEMU_BOARD), blob=model.blob, name="digits")
    rep = build.report()
    stdout.print(f"firmware   {build.elf.relative_to(REPO)}: flash {rep['flash']['used_bytes']:,} B "
                 f"({rep['flash']['percent']:.1f} % of {human_bytes(rep['flash']['budget_bytes'])}), "
                 f"static RAM {rep['ram']['static_bytes']:,} B, stack {rep['ram']['stack_bytes']:,} B")
    shape = model.input_tensors()[0].shape
    outs, instructions = [], []
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    t0 = time.perf_counter()
    with open_device(model.blob, DeviceOptions(board=QEMU_BOARD, model_name="digits")) as dev, \
            Progress(TextColumn("streaming over the serial link"), BarColumn(), MofNCompleteColumn(),
                     TextColumn("{task.fields[acc]}"), console=stdout, transient=True) as bar:
        task = bar.add_task("stream", total=len(x), acc="")
        for i, xi in enumerate(x):
            o, result = dev.run_sample([xi.reshape(shape)])
            outs.append(o[0].ravel())
            instructions.append(result.instructions)
            bar.update(task, advance=1, acc=f"accuracy {np.mean(np.argmax(outs, 1) == y[:i + 1]):.1%}")
        metrics = dev.metrics()
    seconds = time.perf_counter() - t0
    outs = np.stack(outs)
    exact = bool(np.array_equal(outs, host_out))
    ins = np.array(instructions)
    stdout.print(f"accuracy   {np.mean(outs.argmax(1) == y):.2%} on the device ({len(x)} samples, "
                 f"{len(x) / seconds:.0f} samples/s over the link)")
    stdout.print(f"latency    {ins.mean():,.0f} instructions per inference (min {ins.min():,}, max {ins.max():,}); "
                 f"{1e3 * ins.mean() / 25e6:.1f} ms at the board's 25 MHz, one instruction per cycle")
    stdout.print(f"memory     arena high-water {metrics.arena_used:,} B (planned {model.peak_sram_bytes:,} B), "
                 f"stack high-water {metrics.stack_used:,} B")
    stdout.print(verdict(exact, "bit-exact: device outputs identical to the host target (and so to TFLM)"))
    figures.update(board=QEMU_BOARD, kernels="dsp", accuracy_device=float(np.mean(outs.argmax(1) == y)),
                   device_identical_to_host=exact, instructions_mean=float(ins.mean()), instructions_min=int(ins.min()),
                   instructions_max=int(ins.max()), device_arena_used=metrics.arena_used,
                   device_stack_used=metrics.stack_used, flash_used=rep["flash"]["used_bytes"])
    return exact and metrics.arena_used <= model.peak_sram_bytes


def patch_demo(figures: dict) -> bool:
    from synth import build_mobilenetv2

    stdout.rule(f"4. Patch-based inference on the {PATCH_BOARD} budget (QEMU Cortex-M7)")
    board = load_board(PATCH_BOARD)
    budget = board_budget(PATCH_BOARD)
    model_bytes = build_mobilenetv2(0.35, 144, classes=10)
    layered = convert(model_bytes, name="MobileNetV2-0.35 144x144")
    model = convert(model_bytes, name="MobileNetV2-0.35 144x144", budget=budget, budget_name=PATCH_BOARD,
                    core=board.core)
    p = model.patch
    stdout.print(f"board      {board.description}")
    stdout.print(f"budget     {budget:,} B of SRAM for activations (RAM less model slot, stack and firmware data)")
    stdout.print(f"layer by layer  {layered.peak_sram_bytes:,} B: does not fit "
                 f"(TFLite Micro's arena head: {tflm_arena_head(model_bytes):,} B)")
    stdout.print(f"patch-based     {model.peak_sram_bytes:,} B: first {p.stage.n_ops} ops, {p.grid_label}, "
                 f"MAC overhead {100 * p.mac_overhead:.1f} %, estimated instruction overhead "
                 f"{100 * p.cost.overhead:.1f} %")
    x = np.random.default_rng(0).integers(-128, 128, size=model.input_tensors()[0].shape, dtype=np.int8)
    host = HostEngine(model.blob).invoke([x])[0]
    with open_device(model.blob, DeviceOptions(board=PATCH_BOARD, model_name="mbv2_035_144", timeout=120.0)) as dev:
        out, result = dev.run_sample([x])
        metrics = dev.metrics()
    exact = bool(np.array_equal(out[0], host)) and bool(np.array_equal(host, HostEngine(layered.blob).invoke([x])[0]))
    stdout.print(f"on QEMU    {result.instructions:,} instructions, arena high-water {metrics.arena_used:,} B")
    stdout.print(verdict(exact, "bit-exact: patch-based on the device = host = layer-by-layer"))
    figures.update(model="MobileNetV2-0.35 144x144", board=PATCH_BOARD, budget_bytes=budget,
                   layer_by_layer_bytes=layered.peak_sram_bytes, tflm_arena_head_bytes=tflm_arena_head(model_bytes),
                   peak_sram_bytes=model.peak_sram_bytes, split_ops=p.stage.n_ops, grid=p.grid, tiles=p.grid_label,
                   mac_overhead=round(p.mac_overhead, 4), instructions=int(result.instructions),
                   device_arena_used=metrics.arena_used, bit_exact=exact)
    return exact


def adapt_demo(figures: dict, epochs: int = 3, lr: float = 0.01) -> bool:
    import tempfile

    from tinyadapt.session.device import DeviceOptions, open_device
    from tinyadapt.session.train_device import DeviceTrainer
    from tinyadapt.train.device_target import DeviceTarget
    from tinyadapt.train.graph import build_training, weight_layers
    from tinyadapt.train.scheme import UpdateScheme
    from tinyadapt.train.session import accuracy, load_samples, train

    stdout.rule("5. On-device adaptation on QEMU, saved across a reboot")
    cm = convert(REPO / "models" / "digits" / "digits_cnn.tflite")
    n = len(weight_layers(cm))
    scheme = UpdateScheme(bias_depth=n, weights={n - 1: 1.0, n - 2: 1.0, n - 3: 0.5})
    plan = build_training(cm, scheme)
    d = np.load(REPO / "models" / "digits" / "digits_test.npz")
    x, y = load_samples(plan, d["x_float"][:, :, ::-1].astype(np.float32), d["y"].astype(np.int64), "digits")
    order = np.random.default_rng(0).permutation(len(y))
    tr, ev = order[:240], order[240:]
    stdout.print(f"task       upright digits -> mirrored digits: {len(tr)} samples to adapt on, {len(ev)} held out")
    stdout.print(f"scheme     {scheme.describe()}; training step {plan.peak_sram_bytes:,} B planned")
    with tempfile.TemporaryDirectory(prefix="tinyadapt-demo-") as tmp:
        nvm = str(Path(tmp) / "nvm.bin")
        target = DeviceTarget(plan, "qemu", board="qemu-an386", nvm=nvm)
        try:
            t0 = time.monotonic()
            res = train(target, x[tr], y[tr], x[ev], y[ev], epochs, lr, seed=0)
            saved = target.save()
            peak, instr = target.peak_sram_bytes, target.instructions_per_step
            adapted = target.params()
        finally:
            target.close()
        stdout.print(f"accuracy   {res.accuracy_before:.2%} before, {res.accuracy_after:.2%} after {res.steps} steps "
                     f"({time.monotonic() - t0:.0f} s on QEMU)")
        stdout.print(f"device     training step {peak:,} B of SRAM (high-water + parameter RAM), "
                     f"{instr:,} instructions per step")
        stdout.print(f"SAVE       revision {saved.revision}, {saved.bytes:,} B to NVM; emulator stopped")
        trainer = DeviceTrainer(open_device(plan.blob, DeviceOptions(board="qemu-an386", nvm=nvm)))
        try:
            info = trainer.info
            after_reboot = accuracy(trainer, x[ev], y[ev])
            same = trainer.params() == adapted
        finally:
            trainer.close()
    stdout.print(f"reboot     restored revision {info.stored_revision}: accuracy {after_reboot:.2%} on the held-out split")
    ok = info.restored and same and after_reboot == res.accuracy_after and res.accuracy_after > res.accuracy_before
    figures.update(accuracy_before=res.accuracy_before, accuracy_after=res.accuracy_after,
                   accuracy_after_reboot=after_reboot, steps=res.steps, peak_sram_bytes=peak,
                   instructions_per_step=instr, saved_revision=saved.revision, saved_bytes=saved.bytes)
    stdout.print(verdict(ok, "the adapted parameters survived the reboot bit for bit, with their accuracy"))
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "models/digits/digits_cnn.tflite"))
    ap.add_argument("--data", default=str(REPO / "models/digits/digits_test.npz"))
    ap.add_argument("--no-qemu", action="store_true", help="host target only")
    ap.add_argument("--json", action="store_true", help="print only the figures, as JSON (scripts/figures.py reads them)")
    args = ap.parse_args()
    if args.json:
        stdout.quiet = True
    figures: dict = {"digits": {}, "patch": {}}

    model_path = Path(args.model)
    data = np.load(args.data)
    x, y = data["x"], data["y"]
    stdout.rule(f"1. Convert {model_path.name}")
    model = convert(model_path)
    print_layers(convert_report(model))
    host_out, ok = host_vs_tflm(model, model_path.read_bytes(), x, y, figures["digits"])
    if not args.no_qemu:
        ok = on_qemu(model, x, y, host_out, figures["digits"]) and ok
        ok = patch_demo(figures["patch"]) and ok
        ok = adapt_demo(figures.setdefault("adapt", {})) and ok
    if args.json:
        import json

        print(json.dumps({**figures, "ok": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
