"""The model loader and engine under libFuzzer with ASan/UBSan (firmware/tools/ta_fuzz_blob.c):
the saved crash inputs must now pass, and a bounded, seeded campaign from real blobs must find
nothing. Run the binary without -runs for a long campaign."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tinyadapt.convert import convert
from tinyadapt.engine.host import BUILD_DIR, FIRMWARE_DIR
from tests.support.paths import REPO, SHARED_MODELS
from tests.test_patch import random_model

RUNS = 30000
REGRESSIONS = sorted((REPO / "tests/regression/data").glob("*.bin"))


@pytest.fixture(scope="module")
def fuzzer() -> Path:
    if not shutil.which("clang"):
        pytest.fail("clang not found (scripts/setup.sh installs it)")
    out = BUILD_DIR / "firmware-fuzz"
    proc = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), "fuzz-blob", f"BUILD={out}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out / "fuzz" / "ta_fuzz_blob"


def test_saved_crashes_now_pass(fuzzer):
    proc = subprocess.run([str(fuzzer), *map(str, REGRESSIONS)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_bounded_campaign_finds_nothing(fuzzer, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for p in [REPO / "models/digits/digits_cnn.tflite", REPO / "models/basicmotions/basicmotions_imu.tflite",
              *sorted(SHARED_MODELS.glob("*.tflite"))]:
        try:
            (corpus / f"{p.stem}.bin").write_bytes(convert(p).blob)
        except Exception:
            continue  # unsupported real-world model
    for seed in (3, 5, 8):  # patch-planned blobs, so the patch section is fuzzed too
        model, _ = random_model(seed)
        plans = convert(model).patch_candidates()
        for mode in ("tiles", "stream"):  # both patch modes' sections (stream: bands, stream buffers)
            of_mode = [p for p in plans if p.mode == mode]
            if of_mode:
                p = of_mode[len(of_mode) // 2]
                (corpus / f"patch{seed}{mode}.bin").write_bytes(convert(model, patch=p.spec).blob)
    # Training blobs, so the TRAIN section, the backward ops and the trainer are fuzzed too.
    from tinyadapt.train.graph import build_training
    from tinyadapt.train.scheme import UpdateScheme

    digits = convert(REPO / "models/digits/digits_cnn.tflite")
    (corpus / "train_sparse.bin").write_bytes(build_training(digits, UpdateScheme(2, {3: 0.5, 4: 1.0})).blob)
    (corpus / "train_full.bin").write_bytes(build_training(digits, UpdateScheme.full(5)).blob)
    proc = subprocess.run([str(fuzzer), f"-runs={RUNS}", "-seed=1", "-rss_limit_mb=2048", str(corpus)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Done {RUNS} runs" in proc.stderr
