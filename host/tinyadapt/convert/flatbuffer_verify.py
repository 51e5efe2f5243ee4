"""Verify a .tflite flatbuffer before anything reads it, as the flatbuffers Verifier does.

The generated accessors trust every offset they follow: a corrupt file makes them read
garbage, raise a bare struct error, or (tflite-runtime) crash. This walk checks, for every
table the converter reads (Model, SubGraph, Tensor, Buffer, Operator, OperatorCode,
QuantizationParameters, Metadata, SignatureDef, ...), that its vtable is sane (inside the
file, aligned, sizes even and at least 4) and that the table lies inside the file; that
every scalar field lies inside the file, aligned; that every offset is non-zero,
non-negative and lands inside the file; that every vector (length and elements) and every
string (with its terminating 0) lies inside the file; and it bounds the nesting depth and
the number of tables. Options tables (unions) are checked as tables, their fields as bytes
in bounds. The first problem raises ModelFileError naming the field path and offset, e.g.
"model.tflite: truncated or corrupt flatbuffer: Model.metadata vector at offset 4096 runs
past the end of the file (2048 bytes)".
"""

from __future__ import annotations

import struct

from tinyadapt.errors import ModelFileError

MAX_DEPTH = 64            # flatbuffers::Verifier defaults
MAX_TABLES = 1_000_000

# Field kinds: ("scalar", size) | ("string",) | ("vector", elem_size) | ("strings",)
# | ("table", schema) | ("tables", schema) | ("union", type_slot)
_U8, _U16, _U32, _U64 = ("scalar", 1), ("scalar", 2), ("scalar", 4), ("scalar", 8)
_STR = ("string",)
_GENERIC: dict = {}       # a table whose fields are not known here: structure only


def _vec(size: int) -> tuple:
    return ("vector", size)


def _tables(schema: dict) -> tuple:
    return ("tables", schema)


# name: (table name, {slot: (field name, kind)}); slot = vtable entry index.
QUANTIZATION = ("QuantizationParameters", {0: ("min", _vec(4)), 1: ("max", _vec(4)), 2: ("scale", _vec(4)),
                                           3: ("zero_point", _vec(8)), 4: ("details_type", _U8),
                                           5: ("details", ("union", 4)), 6: ("quantized_dimension", _U32)})
TENSOR = ("Tensor", {0: ("shape", _vec(4)), 1: ("type", _U8), 2: ("buffer", _U32), 3: ("name", _STR),
                     4: ("quantization", ("table", QUANTIZATION)), 5: ("is_variable", _U8),
                     6: ("sparsity", ("table", ("SparsityParameters", _GENERIC))),
                     7: ("shape_signature", _vec(4)), 8: ("has_rank", _U8),
                     9: ("variant_tensors", _tables(("VariantSubType", _GENERIC))), 10: ("external_buffer", _U32)})
OPERATOR = ("Operator", {0: ("opcode_index", _U32), 1: ("inputs", _vec(4)), 2: ("outputs", _vec(4)),
                         3: ("builtin_options_type", _U8), 4: ("builtin_options", ("union", 3)),
                         5: ("custom_options", _vec(1)), 6: ("custom_options_format", _U8),
                         7: ("mutating_variable_inputs", _vec(1)), 8: ("intermediates", _vec(4)),
                         9: ("large_custom_options_offset", _U64), 10: ("large_custom_options_size", _U64),
                         11: ("builtin_options_2_type", _U8), 12: ("builtin_options_2", ("union", 11)),
                         13: ("debug_metadata_index", _U32)})
SUBGRAPH = ("SubGraph", {0: ("tensors", _tables(TENSOR)), 1: ("inputs", _vec(4)), 2: ("outputs", _vec(4)),
                         3: ("operators", _tables(OPERATOR)), 4: ("name", _STR), 5: ("debug_metadata_index", _U32)})
OPERATOR_CODE = ("OperatorCode", {0: ("deprecated_builtin_code", _U8), 1: ("custom_code", _STR),
                                  2: ("version", _U32), 3: ("builtin_code", _U32)})
BUFFER = ("Buffer", {0: ("data", _vec(1)), 1: ("offset", _U64), 2: ("size", _U64)})
METADATA = ("Metadata", {0: ("name", _STR), 1: ("buffer", _U32)})
TENSOR_MAP = ("TensorMap", {0: ("name", _STR), 1: ("tensor_index", _U32)})
SIGNATURE_DEF = ("SignatureDef", {0: ("inputs", _tables(TENSOR_MAP)), 1: ("outputs", _tables(TENSOR_MAP)),
                                  2: ("signature_key", _STR), 4: ("subgraph_index", _U32)})
EXTERNAL_BUFFER_GROUP = ("ExternalBufferGroup", {0: ("name", _STR)})
EXTERNAL_BUFFER = ("ExternalBuffer", {0: ("id", _U32), 1: ("group", _U32), 2: ("offset", _U64),
                                      3: ("length", _U64)})
MODEL = ("Model", {0: ("version", _U32), 1: ("operator_codes", _tables(OPERATOR_CODE)),
                   2: ("subgraphs", _tables(SUBGRAPH)), 3: ("description", _STR), 4: ("buffers", _tables(BUFFER)),
                   5: ("metadata_buffer", _vec(4)), 6: ("metadata", _tables(METADATA)),
                   7: ("signature_defs", _tables(SIGNATURE_DEF)),
                   8: ("external_buffer_groups", _tables(EXTERNAL_BUFFER_GROUP)),
                   9: ("external_buffers", _tables(EXTERNAL_BUFFER))})


class _Problem(Exception):
    def __init__(self, message: str, past_end: bool = False):
        super().__init__(message)
        self.past_end = past_end


class _Verifier:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.n = len(buf)
        self.tables = 0

    # -- primitives ------------------------------------------------------------------------
    def inside(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or pos + size > self.n:
            raise _Problem(f"{what} at offset {pos} runs past the end of the file ({self.n} bytes)", past_end=True)

    def aligned(self, pos: int, align: int, what: str) -> None:
        if pos % align:
            raise _Problem(f"{what} at offset {pos} is not {align}-byte aligned")

    def u16(self, pos: int) -> int:
        return struct.unpack_from("<H", self.buf, pos)[0]

    def u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.buf, pos)[0]

    def offset(self, pos: int, what: str) -> int:
        """Follow the uoffset stored at `pos`: the position it points to."""
        self.inside(pos, 4, f"{what} offset")
        self.aligned(pos, 4, f"{what} offset")
        o = self.u32(pos)
        if o == 0:
            raise _Problem(f"{what} offset at {pos} is 0 (points to itself)")
        if o >= 1 << 31:
            raise _Problem(f"{what} offset at {pos} is 0x{o:08x}, negative as a flatbuffer offset")
        self.inside(pos + o, 1, what)
        return pos + o

    # -- structures ------------------------------------------------------------------------
    def vector(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        """(first element position, length) of the vector at `pos`."""
        self.inside(pos, 4, f"{what} vector")
        self.aligned(pos, 4, f"{what} vector")
        n = self.u32(pos)
        if n * elem >= 1 << 31:
            raise _Problem(f"{what} vector at offset {pos} claims {n} entries, more than a flatbuffer can hold")
        self.inside(pos, 4 + n * elem, f"{what} vector")
        return pos + 4, n

    def string(self, pos: int, what: str) -> None:
        start, n = self.vector(pos, 1, f"{what} string")
        self.inside(start + n, 1, f"{what} string terminator")
        if self.buf[start + n] != 0:
            raise _Problem(f"{what} string at offset {pos} is not 0-terminated")

    def table(self, pos: int, schema: tuple, path: str, depth: int) -> None:
        name, fields = schema
        what = f"{path} table"
        if depth > MAX_DEPTH:
            raise _Problem(f"{what} at offset {pos} is nested more than {MAX_DEPTH} deep")
        self.tables += 1
        if self.tables > MAX_TABLES:
            raise _Problem(f"more than {MAX_TABLES:,} tables")
        self.inside(pos, 4, what)
        self.aligned(pos, 4, what)
        vt = pos - struct.unpack_from("<i", self.buf, pos)[0]
        self.inside(vt, 4, f"{what}'s vtable")
        self.aligned(vt, 2, f"{what}'s vtable")
        vsize, tsize = self.u16(vt), self.u16(vt + 2)
        if vsize < 4 or vsize % 2:
            raise _Problem(f"{what}'s vtable at offset {vt} has size {vsize} (must be even and at least 4)")
        self.inside(vt, vsize, f"{what}'s vtable")
        if tsize < 4:
            raise _Problem(f"{what} at offset {pos} has size {tsize} (less than its vtable offset)")
        self.inside(pos, tsize, what)
        n_slots = (vsize - 4) // 2
        for slot in range(n_slots):
            voff = self.u16(vt + 4 + 2 * slot)
            if voff == 0:
                continue
            field = fields.get(slot)
            fname = f"{path}.{field[0]}" if field else f"{path}.field{slot}"
            if voff + 1 > tsize:
                raise _Problem(f"{fname} at offset {pos + voff} lies outside its {name} table ({tsize} bytes)")
            if field is None:
                continue    # unknown to this reader (a newer schema): bytes in bounds is all we need
            self.field(pos, pos + voff, field[1], fname, vt, vsize, depth)

    def field(self, table: int, at: int, kind: tuple, name: str, vt: int, vsize: int, depth: int) -> None:
        k = kind[0]
        if k == "scalar":
            self.inside(at, kind[1], name)
            self.aligned(at, kind[1], name)
        elif k == "string":
            self.string(self.offset(at, name), name)
        elif k == "vector":
            self.vector(self.offset(at, name), kind[1], name)
        elif k == "table":
            self.table(self.offset(at, name), kind[1], name, depth + 1)
        elif k == "tables":
            start, n = self.vector(self.offset(at, name), 4, name)
            for i in range(n):
                self.table(self.offset(start + 4 * i, f"{name}[{i}]"), kind[1], f"{name}[{i}]", depth + 1)
        elif k == "union":
            # The union's table is checked when its type field says there is one (as the
            # Verifier does); options tables: structure and bytes in bounds.
            type_slot = 4 + 2 * kind[1]
            voff = self.u16(vt + type_slot) if type_slot < vsize else 0
            if voff and self.buf[table + voff] != 0:
                self.table(self.offset(at, name), (name.rsplit(".", 1)[-1], _GENERIC), name, depth + 1)


def verify_tflite(buf: bytes, source: str) -> None:
    """Raise ModelFileError("<source>: ...") naming the first problem; return if the whole
    flatbuffer is well formed."""
    if len(buf) >= 1 << 31:
        raise ModelFileError(f"{source}: {len(buf):,} bytes, more than a flatbuffer can hold (2 GiB)")
    v = _Verifier(buf)
    try:
        v.inside(0, 8, "file header (root offset and identifier)")
        v.table(v.offset(0, "root table"), MODEL, "Model", 0)
    except _Problem as p:
        kind = "truncated or corrupt flatbuffer" if p.past_end else "corrupt flatbuffer"
        raise ModelFileError(f"{source}: {kind}: {p}") from None
