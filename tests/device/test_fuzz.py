"""Fuzz the device app's input: the whole byte stream a host could send (frames, noise,
model blobs in LOAD_CHUNKs) runs through the real app over an in-memory HAL, built with
libFuzzer, ASan and UBSan (firmware/tools/ta_fuzz_app.c). A bounded, seeded run here; run
the binary without -runs for a long campaign."""

from __future__ import annotations

import shutil
import struct
import subprocess

from tests.device import wire
from tests.device.conftest import make


def seeds(blob: bytes) -> dict[str, bytes]:
    def req(seq, cmd, payload=b""):
        return wire.wire(wire.Frame(wire.REQUEST, seq, cmd, 0, payload).encode())

    chunks = [req(1 + i, wire.LOAD_CHUNK, struct.pack("<I", off) + blob[off:off + 600])
              for i, off in enumerate(range(0, len(blob), 600))]
    return {
        "hello": req(0, wire.HELLO) + req(1, wire.METRICS),
        "infer": req(0, wire.INFER, b"\x05") + req(1, wire.INFER, b"\x05") + req(1, wire.INFER, b"\x05"),
        "split": req(0, wire.INPUT_WRITE, struct.pack("<B3xI", 0, 0) + b"\x07") + req(1, wire.INVOKE, b"\x01")
        + req(2, wire.PROFILE_READ, struct.pack("<HH", 0, 3)) + req(3, wire.OUTPUT_READ, struct.pack("<B3xIH", 0, 0, 1)),
        "load": req(0, wire.LOAD_BEGIN, struct.pack("<B3xII", 1, len(blob), wire.crc32(blob))) + b"".join(chunks)
        + req(50, wire.LOAD_END) + req(51, wire.SELECT, b"\x01") + req(52, wire.INFER, b"\x10"),
        "reset": req(0, wire.RESET) + req(0, wire.HELLO) + req(1, wire.SELECT, b"\x00"),
        "noise": b"\x01\x02\xff\x00\x00" + req(0, wire.HELLO)[1:] + bytes(range(1, 256)) * 5 + b"\x00",
    }


def test_fuzzing_the_app_finds_nothing(device_build, hello_model, tmp_path):
    assert shutil.which("clang"), "clang not found (scripts/setup.sh installs it)"
    model, _, header = hello_model
    make("fuzz", f"MODEL_HEADER={header}", build=device_build)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in seeds(model.blob).items():
        (corpus / name).write_bytes(data)
    proc = subprocess.run([str(device_build / "fuzz" / "ta_fuzz_app"), "-runs=4000", "-seed=1", "-max_len=4096",
                           "-timeout=10", str(corpus)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 4000 runs" in proc.stderr
