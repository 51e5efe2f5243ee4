"""The atomic parameter store (firmware/engine/ta_param_store.c) on a simulated flash:
ta_param_store_check.c cuts the power at every byte each save erases or programs, in
fresh, half-used and full two-slot states, for several page sizes and program units
(1 to 32 bytes), and checks every reboot finds exactly the old image or the new one.
The same store over QEMU's file-backed NVM, killed for real, is tests/device/test_power_cut.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware"
WARN = ["-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wstrict-prototypes", "-Wno-unused-parameter", "-Werror"]


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    if shutil.which("cc") is None:
        pytest.skip("cc is not installed (scripts/setup.sh installs it)")
    exe = tmp_path_factory.mktemp("store") / "ta_param_store_check"
    srcs = [str(Path(__file__).with_name("ta_param_store_check.c")), str(FW / "engine" / "ta_param_store.c"),
            str(FW / "engine" / "ta_crc32.c")]
    cmd = ["cc", "-std=c99", *WARN, "-O1", "-g", f"-I{FW / 'include'}", *srcs, "-o", str(exe)]
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    proc = subprocess.run(cmd[:1] + sanitize + cmd[1:], capture_output=True, text=True)
    if proc.returncode != 0:         # a toolchain without the sanitizer runtimes
        proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


@pytest.mark.parametrize("seed", [1])
def test_power_cut_at_every_byte_keeps_old_or_new(checker, seed):
    run = subprocess.run([str(checker), str(seed)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "TA_PARAM_STORE_CHECK OK" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    assert int(run.stdout.split()[-1]) > 10000      # cuts actually simulated


def test_store_builds_for_cortex_m_without_warnings(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")
    proc = subprocess.run(["arm-none-eabi-gcc", "-mthumb", "-mcpu=cortex-m4", "-std=c99", *WARN, "-Os",
                           f"-I{FW / 'include'}", "-c", str(FW / "engine" / "ta_param_store.c"), "-o",
                           str(tmp_path / "s.o")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_host_nvm_file_is_created_erased_and_guarded(tmp_path):
    from tinyadapt.device.nvm import newest, nvm_file, read_store
    from tinyadapt.errors import DeviceError

    p = nvm_file("qemu-an386", tmp_path / "n.bin", 8192)
    assert p.read_bytes() == b"\xff" * 8192
    assert [s.state for s in read_store(p.read_bytes(), 0, 8192, 4096)] == ["erased", "erased"]
    assert newest(read_store(p.read_bytes(), 0, 8192, 4096)) is None
    with pytest.raises(DeviceError, match="another board"):
        nvm_file("qemu-an386", p, 4096)
    with pytest.raises(DeviceError, match="space or comma"):
        nvm_file("qemu-an386", tmp_path / "a b.bin", 8192)
    with pytest.raises(DeviceError, match="no NVM region"):
        nvm_file("stm32f746g-disco", tmp_path / "x.bin", 0)
    # A torn header (anything but a full, CRC-valid record) reads as torn, never as valid.
    img = bytearray(p.read_bytes())
    img[0:4] = (0x31504154).to_bytes(4, "little")
    assert read_store(bytes(img), 0, 8192, 4096)[0].state == "torn"
