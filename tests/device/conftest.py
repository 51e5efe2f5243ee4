"""Fixtures for the device tests: firmware images built once per session, and devices
(QEMU-emulated boards, the native POSIX port) started per test and always stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.device import wire
from tests.support.tools import need_tool

REPO = Path(__file__).resolve().parents[2]
PORTS = REPO / "firmware" / "ports"

QEMU_MACHINES = {"qemu-an386": "mps2-an386", "qemu-an500": "mps2-an500"}
RAM_SLOT_ADDR = 0x20000000  # boards/qemu-*.toml ram_origin: slot 1 sits at the start of RAM


def make(*args: str, build: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ports Makefile; on failure show the compiler/linker output."""
    cmd = ["make", "-s", f"-j{os.cpu_count() or 2}", "-C", str(PORTS), f"BUILD={build}", f"PYTHON={sys.executable}",
           *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """tests/support/tiny_models.tiny_fc(0) (hello_world's shape: 1 -> 16 -> 16 -> 1 FULLY_CONNECTED)
    converted: (ConvertedModel, blob path, C header path)."""
    from tinyadapt.convert import convert
    from tinyadapt.convert.cheader import blob_to_c_header
    from tests.support.tiny_models import write_tiny_fc

    out = tmp_path_factory.mktemp("tiny")
    tflite = write_tiny_fc(out, 0)
    model = convert(tflite)
    (out / "tiny_fc.bin").write_bytes(model.blob)
    (out / "tiny_fc.h").write_text(blob_to_c_header(model.blob, "tiny_fc_model", tflite.name))
    return model, out / "tiny_fc.bin", out / "tiny_fc.h"


@pytest.fixture(scope="session")
def device_build(tmp_path_factory):
    return tmp_path_factory.mktemp("device-build")


@pytest.fixture(scope="session")
def images(device_build, tiny_model):
    """Build on first use: images('qemu-an386') -> ELF with tiny_fc compiled in; 'posix' -> executable."""
    built: dict[str, Path] = {}

    def get(board: str) -> Path:
        if board not in built:
            header = f"MODEL_HEADER={tiny_model[2]}"
            if board == "posix":
                need_tool("make", "cc")
                make("posix", header, build=device_build)
                built[board] = device_build / "posix" / "ta_posix"
            else:
                need_tool("make", "arm-none-eabi-gcc", "qemu-system-arm")
                make(f"BOARD={board}", header, build=device_build)
                built[board] = device_build / board / "tinyadapt.elf"
        return built[board]

    return get


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Device:
    """A running device (QEMU or POSIX process) and a protocol client connected to it."""

    def __init__(self, proc: subprocess.Popen, client: wire.Client):
        self.proc = proc
        self.client = client

    def stop(self) -> None:
        try:
            self.client.link.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def start_qemu(elf: Path, board: str, extra: list[str] = ()) -> Device:
    port = free_port()
    cmd = ["qemu-system-arm", "-M", QEMU_MACHINES[board], "-kernel", str(elf),
           "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on", "-icount", "shift=7",
           "-semihosting-config", "enable=on,target=native", "-display", "none", "-monitor", "none", *extra]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        link = wire.TcpLink(port)
    except OSError:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"QEMU did not start: {err.decode(errors='replace')[-2000:]}")
    return Device(proc, wire.Client(link, timeout=2.0))


def start_posix(exe: Path, extra: list[str] = ()) -> Device:
    proc = subprocess.Popen([str(exe), *extra], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "TA_PTY":
        proc.kill()
        proc.wait()
        pytest.fail(f"ta_posix printed {line!r}, expected 'TA_PTY <path>'")
    return Device(proc, wire.Client(wire.FdLink(line[1]), timeout=2.0))


@pytest.fixture
def launch(images, tiny_model):
    """launch(board, ram_slot_blob=None) -> Device; every device is stopped at teardown."""
    running: list[Device] = []

    def start(board: str, ram_slot_blob: Path | None = None) -> Device:
        target = images(board)
        if board == "posix":
            dev = start_posix(target, ["--ram-slot", str(ram_slot_blob)] if ram_slot_blob else [])
        else:
            extra = [f"-device", f"loader,file={ram_slot_blob},addr=0x{RAM_SLOT_ADDR:08x}"] if ram_slot_blob else []
            dev = start_qemu(target, board, extra)
        running.append(dev)
        return dev

    yield start
    for dev in running:
        dev.stop()
