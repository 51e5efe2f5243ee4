"""The model loader and engine under libFuzzer with ASan/UBSan (firmware/tools/ta_fuzz_blob.c):
the saved crash inputs must now pass, and a bounded, seeded campaign from real blobs must find
nothing. The blob, the arena and external inputs are exact-size heap blocks
(firmware/tools/ta_run_exact.h). The long campaign is scripts/fuzz_campaign.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tinyadapt.engine.host import BUILD_DIR, FIRMWARE_DIR
from tests.support.fuzz_seeds import blob_seeds, write_corpus
from tests.support.paths import REPO
from tests.support.tools import need_tool

RUNS = 30000
REGRESSIONS = sorted((REPO / "tests/regression/data").glob("*.bin"))


@pytest.fixture(scope="module")
def fuzzer() -> Path:
    need_tool("make", "clang")
    out = BUILD_DIR / "firmware-fuzz"
    proc = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), "fuzz-blob", f"BUILD={out}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out / "fuzz" / "ta_fuzz_blob"


def test_saved_crashes_now_pass(fuzzer):
    proc = subprocess.run([str(fuzzer), *map(str, REGRESSIONS)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_bounded_campaign_finds_nothing(fuzzer, tmp_path):
    seeds = blob_seeds()
    assert {"external500", "patch3tiles", "digits_cnn", "train_full"} <= set(seeds)
    corpus = write_corpus(tmp_path / "corpus", seeds)
    proc = subprocess.run([str(fuzzer), f"-runs={RUNS}", "-seed=1", "-rss_limit_mb=2048", str(corpus)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Done {RUNS} runs" in proc.stderr


def test_blob_check_runs_external_inputs_from_exact_blocks(tmp_path):
    """The sanitizer checker binds an external input to a block of exactly its size and runs the
    model to TA_OK (an unbound one would stop at TA_ERR_STATE before reading it)."""
    need_tool("make", "cc")
    out = BUILD_DIR / "firmware-sanitize"
    proc = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), "blob-check", f"BUILD={out}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    paths = []
    for name, blob in blob_seeds().items():
        paths.append(tmp_path / f"{name}.bin")
        paths[-1].write_bytes(blob)
    run = subprocess.run([str(out / "sanitize" / "ta_blob_check"), *map(str, paths)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    results = dict(line.rsplit(" ", 1) for line in run.stdout.splitlines())
    assert all(status == "TA_OK" for status in results.values()), results
    assert any("external" in p for p in results)
