"""A prepared TTA model on a device: the backbone blob with the exit heads in a trailer
(firmware/app/ta_tta_commands.c), served by ADAPT_SELECT / ADAPT_INFER."""

from __future__ import annotations

import struct

import numpy as np

from tinyadapt.tta.model import PreparedModel
from tinyadapt.tta.runner import ExitResult

MAGIC = 0x31415454  # "TTA1"


def _align16(n: int) -> int:
    return (n + 15) & ~15


def pack(pm: PreparedModel) -> bytes:
    """Backbone blob, then (16-aligned) the trailer: header, exit table, head blobs."""
    blob = bytearray(pm.backbone_model.blob)
    blob += bytes(_align16(len(blob)) - len(blob))
    n = len(pm.exits)
    table = bytearray()
    heads = bytearray()
    off = _align16(16 + 24 * n)
    for e, hm in zip(pm.exits, pm.head_models):
        hb = hm.blob
        table += struct.pack("<HHfIIII", e["cut_op"], e["cut_tensor"], min(e["threshold"], 3.0e38),
                             e["macs_backbone"], e["macs_head"], off + len(heads), len(hb))
        heads += hb + bytes(_align16(len(hb)) - len(hb))
    trailer = struct.pack("<IIII", MAGIC, n, pm.macs_full, 0) + table
    trailer += bytes(_align16(len(trailer)) - len(trailer))
    return bytes(blob + trailer + heads)


class DeviceRunner:
    """The early-exit runner on a device session (session/device.py's open_device)."""

    def __init__(self, pm: PreparedModel, opts=None):
        from tinyadapt.session.device import DeviceOptions, open_device

        self.pm = pm
        self.session = open_device(pack(pm), opts or DeviceOptions())
        self.n_exits, self.arena_bytes = self.session.client.adapt_select()

    def infer(self, x: np.ndarray) -> tuple[ExitResult, int]:
        exit_, pred, h, macs, skipped, instructions = self.session.client.adapt_infer(
            np.ascontiguousarray(x, self.pm.input_dtype).tobytes())
        return ExitResult(exit_, pred, h, macs, skipped), instructions

    def metrics(self):
        return self.session.client.metrics()

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
