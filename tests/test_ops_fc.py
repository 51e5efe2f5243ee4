"""FULLY_CONNECTED: randomized bit-exactness against TFLite Micro (and tflite-runtime
where the two agree)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.check import assert_bit_exact
from tests.support.tflite_builder import ModelBuilder

N_CASES = 300


def fc_model(rng, batches, in_depth, out_depth, per_channel, bias, activation, keep_dims, scales=None):
    b = ModelBuilder()
    in_shape = (batches, in_depth) if not keep_dims else (1, batches, in_depth)
    xs, ws0, ys = scales or (float(10 ** rng.uniform(-3, 0)), float(10 ** rng.uniform(-3.5, -1)),
                             float(10 ** rng.uniform(-2.5, 0.5)))
    x = b.input(in_shape, np.int8, scale=xs, zero_point=int(rng.integers(-128, 128)))
    w_scale = (ws0 * rng.uniform(0.25, 4, size=out_depth)).astype(np.float32) if per_channel else ws0
    w = b.const(rng.integers(-127, 128, size=(out_depth, in_depth), dtype=np.int8), scale=w_scale,
                zero_point=np.zeros(out_depth, np.int64) if per_channel else 0)
    inputs = [x, w]
    if bias:
        bs = (xs * np.asarray(w_scale, np.float32)).astype(np.float32)
        inputs.append(b.const(rng.integers(-5000, 5000, size=out_depth).astype(np.int32),
                              scale=bs if per_channel else float(bs), zero_point=np.zeros(out_depth, np.int64)
                              if per_channel else 0))
    out_shape = (batches, out_depth) if not keep_dims else (1, batches, out_depth)
    y = b.tensor(out_shape, np.int8, scale=ys, zero_point=-128 if activation != "NONE" else int(rng.integers(-20, 20)))
    b.op("FULLY_CONNECTED", inputs, [y], activation=activation, keep_num_dims=keep_dims)
    b.output(y)
    return b.build(), in_shape


@pytest.mark.parametrize("seed", range(N_CASES))
def test_fully_connected_random(seed):
    rng = np.random.default_rng(seed)
    per_channel = bool(rng.random() < 0.5)
    keep_dims = bool(rng.random() < 0.3)
    model, in_shape = fc_model(rng, int(rng.integers(1, 5)), int(rng.integers(1, 300)), int(rng.integers(1, 40)),
                               per_channel, bool(rng.random() < 0.8), str(rng.choice(["NONE", "RELU", "RELU6"])),
                               keep_dims)
    x = rng.integers(-128, 128, size=in_shape, dtype=np.int8)
    # tflite-runtime 2.14 multiplies per-tensor scales in float32, TFLM in double (they can
    # differ by one LSB), and it mishandles per-channel weights with keep_num_dims: TFLM is
    # the reference.
    assert_bit_exact(model, [x], context=f"seed {seed}", check_tflite=per_channel and not keep_dims)
