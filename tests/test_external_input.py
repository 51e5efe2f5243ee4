"""Model inputs kept outside the arena (TA_TENSOR_EXTERNAL): a patch stage reads each tile's
window from storage the caller binds (on a device, a camera frame in external memory), so the
input frame costs no SRAM. Bit-identical to layer by layer on randomized models, every split
and grid; checked plans; the loader and engine refuse every misuse with a status."""

from __future__ import annotations

import ctypes
import struct
import zlib

import numpy as np
import pytest

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.blob import read_blob
from tinyadapt.engine.host import HostEngine, _aligned, library, status_name
from tinyadapt.errors import EngineError, PlanError
from tinyadapt.plan.patch import find_stages
from tests.support.arena_check import check_blob
from tests.support.paths import REPO
from tests.test_patch import random_model

N_RANDOM_MODELS = 60
GRIDS = (2, 3)
MBV2 = REPO / "models/mobilenetv2/mobilenetv2_96.tflite"


@pytest.mark.parametrize("seed", range(N_RANDOM_MODELS))
def test_random_models_external_input_bit_exact(seed):
    model_bytes, x_shape = random_model(500 + seed)
    x = np.random.default_rng(seed).integers(-128, 128, size=x_shape, dtype=np.int8)
    base = convert(model_bytes)
    expected = HostEngine(base.blob).invoke([x])[0]
    for stage in find_stages(base.tensors, base.ops, base.outputs):
        for grid in GRIDS:
            if grid > min(base.tensors[stage.output].shape[1:3]):
                continue
            try:
                model = convert(model_bytes, patch=(stage.n_ops, grid), external_input=True)
            except PlanError as exc:  # a later op reads the input too: it must stay in the arena
                assert "ops after the patch stage read it" in str(exc)
                continue
            check_blob(model.blob)
            assert model.patch.external_inputs == model.inputs
            resident = convert(model_bytes, patch=(stage.n_ops, grid))
            # The frame leaves the arena: never larger, and smaller whenever the input was live
            # at the peak.
            assert model.peak_sram_bytes <= resident.peak_sram_bytes
            got = HostEngine(model.blob).invoke([x])[0]
            assert np.array_equal(got, expected), f"seed {seed}: split {stage.n_ops} grid {grid}"


def test_mobilenet_external_input_saves_the_frame():
    base = convert(MBV2)
    x = np.load(REPO / "models/mobilenetv2/mobilenetv2_96_sample.npz")["x"][:1]
    resident = convert(MBV2, patch=(5, 6))
    external = convert(MBV2, patch=(5, 6), external_input=True)
    assert external.peak_sram_bytes < resident.peak_sram_bytes
    assert np.array_equal(HostEngine(external.blob).invoke([x])[0], HostEngine(base.blob).invoke([x])[0])


def test_external_input_needs_a_patch_plan():
    with pytest.raises(PlanError, match="needs a patch plan"):
        convert(MBV2, external_input=True)


# --------------------------------------------------------------------------- misuse
def _tensor_field(blob: bytearray, index: int, fmt: str, at: int, value=None):
    off = bf.HEADER_SIZE + index * bf.TENSOR_REC_SIZE + at
    if value is None:
        return struct.unpack_from(fmt, blob, off)[0]
    struct.pack_into(fmt, blob, off, value)
    struct.pack_into("<I", blob, 12, zlib.crc32(bytes(blob[bf.CRC_START:])) & 0xFFFFFFFF)
    return blob


def _engine_rejects(blob: bytes) -> str:
    with pytest.raises(EngineError) as info:
        HostEngine(bytes(blob))
    return str(info.value)


KIND_AT = 1  # ta_tensor_rec_t: dtype, kind, ndim, ...
OFFSET_AT = 4 + 4 * bf.MAX_DIMS


def test_loader_refuses_external_tensors_it_cannot_honour():
    external = convert(MBV2, patch=(5, 6), external_input=True)
    blob = bytearray(external.blob)
    ext = external.inputs[0]
    assert _tensor_field(blob, ext, "<B", KIND_AT) == bf.KIND_EXTERNAL
    # Storage offsets mean nothing for an external tensor: a non-zero one is corruption.
    assert "TA_ERR_CORRUPT" in _engine_rejects(_tensor_field(bytearray(blob), ext, "<I", OFFSET_AT, 16))
    # An op after the stage may not read (or write) an external tensor.
    out = external.outputs[0]
    assert "TA_ERR_CORRUPT" in _engine_rejects(_tensor_field(bytearray(blob), out, "<B", KIND_AT, bf.KIND_EXTERNAL))
    # Without a patch plan there is nothing to read it window by window.
    plain = bytearray(convert(MBV2).blob)
    assert "TA_ERR_CORRUPT" in _engine_rejects(_tensor_field(plain, 0, "<B", KIND_AT, bf.KIND_EXTERNAL))


def _open(blob: bytes):
    """The engine over `blob` through the raw C API (HostEngine would bind the inputs itself)."""
    lib = library()
    blob_mem, blob_ptr = _aligned(len(blob))
    ctypes.memmove(blob_ptr, blob, len(blob))
    arena_size = read_blob(blob).arena_size
    arena_mem, arena_ptr = _aligned(arena_size)
    state = ctypes.create_string_buffer(lib.ta_host_state_size())
    assert lib.ta_host_open(state, blob_ptr, len(blob), arena_ptr, arena_size) == 0
    return state, (blob_mem, arena_mem)


def test_engine_refuses_to_run_without_the_frame_and_bad_bindings():
    lib = library()
    state, keep = _open(convert(MBV2, patch=(5, 6), external_input=True).blob)
    assert status_name(lib.ta_host_invoke(state)) == "TA_ERR_STATE"  # nothing bound yet
    size = 96 * 96 * 3
    frame_mem, frame_ptr = _aligned(size)
    assert status_name(lib.ta_host_bind_input(state, 0, frame_ptr, size - 1)) == "TA_ERR_ARG"
    assert status_name(lib.ta_host_bind_input(state, 1, frame_ptr, size)) == "TA_ERR_ARG"
    assert status_name(lib.ta_host_bind_input(state, 0, None, size)) == "TA_ERR_ARG"
    assert lib.ta_host_bind_input(state, 0, frame_ptr, size) == 0
    assert lib.ta_host_invoke(state) == 0
    # An input that lives in the arena is written there; it cannot be bound elsewhere.
    plain, keep_plain = _open(convert(MBV2).blob)
    assert status_name(lib.ta_host_bind_input(plain, 0, frame_ptr, size)) == "TA_ERR_STATE"
