"""Every example model and every supported real-world model: bit-exact on real inputs,
and a memory plan that the independent checker accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyadapt.convert import convert
from tinyadapt.engine.host import HostEngine
from tests.support.arena_check import check_blob
from tests.support.paths import SHARED_MODELS, shared_model
from tests.support.reference import run_tflite, run_tflm

REPO = Path(__file__).resolve().parents[1]


def _digits():
    d = np.load(REPO / "models/digits/digits_test.npz")
    return d["x"], d["y"]


def _basicmotions():
    d = np.load(REPO / "models/basicmotions/basicmotions_test.npz")
    return d["x"].astype(np.float32), d["y"]


def _mobilenet():
    return np.load(REPO / "models/mobilenetv2/mobilenetv2_96_sample.npz")["x"], None


def _hello():
    # The model's whole input domain: every int8 value.
    return np.arange(-128, 128, dtype=np.int8).reshape(256, 1, 1), None


def _micro_speech():
    # No audio features ship with the model: seeded random spectrogram-like inputs, plus
    # the extremes of the int8 range.
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(16, 1, 1960), dtype=np.int8)
    x[0] = -128
    x[1] = 127
    return x, None


MODELS = {
    "digits": (REPO / "models/digits/digits_cnn.tflite", _digits),
    "basicmotions": (REPO / "models/basicmotions/basicmotions_imu.tflite", _basicmotions),
    "mobilenetv2_96": (REPO / "models/mobilenetv2/mobilenetv2_96.tflite", _mobilenet),
    "hello_world": (SHARED_MODELS / "hello_world_int8.tflite", _hello),
    "micro_speech": (SHARED_MODELS / "micro_speech_quantized.tflite", _micro_speech),
}


def samples(x: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Data sets store samples without the model's batch axis of 1; add it back."""
    return [xi.reshape(shape) for xi in x]


@pytest.fixture(scope="module", params=sorted(MODELS))
def model_case(request):
    path, data = MODELS[request.param]
    path = shared_model(path.name) if path.parent == SHARED_MODELS else path
    x, y = data()
    return request.param, path, convert(path), x, y


def test_model_bit_exact_with_tflm_and_tflite(model_case):
    name, path, model, x, y = model_case
    engine = HostEngine(model.blob)
    xs = samples(x, model.input_tensors()[0].shape)
    ours = np.stack([engine.invoke([xi])[0] for xi in xs])
    model_bytes = path.read_bytes()
    for ref_name, runner in (("tflite-micro", run_tflm), ("tflite-runtime", run_tflite)):
        ref = np.stack([runner(model_bytes, [xi])[0] for xi in xs]).reshape(ours.shape)
        bad = np.argwhere(np.any(ours.reshape(len(x), -1) != ref.reshape(len(x), -1), axis=1)).ravel()
        assert len(bad) == 0, f"{name}: {len(bad)} of {len(x)} samples differ from {ref_name} (first: {bad[:5]})"
    if y is not None:
        acc = float(np.mean(np.argmax(ours.reshape(len(x), -1), axis=1) == y))
        assert acc > 0.9, f"{name}: accuracy {acc:.3f}"


def test_model_memory_plan_is_sound(model_case):
    _, _, model, _, _ = model_case
    check_blob(model.blob)
    # The plan is never worse than keeping every activation alive at once, and never
    # smaller than the largest single layer's live set.
    total = sum(t.nbytes for t in model.tensors if t.kind == 0)
    assert max(model.plan.live_bytes(i) for i in range(len(model.ops))) <= model.peak_sram_bytes <= total


def test_unsupported_real_model_is_refused_by_name():
    from tinyadapt.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match=r"op 1 \(SVDF\) is not supported"):
        convert(shared_model("keyword_scrambled_8bit.tflite"))
