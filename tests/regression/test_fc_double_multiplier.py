"""Regression: per-tensor FULLY_CONNECTED multipliers are computed in double, like TFLite
Micro (tflite-runtime 2.14 uses a float32 scale product). Found by tests/test_patch.py
seed 79, whose final FC came out one LSB off TFLM with the float32 product."""

import numpy as np

from tests.support.check import run_ours
from tests.support.reference import run_tflm
from tests.test_patch import random_model


def test_seed_79_final_fc_matches_tflm():
    model, x_shape = random_model(79)
    x = np.random.default_rng(1079).integers(-128, 128, size=x_shape, dtype=np.int8)
    ours = run_ours(model, [x])[0]
    assert np.array_equal(ours, run_tflm(model, [x])[0].reshape(ours.shape))
