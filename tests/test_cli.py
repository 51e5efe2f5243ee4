"""The CLI contract: help, JSON, outputs, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.reference import run_tflm
from tests.support.paths import shared_model
from tests.support.tflite_builder import ModelBuilder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hello() -> Path:
    return shared_model("hello_world_int8.tflite")


def cli(*args, check_ok: bool | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "tinyadapt", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    if check_ok is True:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc, *needles: str) -> None:
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), f"{n!r} not in {lines[0]!r}"


def test_help_explains_every_command():
    top = cli("--help", check_ok=True).stdout
    for command in ("convert", "run"):
        assert command in top
        text = cli(command, "--help", check_ok=True).stdout
        assert "examples:" in text and "--json" in text


def test_convert_json_report(hello):
    rep = json.loads(cli("convert", hello, "--json", check_ok=True).stdout)
    assert rep["schema"] == 1
    assert rep["peak_sram_bytes"] > 0 and rep["weights_bytes"] > 0 and rep["macs"] == 288
    assert [l["op"] for l in rep["layers"]] == ["FULLY_CONNECTED"] * 3
    for layer in rep["layers"]:
        assert {"macs", "weight_bytes", "activation_bytes", "output_shapes"} <= set(layer)


def test_convert_writes_blob_and_compilable_header(hello, tmp_path):
    blob = tmp_path / "hello.tamb"
    cli("convert", hello, "-o", blob, check_ok=True)
    assert blob.read_bytes()[:4] == b"TAMB"
    header = tmp_path / "hello_model.h"
    cli("convert", hello, "-o", header, "--symbol", "g_hello", check_ok=True)
    src = tmp_path / "use.c"
    src.write_text(f'#include "{header}"\nconst void *p(void) {{ return g_hello + g_hello_len; }}\n')
    proc = subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-c", str(src), "-o", str(tmp_path / "use.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("case", ["unsupported_op", "truncated", "not_tflite", "missing", "float", "int16", "empty"])
def test_convert_bad_models_fail_with_one_line(case, hello, tmp_path):
    path = tmp_path / "bad.tflite"
    if case == "unsupported_op":
        path = shared_model("keyword_scrambled_8bit.tflite")
        needles = ("SVDF", "not supported")
    elif case == "truncated":
        path.write_bytes(hello.read_bytes()[:700])
        needles = ("truncated",)
    elif case == "not_tflite":
        path.write_text("this is not a model\n" * 10)
        needles = ("not a .tflite model",)
    elif case == "missing":
        path = tmp_path / "nope.tflite"
        needles = ("cannot read",)
    elif case == "empty":
        path.write_bytes(b"")
        needles = ("not a .tflite model",)
    elif case == "float":
        b = ModelBuilder()
        x = b.input((1, 4), np.float32)
        w = b.const(np.ones((3, 4), np.float32))
        y = b.tensor((1, 3), np.float32)
        b.op("FULLY_CONNECTED", [x, w, -1], [y])
        b.output(y)
        path.write_bytes(b.build())
        needles = ("float",)
    else:
        b = ModelBuilder()
        x = b.input((1, 4), np.int16, scale=0.1, zero_point=0)
        y = b.tensor((1, 4), np.int16, scale=0.1, zero_point=0)
        b.op("ADD", [x, x], [y])
        b.output(y)
        path.write_bytes(b.build())
        needles = ("int16",)
    out = tmp_path / "out.tamb"
    out.write_bytes(b"precious")
    proc = cli("convert", path, "-o", out)
    assert_one_line_error(proc, *needles)
    assert out.read_bytes() == b"precious", "a failed convert must not touch an existing output"


def test_run_single_and_stacked_match_tflm(hello, tmp_path):
    xs = np.arange(-128, 128, dtype=np.int8).reshape(256, 1, 1)
    np.save(tmp_path / "one.npy", xs[5])
    np.save(tmp_path / "many.npy", xs)
    summary = json.loads(cli("run", hello, "--input", tmp_path / "one.npy", "--output", tmp_path / "y1.npy",
                             "--json", check_ok=True).stdout)
    assert summary["samples"] == 1 and summary["peak_sram_bytes"] > 0
    y1 = np.load(tmp_path / "y1.npy")
    assert y1.shape == (1, 1) and y1.dtype == np.int8
    cli("run", hello, "--input", tmp_path / "many.npy", "--output", tmp_path / "yn.npy", check_ok=True)
    yn = np.load(tmp_path / "yn.npy")
    assert yn.shape == (256, 1, 1) and yn.dtype == np.int8
    ref = np.stack([run_tflm(hello.read_bytes(), [x])[0] for x in xs])
    assert np.array_equal(yn, ref)
    assert np.array_equal(y1, yn[5])


@pytest.mark.parametrize("case", ["shape", "dtype", "missing", "garbage"])
def test_run_bad_input_fails_with_one_line(case, hello, tmp_path):
    x = tmp_path / "x.npy"
    if case == "shape":
        np.save(x, np.zeros((1, 2), np.int8))
        needles = ("shape", "[1, 1]")
    elif case == "dtype":
        np.save(x, np.zeros((1, 1), np.float32))
        needles = ("dtype", "int8")
    elif case == "missing":
        x = tmp_path / "absent.npy"
        needles = ("does not exist",)
    else:
        x.write_bytes(b"\x93NUMPY garbage")
        needles = ("cannot read",)
    y = tmp_path / "y.npy"
    y.write_bytes(b"precious")
    assert_one_line_error(cli("run", hello, "--input", x, "--output", y), *needles)
    assert y.read_bytes() == b"precious"


def test_plan_with_the_input_frame_outside_sram(tmp_path):
    """--external-input: the patch stage reads the input from frame memory, so a budget that
    no resident-input plan meets is met, and the JSON says how much input left the arena."""
    model = REPO / "models/mobilenetv2/mobilenetv2_96.tflite"
    resident = json.loads(cli("plan", model, "--budget", "34000", "--json").stdout)
    assert not resident["fits"] and resident["external_input_bytes"] == 0
    proc = cli("plan", model, "--budget", "34000", "--external-input", "--json", check_ok=True)
    external = json.loads(proc.stdout)
    assert external["fits"] and external["peak_sram_bytes"] <= 34000
    assert external["external_input_bytes"] == 96 * 96 * 3
    out = tmp_path / "m.tmb"
    cli("convert", model, "--budget", "34000", "--external-input", "-o", out, check_ok=True)
    assert out.stat().st_size > 0
    x = np.load(REPO / "models/mobilenetv2/mobilenetv2_96_sample.npz")["x"][:1]
    np.save(tmp_path / "x.npy", x)
    for flags, y in (((), "a.npy"), (("--budget", "34000", "--external-input"), "b.npy")):
        cli("run", model, "--input", tmp_path / "x.npy", "--output", tmp_path / y, *flags, check_ok=True)
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert_one_line_error(cli("convert", model, "--external-input", "-o", tmp_path / "c.tmb"), "patch plan")


def test_plan_ranks_by_estimated_instructions_and_streams(tmp_path):
    """The plan under a budget is the cheapest by the core's measured costs; --patch forces a
    streamed plan; its outputs equal layer by layer."""
    model = REPO / "models/mobilenetv2/mobilenetv2_96.tflite"
    report = json.loads(cli("plan", model, "--budget", "40000", "--json", check_ok=True).stdout)
    assert report["fits"] and report["peak_sram_bytes"] <= 40000 and report["core"] == "cortex-m4"
    fitting = [c for c in report["candidates"] if c["fits"]]
    assert report["estimated_instruction_overhead"] == min(c["estimated_instruction_overhead"] for c in fitting)
    assert report["patch"]["mode"] in ("tiles", "stream") and len(report["patch"]["grid"]) == 2
    m7 = json.loads(cli("plan", model, "--board", "stm32f746g-disco", "--json").stdout)
    assert m7["core"] == "cortex-m7"
    x = np.load(REPO / "models/mobilenetv2/mobilenetv2_96_sample.npz")["x"][:1]
    np.save(tmp_path / "x.npy", x)
    for flags, y in (((), "a.npy"), (("--patch", "6,24,stream,3"), "b.npy"), (("--patch", "6,12,stream,3,1"), "d.npy")):
        cli("run", model, "--input", tmp_path / "x.npy", "--output", tmp_path / y, *flags, check_ok=True)
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "d.npy"))
    assert_one_line_error(cli("convert", model, "--patch", "6,24,bands", "-o", tmp_path / "c.tmb"), "--patch takes")
    assert not (tmp_path / "c.tmb").exists()
