"""Power cuts on QEMU: the parameter store over the mps2 port's file-backed NVM, the emulator
SIGKILLed at random moments while it saves, then rebooted (scripts/power_cut.py; the long
run of >= 100 kills is that script's default, this is the short one). Every reboot must load
exactly the old or the new image, by revision and bytes, as the device sees it and as the
host reads the file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_ten_kills_during_saves_never_leave_a_mix():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it)")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "power_cut.py"), "--kills", "10", "--seed", "3",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(proc.stdout.splitlines()[-1])
    assert r["kills"] == 10 and r["mixes"] == 0
    assert r["booted_old"] + r["booted_new"] == 10
    assert r["final_revision"] >= 10          # saves did complete between the kills


def test_kills_during_save_commands_of_the_device_app():
    """The real firmware: train a step, SAVE, SIGKILL at a random moment of the SAVE, reboot,
    and the device restores exactly the last saved parameter image or the one being saved."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it)")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "power_cut.py"), "--app", "--kills", "4", "--seed",
                           "5", "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(proc.stdout.splitlines()[-1])
    assert r["kills"] == 4 and r["mixes"] == 0 and r["booted_old"] + r["booted_new"] == 4
