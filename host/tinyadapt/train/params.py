"""The parameter RAM of a training blob and its image, laid out exactly as ta_train.c lays them out.

Parameter RAM = [image][copies]. For each backward op that updates parameters, in op order:
  image:  weights updated: float32 masters of the kept output channels' rows (int-domain
                           units, [n_kept, row], channel after channel)
          bias updated:    float32 masters of every channel
  copies: weights updated: int8 weights of the kept channels alone, the filter's layout
                           restricted to them (depthwise: channels innermost), padded to 4 bytes
          bias updated:    int32 copy of the bias
The image is what ta_train_params returns, SAVE persists and PARAMS_READ reads; the copies
are what the masters round to (round half away from zero, clamped), so they are derived here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.blob import BlobInfo

PARAM_OPS = {bf.BACKWARD_OPCODES[k] for k in ("CONV_2D_BACKWARD", "DEPTHWISE_CONV_2D_BACKWARD",
                                              "FULLY_CONNECTED_BACKWARD")}
BIAS_LIMIT = 2147483520  # the largest float32 below 2^31: the device clamps bias masters to it


def round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def round_weights(masters: np.ndarray) -> np.ndarray:
    v = np.clip(masters.astype(np.float64), -127, 127)
    return round_half_away(v).astype(np.int8)


def round_biases(masters: np.ndarray) -> np.ndarray:
    v = np.clip(masters.astype(np.float64), -BIAS_LIMIT, BIAS_LIMIT)
    return round_half_away(v).astype(np.int32)


@dataclass
class Slot:
    op: int
    kind: str
    filter: int
    bias: int
    channels: int
    row: int
    kept: np.ndarray | None
    master_at: int | None           # offsets in the image
    bias_master_at: int | None
    filter_shape: tuple
    base_filter: np.ndarray         # the blob's values
    base_bias: np.ndarray | None

    def weight_masters(self, image: bytes) -> np.ndarray:
        return np.frombuffer(image, np.float32, len(self.kept) * self.row, self.master_at).reshape(-1, self.row)

    def bias_masters(self, image: bytes) -> np.ndarray:
        return np.frombuffer(image, np.float32, self.channels, self.bias_master_at)

    def weights(self, image: bytes) -> np.ndarray:
        """The whole filter as the engine uses it: the blob's, the kept channels rounded from the image."""
        w = self.base_filter.copy()
        if self.master_at is not None:
            q = round_weights(self.weight_masters(image))
            for k, c in enumerate(self.kept):
                w[channel_index(self, int(c))] = q[k].reshape(w[channel_index(self, int(c))].shape)
        return w

    def biases(self, image: bytes) -> np.ndarray:
        return round_biases(self.bias_masters(image)) if self.bias_master_at is not None else self.base_bias


def _const(info: BlobInfo, blob: bytes, index: int, dtype) -> np.ndarray:
    t = info.tensors[index]
    d_off = struct.unpack_from("<I", blob, 44)[0]
    return np.frombuffer(blob, dtype, t.size // np.dtype(dtype).itemsize, d_off + t.offset).reshape(t.shape)


def param_slots(info: BlobInfo, blob: bytes) -> tuple[list[Slot], int, int]:
    """The slots, the image size (bytes) and the parameter RAM size."""
    slots, image, copies = [], 0, 0
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
        base_bias = _const(info, blob, op.inputs[2], np.int32).copy() if op.inputs[2] >= 0 else None
        s = Slot(i, op.name.removesuffix("_BACKWARD"), op.inputs[1], op.inputs[2], channels, row, kept, None, None,
                 tuple(w.shape), _const(info, blob, op.inputs[1], np.int8).copy(), base_bias)
        if flags & 1:
            s.master_at = image
            image += len(kept) * row * 4
            copies += (len(kept) * row + 3) // 4 * 4
        if flags & 2:
            s.bias_master_at = image
            image += channels * 4
            copies += channels * 4
        slots.append(s)
    return slots, image, image + copies


def channel_index(slot: Slot, c: int) -> tuple:
    """Index of output channel c's weights in the filter array."""
    return (0, slice(None), slice(None), c) if slot.kind == "DEPTHWISE_CONV_2D" else (c,)
