"""Matching user arrays to a model's inputs: one sample, or a stack along a new first axis.

`run`, `stream` and `metrics` accept the same shapes, for a model input of shape S:
  S                      one sample
  [N, *S]                a stack of N samples
and, when S has a batch axis of 1 (S[0] == 1), the shapes data sets are kept in:
  S[1:]                  one sample ([28, 28, 1] for a [1, 28, 28, 1] model)
  [N, *S[1:]]            a stack of N samples ([N, 28, 28, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyadapt.errors import InputError


@dataclass
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def stack_shape(x_shape: tuple[int, ...], want: tuple[int, ...]) -> tuple[tuple[int, ...], bool] | None:
    """(shape of x as a stack [N, *want], stacked?) or None when x is none of the accepted shapes."""
    x_shape, want = tuple(x_shape), tuple(want)
    if x_shape == want:
        return (1,) + want, False
    if len(x_shape) == len(want) + 1 and x_shape[1:] == want:
        return x_shape, True
    if want and want[0] == 1:
        if x_shape == want[1:]:
            return (1,) + want, False
        if len(x_shape) == len(want) and x_shape[1:] == want[1:]:
            return (x_shape[0],) + want, True
    return None


def accepted_shapes(want: tuple[int, ...]) -> str:
    """The shapes stack_shape() accepts, in words, for error messages."""
    if want and want[0] == 1:
        return (f"{list(want)} or {list(want[1:])} (one sample), or [N, {', '.join(map(str, want))}] or "
                f"[N, {', '.join(map(str, want[1:]))}] (a stack of N)")
    return f"{list(want)} (one sample) or [N, {', '.join(map(str, want))}] (a stack of N)"


def as_samples(x: np.ndarray, spec: TensorSpec, label: str) -> tuple[np.ndarray, bool]:
    """Return (samples [N, *shape], stacked?) or raise a one-line InputError."""
    want = tuple(spec.shape)
    if np.dtype(spec.dtype) == np.float32 and np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if x.dtype != np.dtype(spec.dtype):
        raise InputError(f"{label} has dtype {x.dtype}, model input '{spec.name}' takes {np.dtype(spec.dtype).name}")
    shape = stack_shape(x.shape, want)
    if shape is None:
        raise InputError(f"{label} has shape {list(x.shape)}, model input '{spec.name}' takes {accepted_shapes(want)}")
    return x.reshape(shape[0]), shape[1]
