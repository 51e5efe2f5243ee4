"""The CLI's rough edges that need a running device (issue 9, item 7): re-running a stream,
progress while building and starting QEMU, and signals. Few and quick: the digits CNN on
the generic qemu-an386 image."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.host_device.conftest import our_emulators
from tests.support.terminal import on_a_terminal

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("qemu_image")


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyadapt", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def ok(*args) -> subprocess.CompletedProcess:
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_running_a_stream_again_continues_or_reports_it(tmp_path, digits):
    model, x, y = digits
    np.save(tmp_path / "x.npy", x[:30])
    np.save(tmp_path / "y.npy", y[:30])
    args = ["stream", "--model", model, "--data", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
            "--state", tmp_path / "s.json", "--json"]
    first = json.loads(ok(*args, "--limit", "10").stdout)
    assert first["done"] == 10 and not first["complete"]
    rest = json.loads(ok(*args, "--output", tmp_path / "o.npy").stdout)     # the same command continues
    assert rest["started_at"] == 10 and rest["answered"] == 20 and rest["complete"]
    again = json.loads(ok(*args, "--output", tmp_path / "o2.npy").stdout)   # ... and then reports
    assert again["answered"] == 0 and again["complete"] and again["correct"] == rest["correct"]
    assert again["instructions"] == rest["instructions"] and again["counter_unit"] == "instructions"
    assert np.array_equal(np.load(tmp_path / "o.npy"), np.load(tmp_path / "o2.npy"))
    text = ok(*args[:-1]).stdout
    assert text.startswith("stream already complete: 30 sample(s)") and "--restart" in text, text
    over = json.loads(ok(*args, "--restart").stdout)
    assert over["started_at"] == 0 and over["answered"] == 30 and over["correct"] == rest["correct"]
    # another model's or data's progress is not taken for this one
    np.save(tmp_path / "x.npy", x[30:60])
    proc = cli(*args)
    assert proc.returncode == 1 and "holds another stream" in proc.stderr and "--restart" in proc.stderr


def test_build_and_run_on_qemu_show_progress_on_a_terminal_only(tmp_path, digits):
    model, x, _ = digits
    code, out, term = on_a_terminal("build", "--board", "qemu-an386", "--model", model)
    assert code == 0 and "building the qemu-an386 firmware with digits_cnn compiled in" in term, term
    assert "qemu-an386" in out
    code, out, term = on_a_terminal("build", "--board", "qemu-an386", "--model", model, "--json")
    assert code == 0 and json.loads(out)["board"] == "qemu-an386" and term.strip() == "", term
    np.save(tmp_path / "x.npy", x[:60])
    code, out, term = on_a_terminal("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--target", "qemu")
    assert code == 0 and "starting QEMU mps2-an386" in term and "60/60" in term, term


def test_the_library_leaves_signal_handlers_as_it_found_them(qemu_image):
    from tinyadapt.device.backends.qemu import QemuBackend

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    with QemuBackend(qemu_image.built_for.qemu_machine, qemu_image.elf) as q:
        assert q.alive()
        assert {s: signal.getsignal(s) for s in before} == before
    assert {s: signal.getsignal(s) for s in before} == before


def test_flash_started_with_sigint_ignored_says_how_to_stop_it(tmp_path):
    """What a background job of a script gets: SIGINT ignored. The command says so, and
    SIGTERM stops it (and its emulator) with 128 + 15."""
    proc = subprocess.Popen([sys.executable, "-m", "tinyadapt", "flash", "--board", "qemu-an386", "--seconds", "300"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "socket://127.0.0.1:" in lines[0], lines
        assert "SIGINT is ignored here" in lines[2] and f"kill {proc.pid}" in lines[2], lines
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert proc.stderr.read().strip() == "tinyadapt flash: stopped by SIGTERM"
    assert not our_emulators()


def test_an_emulator_started_from_a_worker_thread_outlives_the_thread(qemu_image):
    """PR_SET_PDEATHSIG follows the thread that forked: QEMU started from a thread that then
    ends must keep running until its owner stops it."""
    import threading

    from tinyadapt.device.backends.qemu import QemuBackend

    q = QemuBackend(qemu_image.built_for.qemu_machine, qemu_image.elf)
    worker = threading.Thread(target=q.start)
    worker.start()
    worker.join()
    try:
        time.sleep(0.5)
        assert q.alive(), "the emulator died with the thread that started it"
    finally:
        q.stop()
    assert not q.alive()
