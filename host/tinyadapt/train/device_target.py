"""The device target of a training session (`tinyadapt train --target qemu`): the same C
trainer as the host target, on an emulated (or real) board, driven over the protocol's
TRAIN_STEP / EVAL / PARAMS_READ (tinyadapt.session.train_device.DeviceTrainer).

What only a device gives: `peak_sram_bytes`, the training step's SRAM as the device measured
it (the painted training-step arena's high-water plus the parameter RAM, TRAIN_INFO), and
`instructions_per_step` (QEMU -icount: exact; the median over the session's steps).

A session starts from the model's base parameters even when the board's NVM holds saved ones
(RESET_TO_BASE in RAM), so it trains exactly like the host target, unless `resume=True`: then it
continues from what the board restored at SELECT (the parameters a previous session saved for
this model). `persist=True` SAVEs the adapted parameters to the NVM when the session closes.
"""

from __future__ import annotations

import logging

from tinyadapt.session.device import DeviceOptions, open_device
from tinyadapt.session.train_device import DeviceTrainer
from tinyadapt.train.graph import TrainPlan

log = logging.getLogger(__name__)


class DeviceTarget:
    def __init__(self, plan: TrainPlan, target: str = "qemu", board: str | None = None, port: str | None = None,
                 nvm: str | None = None, persist: bool = False, resume: bool = False, timeout: float | None = None,
                 **_):
        self.name = target
        opts = DeviceOptions(board=board, port=port, nvm=nvm, model_name="train")
        if timeout:
            opts.timeout = timeout
        self.trainer = DeviceTrainer(open_device(plan.blob, opts, target="qemu" if target == "qemu" else "device"))
        self.persist = persist
        self.saved = None
        self.resumed_revision = None
        if self.trainer.restored and resume:
            self.resumed_revision = self.trainer.info.stored_revision
        elif self.trainer.restored:
            log.info("the device restored saved parameters (revision %d): starting from the base instead",
                     self.trainer.info.stored_revision)
            self.trainer.reset()

    def step(self, x, label: int, lr: float, loss: str = "cross_entropy") -> tuple[float, int]:
        value, pred, _ = self.trainer.step(x, label, lr, loss)
        return value, pred

    def eval(self, x, label: int = -1) -> tuple[float, int]:
        return self.trainer.eval(x, label)

    def params(self) -> bytes:
        return self.trainer.params()

    @property
    def peak_sram_bytes(self) -> int | None:
        return self.trainer.peak_sram_bytes if self.trainer.step_instructions else None

    @property
    def instructions_per_step(self) -> int | None:
        if self.trainer.counter_unit != "instructions":
            return None
        return self.trainer.instructions_per_step

    def save(self):
        self.saved = self.trainer.save()
        return self.saved

    def close(self) -> None:
        try:
            if self.persist:
                self.save()
        finally:
            self.trainer.close()


__all__ = ["DeviceTarget"]
