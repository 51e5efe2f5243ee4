"""A training session: samples streamed to a target, loss and accuracy tracked, evaluated
before and after. The target is pluggable, like `run`'s: the host target runs the C trainer
in-process; a device target (train --target qemu) drives the same code over the serial link
through the TRAIN_STEP / EVAL commands (provided by tinyadapt.train.device_target)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from tinyadapt.errors import InputError, TinyAdaptError
from tinyadapt.train.graph import TrainPlan

TARGETS = ["host", "qemu"]


class HostTarget:
    """The C trainer in-process (ta_train.c through ctypes)."""

    name = "host"
    peak_sram_bytes = None        # measured only on a device
    instructions_per_step = None

    def __init__(self, plan: TrainPlan, **_):
        from tinyadapt.engine.host import HostTrainer

        self.trainer = HostTrainer(plan.blob)

    def step(self, x, label: int, lr: float, loss: str = "cross_entropy") -> tuple[float, int]:
        value, pred, _ = self.trainer.step(x, label, lr, loss)
        return value, pred

    def eval(self, x, label: int = -1) -> tuple[float, int]:
        return self.trainer.eval(x, label)

    def params(self) -> bytes:
        return self.trainer.params()

    def close(self) -> None:
        pass


def open_target(target: str, plan: TrainPlan, **options):
    if target == "host":
        return HostTarget(plan)
    if target in ("qemu", "device"):
        try:
            from tinyadapt.train.device_target import DeviceTarget
        except ModuleNotFoundError as exc:
            if exc.name != "tinyadapt.train.device_target":
                raise
            raise TinyAdaptError(f"training on --target {target} needs the device training commands, "
                                 "which this build does not have") from None
        return DeviceTarget(plan, target=target, **options)
    raise TinyAdaptError(f"unknown target '{target}' (targets: {', '.join(TARGETS)})")


def load_samples(plan: TrainPlan, x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Stack of model-ready inputs (float data is quantized with the input's scale/zero point)
    and integer labels, or a one-line InputError."""
    t = plan.converted.tensors[plan.converted.inputs[0]]
    shape = tuple(t.shape)
    if x.ndim == len(shape) and tuple(x.shape) == shape:
        x = x[None]
    if tuple(x.shape[1:]) != shape and x.ndim == len(shape) and tuple(x.shape[1:]) == shape[1:]:
        x = x[:, None]  # [N, H, W, C] for a [1, H, W, C] input
    if tuple(x.shape[1:]) != shape:
        raise InputError(f"{what}: shape {list(x.shape)}, the model takes [N, {', '.join(map(str, shape))}]")
    if np.issubdtype(x.dtype, np.floating) and t.dtype == np.int8:
        q = np.asarray(x, np.float64) / t.scale
        x = np.clip(np.sign(q) * np.floor(np.abs(q) + 0.5) + t.zero_point, -128, 127).astype(np.int8)
    if x.dtype != t.dtype:
        raise InputError(f"{what}: dtype {x.dtype}, the model input takes {np.dtype(t.dtype).name}")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{what}: labels must be {len(x)} integers (one per sample), got {y.dtype}{list(y.shape)}")
    classes = int(np.prod(plan.tensors[plan.logits].shape))
    if len(y) and (y.min() < 0 or y.max() >= classes):
        raise InputError(f"{what}: labels must be in 0..{classes - 1}, got {int(y.min())}..{int(y.max())}")
    return x, y.astype(np.int64)


@dataclass
class TrainResult:
    accuracy_before: float
    accuracy_after: float
    steps: int
    epochs: list[dict] = field(default_factory=list)   # per epoch: loss, train_accuracy, eval_accuracy
    losses: list[float] = field(default_factory=list)  # per step
    seconds: float = 0.0


def accuracy(target, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean([target.eval(x[i])[1] == int(y[i]) for i in range(len(y))])) if len(y) else 0.0


def lr_at(step: int, total: int, lr: float, schedule: str = "cosine") -> float:
    """The learning rate of step `step` of `total`: constant, or cosine-decayed to 0."""
    if schedule == "constant" or total <= 1:
        return lr
    return float(np.float32(lr * 0.5 * (1.0 + np.cos(np.pi * step / total))))


def train(target, x, y, x_eval, y_eval, epochs: int, lr: float, seed: int = 0, on_step=None,
          loss: str = "cross_entropy", schedule: str = "cosine") -> TrainResult:
    """SGD, batch size 1, the samples shuffled each epoch (seeded), the learning rate decayed
    by `schedule` over the run (the device gets each step's rate with the sample)."""
    t0 = time.monotonic()
    res = TrainResult(accuracy(target, x_eval, y_eval), 0.0, 0)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        losses, hits = [], 0
        for k, i in enumerate(rng.permutation(len(y))):
            value, pred = target.step(x[i], int(y[i]), lr_at(res.steps, epochs * len(y), lr, schedule), loss)
            if not np.isfinite(value):
                raise TinyAdaptError(f"training diverged at epoch {epoch + 1}, step {k + 1} (loss {value}): "
                                     "lower the learning rate")
            losses.append(value)
            hits += pred == int(y[i])
            res.steps += 1
            if on_step is not None:
                on_step(epoch, k, value, hits / (k + 1))
        res.losses += losses
        res.epochs.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "train_accuracy": hits / len(y),
                           "eval_accuracy": accuracy(target, x_eval, y_eval)})
    res.accuracy_after = res.epochs[-1]["eval_accuracy"] if res.epochs else res.accuracy_before
    res.seconds = time.monotonic() - t0
    return res
