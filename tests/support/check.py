"""Bit-exactness check shared by the op and model tests.

run_all() converts a model with tinyadapt, runs it on our C engine (host target),
TFLite Micro and tflite-runtime (BUILTIN_REF), and returns the three outputs; the
assert_* helpers print every mismatching index, not just pass/fail.
"""

from __future__ import annotations

import numpy as np

from tinyadapt.convert import convert
from tinyadapt.engine.host import HostEngine
from tests.support.reference import run_tflite, run_tflm


def run_ours(model_bytes: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    m = convert(model_bytes)
    return HostEngine(m.blob).invoke(inputs)


def describe_mismatch(ours: np.ndarray, ref: np.ndarray, label: str, limit: int = 10) -> str:
    if ours.shape != ref.shape and ours.size == ref.size:
        ours = ours.reshape(ref.shape)
    if ours.shape != ref.shape:
        return f"{label}: shape {ours.shape} != reference {ref.shape}"
    diff = np.argwhere(ours != ref)
    lines = [f"{label}: {len(diff)} of {ref.size} elements differ"]
    for idx in diff[:limit]:
        idx = tuple(idx)
        lines.append(f"  at {idx}: ours {ours[idx]} reference {ref[idx]}")
    return "\n".join(lines)


def assert_bit_exact(model_bytes: bytes, inputs: list[np.ndarray], context: str = "",
                     check_tflite: bool = True) -> list[np.ndarray]:
    """Our engine must equal TFLite Micro (and tflite-runtime BUILTIN_REF) exactly."""
    ours = run_ours(model_bytes, inputs)
    refs = [("tflite-micro", run_tflm(model_bytes, inputs))]
    if check_tflite:
        refs.append(("tflite-runtime", run_tflite(model_bytes, inputs)))
    for ref_name, ref in refs:
        assert len(ours) == len(ref), f"{context}: {len(ours)} outputs vs {ref_name} {len(ref)}"
        for k, (o, r) in enumerate(zip(ours, ref)):
            r = np.asarray(r)
            o = o.reshape(r.shape) if o.size == r.size else o
            if o.dtype != r.dtype or not np.array_equal(o, r):
                raise AssertionError(f"{context} [{ref_name} output {k}, dtype {o.dtype} vs {r.dtype}]\n"
                                     + describe_mismatch(o, r, "values"))
    return ours
