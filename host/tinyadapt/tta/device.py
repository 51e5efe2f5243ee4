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


def pack(pm: PreparedModel, cfg=None) -> bytes:
    """Backbone blob, then (16-aligned) the trailer: header, exit table, head blobs, each
    head's normalisation section and the adaptation loop's section (input statistics, health
    check settings; firmware/app/ta_tta_commands.c has the layout)."""
    from tinyadapt.tta.runner import norm_arrays, safety_arrays
    from tinyadapt.tta.session import AdaptConfig

    cfg = cfg or AdaptConfig()
    momentum, dead_zone = cfg.momentum, cfg.dead_zone

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
    u, f = safety_arrays(cfg)
    src = [np.ascontiguousarray(a, np.float32) for a in (pm.input_mean, pm.input_var)]
    adapt_at = put(struct.pack("<HH4I", len(src[0]), pm.n_classes, *u[:4].tolist()) +
                   struct.pack("<7fIf2I", momentum, dead_zone, *f[:5].tolist(), int(u[4]), float(f[5]), 0, 0) +
                   src[0].tobytes() + src[1].tobytes())
    head = struct.pack("<IIII", MAGIC, n, pm.macs_full, adapt_at) + table
    head += bytes(base - len(head))
    return bytes(blob + head + body)


MODE_BITS = {"norm": 1, "input": 2}


def select_mode(parts: set[str]) -> int:
    """ADAPT_SELECT's mode byte for adaptation parts (bit 0 norm, bit 1 input)."""
    if not parts <= set(MODE_BITS):
        raise ValueError(f"the device adapts with {' / '.join(MODE_BITS)} only, not {'+'.join(sorted(parts))}")
    return sum(MODE_BITS[p] for p in parts)


class DeviceRunner:
    """The early-exit runner on a device session (session/device.py's open_device); with
    `adapt` (a mode such as "input+norm", or True for "norm") the device runs the adaptation
    loop with its health check, configured by `cfg` (AdaptConfig) like the host session."""

    def __init__(self, pm: PreparedModel, opts=None, adapt: bool | str = False, cfg=None):
        from tinyadapt.session.device import DeviceOptions, open_device
        from tinyadapt.tta.session import parse_mode

        self.pm = pm
        mode = select_mode(parse_mode("norm" if adapt is True else (adapt or "none")))
        self.session = open_device(pack(pm, cfg), opts or DeviceOptions())
        try:
            self.n_exits, self.arena_bytes, self.restored = self.session.client.adapt_select(mode)
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

    def status(self):
        """(rollbacks, updates, paused, samples, arena_used, state_bytes, mode) from ADAPT_STATUS."""
        return self.session.client.adapt_status()

    def metrics(self):
        return self.session.client.metrics()

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
