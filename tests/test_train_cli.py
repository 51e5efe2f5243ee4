"""`tinyadapt plan-update` and `tinyadapt train`: JSON keys, the saved .tflite (run by TFLM and
`tinyadapt run` with the trainer's predictions), reports, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.support.reference import run_tflm
from tests.test_cli import REPO, assert_one_line_error, cli

DIGITS = REPO / "models" / "digits" / "digits_cnn.tflite"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = np.load(REPO / "models" / "digits" / "digits_test.npz")
    root = tmp_path_factory.mktemp("train")
    # A shifted domain: mirrored digits (float data: the CLI quantizes it with the input's scale).
    x = d["x_float"][:, :, ::-1].astype(np.float32)
    paths = {"x": root / "x.npy", "y": root / "y.npy", "xe": root / "xe.npy", "ye": root / "ye.npy"}
    np.save(paths["x"], x[:120])
    np.save(paths["y"], d["y"][:120])
    np.save(paths["xe"], x[240:])
    np.save(paths["ye"], d["y"][240:])
    return paths, root


def test_help_has_examples_and_json():
    for command in ("plan-update", "train"):
        text = cli(command, "--help", check_ok=True).stdout
        assert "examples:" in text and "--json" in text


def test_plan_update_json_with_and_without_data(data):
    paths, _ = data
    r = json.loads(cli("plan-update", DIGITS, "--budget", 24000, "--json", check_ok=True).stdout)
    for key in ("peak_sram_bytes", "full_update_peak_bytes", "bias_depth", "layers"):
        assert key in r
    assert r["peak_sram_bytes"] <= 24000 < r["full_update_peak_bytes"]
    assert all(set(x) == {"index", "channel_ratio"} for x in r["layers"]) and "gain_points" not in r
    r = json.loads(cli("plan-update", DIGITS, "--budget", 24000, "--data", paths["x"], "--labels", paths["y"],
                       "--json", check_ok=True).stdout)
    assert isinstance(r["gain_points"], float) and r["peak_sram_bytes"] <= 24000


def test_train_improves_the_shifted_domain_and_saves_a_tflite_tflm_runs_alike(data):
    paths, root = data
    out, report = root / "adapted.tflite", root / "curves.html"
    proc = cli("train", DIGITS, "--data", paths["x"], "--labels", paths["y"], "--eval-data", paths["xe"],
               "--eval-labels", paths["ye"], "--epochs", 4, "--bias-depth", 5, "--layer", "4:1", "--layer", "3:1",
               "--layer", "2:0.5", "--save", out, "--report", report, "--json", check_ok=True)
    r = json.loads(proc.stdout)
    for key in ("accuracy_before", "accuracy_after", "peak_sram_bytes", "instructions_per_step", "steps"):
        assert key in r
    assert r["instructions_per_step"] is None and r["steps"] == 4 * 120
    assert r["accuracy_after"] > r["accuracy_before"] + 0.2
    assert "<img" in report.read_text()
    # The saved model: TFLM and `tinyadapt run` agree, and reach the trainer's accuracy.
    xe = np.load(paths["xe"])
    ye = np.load(paths["ye"])
    from tinyadapt.convert import convert
    from tinyadapt.engine.host import HostEngine

    cm = convert(out)
    t = cm.input_tensors()[0]
    xq = np.clip(np.round(xe / t.scale) + t.zero_point, -128, 127).astype(np.int8)[:, :, :, None]
    ours = np.stack([HostEngine(cm.blob).invoke([x[None]])[0] for x in xq[:40]])
    ref = np.stack([run_tflm(out.read_bytes(), [x[None]])[0] for x in xq[:40]])
    np.testing.assert_array_equal(ours, ref)
    acc = np.mean([np.argmax(HostEngine(cm.blob).invoke([x[None]])[0]) == y for x, y in zip(xq, ye)])
    assert abs(acc - r["accuracy_after"]) < 0.03  # rounding of float data may differ by a sample


@pytest.mark.parametrize("case", ["labels-missing", "bad-layer", "bad-labels", "budget", "save-ext", "nvm-host"])
def test_train_errors_are_one_line_and_keep_outputs(case, data, tmp_path):
    paths, _ = data
    out = tmp_path / "keep.tflite"
    out.write_bytes(b"old")
    args = ["train", DIGITS, "--data", paths["x"], "--labels", paths["y"], "--epochs", 1, "--save", out]
    if case == "labels-missing":
        args[5] = tmp_path / "nope.npy"
        assert_one_line_error(cli(*args), "not found")
    elif case == "bad-layer":
        assert_one_line_error(cli(*args, "--layer", "9:1"), "layer 9 does not exist")
    elif case == "bad-labels":
        np.save(tmp_path / "bad.npy", np.full(120, 11))
        args[5] = tmp_path / "bad.npy"
        assert_one_line_error(cli(*args), "labels must be in 0..9")
    elif case == "budget":
        assert_one_line_error(cli(*args, "--budget", 100), "no update scheme fits")
    elif case == "nvm-host":
        assert_one_line_error(cli(*args, "--nvm", tmp_path / "board.nvm"), "needs --target qemu")
        assert not (tmp_path / "board.nvm").exists()
    else:
        args[-1] = tmp_path / "x.bin"
        assert_one_line_error(cli(*args), ".tflite")
    assert out.read_bytes() == b"old"
