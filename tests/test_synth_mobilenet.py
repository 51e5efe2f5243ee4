"""models/mobilenetv2/synth.py: synthesized MobileNetV2 models run bit-exact on TFLM,
tflite-runtime and our engine, have live activations, and are byte-deterministic."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.check import assert_bit_exact

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mobilenetv2_synth", REPO / "models/mobilenetv2/synth.py")
synth = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = synth  # dataclasses look their module up there
_spec.loader.exec_module(synth)

CONFIGS = [(0.35, 96), (0.35, 144)]
CLASSES = 10


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: f"a{c[0]}_r{c[1]}")
def built(request):
    alpha, res = request.param
    model, stats = synth.build_mobilenetv2_with_stats(alpha, res, classes=CLASSES, seed=0)
    return alpha, res, model, stats


def test_bit_exact_and_alive(built):
    alpha, res, model, stats = built
    rng = np.random.default_rng(res)
    inputs = [rng.integers(-128, 128, (1, res, res, 3)).astype(np.int8) for _ in range(2)]
    outs = [assert_bit_exact(model, [x], f"MobileNetV2 alpha={alpha} r={res} input {i}")[0]
            for i, x in enumerate(inputs)]
    outs = [o.reshape(-1) for o in outs]
    for o in outs:
        assert o.shape == (CLASSES,)
        assert len(np.unique(o)) > 1, f"softmax output is constant: {o}"
        # Softmax output quantization 1/256, zp -128: the probabilities sum to about 1.
        assert abs(float((o.astype(np.int32) + 128).sum()) / 256 - 1.0) < 0.1, o
    assert not np.array_equal(outs[0], outs[1]), "output does not depend on the input"


def test_deterministic(built):
    alpha, res, model, _ = built
    assert synth.build_mobilenetv2(alpha, res, classes=CLASSES, seed=0) == model
    assert synth.build_mobilenetv2(alpha, res, classes=CLASSES, seed=1) != model


def test_architecture():
    # Keras MobileNetV2 figures: 300 M MACs, 3.4 M weights (+ BatchNorm) at alpha 1.0, 224x224.
    layers = synth.mobilenetv2_layers(1.0, 224)
    assert sum(L.macs for L in layers) == 300_774_272
    assert [L.kind for L in layers].count("add") == 10
    assert [L.kind for L in layers].count("dw") == 17
    assert layers[0].out_shape == (112, 112, 32) and layers[-3].in_shape == (7, 7, 1280)
    assert synth.make_divisible(32 * 0.35, 8) == 16
    assert synth.mobilenetv2_layers(1.4, 224)[-3].in_shape[-1] == 1792
    assert synth.mobilenetv2_layers(0.35, 96, 10)[-2].out_shape == (10,)
