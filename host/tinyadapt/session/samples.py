"""Matching user arrays to a model's inputs: one sample, or a stack along a new first axis."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyadapt.errors import InputError


@dataclass
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def as_samples(x: np.ndarray, spec: TensorSpec, label: str) -> tuple[np.ndarray, bool]:
    """Return (samples [N, *shape], stacked?) or raise a one-line InputError."""
    want = tuple(spec.shape)
    if np.dtype(spec.dtype) == np.float32 and np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if x.dtype != np.dtype(spec.dtype):
        raise InputError(f"{label} has dtype {x.dtype}, model input '{spec.name}' takes {np.dtype(spec.dtype).name}")
    if tuple(x.shape) == want:
        return x.reshape((1,) + want), False
    if x.ndim == len(want) + 1 and tuple(x.shape[1:]) == want:
        return x, True
    raise InputError(f"{label} has shape {list(x.shape)}, model input '{spec.name}' takes {list(want)} "
                     f"(one sample) or [N, {', '.join(map(str, want))}] (a stack of N)")
