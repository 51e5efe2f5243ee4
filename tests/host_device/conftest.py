"""Fixtures for the device tests: the QEMU firmware image, and a guard against leftover emulators.

Tests here run the real firmware on QEMU (no mock device). They skip, saying why, only when
the emulator or the cross-compiler is missing (and fail even then under CI=true); a firmware
that does not build fails them.

Every test is checked afterwards: no qemu-system-arm process started by this test session
(found through a marker in its environment, inherited from pytest through any CLI
subprocess) may still be running.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.tools import need_tool

REPO = Path(__file__).resolve().parents[2]
MARKER = "TINYADAPT_TEST_SESSION"
os.environ.setdefault(MARKER, uuid.uuid4().hex)


def our_emulators() -> list[int]:
    """PIDs of qemu-system-arm processes that inherited this session's marker."""
    proc = subprocess.run(["pgrep", "-x", "qemu-system-arm"], capture_output=True, text=True)
    tag = f"{MARKER}={os.environ[MARKER]}".encode()
    pids = []
    for pid in map(int, proc.stdout.split()):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue      # exited meanwhile, or not ours to read
        if tag in env.split(b"\0"):
            pids.append(pid)
    return pids


@pytest.fixture(autouse=True)
def no_emulator_left_behind():
    yield
    deadline = time.monotonic() + 5      # a process being killed may take a moment to go
    left = our_emulators()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = our_emulators()
    for pid in left:                     # clean up so one failure does not cascade, then fail
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    assert not left, f"qemu-system-arm processes left behind: {left}"


@pytest.fixture(scope="session")
def qemu_image():
    """The generic qemu-an386 image (built once); a build failure fails every test using it."""
    from tinyadapt.device.boards import load_board
    from tinyadapt.device.build import build_image
    from tinyadapt.errors import TinyAdaptError

    need_tool("make", "qemu-system-arm", "arm-none-eabi-gcc")
    try:
        return build_image(load_board("qemu-an386"))
    except TinyAdaptError as exc:
        pytest.fail(f"the QEMU firmware image does not build: {exc}")


@pytest.fixture(scope="session")
def digits():
    import numpy as np

    d = np.load(REPO / "models" / "digits" / "digits_test.npz")
    return REPO / "models" / "digits" / "digits_cnn.tflite", d["x"], d["y"]
