"""Fuzz the device app's input: the whole byte stream a host could send (frames, noise,
model blobs in LOAD_CHUNKs) runs through the real app over an in-memory HAL, built with
libFuzzer, ASan and UBSan (firmware/tools/ta_fuzz_app.c). A bounded, seeded run here; the
long campaign is scripts/fuzz_campaign.py (docs/SECURITY.md)."""

from __future__ import annotations

import subprocess

from tests.device.conftest import make
from tests.support.fuzz_seeds import app_seeds, write_corpus
from tests.support.tools import need_tool


def test_fuzzing_the_app_finds_nothing(device_build, tiny_model, tmp_path):
    need_tool("make", "clang")
    model, _, header = tiny_model
    make("fuzz", f"MODEL_HEADER={header}", build=device_build)
    corpus = write_corpus(tmp_path / "corpus", app_seeds(model.blob))
    proc = subprocess.run([str(device_build / "fuzz" / "ta_fuzz_app"), "-runs=4000", "-seed=1", "-max_len=4096",
                           "-timeout=10", str(corpus)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 4000 runs" in proc.stderr
