"""`tinyadapt train --target qemu`: the same session as --target host, run on an emulated
board. The adapted model each writes (--save) must be byte-identical (the parameters are
bit-identical after the same steps), the accuracies equal, and the JSON must carry what
only the device measures: the training step's SRAM high-water and instructions per step."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "models" / "digits"


def tinyadapt(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyadapt", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_train_on_qemu_equals_host_and_reports_device_measurements(tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it)")
    d = np.load(DIGITS / "digits_test.npz")
    np.save(tmp_path / "x.npy", d["x"][:40])
    np.save(tmp_path / "y.npy", d["y"][:40])
    common = [str(DIGITS / "digits_cnn.tflite"), "--data", "x.npy", "--labels", "y.npy", "--epochs", "1",
              "--bias-depth", "2", "--layer", "4:1", "--layer", "3:0.5", "--json"]
    runs = {}
    for target in ("host", "qemu"):
        proc = tinyadapt("train", *common, "--target", target, "--save", f"{target}.tflite", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[target] = json.loads(proc.stdout)
    host, qemu = runs["host"], runs["qemu"]
    assert (tmp_path / "host.tflite").read_bytes() == (tmp_path / "qemu.tflite").read_bytes()
    for key in ("accuracy_before", "accuracy_after", "steps", "epochs", "scheme"):
        assert host[key] == qemu[key], key
    assert qemu["peak_sram_source"] == "device high-water mark" and host["instructions_per_step"] is None
    assert qemu["instructions_per_step"] > qemu["macs_per_step"] > 0
    # The device's high-water mark reaches the plan's arena exactly (the planner is tight) and
    # never exceeds it.
    assert 0 < qemu["peak_sram_bytes"] <= host["peak_sram_bytes"]
