"""The parameter RAM image of a training blob, laid out exactly as ta_train.c lays it out.

For each backward op that updates parameters, in op order:
  weights updated: int8 copy of the whole filter (padded to 4 bytes), then float32 masters of
                   the kept output channels' rows (int-domain units)
  bias updated:    int32 copy of the bias, then float32 masters of every channel
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.blob import BlobInfo

PARAM_OPS = {bf.BACKWARD_OPCODES[k] for k in ("CONV_2D_BACKWARD", "DEPTHWISE_CONV_2D_BACKWARD",
                                              "FULLY_CONNECTED_BACKWARD")}


@dataclass
class Slot:
    op: int
    kind: str
    filter: int
    bias: int
    channels: int
    row: int
    kept: np.ndarray | None
    weight_at: int | None
    master_at: int | None
    bias_at: int | None
    bias_master_at: int | None
    filter_shape: tuple

    def weights(self, image: bytes) -> np.ndarray:
        n = int(np.prod(self.filter_shape))
        return np.frombuffer(image, np.int8, n, self.weight_at).reshape(self.filter_shape)

    def weight_masters(self, image: bytes) -> np.ndarray:
        return np.frombuffer(image, np.float32, len(self.kept) * self.row, self.master_at).reshape(-1, self.row)

    def biases(self, image: bytes) -> np.ndarray:
        return np.frombuffer(image, np.int32, self.channels, self.bias_at)

    def bias_masters(self, image: bytes) -> np.ndarray:
        return np.frombuffer(image, np.float32, self.channels, self.bias_master_at)


def _const(info: BlobInfo, blob: bytes, index: int, dtype) -> np.ndarray:
    t = info.tensors[index]
    d_off = struct.unpack_from("<I", blob, 44)[0]
    return np.frombuffer(blob, dtype, t.size // np.dtype(dtype).itemsize, d_off + t.offset).reshape(t.shape)


def param_slots(info: BlobInfo, blob: bytes) -> tuple[list[Slot], int]:
    """The slots and the image size."""
    slots, at = [], 0
    for i, op in enumerate(info.ops[info.n_forward_ops or len(info.ops):], start=info.n_forward_ops or 0):
        if op.opcode not in PARAM_OPS:
            continue
        flags = struct.unpack_from("<i", op.params, len(op.params) - 8)[0]
        if not flags & 3:
            continue
        w = info.tensors[op.inputs[1]]
        channels = int(np.prod(info.tensors[op.inputs[5]].shape))
        row = int(np.prod(w.shape)) // channels
        kept = _const(info, blob, op.inputs[6], np.int32).copy() if flags & 1 else None
        s = Slot(i, op.name.removesuffix("_BACKWARD"), op.inputs[1], op.inputs[2], channels, row, kept,
                 None, None, None, None, tuple(w.shape))
        if flags & 1:
            s.weight_at = at
            at += (w.size + 3) // 4 * 4
            s.master_at = at
            at += len(kept) * row * 4
        if flags & 2:
            s.bias_at = at
            at += channels * 4
            s.bias_master_at = at
            at += channels * 4
        slots.append(s)
    return slots, at


def channel_index(slot: Slot, c: int) -> tuple:
    """Index of output channel c's weights in the filter array."""
    return (0, slice(None), slice(None), c) if slot.kind == "DEPTHWISE_CONV_2D" else (c,)
