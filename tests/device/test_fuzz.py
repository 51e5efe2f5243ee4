"""Fuzz the device app's input: the whole byte stream a host could send (frames, noise,
model blobs in LOAD_CHUNKs) runs through the real app over an in-memory HAL, built with
libFuzzer, ASan and UBSan (firmware/tools/ta_fuzz_app.c). A bounded, seeded run here; the
long campaign is scripts/fuzz_campaign.py (docs/SECURITY.md)."""

from __future__ import annotations

import os
import re
import subprocess

from tests.device.conftest import make
from tests.support.fuzz_seeds import app_seeds, write_corpus
from tests.support.tools import need_tool


def test_fuzzing_the_app_finds_nothing(device_build, tiny_model, tmp_path):
    need_tool("make", "clang")
    model, _, header = tiny_model
    make("fuzz", f"MODEL_HEADER={header}", build=device_build)
    corpus = write_corpus(tmp_path / "corpus", app_seeds(model.blob, tmp_path))
    proc = subprocess.run([str(device_build / "fuzz" / "ta_fuzz_app"), "-runs=4000", "-seed=1", "-max_len=8192",
                           "-timeout=10", str(corpus)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 4000 runs" in proc.stderr


def test_the_session_seeds_reach_training_and_adaptation(device_build, tiny_model, tmp_path):
    """The fuzzer mutates what the seeds reach: if a protocol change made the training or
    adaptation sessions fail at their first command, the campaign would fuzz error paths only."""
    need_tool("make", "clang")
    model, _, header = tiny_model
    make("fuzz", f"MODEL_HEADER={header}", build=device_build)
    corpus = write_corpus(tmp_path / "corpus", app_seeds(model.blob, tmp_path))
    for name, cmds in {"train": {0x40, 0x41, 0x42, 0x43, 0x44, 0x45}, "adapt": {0x50, 0x51, 0x52, 0x53, 0x54}}.items():
        proc = subprocess.run([str(device_build / "fuzz" / "ta_fuzz_app"), str(corpus / f"{name}.bin")],
                              capture_output=True, text=True, timeout=60, env={**os.environ, "TA_FUZZ_TRACE": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        replies = re.findall(r"reply cmd=0x([0-9a-f]{2}) seq=\d+ status=(-?\d+)", proc.stderr)
        ok = {int(c, 16) for c, status in replies if status == "0"}
        assert cmds <= ok, f"{name}: no successful reply to {sorted(hex(c) for c in cmds - ok)}: {replies}"
        assert all(status == "0" for _, status in replies), f"{name}: {replies}"
