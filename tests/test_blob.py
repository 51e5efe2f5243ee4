"""The model blob: format constants shared by host and device, and corrupt blobs under
ASan/UBSan giving status codes, never a crash."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.blob import read_blob
from tinyadapt.engine.host import BUILD_DIR, FIRMWARE_DIR, HostEngine
from tinyadapt.errors import BlobError, EngineError
from tests.support.paths import SHARED_MODELS

REPO = Path(__file__).resolve().parents[1]
HEADER = REPO / "firmware/include/tinyadapt/ta_model_format.h"
N_CORRUPT_PER_MODEL = 1500


def c_constants() -> dict[str, int]:
    text = HEADER.read_text()
    consts = {m[0]: int(m[1], 0) for m in re.findall(r"#define (TA_\w+) \(?(-?(?:0x)?[0-9A-Fa-f]+)u?\)?", text)}
    consts.update({m[0]: int(m[1]) for m in re.findall(r"(TA_\w+) = (\d+)", text)})
    return consts


def test_python_and_c_agree_on_the_format():
    c = c_constants()
    assert c["TA_MODEL_MAGIC"] == bf.MAGIC
    assert c["TA_MODEL_VERSION"] == bf.VERSION
    assert c["TA_MAX_DIMS"] == bf.MAX_DIMS
    assert c["TA_MODEL_CRC_START"] == bf.CRC_START
    for name, code in {**bf.OPCODES, **bf.BACKWARD_OPCODES}.items():
        assert c[f"TA_OP_{name}"] == code, name
    assert c["TA_MODEL_FLAG_TRAIN"] == bf.FLAG_TRAIN
    for dtype, code in bf.DTYPES.items():
        assert c[f"TA_DTYPE_{dtype.name.upper()}"] == code


def example_blobs() -> list[tuple[str, bytes]]:
    blobs = []
    # Not models/exports: a corrupt blob that still loads runs a whole inference under ASan, which
    # takes minutes per export; test_exports and test_flatbuffer_verify cover those files.
    examples = [p for p in sorted((REPO / "models").glob("*/*.tflite")) if p.parent.name != "exports"]
    for path in examples + sorted(SHARED_MODELS.glob("*.tflite")):
        try:
            blobs.append((path.stem, convert(path).blob))
        except Exception:
            continue  # unsupported models are covered by the converter tests
    assert blobs, "no convertible example model"
    return blobs


def fix_crc(blob: bytearray) -> bytearray:
    struct.pack_into("<I", blob, 12, zlib.crc32(bytes(blob[bf.CRC_START:])) & 0xFFFFFFFF)
    return blob


def corruptions(blob: bytes, rng: np.random.Generator, n: int):
    """Damaged blobs, most with a valid CRC so the structural checks are what is tested."""
    info = read_blob(blob)
    data_off = struct.unpack_from("<I", blob, 44)[0]
    tables_end = data_off
    for i in range(n):
        b = bytearray(blob)
        how = i % 6
        if how == 0:    # truncation, header total_size left as is
            b = b[:int(rng.integers(0, len(b)))]
        elif how == 1:  # random bytes in the header and tables, CRC fixed
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(4, tables_end))] = int(rng.integers(0, 256))
            fix_crc(b)
        elif how == 2:  # a 32-bit field in the tables set to an extreme value, CRC fixed
            pos = int(rng.integers(4, tables_end - 4)) & ~3
            struct.pack_into("<I", b, pos, int(rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                                                           0xFFFF, len(blob), int(rng.integers(0, 2**32))])))
            fix_crc(b)
        elif how == 3:  # op parameter structs scrambled (strides, shifts, offsets), CRC fixed
            op = info.ops[int(rng.integers(0, len(info.ops)))]
            p_off = data_off + struct.unpack_from("<I", blob, 64 + bf.TENSOR_REC_SIZE * len(info.tensors)
                                                  + bf.OP_REC_SIZE * info.ops.index(op) + 8)[0]
            for k in range(0, len(op.params), 4):
                if rng.random() < 0.5:
                    struct.pack_into("<i", b, p_off + k, int(rng.choice([0, -1, 1, 31, 32, -32, 2**31 - 1, -2**31,
                                                                       int(rng.integers(-1000, 1000))])))
            fix_crc(b)
        elif how == 4:  # a random bit flip anywhere, CRC not fixed
            pos = int(rng.integers(0, len(b)))
            b[pos] ^= 1 << int(rng.integers(0, 8))
        else:           # tensor dims changed, size kept, CRC fixed
            t = int(rng.integers(0, len(info.tensors)))
            pos = 64 + t * bf.TENSOR_REC_SIZE + 4 + 4 * int(rng.integers(0, bf.MAX_DIMS))
            struct.pack_into("<i", b, pos, int(rng.choice([0, -1, 2, 65536, 2**31 - 1])))
            fix_crc(b)
        yield bytes(b)


@pytest.fixture(scope="module")
def blob_checker(tmp_path_factory) -> Path:
    out = BUILD_DIR / "firmware-sanitize"
    proc = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), "blob-check", f"BUILD={out}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out / "sanitize" / "ta_blob_check"


def test_corrupt_blobs_give_status_codes_under_sanitizers(blob_checker, tmp_path):
    rng = np.random.default_rng(1234)
    paths, expect_ok = [], []
    for name, blob in example_blobs():
        good = tmp_path / f"{name}_good.bin"
        good.write_bytes(blob)
        paths.append(good)
        expect_ok.append(good)
        for i, bad in enumerate(corruptions(blob, rng, N_CORRUPT_PER_MODEL)):
            p = tmp_path / f"{name}_{i}.bin"
            p.write_bytes(bad)
            paths.append(p)
    results = {}
    for start in range(0, len(paths), 500):  # keep the command line short
        proc = subprocess.run([str(blob_checker)] + [str(p) for p in paths[start:start + 500]],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"sanitizer or crash:\n{proc.stderr[-3000:]}"
        for line in proc.stdout.splitlines():
            path, status = line.rsplit(" ", 1)
            results[path] = status
    assert len(results) == len(paths)
    for p in expect_ok:
        assert results[str(p)] == "TA_OK", p
    statuses = {s for s in results.values()}
    assert statuses <= {"TA_OK", "TA_ERR_MAGIC", "TA_ERR_VERSION", "TA_ERR_TRUNCATED", "TA_ERR_CRC",
                        "TA_ERR_CORRUPT", "TA_ERR_UNSUPPORTED", "TA_ERR_SHAPE", "TA_ERR_ARENA",
                        "TA_ERR_OVERFLOW"}, statuses
    # The structural checks, not just the CRC, must be doing the rejecting.
    assert {"TA_ERR_CRC", "TA_ERR_TRUNCATED", "TA_ERR_CORRUPT"} <= statuses


def test_host_reader_and_engine_reject_corrupt_blobs():
    _, blob = example_blobs()[0]
    bad = bytearray(blob)
    bad[100] ^= 0xFF
    with pytest.raises(BlobError, match="CRC"):
        read_blob(bytes(bad))
    with pytest.raises(BlobError, match="magic"):
        read_blob(b"\0" * 64)
    fix_crc(bad)
    struct.pack_into("<I", bad, 64 + 28, 0x7FFFFFF0)  # tensor 0 offset far outside everything
    fix_crc(bad)
    with pytest.raises(EngineError, match="TA_ERR"):
        HostEngine(bytes(bad))


def test_the_engine_crc_is_zlib_crc32():
    """The blob's and the frames' CRC: the engine's nibble-table CRC-32 equals zlib's on every
    length around the table's step and on chained calls."""
    import ctypes

    from tinyadapt.engine.host import library
    crc = library().ta_crc32
    crc.restype, crc.argtypes = ctypes.c_uint32, [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    data = np.random.default_rng(0).integers(0, 256, 4099, dtype=np.uint8).tobytes()
    for n in (0, 1, 2, 3, 7, 64, 1023, 4099):
        assert crc(0, data[:n], n) == zlib.crc32(data[:n])
    assert crc(crc(0, data[:100], 100), data[100:], len(data) - 100) == zlib.crc32(data)
