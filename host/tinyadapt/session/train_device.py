"""Training targets: the same training session on the host engine or on a device.

    trainer = open_trainer(plan.blob, "host")                         # tinyadapt.engine.host.HostTrainer
    trainer = open_trainer(plan.blob, "qemu", DeviceOptions(board="stm32f746g-disco"))
    loss, pred, updated = trainer.step(x, label, lr)                  # x: one sample, batch dim included
    loss, pred = trainer.eval(x, label)
    image = trainer.params()                                          # bit-identical across targets
    trainer.close()

DeviceTrainer speaks TRAIN_STEP / EVAL / SAVE / RESET_TO_BASE / TRAIN_INFO / PARAMS_READ
(docs/PROTOCOL.md, "Training") to a device running the same C trainer; it also reports what
only a device can measure: the instructions of each step (QEMU -icount) and the training
step's SRAM high-water (`peak_sram_bytes`: painted arena high-water + parameter RAM).
"""

from __future__ import annotations

import numpy as np

from tinyadapt.device.client import SaveResult, TrainInfo
from tinyadapt.errors import DeviceError
from tinyadapt.session.device import DeviceOptions, DeviceSession, open_device


class DeviceTrainer:
    """A trainable model selected on a device (QEMU or a serial board)."""

    target = "device"

    def __init__(self, session: DeviceSession):
        self.session = session
        self.client = session.client
        info = self.client.train_info()
        if not info.ready:
            session.close()
            raise DeviceError("the device did not bind a trainer to the model (no TRAIN section, or its "
                              f"parameter RAM does not fit: status {info.restore_status})")
        self.info: TrainInfo = info
        self.param_ram_size = info.param_bytes
        self.param_image_size = info.image_bytes
        self.step_instructions: list[int] = []
        self.restored = info.restored

    # -- the HostTrainer interface -------------------------------------------------------------
    def step(self, x: np.ndarray, label: int, lr: float, loss: str = "cross_entropy") -> tuple[float, int, int]:
        r = self.client.train_step(int(label), float(lr), np.ascontiguousarray(x).tobytes(), loss=loss)
        self.step_instructions.append(r.instructions)
        return float(r.loss), int(r.prediction), int(r.updated_params)

    def eval(self, x: np.ndarray, label: int = -1) -> tuple[float, int]:
        r = self.client.eval(int(label), np.ascontiguousarray(x).tobytes())
        return float(r.loss), int(r.prediction)

    def params(self) -> bytes:
        return self.client.params_read(self.param_image_size)

    def reset(self, persist: bool = False) -> None:
        self.client.reset_to_base(persist=persist)

    # -- device only ---------------------------------------------------------------------------
    def save(self) -> SaveResult:
        return self.client.save()

    def train_info(self) -> TrainInfo:
        self.info = self.client.train_info()
        return self.info

    @property
    def peak_sram_bytes(self) -> int:
        """Device-measured: the training-step arena's high-water since SELECT plus parameter RAM."""
        return self.train_info().peak_sram_bytes

    @property
    def instructions_per_step(self) -> int | None:
        """Median count of the steps so far (they differ only by data-dependent branches)."""
        if not self.step_instructions:
            return None
        return int(np.median(self.step_instructions))

    @property
    def counter_unit(self) -> str:
        return self.session.counter_unit

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_trainer(blob: bytes, target: str = "host", opts: DeviceOptions | None = None):
    """A trainer for a blob with a TRAIN section: "host" (the C trainer through ctypes), or
    "qemu" / "device" (the same code on an emulated or a real board, over the protocol; on
    QEMU with the NVM file opts.nvm, so SAVE persists)."""
    if target == "host":
        from tinyadapt.engine.host import HostTrainer

        return HostTrainer(blob)
    if target not in ("qemu", "device"):
        raise DeviceError(f"unknown training target '{target}' (host, qemu, device)")
    return DeviceTrainer(open_device(blob, opts or DeviceOptions(), target=target))


__all__ = ["DeviceTrainer", "open_trainer"]
