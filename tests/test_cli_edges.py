"""The CLI's rough edges, one test each (issue 9, item 7): shapes `run` takes, budgets,
errors on one line on stderr, output files, input files, uniform options, honest counter
keys, and signals left to the caller. Only the repo's own models; no device needed."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "models" / "digits" / "digits_cnn.tflite"           # input [1, 8, 8, 1] int8, output [1, 10]
MOBILENET = REPO / "models" / "mobilenetv2" / "mobilenetv2_96.tflite"


def cli(*args, umask: int | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyadapt", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=REPO, preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
                          env={**os.environ, **(env or {})})


def ok(*args, **kw) -> subprocess.CompletedProcess:
    proc = cli(*args, **kw)
    assert proc.returncode == 0, proc.stderr
    return proc


def one_line_error(proc, command: str, *needles: str, code: int = 1) -> str:
    """Exactly one line on stderr, `tinyadapt COMMAND: error: ...`, naming the cause."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"tinyadapt {command}: error: "), lines[0]
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def digits_x() -> np.ndarray:
    return np.load(REPO / "models" / "digits" / "digits_test.npz")["x"]   # [360, 8, 8, 1]: no batch axis


# -- run takes what stream takes -------------------------------------------------------------
def test_run_takes_the_repos_own_test_arrays_and_single_samples(tmp_path, digits_x):
    x = digits_x[:12]
    assert x.shape == (12, 8, 8, 1)
    np.save(tmp_path / "flat.npy", x)                          # [N, *sample] as the data set keeps it
    np.save(tmp_path / "batched.npy", x.reshape(12, 1, 8, 8, 1))
    np.save(tmp_path / "one.npy", x[3])                         # one sample, no batch axis
    np.save(tmp_path / "one_b.npy", x[3:4])                     # one sample, the model's own shape
    rep = json.loads(ok("run", DIGITS, "-i", tmp_path / "flat.npy", "-o", tmp_path / "a.npy", "--json").stdout)
    assert rep["samples"] == 12 and rep["outputs"][0]["shape"] == [12, 1, 10]
    ok("run", DIGITS, "-i", tmp_path / "batched.npy", "-o", tmp_path / "b.npy")
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (12, 1, 10) and np.array_equal(a, b)
    for name in ("one", "one_b"):
        ok("run", DIGITS, "-i", tmp_path / f"{name}.npy", "-o", tmp_path / f"y_{name}.npy")
        y = np.load(tmp_path / f"y_{name}.npy")
        assert y.shape == (1, 10) and np.array_equal(y, a[3])


def test_run_and_stream_name_the_same_accepted_shapes(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((5, 8, 8, 3), np.int8))
    run_err = one_line_error(cli("run", DIGITS, "-i", tmp_path / "bad.npy", "-o", tmp_path / "y.npy"), "run",
                             "[5, 8, 8, 3]")
    # stream checks its data before it starts a device, so this needs no emulator
    stream_err = one_line_error(cli("stream", "--model", DIGITS, "--data", tmp_path / "bad.npy",
                                    "--state", tmp_path / "s.json"), "stream", "[5, 8, 8, 3]")
    accepted = "[1, 8, 8, 1] or [8, 8, 1] (one sample), or [N, 1, 8, 8, 1] or [N, 8, 8, 1] (a stack of N)"
    assert accepted in run_err and accepted in stream_err
    assert not (tmp_path / "s.json").exists()


# -- plan over budget, and budgets -----------------------------------------------------------
def test_plan_over_budget_is_one_error_line_on_stderr(tmp_path):
    proc = cli("plan", DIGITS, "--budget", "100")
    line = one_line_error(proc, "plan", "does not fit the 100-byte", "smallest achievable peak")
    assert "does not fit" not in proc.stdout, "the error belongs on stderr, not in the table's output"
    proc = cli("plan", DIGITS, "--budget", "100", "--json")
    assert not json.loads(proc.stdout)["fits"]
    assert one_line_error(proc, "plan") == line


@pytest.mark.parametrize("command", ["plan", "convert", "run", "build"])
def test_a_negative_budget_is_refused_in_one_line(command, tmp_path):
    args = {"plan": ["plan", DIGITS], "convert": ["convert", DIGITS],
            "run": ["run", DIGITS, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"],
            "build": ["build", "--board", "qemu-an386", "--model", DIGITS]}[command]
    one_line_error(cli(*args, "--budget", "-5"), command, "argument --budget: '-5': must be more than 0 bytes",
                   code=2)


@pytest.mark.parametrize("value,needle", [("0", "more than 0"), ("abc", "not a byte count"),
                                          ("12.5", "whole number"), ("64X", "not a byte count"), ("", "byte count")])
def test_budgets_that_are_not_byte_counts(value, needle):
    import argparse

    from tinyadapt.cli.plan_args import budget_bytes

    with pytest.raises(argparse.ArgumentTypeError, match=needle):
        budget_bytes(value)


def test_budget_suffixes():
    from tinyadapt.cli.plan_args import budget_bytes, reserve_bytes

    for text, value in (("64K", 65536), ("64k", 65536), ("320KiB", 327680), ("1M", 1 << 20), ("1.5MiB", 3 << 19),
                        ("200kB", 200000), ("70000", 70000), (" 8 K ", 8192)):
        assert budget_bytes(text) == value, text
    assert reserve_bytes("0") == 0
    rep = json.loads(ok("plan", DIGITS, "--budget", "64K", "--json").stdout)
    assert rep["budget_bytes"] == 65536 and rep["fits"]


def test_budget_options_are_the_same_on_every_planning_command():
    import argparse

    from tinyadapt.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("convert", "plan", "run", "build", "stream", "metrics", "flash"):
        options = {o for a in sub.choices[command]._actions for o in a.option_strings}
        assert {"--budget", "--budget-board", "--reserve", "--external-input"} <= options, command
    one_line_error(cli("convert", DIGITS, "--budget", "64K", "--budget-board", "qemu-an386"), "convert",
                   "not allowed with", code=2)


def test_budget_board_on_run_plans_for_that_board(tmp_path):
    x = np.load(REPO / "models/mobilenetv2/mobilenetv2_96_sample.npz")["x"][:1]
    np.save(tmp_path / "x.npy", x)
    plain = json.loads(ok("run", MOBILENET, "-i", tmp_path / "x.npy", "-o", tmp_path / "a.npy", "--json").stdout)
    tight = json.loads(ok("run", MOBILENET, "-i", tmp_path / "x.npy", "-o", tmp_path / "b.npy", "--json",
                          "--budget-board", "nrf52840-dk", "--reserve", "150K").stdout)
    assert plain["patch"] is None and tight["patch"] is not None
    assert tight["peak_sram_bytes"] < plain["peak_sram_bytes"]
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


# -- output files ----------------------------------------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_output_files_honour_the_umask(umask, mode, tmp_path, digits_x):
    np.save(tmp_path / "x.npy", digits_x[:2])
    ok("convert", DIGITS, "-o", tmp_path / "m.tamb", umask=umask)
    ok("convert", DIGITS, "-o", tmp_path / "m.h", umask=umask)
    ok("run", DIGITS, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", umask=umask)
    for name in ("m.tamb", "m.h", "y.npy"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h", "m.tamb", "x.npy", "y.npy"], "no temporary left"


def test_output_into_a_missing_folder_is_an_error(tmp_path, digits_x):
    np.save(tmp_path / "x.npy", digits_x[:2])
    missing = tmp_path / "no" / "such"
    for command, args in (("convert", ["convert", DIGITS, "-o", missing / "m.tamb"]),
                          ("run", ["run", DIGITS, "-i", tmp_path / "x.npy", "-o", missing / "y.npy"]),
                          ("stream", ["stream", "--model", DIGITS, "--data", tmp_path / "x.npy",
                                      "--state", tmp_path / "s.json", "-o", missing / "y.npy"]),
                          ("metrics", ["metrics", "--model", DIGITS, "--html", missing / "r.html"])):
        one_line_error(cli(*args), command, f"folder {missing} does not exist")
    assert not (tmp_path / "no").exists()


# -- input files -----------------------------------------------------------------------------
def test_a_text_file_named_npy_is_named_as_such(tmp_path, digits_x):
    text = tmp_path / "x.npy"
    text.write_text("0, 1, 2, 3\n")
    one_line_error(cli("run", DIGITS, "-i", text, "-o", tmp_path / "y.npy"), "run",
                   f"{text} is not a NumPy .npy file")
    one_line_error(cli("stream", "--model", DIGITS, "--data", text, "--state", tmp_path / "s.json"), "stream",
                   f"{text} is not a NumPy .npy file")
    archive = tmp_path / "z.npy"
    np.savez(archive.with_suffix(".npz"), x=digits_x[:2])
    archive.with_suffix(".npz").rename(archive)
    one_line_error(cli("run", DIGITS, "-i", archive, "-o", tmp_path / "y.npy"), "run", "is an .npz archive")
    for line in (text.with_suffix(".npz"),):
        line.write_text("not a zip\n")
        one_line_error(cli("stream", "--model", DIGITS, "--data", line, "--state", tmp_path / "s.json"), "stream",
                       "is not a NumPy .npz archive")


def test_an_error_message_with_a_newline_stays_on_one_line(tmp_path):
    one_line_error(cli("convert", tmp_path / "two\nlines.tflite"), "convert", "two lines.tflite")


# -- counter keys ----------------------------------------------------------------------------
def test_counts_go_under_the_key_of_their_unit():
    from tinyadapt.device.client import DeviceInfo, Metrics
    from tinyadapt.device.frames import Feature
    from tinyadapt.report.counters import counter_fields
    from tinyadapt.report.device import device_report
    from tinyadapt.device.client import InvokeResult, OpProfile

    assert counter_fields("instructions", [5]) == {"instructions": [5]}
    assert counter_fields("cycles", 7) == {"instructions": None, "cycles": 7}
    assert counter_fields("nanoseconds", 9) == {"instructions": None, "time_ns": 9}
    assert counter_fields("none", 0) == {"instructions": None}
    metrics = Metrics(*([0] * 10))
    invoke = InvokeResult(1000, 1, [OpProfile(0, 3, 900)])
    for feature, key in ((Feature.INSTR_COUNTER, "instructions"), (Feature.TIME_COUNTER, "time_ns"),
                         (Feature.CYCLE_COUNTER, "cycles")):
        info = DeviceInfo(1, "0.1", 1, 1024, 1024, Feature.PROFILE | feature, 256, "b", "core")
        rep = device_report(info, metrics, invoke=invoke, op_names=["CONV_2D"], macs=[100])
        assert rep["counter_key"] == key
        assert rep["invoke"][key] == 1000 and rep["layers"][0][key] == 900 and rep["layers"][0]["count"] == 900
        if key != "instructions":
            assert rep["invoke"]["instructions"] is None and rep["layers"][0]["instructions"] is None


# -- signals ---------------------------------------------------------------------------------
def test_the_library_leaves_signals_alone_and_the_cli_restores_them(tmp_path):
    """Importing and using tinyadapt installs no handler; main() installs SIGTERM/SIGHUP
    handlers only while a command runs and puts back whatever was there."""
    code = f"""
import signal, sys
mine = lambda s, f: None
signal.signal(signal.SIGHUP, mine)
import tinyadapt.device.backends.qemu, tinyadapt.session.device, tinyadapt.session.run
before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP))
from tinyadapt.cli import main
assert main(["convert", {str(DIGITS)!r}, "-q"]) == 0
after = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP))
assert before == (signal.SIG_DFL, mine) and after == before, (before, after)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    # and nothing in the package calls signal.signal but the CLI entry point
    users = [p.relative_to(REPO / "host").as_posix() for p in (REPO / "host" / "tinyadapt").rglob("*.py")
             if "signal.signal(" in p.read_text()]
    assert users == ["tinyadapt/cli/__init__.py"], users


def test_sigterm_unwinds_a_command_and_exits_143(tmp_path):
    """A command blocked in a long step stops on SIGTERM with one line and 128 + 15."""
    code = f"""
import os, signal, sys, threading, time
import tinyadapt.convert
def slow(*a, **k):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
tinyadapt.convert.convert = slow
from tinyadapt.cli import main
sys.exit(main(["convert", {str(DIGITS)!r}]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 143 and proc.stderr.strip() == "tinyadapt convert: stopped by SIGTERM", proc.stderr


# -- progress on a terminal ------------------------------------------------------------------
@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_stream_bar_fits_the_terminal_with_its_figures(width):
    from rich.console import Console
    from rich.progress import Progress

    from tinyadapt.cli.stream_cmd import bar_columns

    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=False)
    bar = Progress(*bar_columns(width, 10000, "stm32f746g-disco", True), console=console, auto_refresh=False)
    bar.add_task("stm32f746g-disco", total=10000, completed=4321, rate=12345.6, acc="acc  98.7%")
    console.print(bar.make_tasks_table(bar.tasks))
    lines = buf.getvalue().rstrip("\n").splitlines()
    assert len(lines) == 1 and len(lines[0]) < width, lines
    for figure in ("4321/10000", "12345.6/s", "acc  98.7%"):
        assert figure in lines[0], (figure, lines[0])
    if width >= 80:
        assert "stm32f746g-disco" in lines[0] and "━" in lines[0]


def test_run_shows_its_steps_on_a_terminal_and_nothing_with_json(tmp_path, digits_x):
    from tests.support.terminal import on_a_terminal as _on_a_terminal

    np.save(tmp_path / "x.npy", digits_x[:200])
    code, _, term = _on_a_terminal("run", DIGITS, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert code == 0 and "converting digits_cnn.tflite" in term, term
    code, out, term = _on_a_terminal("run", DIGITS, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--json")
    assert code == 0 and json.loads(out)["samples"] == 200 and term.strip() == "", term
    code, out, term = _on_a_terminal("run", DIGITS, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "-q")
    assert code == 0 and out == "" and term.strip() == "", term
