"""`--port` against a real serial device file: the firmware app built natively (POSIX port) and
served on a pseudo-terminal, which pyserial opens like /dev/ttyACM0. Covers the serial
backend (termios, not a socket), model loading with LOAD_* over the link, and a device that
dies mid-stream on a tty."""

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

from tests.support.tools import need_tool

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def posix_binary():
    from tinyadapt.device.build import DEVICE_BUILD_DIR, PORTS_MAKEFILE_DIR

    need_tool("make", "cc")
    proc = subprocess.run(["make", "-s", "-C", str(PORTS_MAKEFILE_DIR), "posix", f"BUILD={DEVICE_BUILD_DIR}"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"the POSIX port does not build:\n{(proc.stderr or proc.stdout)[-3000:]}")
    return DEVICE_BUILD_DIR / "posix" / "ta_posix"


class PtyDevice:
    def __init__(self, binary: Path, *args: str):
        self.proc = subprocess.Popen([str(binary), "--pty", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("TA_PTY "), line
        self.path = line.split()[1]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()          # by PID: only the process this test started
        self.proc.wait()


@pytest.fixture
def pty_device(posix_binary):
    devs = []

    def start():
        devs.append(PtyDevice(posix_binary))
        return devs[-1]

    yield start
    for d in devs:
        d.kill()


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tinyadapt", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def ok(*args):
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_run_on_a_serial_port_matches_host(tmp_path, pty_device, digits):
    model, x, _ = digits
    dev = pty_device()
    np.save(tmp_path / "x.npy", x[:100].reshape(100, 1, 8, 8, 1))
    rep = json.loads(ok("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "d.npy", "--port", dev.path,
                        "--json").stdout)
    ok("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "h.npy")
    assert np.array_equal(np.load(tmp_path / "d.npy"), np.load(tmp_path / "h.npy"))
    # the POSIX port counts wall time: under its own key, and no instruction count is claimed
    assert rep["target"] == "device" and rep["counter_unit"] == "nanoseconds" and len(rep["time_ns"]) == 100
    assert rep["instructions"] is None and min(rep["time_ns"]) > 0
    counters = json.loads(ok("metrics", "--port", dev.path, "--json").stdout)
    assert counters["metrics"]["invokes"] == 100 and "TIME_COUNTER" in counters["device"]["features"]


def test_device_dying_mid_stream_on_a_tty_then_resume_on_another(tmp_path, pty_device, digits):
    model, x, y = digits
    n = 40 * len(x)
    np.save(tmp_path / "x.npy", np.concatenate([x] * 40))
    np.save(tmp_path / "y.npy", np.concatenate([y] * 40))
    state = tmp_path / "s.json"
    dev = pty_device()
    proc = subprocess.Popen([sys.executable, "-m", "tinyadapt", "stream", "--model", model, "--data",
                             tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "--state", state, "--port", dev.path],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        done = 0
        while done < 500 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            try:
                done = json.loads(state.read_text())["done"]
            except (OSError, ValueError):
                pass
        assert proc.poll() is None, proc.communicate()[1]
        t0 = time.monotonic()
        os.kill(dev.proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "stopped answering" in lines[0], err
    assert elapsed < 5
    first = json.loads(state.read_text())
    assert 0 < first["done"] < n
    dev2 = pty_device()
    rep = json.loads(ok("stream", "--resume", state, "--port", dev2.path, "--output", tmp_path / "o.npy",
                        "--json").stdout)
    assert rep["complete"] and rep["answered"] == n - first["done"]
    assert rep["device_metrics"]["invokes"] == rep["answered"]
    assert rep["counter_unit"] == "nanoseconds" and rep["instructions"] is None and rep["time_ns"]["min"] > 0
    np.save(tmp_path / "xh.npy", np.load(tmp_path / "x.npy").reshape(n, 1, 8, 8, 1))
    ok("run", model, "-i", tmp_path / "xh.npy", "-o", tmp_path / "h.npy")
    assert np.array_equal(np.load(tmp_path / "o.npy"), np.load(tmp_path / "h.npy"))


def test_fault_injection_is_refused_on_a_serial_port(tmp_path, pty_device, digits):
    dev = pty_device()
    proc = cli("stream", "--model", digits[0], "--data", tmp_path / "none.npy", "--port", dev.path,
               "--inject-faults", "0.01")
    assert proc.returncode == 1 and "--inject-faults works with --target qemu only" in proc.stderr


# -- model identity -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def posix_with_a(tmp_path_factory):
    """The POSIX port with model A (tiny_fc seed 0) compiled in, the header written by
    `tinyadapt convert` as a user would; B (seed 1) is A's graph with other weights."""
    from tinyadapt.device.build import PORTS_MAKEFILE_DIR
    from tests.support.tiny_models import write_tiny_fc

    need_tool("make", "cc")
    out = tmp_path_factory.mktemp("posix-a")
    a, b = write_tiny_fc(out, 0), write_tiny_fc(out, 1)
    ok("convert", a, "-o", out / "a.h")
    proc = subprocess.run(["make", "-s", "-C", str(PORTS_MAKEFILE_DIR), "posix", f"BUILD={out / 'build'}",
                           f"MODEL_HEADER={out / 'a.h'}"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"the POSIX port with a compiled-in model does not build:\n{(proc.stderr or proc.stdout)[-3000:]}")
    return out / "build" / "posix" / "ta_posix", a, b


def test_a_model_that_does_not_fit_runs_only_if_it_is_the_compiled_in_one(tmp_path, posix_with_a):
    binary, a, b = posix_with_a
    np.save(tmp_path / "x.npy", np.arange(-128, 128, 4, dtype=np.int8).reshape(64, 1, 1))
    dev = PtyDevice(binary, "--ram-slot-size", "64")      # neither blob fits: slot 0 or nothing
    try:
        # A is the compiled-in blob (same size and CRC): it runs, bit-identical to the host.
        ok("run", a, "-i", tmp_path / "x.npy", "-o", tmp_path / "a_dev.npy", "--port", dev.path)
        ok("run", a, "-i", tmp_path / "x.npy", "-o", tmp_path / "a_host.npy")
        assert np.array_equal(np.load(tmp_path / "a_dev.npy"), np.load(tmp_path / "a_host.npy"))
        # B has A's graph and sizes but other weights: refused in one line, no output written.
        proc = cli("run", b, "-i", tmp_path / "x.npy", "-o", tmp_path / "b_dev.npy", "--port", dev.path)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert "does not fit the device's 64-byte RAM slot" in lines[0]
        assert "compiled-in model is another one" in lines[0], lines[0]
        assert not (tmp_path / "b_dev.npy").exists()
    finally:
        dev.kill()


def test_a_model_that_fits_is_loaded_and_checked_by_crc(tmp_path, posix_with_a):
    from tinyadapt.convert import convert
    from tinyadapt.device.backends.serial_port import SerialBackend
    from tinyadapt.device.client import SLOT_BUILTIN, SLOT_RAM, BlobIdentity, DeviceClient
    from tinyadapt.device.link import Link
    from tinyadapt.errors import DeviceError

    binary, a, b = posix_with_a
    blob_a, blob_b = convert(a).blob, convert(b).blob
    np.save(tmp_path / "x.npy", np.arange(-128, 128, 4, dtype=np.int8).reshape(64, 1, 1))
    dev = PtyDevice(binary)
    try:
        # B fits the RAM slot: it goes there over the link and runs (outputs of B, not A).
        ok("run", b, "-i", tmp_path / "x.npy", "-o", tmp_path / "b_dev.npy", "--port", dev.path)
        ok("run", b, "-i", tmp_path / "x.npy", "-o", tmp_path / "b_host.npy")
        ok("run", a, "-i", tmp_path / "x.npy", "-o", tmp_path / "a_host.npy")
        assert np.array_equal(np.load(tmp_path / "b_dev.npy"), np.load(tmp_path / "b_host.npy"))
        assert not np.array_equal(np.load(tmp_path / "b_host.npy"), np.load(tmp_path / "a_host.npy"))
        # The client: HELLO names the compiled-in blob, SELECT the selected one; asking for
        # another blob than the slot holds raises and leaves nothing selected for run().
        backend = SerialBackend(dev.path)
        backend.start()
        link = Link(backend.open_port())
        try:
            c = DeviceClient(link)
            assert c.hello().builtin == BlobIdentity.of(blob_a) == BlobIdentity(len(blob_a), BlobIdentity.of(blob_a).crc)
            assert c.select(SLOT_BUILTIN, expect=blob_a).identity == BlobIdentity.of(blob_a)
            with pytest.raises(DeviceError, match=r"compiled-in model \(slot 0\) on the device is not the model "
                                                  r"asked for \(device: 1,\d+ bytes, CRC 0x[0-9a-f]{8}; model: "):
                c.select(SLOT_BUILTIN, expect=blob_b)
            assert c.model is None
            assert c.select(SLOT_RAM, expect=blob_b).identity == BlobIdentity.of(blob_b) != BlobIdentity.of(blob_a)
        finally:
            link.close()
            backend.stop()
    finally:
        dev.kill()
