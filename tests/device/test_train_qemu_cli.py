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


def test_train_nvm_carries_the_saved_parameters_to_the_next_run(tmp_path):
    """--nvm FILE: a session SAVEs into the emulated board's NVM file at the end, and the next
    run on the same file starts from those parameters (its accuracy before training is the
    previous run's after), then saves the next revision; the saved image is the masters only."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it)")
    d = np.load(DIGITS / "digits_test.npz")
    x = d["x"][:, :, ::-1]                                    # a shifted domain: mirrored digits
    np.save(tmp_path / "x.npy", x[:30])
    np.save(tmp_path / "y.npy", d["y"][:30])
    np.save(tmp_path / "xe.npy", x[200:240])
    np.save(tmp_path / "ye.npy", d["y"][200:240])
    common = [str(DIGITS / "digits_cnn.tflite"), "--data", "x.npy", "--labels", "y.npy", "--eval-data", "xe.npy",
              "--eval-labels", "ye.npy", "--epochs", "1", "--lr", "0.05", "--bias-depth", "2", "--layer", "4:1",
              "--layer", "3:0.5", "--target", "qemu", "--nvm", "board.nvm", "--json"]
    runs = []
    for k in range(2):
        proc = tinyadapt("train", *common, "--save", f"run{k}.tflite", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(json.loads(proc.stdout))
    first, second = runs
    assert first["nvm"]["resumed_revision"] is None and first["nvm"]["saved_revision"] == 1
    assert second["nvm"]["resumed_revision"] == 1 and second["nvm"]["saved_revision"] == 2
    assert second["accuracy_before"] == first["accuracy_after"] != first["accuracy_before"]
    from tinyadapt.convert import convert
    from tinyadapt.train.graph import build_training
    from tinyadapt.train.scheme import UpdateScheme

    plan = build_training(convert(DIGITS / "digits_cnn.tflite"), UpdateScheme(2, {4: 1.0, 3: 0.5}))
    assert first["nvm"]["saved_bytes"] == plan.param_image_bytes < plan.param_ram_bytes
    # Without --nvm the board's saved parameters are not used: a fresh session from the base.
    proc = tinyadapt("train", *common[:-3], "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["accuracy_before"] == first["accuracy_before"]
