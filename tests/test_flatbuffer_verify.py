"""The converter verifies the whole .tflite flatbuffer before reading it
(host/tinyadapt/convert/flatbuffer_verify.py): valid models pass; corrupt ones, real models
with bytes overwritten, flipped or cut off, give one ModelFileError line naming the field and
the offset, and never another exception."""

from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest

from tinyadapt.convert import convert
from tinyadapt.convert.flatbuffer_verify import verify_tflite
from tinyadapt.errors import ModelFileError, TinyAdaptError
from tests.support.paths import REPO, SHARED_MODELS
from tests.support.tflite_builder import schema
from tests.support.tiny_models import tiny_fc
from tests.test_patch import random_model

REPO_MODELS = sorted(REPO.glob("models/*/*.tflite"))
DIGITS = REPO / "models/digits/digits_cnn.tflite"


def u32(b, pos: int) -> int:
    return struct.unpack_from("<I", b, pos)[0]


def field_target(tab, slot_offset: int) -> int:
    """Where the offset field at vtable offset `slot_offset` of table `tab` points."""
    at = tab.Pos + tab.Offset(slot_offset)
    return at + u32(tab.Bytes, at)


def one_line(exc: TinyAdaptError) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.strip() == msg, msg
    return msg


def test_real_and_generated_models_verify():
    models = [p.read_bytes() for p in REPO_MODELS + sorted(SHARED_MODELS.glob("*.tflite"))]
    models += [tiny_fc(s) for s in range(3)] + [random_model(s)[0] for s in range(10)]
    for data in models:
        verify_tflite(data, "model")


def test_metadata_overwritten_with_ff_is_refused_in_one_line(tmp_path):
    """Reproduces issue 9: TFLM's reader refuses this file, and the converter used to accept it."""
    data = bytearray(DIGITS.read_bytes())
    model = schema.Model.GetRootAs(data, 0)
    assert model.MetadataLength() > 0
    table = model.Metadata(0)._tab.Pos
    data[table:table + 12] = b"\xff" * 12
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.tamb"
    out.write_bytes(b"precious")
    proc = subprocess.run([sys.executable, "-m", "tinyadapt", "convert", str(bad), "-o", str(out)],
                          capture_output=True, text=True, cwd=REPO)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{bad}: corrupt flatbuffer: Model.metadata[0] table" in lines[0], lines[0]
    assert out.read_bytes() == b"precious"


def test_truncated_files_say_truncated():
    data = DIGITS.read_bytes()
    for cut in list(range(0, 64)) + list(range(64, len(data), 53)):
        try:
            convert(data[:cut], name="cut.tflite")
        except ModelFileError as exc:
            msg = one_line(exc)
            assert "truncated" in msg or "not a .tflite model" in msg, (cut, msg)
            assert "unpack_from" not in msg, (cut, msg)
        else:
            pytest.fail(f"{cut} of {len(data)} bytes converted")


@pytest.mark.parametrize("path", REPO_MODELS, ids=lambda p: p.stem)
def test_random_byte_changes_give_a_conversion_or_one_line_error(path):
    """Random bytes overwritten anywhere (headers, offsets, vtables, weights): either the file
    still converts, or a TinyAdaptError says why in one line; nothing else escapes."""
    base = path.read_bytes()
    rng = np.random.default_rng(9)
    outcomes = {"converted": 0, "refused": 0}
    for _ in range(60 if path.stat().st_size > 100_000 else 250):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 9))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        try:
            convert(bytes(data), name="mutant.tflite")
            outcomes["converted"] += 1
        except TinyAdaptError as exc:
            one_line(exc)
            outcomes["refused"] += 1
    assert outcomes["converted"] > 0 and outcomes["refused"] > 0, outcomes


def corrupted(edit) -> str:
    data = bytearray(tiny_fc(0))
    edit(data, schema.Model.GetRootAs(data, 0))
    with pytest.raises(ModelFileError) as err:
        convert(bytes(data), name="m.tflite")
    return one_line(err.value)


def test_each_check_names_what_is_wrong():
    def root(value):
        return lambda d, m: struct.pack_into("<I", d, 0, value)

    assert "root table offset at 0 is 0 (points to itself)" in corrupted(root(0))
    assert "root table offset at 0 is 0xfffffff0, negative" in corrupted(root(0xFFFFFFF0))
    assert "truncated or corrupt flatbuffer: root table at offset" in corrupted(root(0x10000))

    def odd_vtable(d, m):
        t = m.Subgraphs(0).Tensors(1)._tab.Pos
        vt = t - struct.unpack_from("<i", d, t)[0]
        struct.pack_into("<H", d, vt, 5)
    assert "Model.subgraphs[0].tensors[1] table's vtable at offset" in corrupted(odd_vtable)
    assert "has size 5 (must be even and at least 4)" in corrupted(odd_vtable)

    def huge_vector(d, m):
        struct.pack_into("<I", d, field_target(m._tab, 12), 0x7FFF0000)   # Model.buffers length
    msg = corrupted(huge_vector)
    assert "Model.buffers vector at offset" in msg and "claims 2147418112 entries" in msg

    def unterminated(d, m):
        s = field_target(m._tab, 10)                                       # Model.description
        d[s + 4 + u32(d, s)] = ord("x")
    assert "Model.description string at offset" in corrupted(unterminated)
    assert "is not 0-terminated" in corrupted(unterminated)

    def misaligned_shape(d, m):
        tab = m.Subgraphs(0).Tensors(0)._tab
        at = tab.Pos + tab.Offset(4)                                       # Tensor.shape offset field
        struct.pack_into("<I", d, at, u32(d, at) + 1)
    assert "Model.subgraphs[0].tensors[0].shape vector at offset" in corrupted(misaligned_shape)
    assert "is not 4-byte aligned" in corrupted(misaligned_shape)
