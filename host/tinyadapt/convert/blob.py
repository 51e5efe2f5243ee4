"""Writing and reading the model blob (docs/SPEC.md, firmware ta_model_format.h)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.errors import BlobError

_HEADER = struct.Struct("<IHHIIIHHHHIIIIIIII4x")
_TENSOR = struct.Struct("<BBBB6iIIif4x")
_OP = struct.Struct("<HBBIIIII")
assert _HEADER.size == bf.HEADER_SIZE and _TENSOR.size == bf.TENSOR_REC_SIZE and _OP.size == bf.OP_REC_SIZE


def _pad4(buf: bytearray) -> None:
    buf.extend(b"\0" * (-len(buf) % 4))


def write_blob(tensors, ops, inputs, outputs, plan, patch=None, train_forward_ops: int | None = None) -> bytes:
    """Serialize blob tensors, lowered ops and the memory plan (and a patch plan, if any:
    then `plan` is patch.memory, the stage's internal tensors become PATCH tensors and inputs
    it keeps outside the arena EXTERNAL ones). With train_forward_ops, ops past that many
    are backward ops and the blob gets a TRAIN section (host/tinyadapt/train/graph.py)."""
    data = bytearray()
    internal = set(patch.stage.internal) if patch else set()
    external = set(patch.external_inputs) if patch else set()
    region_offset = dict(zip(patch.region_tensors, patch.region_offsets)) if patch else {}
    kinds = []
    for i, t in enumerate(tensors):
        kind = t.kind
        if t.kind == bf.KIND_CONST:
            _pad4(data)
            t.offset = len(data)
            data.extend(t.data)
        elif i in internal:
            kind = bf.KIND_PATCH
            t.offset = region_offset[i]
        elif i in external:
            kind = bf.KIND_EXTERNAL
            t.offset = 0
        else:
            t.offset = plan.tensor_offsets.get(i, 0)
        kinds.append(kind)
    op_recs = []
    for i, op in enumerate(ops):
        _pad4(data)
        io_off = len(data)
        data.extend(struct.pack(f"<{len(op.inputs) + len(op.outputs)}h", *(op.inputs + op.outputs)))
        _pad4(data)
        p_off = len(data)
        data.extend(op.params)
        op_recs.append(_OP.pack(op.opcode, len(op.inputs), len(op.outputs), io_off, p_off, len(op.params),
                                plan.scratch_offsets.get(i, 0), plan.scratch_sizes.get(i, 0)))
    _pad4(data)
    patch_off = 0
    if patch is not None:
        from tinyadapt.plan.patch import patch_section

        patch_off = len(data)
        section = bytearray(patch_section(patch))
        # Rebase the section's internal offsets onto the data section.
        n_t, n_r = struct.unpack_from("<II", section, 8)
        struct.pack_into("<II", section, 8, n_t + patch_off, n_r + patch_off)
        data.extend(section)
        _pad4(data)

    train_off = 0
    if train_forward_ops is not None:
        train_off = len(data)
        data.extend(struct.pack("<HHI8x", train_forward_ops, 0, 0))

    tensors_off = bf.HEADER_SIZE
    ops_off = tensors_off + bf.TENSOR_REC_SIZE * len(tensors)
    io_off = ops_off + bf.OP_REC_SIZE * len(ops)
    io = struct.pack(f"<{len(inputs) + len(outputs)}H", *(inputs + outputs))
    io += b"\0" * (-len(io) % 4)
    data_off = io_off + len(io)
    total = data_off + len(data)

    body = bytearray()
    for k, (t, kind) in enumerate(zip(tensors, kinds)):
        dims = list(t.shape) + [0] * (bf.MAX_DIMS - len(t.shape))
        try:
            body += _TENSOR.pack(bf.DTYPES[np.dtype(t.dtype)], kind, len(t.shape), 0, *dims, t.offset,
                                 t.nbytes, t.zero_point, t.scale)
        except struct.error as exc:  # a field wider than the blob's record (a corrupt model)
            raise BlobError(f"blob tensor {k} '{t.name}' does not fit the blob format: {exc}") from None
    body += b"".join(op_recs) + io + data
    flags = (bf.FLAG_PATCH if patch is not None else 0) | (bf.FLAG_TRAIN if train_forward_ops is not None else 0)
    header = _HEADER.pack(bf.MAGIC, bf.VERSION, bf.HEADER_SIZE, total, 0, flags, len(tensors), len(ops),
                          len(inputs), len(outputs), plan.arena_size, tensors_off, ops_off, io_off,
                          data_off, len(data), patch_off, train_off)
    blob = bytearray(header) + body
    struct.pack_into("<I", blob, 12, zlib.crc32(bytes(blob[bf.CRC_START:])) & 0xFFFFFFFF)
    return bytes(blob)


@dataclass
class BlobTensorInfo:
    index: int
    dtype: np.dtype
    shape: tuple[int, ...]
    kind: int
    offset: int
    size: int
    zero_point: int
    scale: float


@dataclass
class BlobOpInfo:
    opcode: int
    inputs: list[int]
    outputs: list[int]
    params: bytes
    scratch_offset: int
    scratch_size: int

    @property
    def name(self) -> str:
        return bf.OPCODE_NAMES.get(self.opcode, f"OP_{self.opcode}")


@dataclass
class BlobPatchInfo:
    n_stage_ops: int
    tensors: list[int]
    offsets: list[int]
    capacities: list[int]
    regions: list[list[tuple[int, int, int, int]]]  # [tile][region tensor]
    mode: int = bf.PATCH_MODE_TILES
    stream_offsets: list[int] = field(default_factory=list)     # stream mode: ta_stream_buffer_t[]
    stream_capacities: list[int] = field(default_factory=list)
    bands: int = 0  # stream mode: tiles per strip


@dataclass
class BlobInfo:
    arena_size: int
    tensors: list[BlobTensorInfo]
    ops: list[BlobOpInfo]
    inputs: list[int]
    outputs: list[int]
    total_size: int
    patch: BlobPatchInfo | None = None
    n_forward_ops: int | None = None  # ops past this many are backward ops (TRAIN section)

    @property
    def forward_ops(self) -> list[BlobOpInfo]:
        return self.ops if self.n_forward_ops is None else self.ops[:self.n_forward_ops]


def read_blob(blob: bytes) -> BlobInfo:
    """Parse a blob written by write_blob (host-side; the device has its own loader)."""
    if len(blob) < bf.HEADER_SIZE:
        raise BlobError(f"model blob truncated: {len(blob)} bytes, header needs {bf.HEADER_SIZE}")
    (magic, version, hsize, total, crc, flags, n_t, n_o, n_in, n_out, arena, t_off, o_off, io_off,
     d_off, d_size, patch_off, train_off) = _HEADER.unpack_from(blob, 0)
    if magic != bf.MAGIC:
        raise BlobError(f"not a tinyadapt model blob (magic 0x{magic:08x})")
    if version != bf.VERSION:
        raise BlobError(f"model blob format version {version}, this tinyadapt reads version {bf.VERSION}")
    if total > len(blob):
        raise BlobError(f"model blob truncated: header says {total} bytes, have {len(blob)}")
    if zlib.crc32(blob[bf.CRC_START:total]) & 0xFFFFFFFF != crc:
        raise BlobError("model blob CRC mismatch: the file is corrupt")
    try:
        tensors = []
        for i in range(n_t):
            f = _TENSOR.unpack_from(blob, t_off + i * bf.TENSOR_REC_SIZE)
            dtype, kind, ndim = f[0], f[1], f[2]
            tensors.append(BlobTensorInfo(i, bf.DTYPE_NUMPY[dtype], tuple(f[4:4 + ndim]), kind, f[10], f[11],
                                          f[12], f[13]))
        ops = []
        for i in range(n_o):
            opcode, ni, no, iooff, poff, psize, soff, ssize = _OP.unpack_from(blob, o_off + i * bf.OP_REC_SIZE)
            idx = struct.unpack_from(f"<{ni + no}h", blob, d_off + iooff)
            ops.append(BlobOpInfo(opcode, list(idx[:ni]), list(idx[ni:]),
                                  bytes(blob[d_off + poff:d_off + poff + psize]), soff, ssize))
        io = struct.unpack_from(f"<{n_in + n_out}H", blob, io_off)
        patch = _read_patch(blob, d_off + patch_off) if flags & bf.FLAG_PATCH else None
        n_fwd = struct.unpack_from("<H", blob, d_off + train_off)[0] if flags & bf.FLAG_TRAIN else None
    except (struct.error, KeyError, IndexError) as exc:
        raise BlobError(f"model blob is corrupt: {exc}") from None
    return BlobInfo(arena, tensors, ops, list(io[:n_in]), list(io[n_in:]), total, patch, n_fwd)


def _read_patch(blob: bytes, off: int) -> BlobPatchInfo:
    n_stage, n_tiles, n_regions, mode, t_off, r_off = struct.unpack_from("<HHHHII", blob, off)
    base = struct.unpack_from("<I", blob, 44)[0]  # the section's offsets are data-section offsets
    tensors = [struct.unpack_from("<HHII", blob, base + t_off + 12 * i) for i in range(n_regions)]
    regions = [[struct.unpack_from("<hhhh", blob, base + r_off + 8 * (k * n_regions + i)) for i in range(n_regions)]
               for k in range(n_tiles)]
    streams, bands = [], 0
    if mode == bf.PATCH_MODE_STREAM:
        s_off = base + r_off + 8 * n_tiles * n_regions
        bands = struct.unpack_from("<I", blob, s_off)[0]
        streams = [struct.unpack_from("<II", blob, s_off + 4 + 8 * i) for i in range(n_regions)]
    return BlobPatchInfo(n_stage, [t[0] for t in tensors], [t[2] for t in tensors], [t[3] for t in tensors], regions,
                         mode, [s[0] for s in streams], [s[1] for s in streams], bands)
