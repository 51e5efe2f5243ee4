"""The source data sets the TTA streams and exit heads are made from (they ship in data/).

Both come in the float input domain of their reference model (models/README.md): digits as
pixel / 16 in [0, 1], shape [N, 8, 8, 1]; BasicMotions standardised per channel with the
training split's statistics, shape [N, 100, 6]. `raw` variants keep sensor units so sensor
shifts (gain, offset) can be applied where they happen, before the standardisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
REPO_MODELS = Path(__file__).resolve().parents[3] / "models"

NAMES = ("digits", "basicmotions")


@dataclass(frozen=True)
class Split:
    x: np.ndarray      # float32, model input domain
    y: np.ndarray      # int64 labels


@dataclass(frozen=True)
class DataSet:
    name: str
    train: Split
    test: Split
    n_classes: int
    model: Path        # the reference model trained on `train`
    mean: np.ndarray | None = None   # BasicMotions: per-channel standardisation (raw units)
    std: np.ndarray | None = None

    def to_raw(self, x: np.ndarray) -> np.ndarray:
        return x if self.mean is None else x * self.std + self.mean

    def from_raw(self, x: np.ndarray) -> np.ndarray:
        return x if self.mean is None else ((x - self.mean) / self.std).astype(np.float32)


@lru_cache(maxsize=None)
def load(name: str) -> DataSet:
    if name == "digits":
        d = np.load(DATA_DIR / "digits.npz")
        x = (d["images"].astype(np.float32) / 16.0)[..., None]
        y, test = d["labels"].astype(np.int64), d["test"]
        return DataSet("digits", Split(x[~test], y[~test]), Split(x[test], y[test]), 10,
                       REPO_MODELS / "digits" / "digits_cnn.tflite")
    if name == "basicmotions":
        d = np.load(DATA_DIR / "basicmotions.npz")
        # The statistics models/basicmotions/train.py standardised with: over every training
        # series and time step, per channel.
        mean = d["train"].reshape(-1, 6).mean(0).astype(np.float32)
        std = d["train"].reshape(-1, 6).std(0).astype(np.float32)
        norm = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
        return DataSet("basicmotions", Split(norm(d["train"]), d["train_labels"].astype(np.int64)),
                       Split(norm(d["test"]), d["test_labels"].astype(np.int64)), 4,
                       REPO_MODELS / "basicmotions" / "basicmotions_imu.tflite", mean, std)
    raise ValueError(f"unknown data set {name!r} (known: {', '.join(NAMES)})")
