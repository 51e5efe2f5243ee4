"""Small models the device, protocol, build and fuzz tests run, generated here so the tests
need only the repo.

`tiny_fc(seed)` has hello_world's shape (one int8 in, FULLY_CONNECTED 1 -> 16 -> 16 -> 1, one
int8 out) with weights drawn from `seed`: two seeds give two models that differ only in their
weights, which is what the model-identity tests need."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support.tflite_builder import ModelBuilder


def tiny_fc(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder(f"tinyadapt tiny_fc seed {seed}")
    x = b.input((1, 1), np.int8, scale=0.025, zero_point=-3)
    scale_in, prev, widths = 0.025, x, [(16, "RELU"), (16, "RELU"), (1, "NONE")]
    for k, (width, act) in enumerate(widths):
        in_depth = b.shape(prev)[1]
        w_scale = float(rng.uniform(0.004, 0.02))
        w = b.const(rng.integers(-127, 128, size=(width, in_depth), dtype=np.int8), scale=w_scale)
        bias = b.const(rng.integers(-2000, 2000, size=width).astype(np.int32), scale=scale_in * w_scale)
        out_scale = float(rng.uniform(0.02, 0.08))
        y = b.tensor((1, width), np.int8, scale=out_scale, zero_point=-128 if act == "RELU" else 4)
        b.op("FULLY_CONNECTED", [prev, w, bias], [y], activation=act)
        prev, scale_in = y, out_scale
    b.output(prev)
    return b.build()


def write_tiny_fc(directory: Path, seed: int = 0) -> Path:
    path = Path(directory) / f"tiny_fc_{seed}.tflite"
    path.write_bytes(tiny_fc(seed))
    return path
