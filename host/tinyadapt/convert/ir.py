"""The model as the converter sees it: tensors and ops, independent of the .tflite encoding."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: np.ndarray | None = None        # float32, one per channel or a single value
    zero_point: np.ndarray | None = None   # int64, same length as scale
    quantized_dimension: int = 0
    data: np.ndarray | None = None         # constant contents, already shaped

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def quantized(self) -> bool:
        return self.scale is not None and len(self.scale) > 0

    @property
    def per_channel(self) -> bool:
        return self.quantized and len(self.scale) > 1

    @property
    def scale0(self) -> np.float32:
        """The per-tensor scale (TFLite's params.scale: the first channel's)."""
        return np.float32(self.scale[0]) if self.quantized else np.float32(0.0)

    @property
    def zp0(self) -> int:
        return int(self.zero_point[0]) if self.quantized else 0

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def describe(self) -> str:
        dtype = self.dtype if isinstance(self.dtype, str) else np.dtype(self.dtype).name  # str: unsupported type
        return f"tensor {self.index} '{self.name}' ({dtype}{list(self.shape)})"


@dataclass
class Op:
    index: int
    kind: str                 # TFLite builtin name, e.g. "CONV_2D"
    inputs: list[int]         # tensor indices, -1 for an absent optional input
    outputs: list[int]
    options: dict = field(default_factory=dict)

    def describe(self) -> str:
        return f"op {self.index} ({self.kind})"


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    name: str = ""

    def consumers(self, tensor_index: int) -> list[Op]:
        return [op for op in self.ops if tensor_index in op.inputs]
