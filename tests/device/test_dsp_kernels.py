"""The Cortex-M DSP kernels (firmware/kernels/dsp) against the reference kernels (kernels/ref).

1. Kernel level, both builds of the same differential program (ta_dsp_check.c, seeded
   random cases over every fast path and fallback, wrap-around, odd parameters, invalid
   arguments): on the host (the DSP files' portable C path, under ASan/UBSan, with each
   tensor allocated at its exact size), and on QEMU mps2-an386 / mps2-an500 (Cortex-M4 /
   M7: the real SMLAD/SXTB16/SMMULR path).
2. Model level: QEMU images built with KERNELS=dsp against the host target (reference
   kernels): the digits CNN, MobileNetV2 96x96, micro_speech, and single-op models with
   odd channel counts, per-channel quantization, padding, strides, depth multipliers,
   batches (which the engine runs through the non-in-place depthwise kernel) and FC. The
   output bytes must be identical.
3. Instruction counts (-icount, exact): ref vs dsp per model are printed (run with -s), dsp
   must beat ref; and the regression guard of benchmarks/kernels.py on digits and
   basicmotions (both builds against benchmarks/kernel_counts.json, 1 % tolerance).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.paths import shared_model
from tests.support.tools import need_tool

REPO = Path(__file__).resolve().parents[2]
FW = REPO / "firmware"
CHECK_SRC = Path(__file__).with_name("ta_dsp_check.c")
WARN = ["-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wstrict-prototypes", "-Wno-unused-parameter"]


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- 1. kernels
def test_dsp_sources_compile_cleanly_without_dsp(tmp_path):
    """The portable C path: every kernels/dsp file builds for the host with the project's warnings as errors."""
    need_tool("cc")
    for src in sorted((FW / "kernels" / "dsp").glob("*.c")):
        proc = _run(["cc", "-std=c99", *WARN, "-Werror", "-O2", f"-I{FW / 'include'}", "-c", str(src), "-o",
                     str(tmp_path / (src.stem + ".o"))])
        assert proc.returncode == 0, f"{src.name}:\n{proc.stderr}"


@pytest.mark.parametrize("seed", [1, 2])
def test_dsp_kernels_match_reference_on_host(tmp_path, seed):
    need_tool("cc")
    exe = tmp_path / "ta_dsp_check"
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    cmd = ["cc", "-std=c99", *WARN, "-O1", "-g", f"-I{FW / 'include'}", str(CHECK_SRC), "-o", str(exe)]
    proc = _run(cmd[:1] + sanitize + cmd[1:])
    if proc.returncode != 0:         # a toolchain without the sanitizer runtimes
        proc = _run(cmd)
    assert proc.returncode == 0, proc.stderr
    run = _run([str(exe), str(seed), "3000"])
    assert run.returncode == 0 and "TA_DSP_CHECK OK" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]


def build_check_image(out: Path, core: str, fpu: str, seed: int, cases: int) -> Path:
    """ta_dsp_check.c as a bare-metal image: the ports' start-up and linker script, semihosting I/O."""
    elf = out / f"ta_dsp_check_{core}.elf"
    ld = FW / "ports" / "cortex_m" / "ta_cortex_m.ld"
    syms = {"__flash_origin": "0", "__flash_size": "0x400000", "__ram_origin": "0x20000000",
            "__ram_size": "0x400000", "__ram_slot_size": "0", "__stack_size": "0x4000", "__arena_size": "16"}
    cmd = ["arm-none-eabi-gcc", "-mthumb", f"-mcpu={core}", "-mfloat-abi=hard", f"-mfpu={fpu}", "-std=c99", *WARN,
           "-O2", "-ffunction-sections", "-fdata-sections", f"-DTA_CHECK_SEED={seed}", f"-DTA_CHECK_CASES={cases}",
           f"-I{FW / 'include'}", f"-I{FW / 'ports' / 'cortex_m'}", str(CHECK_SRC),
           str(FW / "ports" / "cortex_m" / "ta_startup.c"), "--specs=nano.specs", "--specs=nosys.specs",
           "-nostartfiles", "-Wl,--gc-sections", *[f"-Wl,--defsym={k}={v}" for k, v in syms.items()],
           "-T", str(ld), "-o", str(elf)]
    proc = _run(cmd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return elf


@pytest.mark.parametrize("machine,core,fpu", [("mps2-an386", "cortex-m4", "fpv4-sp-d16"),
                                              ("mps2-an500", "cortex-m7", "fpv5-d16")])
def test_dsp_kernels_match_reference_on_cortex_m(tmp_path, machine, core, fpu):
    need_tool("arm-none-eabi-gcc", "qemu-system-arm")
    elf = build_check_image(tmp_path, core, fpu, seed=11, cases=2000)
    dis = _run(["arm-none-eabi-objdump", "-d", str(elf)]).stdout
    assert "smlad" in dis and "sxtb16" in dis and "smmulr" in dis, "the DSP path was not compiled in"
    proc = subprocess.Popen(["qemu-system-arm", "-M", machine, "-kernel", str(elf), "-display", "none",
                             "-monitor", "none", "-serial", "null", "-semihosting-config", "enable=on,target=native"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out + err            # semihosting console output goes to QEMU's stderr
    assert proc.returncode == 0 and "TA_DSP_CHECK OK" in text, text[-3000:]


# --------------------------------------------------------------------------- 2. models
@pytest.fixture(scope="module")
def qemu_ready():
    need_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")


def run_on_qemu(blob: bytes, samples: list[np.ndarray], kernels: str) -> tuple[list[bytes], list[int]]:
    """Every sample through one emulated board (-icount): output bytes and instructions per inference."""
    from tinyadapt.session.device import DeviceOptions, open_device

    outs, counts = [], []
    with open_device(blob, DeviceOptions(board="qemu-an386", kernels=kernels, timeout=120.0)) as dev:
        for x in samples:
            ys, result = dev.run_sample([x])
            outs.append(b"".join(y.tobytes() for y in ys))
            counts.append(result.instructions)
    return outs, counts


def run_on_host(blob: bytes, samples: list[np.ndarray]) -> list[bytes]:
    from tinyadapt.engine.host import HostEngine

    engine = HostEngine(blob)
    return [b"".join(y.tobytes() for y in engine.invoke([x])) for x in samples]


def assert_same(host: list[bytes], dsp: list[bytes], label: str) -> None:
    for k, (a, b) in enumerate(zip(host, dsp)):
        if a != b:
            ra, rb = np.frombuffer(a, np.int8), np.frombuffer(b, np.int8)
            bad = np.flatnonzero(ra != rb)
            pytest.fail(f"{label}, sample {k}: {bad.size} of {ra.size} output bytes differ, e.g. "
                        + ", ".join(f"[{i}] ref {ra[i]} dsp {rb[i]}" for i in bad[:8]))


def repo_models() -> list[tuple[str, Path, list[np.ndarray]]]:
    digits = np.load(REPO / "models" / "digits" / "digits_test.npz")["x"]
    mnv2 = np.load(REPO / "models" / "mobilenetv2" / "mobilenetv2_96_sample.npz")["x"]
    return [("digits", REPO / "models" / "digits" / "digits_cnn.tflite", [digits[k:k + 1] for k in range(10)]),
            ("mobilenetv2_96", REPO / "models" / "mobilenetv2" / "mobilenetv2_96.tflite", [mnv2[:1]])]


def model_under_test(name: str) -> tuple[Path, list[np.ndarray]]:
    """The repo's models, and micro_speech from ../shared/models (skipped, saying so, when absent)."""
    if name == "micro_speech":
        rng = np.random.default_rng(3)
        return shared_model("micro_speech_quantized.tflite"), [rng.integers(-128, 128, (1, 1960), dtype=np.int8)
                                                              for _ in range(3)]
    return {n: (p, s) for n, p, s in repo_models()}[name]


@pytest.mark.parametrize("name", ["digits", "micro_speech", "mobilenetv2_96"])
def test_real_models_bit_exact_and_instruction_counts(qemu_ready, name):
    from tinyadapt.convert import convert

    path, samples = model_under_test(name)
    model = convert(path)
    host = run_on_host(model.blob, samples)
    dsp_out, dsp_counts = run_on_qemu(model.blob, samples, "dsp")
    assert_same(host, dsp_out, f"{name} (QEMU KERNELS=dsp vs host reference)")
    ref_out, ref_counts = run_on_qemu(model.blob, samples[:1], "ref")
    assert_same(host[:1], ref_out, f"{name} (QEMU KERNELS=ref vs host reference)")
    macs = sum(op.macs for op in model.ops)
    ref, dsp = ref_counts[0], dsp_counts[0]
    print(f"\n{name}: {macs:,} MACs, ref {ref:,} ({ref / macs:.2f}/MAC), dsp {dsp:,} ({dsp / macs:.2f}/MAC), "
          f"{ref / dsp:.2f}x (mps2-an386, -icount shift=7, first sample)")
    assert dsp < ref, f"{name}: the dsp kernels take {dsp:,} instructions, the reference {ref:,}"


def single_op_models() -> list[tuple[str, bytes, list[np.ndarray]]]:
    """Small models through each fast path and fallback, with the reference tests' quantization."""
    from tests.test_ops_conv import _edge, build_model
    from tests.test_ops_fc import fc_model

    conv = {
        "conv 1x1 odd channels (GEMM, odd pixels)": _edge(in_h=5, in_w=7, in_c=13, out_c=7, k_h=1, k_w=1),
        "conv 1x1 deep, per-tensor, RELU6": _edge(in_h=6, in_w=6, in_c=96, out_c=24, k_h=1, k_w=1,
                                                   per_channel=False, activation="RELU6"),
        "conv 1x1 stride 2 (row path)": _edge(in_h=9, in_w=9, in_c=8, out_c=6, k_h=1, k_w=1, stride_h=2,
                                              stride_w=2),
        "conv 1x1 in place, 96 -> 24, chunked, RELU6": _edge(in_h=14, in_w=15, in_c=96, out_c=24, k_h=1, k_w=1,
                                                              activation="RELU6"),
        "conv 1x1 in place, odd channels 13 -> 7": _edge(in_h=25, in_w=13, in_c=13, out_c=7, k_h=1, k_w=1),
        "conv 3x3 stride-2 SAME even (first MobileNet layer)": _edge(in_h=16, in_w=16, in_c=3, out_c=16,
                                                                      stride_h=2, stride_w=2, activation="RELU6"),
        "conv 3x3 SAME odd channels, batch 2": _edge(n=2, in_h=7, in_w=5, in_c=5, out_c=9),
        "conv 5x3 dilation 2 VALID": _edge(in_h=12, in_w=11, in_c=4, out_c=5, k_h=5, k_w=3, dil_h=2, dil_w=2,
                                          padding="VALID"),
        "depthwise 3x3 in place, stride 1": _edge(depthwise=True, in_h=9, in_w=11, in_c=19, activation="RELU6"),
        # Enough channels that in place saves more than its scratch (plane, copy, packed taps).
        "depthwise 3x3 in place, stride 2 even": _edge(depthwise=True, in_h=12, in_w=12, in_c=48, stride_h=2,
                                                       stride_w=2),
        "depthwise 3x3 batch 2 (not in place)": _edge(depthwise=True, n=2, in_h=6, in_w=7, in_c=21),
        "depthwise 5x5 in place, per-tensor": _edge(depthwise=True, in_h=8, in_w=8, in_c=22, k_h=5, k_w=5,
                                                   per_channel=False),
        "depthwise multiplier 3": _edge(depthwise=True, in_h=7, in_w=6, in_c=5, dm=3),
        "depthwise multiplier 8, 1 channel, 10x8 stride 2": _edge(depthwise=True, in_h=20, in_w=16, in_c=1, dm=8,
                                                                  k_h=10, k_w=8, stride_h=2, stride_w=2),
    }
    out = []
    for label, case in conv.items():
        blob, inputs = build_model(case)
        out.append((label, blob, inputs))
    rng = np.random.default_rng(5)
    for label, args in {"fc odd sizes, per-channel, no bias": (3, 77, 9, True, False, "NONE", False),
                        "fc batch 1, deep, RELU": (1, 640, 12, False, True, "RELU", False)}.items():
        blob, in_shape = fc_model(rng, *args)
        out.append((label, blob, [rng.integers(-128, 128, size=in_shape, dtype=np.int8)]))
    return out


def test_single_op_models_bit_exact(qemu_ready):
    from tinyadapt.convert import convert

    print("\nsingle-op models, instructions on mps2-an386 with KERNELS=dsp:")
    for label, tflite, inputs in single_op_models():
        model = convert(tflite, name=label)
        if "in place" in label:  # the planner decides; make sure each kernel is really reached
            op = model.ops[0]
            in_place = model.tensors[op.inputs[0]].offset == model.tensors[op.outputs[0]].offset
            assert in_place == ("not in place" not in label), f"{label}: the planner chose otherwise"
        host = run_on_host(model.blob, inputs)
        dsp, counts = run_on_qemu(model.blob, inputs, "dsp")
        assert_same(host, dsp, label)
        macs = sum(op.macs for op in model.ops)
        print(f"  {label:<52} {counts[0]:>9,} instr  {counts[0] / max(macs, 1):6.2f}/MAC")


# --------------------------------------------------------------------------- 3. regression guard
def _kernel_bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ta_kernel_bench", REPO / "benchmarks" / "kernels.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_kernel_counts_match_the_committed_table(qemu_ready, capsys):
    """benchmarks/kernels.py's guard on the two small repo models, both kernel builds: no model
    total and no op type more than 1 % (and 100 instructions) slower than
    benchmarks/kernel_counts.json, ref and dsp outputs identical. Then the guard itself: the
    same measurements against a table 2 % below them must fail, op type by op type."""
    bench = _kernel_bench()
    table = json.loads((REPO / "benchmarks" / "kernel_counts.json").read_text())
    models = bench.all_models()
    rows = [bench.measure(n, models[n][0], models[n][1], ["ref", "dsp"], "qemu-an386")
            for n in ("digits", "basicmotions")]
    assert all(r["outputs_identical"] for r in rows)
    bad, notes = bench.compare(rows, table)
    print("\n".join(notes))
    assert not bad, "\n".join(bad) + "\n(benchmarks/kernels.py --update records an intended change)"
    assert not [n for n in notes if "not in the table" in n], notes

    lowered = bench.update_table({}, rows)
    for entry in lowered["models"].values():
        for counts in entry.values():
            counts["total"] = int(counts["total"] * 0.98)
            counts["ops"] = {k: int(v * 0.98) for k, v in counts["ops"].items()}
    bad, _ = bench.compare(rows, lowered)
    # every count whose 2 % exceeds the guard's slack (the small ops' few dozen do not)
    counts = [n for r in rows for got in r["kernels"].values() for n in [got["total"], *got["ops"].values()]]
    n_expected = sum(1 for n in counts if n - int(n * 0.98) > bench.SLACK)
    assert n_expected >= 8 and len(bad) == n_expected, bad
    assert all(line.startswith("SLOWER: ") for line in bad), bad
    assert any("digits KERNELS=ref conv other" in line for line in bad)
    assert any("basicmotions KERNELS=dsp whole model" in line for line in bad)


def test_kernel_bench_cli_refuses_bad_arguments():
    for args, needle in ((["--models", "nope"], "unknown model"), (["--kernels", "fast"], "--kernels")):
        proc = _run([sys.executable, str(REPO / "benchmarks" / "kernels.py"), *args])
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
