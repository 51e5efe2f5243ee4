"""The device commands end to end, as a user runs them: `tinyadapt run/stream/metrics/build/flash`
in a subprocess against the firmware on QEMU, compared with `--target host`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.host_device.conftest import our_emulators
from tests.support.tiny_models import write_tiny_fc
from tests.support.tflite_builder import ModelBuilder

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("qemu_image")


def cli(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyadapt", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def ok(*args, timeout=300) -> subprocess.CompletedProcess:
    proc = cli(*args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc


def one_line_error(proc, *needles) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


def mismatches(a: np.ndarray, b: np.ndarray) -> str:
    bad = np.argwhere(a != b)
    return f"{len(bad)} mismatching elements, first at {bad[:10].tolist()}"


# -- run ----------------------------------------------------------------------------------------
def test_run_qemu_tiny_fc_is_bit_identical_to_host(tmp_path):
    model = write_tiny_fc(tmp_path)
    x = tmp_path / "x.npy"
    np.save(x, np.arange(-128, 128, dtype=np.int8).reshape(256, 1, 1))
    ok("run", model, "-i", x, "-o", tmp_path / "host.npy")
    first = json.loads(ok("run", model, "-i", x, "-o", tmp_path / "qemu.npy", "--target", "qemu", "--json").stdout)
    second = json.loads(ok("run", model, "-i", x, "-o", tmp_path / "qemu2.npy", "--target", "qemu", "--json").stdout)
    host, qemu = np.load(tmp_path / "host.npy"), np.load(tmp_path / "qemu.npy")
    assert qemu.dtype == host.dtype and qemu.shape == host.shape == (256, 1, 1)
    assert np.array_equal(qemu, host), mismatches(qemu, host)
    assert first["target"] == "qemu" and first["board"] == "qemu-an386" and first["samples"] == 256
    assert len(first["instructions"]) == 256 and first["counter_unit"] == "instructions"
    assert first["instructions"] == second["instructions"], "instruction counts must repeat run to run"
    assert 0 < first["peak_sram_bytes"] <= 64, "tiny_fc's arena is a few dozen bytes"


def test_run_qemu_digits_on_m4_and_on_an_emulated_f746_budget(tmp_path, digits):
    model, x, _ = digits
    xs = tmp_path / "x.npy"
    np.save(xs, x[:120].reshape(120, 1, 8, 8, 1))
    ok("run", model, "-i", xs, "-o", tmp_path / "host.npy")
    host = np.load(tmp_path / "host.npy")
    m4 = json.loads(ok("run", model, "-i", xs, "-o", tmp_path / "m4.npy", "--target", "qemu", "--json").stdout)
    f7 = json.loads(ok("run", model, "-i", xs, "-o", tmp_path / "f7.npy", "--target", "qemu",
                       "--board", "stm32f746g-disco", "--json").stdout)
    for name in ("m4", "f7"):
        got = np.load(tmp_path / f"{name}.npy")
        assert np.array_equal(got, host), f"{name}: {mismatches(got, host)}"
    assert f7["board"] == "stm32f746g-disco" and f7["built_for"] == "qemu-an500" and f7["core"] == "cortex-m7"
    # the planner's arena and the bytes the device actually touched agree
    assert m4["peak_sram_bytes"] == f7["peak_sram_bytes"] > 0
    assert min(m4["instructions"]) > 100_000


def test_run_qemu_compiles_in_a_model_too_big_for_the_ram_slot(tmp_path):
    """MobileNetV2-0.35/96 (498 KB) exceeds the F746's 64 KiB RAM slot: it is compiled into the
    image (slot 0) and its 27 KB input goes over INPUT_WRITE frames."""
    model = REPO / "models" / "mobilenetv2" / "mobilenetv2_96.tflite"
    x = np.load(REPO / "models" / "mobilenetv2" / "mobilenetv2_96_sample.npz")["x"][:1]
    xs = tmp_path / "x.npy"
    np.save(xs, x)
    ok("run", model, "-i", xs, "-o", tmp_path / "host.npy")
    rep = json.loads(ok("run", model, "-i", xs, "-o", tmp_path / "q.npy", "--target", "qemu",
                        "--board", "stm32f746g-disco", "--json").stdout)
    got, host = np.load(tmp_path / "q.npy"), np.load(tmp_path / "host.npy")
    assert np.array_equal(got, host), mismatches(got, host)
    assert rep["peak_sram_bytes"] > 64 * 1024


def test_run_target_errors_are_one_line(tmp_path):
    model = write_tiny_fc(tmp_path)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 1), np.int8))
    one_line_error(cli("run", model, "-i", x, "-o", tmp_path / "y.npy", "--target", "qemu", "--board", "nope"),
                   "unknown board 'nope'", "qemu-an386")
    one_line_error(cli("run", model, "-i", x, "-o", tmp_path / "y.npy", "--target", "device"), "--port")
    one_line_error(cli("run", model, "-i", x, "-o", tmp_path / "y.npy", "--port", "/dev/ttyNOPE"),
                   "cannot open serial port /dev/ttyNOPE")


# -- stream -------------------------------------------------------------------------------------
def _stream_data(tmp_path, digits, n):
    _, x, y = digits
    reps = -(-n // len(x))
    np.save(tmp_path / "x.npy", np.concatenate([x] * reps)[:n])
    np.save(tmp_path / "y.npy", np.concatenate([y] * reps)[:n])
    return tmp_path / "x.npy", tmp_path / "y.npy"


def test_stream_through_a_faulty_link_answers_every_sample_once(tmp_path, digits):
    model = digits[0]
    x, y = _stream_data(tmp_path, digits, 300)
    clean = json.loads(ok("stream", "--model", model, "--data", x, "--labels", y, "--state", tmp_path / "a.json",
                          "--output", tmp_path / "clean.npy", "--json").stdout)
    noisy = json.loads(ok("stream", "--model", model, "--data", x, "--labels", y, "--state", tmp_path / "b.json",
                          "--output", tmp_path / "noisy.npy", "--json", "--inject-faults", "0.01",
                          "--fault-seed", "7").stdout)
    a, b = np.load(tmp_path / "clean.npy"), np.load(tmp_path / "noisy.npy")
    assert a.shape == (300, 1, 10) and np.array_equal(a, b), mismatches(a, b)
    assert clean["correct"] == noisy["correct"] and clean["accuracy"] > 0.9
    f, link, dev = noisy["faults"], noisy["link"], noisy["device_metrics"]
    # faults really happened, in both directions, and the link recovered from each
    assert f["to_device"]["dropped"] and f["to_device"]["corrupted"] and f["to_device"]["duplicated"]
    assert f["to_host"]["dropped"] + f["to_host"]["corrupted"] + f["to_host"]["duplicated"] > 0
    assert f["frames_duplicated"] > 0
    assert link["retransmits"] > 0 and dev["crc_errors"] > 0 and dev["naks_sent"] > 0
    # every sample answered exactly once: the device ran 300 inferences, not one more
    assert dev["invokes"] == 300 and clean["device_metrics"]["invokes"] == 300
    assert dev["duplicates"] > 0, "retransmitted requests must be answered from the cache"
    assert noisy["done"] == noisy["answered"] == 300 and len(json.load(open(tmp_path / "b.json"))["instructions"]) == 300
    assert clean["link"]["retransmits"] == 0 and clean["device_metrics"]["crc_errors"] == 0


def test_killed_emulator_mid_stream_then_resume(tmp_path, digits):
    model = digits[0]
    x, y = _stream_data(tmp_path, digits, 1200)
    state = tmp_path / "state.json"
    proc = subprocess.Popen([sys.executable, "-m", "tinyadapt", "stream", "--model", model, "--data", x,
                             "--labels", y, "--state", state], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        done = 0
        while done < 100 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            try:
                done = json.loads(state.read_text())["done"]
            except (OSError, ValueError):
                pass
        assert proc.poll() is None and done >= 100, "the stream should be under way"
        children = subprocess.run(["pgrep", "-P", str(proc.pid), "-x", "qemu-system-arm"], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 1
        t0 = time.monotonic()
        os.kill(int(children[0]), signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1 and elapsed < 5, (proc.returncode, elapsed, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "stopped answering" in lines[0] and f"--resume {state}" in lines[0], err
    first = json.loads(state.read_text())
    assert 100 <= first["done"] < 1200 and not first["complete"]

    rep = json.loads(ok("stream", "--resume", state, "--output", tmp_path / "all.npy", "--json").stdout)
    assert rep["complete"] and rep["done"] == 1200 and rep["started_at"] == first["done"]
    assert rep["answered"] == 1200 - first["done"] and rep["device_metrics"]["invokes"] == rep["answered"]
    segs = rep["segments"]
    assert [(s["start"], s["end"]) for s in segs] == [(0, first["done"]), (first["done"], 1200)]
    # nothing lost, nothing counted twice: the outputs equal a host run of the same 1200 samples
    np.save(tmp_path / "x5.npy", np.load(x).reshape(1200, 1, 8, 8, 1))
    ok("run", model, "-i", tmp_path / "x5.npy", "-o", tmp_path / "host.npy")
    got, host = np.load(tmp_path / "all.npy"), np.load(tmp_path / "host.npy")
    assert np.array_equal(got.reshape(host.shape), host), mismatches(got.reshape(host.shape), host)
    labels = np.load(y)
    assert rep["correct"] == int(np.sum(np.argmax(host.reshape(1200, -1), axis=1) == labels))
    # a finished state resumes to nothing, and running the first command again reports it
    again = json.loads(ok("stream", "--resume", state, "--json").stdout)
    assert again["answered"] == 0 and again["done"] == 1200
    rerun = json.loads(ok("stream", "--model", model, "--data", x, "--labels", y, "--state", state, "--json").stdout)
    assert rerun["answered"] == 0 and rerun["complete"] and rerun["correct"] == rep["correct"]


def test_sigterm_to_the_cli_stops_its_emulator(tmp_path, digits):
    model = digits[0]
    x, _ = _stream_data(tmp_path, digits, 2000)
    state = tmp_path / "s.json"
    proc = subprocess.Popen([sys.executable, "-m", "tinyadapt", "stream", "--model", model, "--data", x,
                             "--state", state], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            try:
                if json.loads(state.read_text())["done"] > 0:
                    break
            except (OSError, ValueError):
                pass
        assert subprocess.run(["pgrep", "-P", str(proc.pid), "-x", "qemu-system-arm"], capture_output=True).stdout
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()
    assert not our_emulators()
    st = json.loads(state.read_text())
    assert st["done"] == len(st["instructions"]) and "interrupted" in st["segments"][-1]["status"]


def test_sigkill_to_the_cli_still_takes_its_emulator_down(tmp_path, digits):
    """Nothing in the CLI runs on SIGKILL: the kernel ends QEMU (PR_SET_PDEATHSIG)."""
    model = digits[0]
    x, _ = _stream_data(tmp_path, digits, 2000)
    state = tmp_path / "s.json"
    proc = subprocess.Popen([sys.executable, "-m", "tinyadapt", "stream", "--model", model, "--data", x,
                             "--state", state], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        qemu = []
        while not qemu and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            qemu = subprocess.run(["pgrep", "-P", str(proc.pid), "-x", "qemu-system-arm"], capture_output=True,
                                  text=True).stdout.split()
        assert qemu
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{qemu[0]}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{qemu[0]}"), "QEMU outlived its killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stream_csv_data(tmp_path, digits):
    model, x, y = digits
    np.savetxt(tmp_path / "x.csv", x[:50].reshape(50, -1), fmt="%d", delimiter=",")
    np.savetxt(tmp_path / "y.csv", y[:50], fmt="%d")
    rep = json.loads(ok("stream", "--model", model, "--data", tmp_path / "x.csv", "--labels", tmp_path / "y.csv",
                        "--state", tmp_path / "s.json", "--output", tmp_path / "o.npy", "--json").stdout)
    np.save(tmp_path / "x.npy", x[:50].reshape(50, 1, 8, 8, 1))
    ok("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "h.npy")
    assert rep["complete"] and np.array_equal(np.load(tmp_path / "o.npy"), np.load(tmp_path / "h.npy"))


# -- metrics ------------------------------------------------------------------------------------
def test_metrics_profile_table_json_and_reports(tmp_path, digits):
    model = digits[0]
    rep = json.loads(ok("metrics", "--model", model, "--json", "--html", tmp_path / "r.html",
                        "--png", tmp_path / "r.png").stdout)
    ops = ["CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "FULLY_CONNECTED",
           "SOFTMAX"]
    assert [x["op"] for x in rep["layers"]] == ops
    total = rep["invoke"]["instructions"]
    inside = sum(x["instructions"] for x in rep["layers"])
    assert 0.95 * total < inside <= total
    assert all(x["macs"] and x["per_mac"] > 0 for x in rep["layers"])
    assert rep["metrics"]["invokes"] == 1 and rep["metrics"]["arena_used"] > 0
    again = json.loads(ok("metrics", "--model", model, "--json").stdout)
    assert [x["instructions"] for x in again["layers"]] == [x["instructions"] for x in rep["layers"]]
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "r.html").read_text()
    assert "DEPTHWISE_CONV_2D" in html and "data:image/png;base64," in html
    table = ok("metrics", "--model", model).stdout
    assert "DEPTHWISE_CONV_2D" in table and "arena used" in table


# -- build / flash ------------------------------------------------------------------------------
def _big_fc_model(path: Path) -> Path:
    b = ModelBuilder()
    xin = b.input((1, 1200), scale=0.05, zero_point=0)
    w = b.const(np.random.default_rng(0).integers(-127, 128, (1000, 1200), dtype=np.int8), scale=0.01)
    out = b.tensor((1, 1000), scale=0.5, zero_point=0)
    b.op("FULLY_CONNECTED", [xin, w, -1], [out])
    b.output(out)
    path.write_bytes(b.build())
    return path


def _big_arena_model(path: Path) -> Path:
    b = ModelBuilder()
    xin = b.input((1, 300_000), scale=0.05, zero_point=0)
    out = b.tensor((1, 300_000), scale=0.1, zero_point=0)
    b.op("ADD", [xin, xin], [out])
    b.output(out)
    path.write_bytes(b.build())
    return path


def test_build_reports_flash_and_ram_against_the_board(digits):
    rep = json.loads(ok("build", "--board", "stm32f746g-disco", "--model", digits[0], "--emulate", "--json").stdout)
    assert rep["board"] == "stm32f746g-disco" and rep["built_for"] == "qemu-an500"
    assert rep["flash"]["budget_bytes"] == 1024 * 1024 and rep["ram"]["budget_bytes"] == 320 * 1024
    assert 20_000 < rep["flash"]["used_bytes"] < rep["flash"]["budget_bytes"]
    assert rep["compiled_in_model"]["blob_bytes"] > 9000 and rep["ram"]["model_arena_bytes"] > 0
    assert Path(rep["elf"]).is_file()


def test_models_that_do_not_fit_fail_before_flashing(tmp_path):
    big = _big_fc_model(tmp_path / "big_fc.tflite")
    one_line_error(cli("build", "--board", "nrf52840-dk", "--model", big, "--emulate"),
                   "does not fit nrf52840-dk", "flash")
    wide = _big_arena_model(tmp_path / "wide.tflite")
    one_line_error(cli("build", "--board", "nrf52840-dk", "--model", wide, "--emulate"),
                   "does not fit nrf52840-dk", "arena")
    np.save(tmp_path / "x.npy", np.zeros((1, 300_000), np.int8))
    one_line_error(cli("run", wide, "-i", tmp_path / "x.npy", "-o", tmp_path / "o.npy", "--target", "qemu",
                       "--board", "nrf52840-dk"), "does not fit nrf52840-dk", "arena")
    assert not (tmp_path / "o.npy").exists()


def test_flash_real_board_without_pyocd_says_so():
    import importlib.util

    if importlib.util.find_spec("pyocd") is not None:
        pytest.skip("pyOCD is installed here; this checks the message for when it is not")
    one_line_error(cli("flash", "--board", "stm32f746g-disco"), "pyOCD is not installed", "pip install pyocd")


def _sigint_as_in_a_terminal():
    """A shell without job control starts background commands with SIGINT ignored, and a
    Python started with SIGINT ignored keeps ignoring it: run under `cmd &` or nohup-like
    harnesses, Ctrl-C (SIGINT) would never reach the child. Restore the default, as an
    interactive terminal gives it, so the test checks the CLI and not how pytest was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_flash_qemu_board_serves_the_port_it_prints(tmp_path, digits):
    # --seconds is a safety net only: under load, the commands below can take a minute
    proc = subprocess.Popen([sys.executable, "-m", "tinyadapt", "flash", "--board", "qemu-an386", "--seconds", "600"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_in_a_terminal)
    try:
        line = proc.stdout.readline()
        assert "socket://127.0.0.1:" in line, line
        url = line.split("serial port is ")[1].strip()
        model, x, _ = digits
        np.save(tmp_path / "x.npy", x[:10].reshape(10, 1, 8, 8, 1))
        ok("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "dev.npy", "--port", url)   # LOAD_* over the link
        ok("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "host.npy")
        assert np.array_equal(np.load(tmp_path / "dev.npy"), np.load(tmp_path / "host.npy"))
        rep = json.loads(ok("metrics", "--port", url, "--json").stdout)
        assert rep["device"]["board"] == "qemu-an386" and rep["metrics"]["invokes"] == 10
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
