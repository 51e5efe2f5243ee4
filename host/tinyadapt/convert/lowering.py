"""Turning IR ops into engine ops: the contract between the converter and op modules.

Each module in tinyadapt/convert/ops/ registers a function for one or more TFLite
builtin ops with @lowers("NAME"). The function receives a LowerContext and the IR op and
returns a Lowered op: the engine opcode, tensor references (indices into the blob's
tensor table, made with ctx.ref / ctx.const), the packed parameter struct that the C op
reads (firmware/include/tinyadapt/ops/ta_<op>.h, same field order), and its MAC count.
Validation failures raise ctx.unsupported(op, "why"), which becomes a one-line error.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.ir import Graph, Op, Tensor
from tinyadapt.errors import UnsupportedModelError


@dataclass
class BlobTensor:
    """A tensor of the blob's table (activation or constant)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    kind: int
    data: bytes | None = None     # constants only
    zero_point: int = 0
    scale: float = 0.0
    offset: int = 0               # arena offset (set by the planner) or data offset (set by the writer)
    source: int | None = None     # IR tensor index this came from

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Lowered:
    opcode: int
    inputs: list[int]
    outputs: list[int]
    params: bytes
    macs: int = 0
    scratch_bytes: int = 0
    alias_input: int | None = None    # position of an input whose bytes the output is (RESHAPE)
    inplace_input: int | None = None  # position of an input the output may overwrite if it dies here
    inplace_smaller: bool = False     # ... even when the output is smaller than that input
    inplace_scratch: int = 0          # scratch bytes the op needs only when it runs in place
    inplace_optional: bool = False    # in place costs time: take it only where it lowers the peak
    # A widening pointwise conv in a patch stage: its input region may start this many bytes
    # into its output region (ta_op_conv2d.c runs the chunks in an order that allows it).
    inplace_offset: int | None = None
    source: Op | None = field(default=None, repr=False)


LowerFn = Callable[["LowerContext", Op], Lowered]
_REGISTRY: dict[str, LowerFn] = {}


def lowers(*kinds: str):
    """Register a lowering function for TFLite builtin op names."""
    def deco(fn: LowerFn) -> LowerFn:
        for kind in kinds:
            _REGISTRY[kind] = fn
        return fn
    return deco


def registry() -> dict[str, LowerFn]:
    from tinyadapt.convert import ops  # noqa: F401  (imports every op module)
    return _REGISTRY


def dtype_name(t: Tensor) -> str:
    """The tensor's element type as users know it ("int8", "float32"; a string for types numpy lacks)."""
    return t.dtype if isinstance(t.dtype, str) else np.dtype(t.dtype).name


def pack_i32(*values: int) -> bytes:
    """An op parameter struct: every field is a little-endian int32."""
    return struct.pack(f"<{len(values)}i", *[int(v) for v in values])


class LowerContext:
    def __init__(self, graph: Graph, source: str = "<model>"):
        self.graph = graph
        self.source = source
        self.tensors: list[BlobTensor] = []
        self._map: dict[int, int] = {}

    def tensor(self, index: int) -> Tensor | None:
        return None if index < 0 else self.graph.tensors[index]

    def ref(self, index: int) -> int:
        """Blob tensor index for IR tensor `index` (-1 stays absent)."""
        if index < 0:
            return bf.NO_TENSOR
        if index not in self._map:
            t = self.graph.tensors[index]
            dtype = np.dtype(t.dtype) if not isinstance(t.dtype, str) else None
            if dtype not in bf.DTYPES:
                raise UnsupportedModelError(
                    f"{self.source}: {t.describe()} has type {t.dtype}, which tinyadapt does not support")
            kind = bf.KIND_CONST if t.is_const else bf.KIND_ACTIVATION
            self._map[index] = self._add(BlobTensor(
                name=t.name, dtype=dtype, shape=tuple(t.shape) or (1,), kind=kind,
                data=t.data.astype(dtype.newbyteorder("<")).tobytes() if t.is_const else None,
                zero_point=t.zp0, scale=float(t.scale0), source=index))
        return self._map[index]

    def const(self, array: np.ndarray, name: str) -> int:
        """A new constant tensor (e.g. per-channel multipliers) for the blob."""
        array = np.ascontiguousarray(array)
        return self._add(BlobTensor(name=name, dtype=array.dtype, shape=tuple(array.shape) or (1,),
                                    kind=bf.KIND_CONST, data=array.astype(array.dtype.newbyteorder("<")).tobytes()))

    def activation(self, like: int, name: str) -> int:
        """A new activation tensor with the shape/quant of blob tensor `like` (for ops that split)."""
        t = self.tensors[like]
        return self._add(BlobTensor(name=name, dtype=t.dtype, shape=t.shape, kind=bf.KIND_ACTIVATION,
                                    zero_point=t.zero_point, scale=t.scale))

    def _add(self, t: BlobTensor) -> int:
        self.tensors.append(t)
        return len(self.tensors) - 1

    # -- checks shared by op modules ---------------------------------------------------------
    def unsupported(self, op: Op, why: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"{self.source}: {op.describe()}: {why}")

    def require(self, op: Op, cond: bool, why: str) -> None:
        if not cond:
            raise self.unsupported(op, why)

    def require_dtype(self, op: Op, index: int, *dtypes) -> Tensor:
        t = self.tensor(index)
        if t is None:
            raise self.unsupported(op, "a required input is missing")
        if isinstance(t.dtype, str) or np.dtype(t.dtype) not in [np.dtype(d) for d in dtypes]:
            names = "/".join(np.dtype(d).name for d in dtypes)
            extra = ""
            if np.dtype(t.dtype) == np.float32 if not isinstance(t.dtype, str) else False:
                extra = " (float models are not supported: convert with full-integer int8 quantization)"
            elif not isinstance(t.dtype, str) and np.dtype(t.dtype) == np.int16:
                extra = " (int16 activations are not supported)"
            raise self.unsupported(op, f"{t.describe()} is {dtype_name(t)}, expected {names}{extra}")
        return t

    def require_quantized(self, op: Op, index: int) -> Tensor:
        t = self.tensor(index)
        if t is None or not t.quantized:
            raise self.unsupported(op, f"{t.describe() if t else 'an input'} has no quantization parameters")
        return t

    def require_int8_quantized(self, op: Op, *indices: int) -> list[Tensor]:
        """The tensors at `indices`, each int8 with quantization parameters. Every dtype is
        checked before any quantization, so a float model is reported as such."""
        tensors = [self.require_dtype(op, i, np.int8) for i in indices]
        for t in tensors:
            self.require_quantized(op, t.index)
        return tensors

    def require_per_tensor(self, op: Op, t: Tensor) -> None:
        """One finite positive scale and a zero point in the tensor's range (int8, or 0..255 for
        uint8): what an op without per-channel multipliers can requantize with."""
        self.require_quantized(op, t.index)
        self.require(op, not t.per_channel,
                     f"{t.describe()} has per-channel quantization ({len(t.scale)} scales); "
                     f"{op.kind} supports one scale per tensor")
        s = float(t.scale0)
        self.require(op, math.isfinite(s) and s > 0, f"{t.describe()} has scale {s}, which must be finite and positive")
        lo, hi, name = (0, 255, "uint8") if dtype_name(t) == "uint8" else (-128, 127, "int8")
        self.require(op, lo <= t.zp0 <= hi, f"{t.describe()} has zero point {t.zp0}, outside {name}")

    def require_same_shape(self, op: Op, x: Tensor, y: Tensor) -> None:
        self.require(op, tuple(y.shape) == tuple(x.shape),
                     f"output shape {list(y.shape)} differs from input shape {list(x.shape)}")

    def require_const(self, op: Op, index: int, what: str) -> Tensor:
        t = self.tensor(index)
        if t is None or not t.is_const:
            raise self.unsupported(op, f"{what} must be a constant tensor")
        return t
