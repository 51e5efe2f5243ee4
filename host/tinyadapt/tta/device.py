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


def pack(pm: PreparedModel, momentum: float = 0.05, dead_zone: float = 0.1) -> bytes:
    """Backbone blob, then (16-aligned) the trailer: header, exit table, head blobs, and each
    head's normalisation section (firmware/app/ta_tta_commands.c has the layout)."""
    from tinyadapt.tta.runner import norm_arrays

    blob = bytearray(pm.backbone_model.blob)
    blob += bytes(_align16(len(blob)) - len(blob))
    n = len(pm.exits)
    body = bytearray()
    base = _align16(16 + 32 * n)

    def put(data: bytes) -> int:
        at = base + len(body)
        body.extend(data + bytes(_align16(len(data)) - len(data)))
        return at

    table = bytearray()
    for k, (e, hm) in enumerate(zip(pm.exits, pm.head_models)):
        head_at = put(hm.blob)
        arrays = norm_arrays(pm, k)
        s, q = pm.slots[k], pm.quant[k]
        norm = struct.pack("<HHHHfiffII", len(arrays[0]), s.z, s.gamma, s.beta, q.z[0], int(q.z[1]), momentum,
                           dead_zone, 0, 0) + b"".join(a.tobytes() for a in arrays)
        norm_at = put(norm)
        table += struct.pack("<HHfIIIIII", e["cut_op"], e["cut_tensor"], min(e["threshold"], 3.0e38),
                             e["macs_backbone"], e["macs_head"], head_at, len(hm.blob), norm_at, 0)
    head = struct.pack("<IIII", MAGIC, n, pm.macs_full, 0) + table
    head += bytes(base - len(head))
    return bytes(blob + head + body)


class DeviceRunner:
    """The early-exit runner on a device session (session/device.py's open_device)."""

    def __init__(self, pm: PreparedModel, opts=None, adapt: bool = False, momentum: float = 0.05,
                 dead_zone: float = 0.1):
        from tinyadapt.session.device import DeviceOptions, open_device

        self.pm = pm
        self.session = open_device(pack(pm, momentum, dead_zone), opts or DeviceOptions())
        try:
            self.n_exits, self.arena_bytes, self.restored = self.session.client.adapt_select(1 if adapt else 0)
        except BaseException:
            self.session.close()
            raise

    def reset(self, persist: bool = False) -> int:
        return self.session.client.adapt_reset(persist)

    def save(self) -> tuple[int, int]:
        return self.session.client.adapt_save()

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
