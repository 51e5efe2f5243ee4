"""The training step end to end on the host target: backward graph, TRAIN section, arena plan,
C trainer; each step's parameters compared with the NumPy float64 replay of the same math
(host/tinyadapt/train/reference.py, replay_step), and the loader's checks of the section.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from tests.support import ModelBuilder
from tests.support.arena_check import check_blob
from tests.support.paths import REPO
from tests.support.tiny_models import tiny_cnn
from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.blob import read_blob
from tinyadapt.engine.host import HostEngine, HostTrainer
from tinyadapt.errors import EngineError, PlanError, UnsupportedModelError
from tinyadapt.train.graph import build_training, weight_layers
from tinyadapt.train.params import param_slots
from tinyadapt.train.reference import replay_step
from tinyadapt.train.scheme import UpdateScheme, default_scheme

DIGITS = REPO / "models" / "digits" / "digits_cnn.tflite"

block_model = tiny_cnn


def reader(tr: HostTrainer):
    return lambda index: tr.tensor(index)


def assert_step_matches_replay(plan, x, label, lr, loss="cross_entropy", steps=3):
    tr = HostTrainer(plan.blob)
    kind = {"cross_entropy": 0, "entropy": 1}[loss]
    slots, size = param_slots(read_blob(plan.blob), plan.blob)
    assert size == tr.param_ram_size == plan.param_ram_bytes
    for _ in range(steps):
        image = tr.params()
        tr.eval(x, label)  # the forward pass; every saved activation is alive afterwards
        want_loss, want = replay_step(plan.blob, reader(tr), image, label, lr, kind)
        got_loss, _, updated = tr.step(x, label, lr, loss)
        got = tr.params()
        assert updated > 0
        assert abs(got_loss - want_loss) <= 1e-4 * max(1.0, abs(want_loss))
        for s in slots:
            if s.master_at is not None:
                np.testing.assert_allclose(s.weight_masters(got), s.weight_masters(want), rtol=1e-4, atol=1e-3)
                diff = np.abs(s.weights(got).astype(int) - s.weights(want).astype(int))
                assert diff.max() <= 1 and np.mean(diff) < 0.01
            if s.bias_at is not None:
                np.testing.assert_allclose(s.bias_masters(got), s.bias_masters(want), rtol=1e-4, atol=0.05)
        assert got != image, "the step changed nothing"


@pytest.mark.parametrize("scheme", [
    UpdateScheme.full(4),
    UpdateScheme(bias_depth=2, weights={1: 0.5, 3: 0.25}),
    UpdateScheme(bias_depth=1, weights={0: 0.25}),
], ids=["full", "sparse", "first-layer-only"])
def test_block_model_steps_match_numpy_replay(scheme):
    cm = convert(block_model())
    plan = build_training(cm, scheme)
    check_blob(plan.blob)
    x = np.random.default_rng(1).integers(-128, 128, (1, 8, 8, 2)).astype(np.int8)
    assert_step_matches_replay(plan, x, 3, 0.05)


def test_entropy_loss_step_matches_numpy_replay():
    plan = build_training(convert(block_model(2)), UpdateScheme(bias_depth=3, weights={2: 0.5}))
    x = np.random.default_rng(3).integers(-128, 128, (1, 8, 8, 2)).astype(np.int8)
    assert_step_matches_replay(plan, x, -1, 0.5, loss="entropy")


def test_digits_steps_match_numpy_replay_and_learn():
    cm = convert(DIGITS)
    plan = build_training(cm, default_scheme(len(weight_layers(cm))))
    check_blob(plan.blob)
    data = np.load(REPO / "models" / "digits" / "digits_test.npz")
    assert_step_matches_replay(plan, data["x"][0], int(data["y"][0]), 0.01)
    # Inference through the training blob predicts exactly like the plain blob.
    tr, eng = HostTrainer(plan.blob), HostEngine(cm.blob)
    for i in range(20):
        assert tr.eval(data["x"][i])[1] == int(np.argmax(eng.invoke([data["x"][i]])[0]))
    # Repeated steps on a few samples drive their loss down.
    xs, ys = data["x"][:8], data["y"][:8]
    before = np.mean([tr.eval(x, int(y))[0] for x, y in zip(xs, ys)])
    for _ in range(5):
        for x, y in zip(xs, ys):
            tr.step(x, int(y), 0.02)
    after = np.mean([tr.eval(x, int(y))[0] for x, y in zip(xs, ys)])
    assert after < 0.7 * before


def test_sparse_training_arena_is_smaller_than_full_and_fits_saved_tensors():
    cm = convert(DIGITS)
    n = len(weight_layers(cm))
    sparse = build_training(cm, UpdateScheme(bias_depth=1, weights={n - 1: 1.0}))
    full = build_training(cm, UpdateScheme.full(n))
    check_blob(full.blob)
    assert sparse.peak_sram_bytes < full.peak_sram_bytes
    assert sparse.backward_macs < full.backward_macs
    # Only the classifier's input is saved: the backward graph is one FC op after the loss.
    assert [op.name for op in read_blob(sparse.blob).ops[sparse.n_forward_ops:]] == \
        ["LOSS_GRAD", "FULLY_CONNECTED_BACKWARD"]


def test_reset_and_load_params_restore_images():
    plan = build_training(convert(block_model()), UpdateScheme(bias_depth=2, weights={3: 1.0}))
    tr = HostTrainer(plan.blob)
    base = tr.params()
    x = np.zeros((1, 8, 8, 2), np.int8)
    for _ in range(3):
        tr.step(x, 1, 0.1)
    trained = tr.params()
    assert trained != base
    tr.reset()
    assert tr.params() == base
    tr.load_params(trained)
    assert tr.params() == trained
    with pytest.raises(EngineError, match="TA_ERR_ARG"):
        tr.load_params(trained[:-4])
    with pytest.raises(EngineError, match="TA_ERR_ARG"):
        tr.step(x, 5, 0.1)  # label out of range (5 classes)


def test_plan_errors_are_one_line():
    cm = convert(DIGITS)
    with pytest.raises(PlanError, match="layer 9 does not exist"):
        build_training(cm, UpdateScheme(weights={9: 1.0}))
    with pytest.raises(PlanError, match="updates nothing"):
        build_training(cm, UpdateScheme())
    with pytest.raises(PlanError, match="channel ratio"):
        build_training(cm, UpdateScheme(weights={0: 1.5}))
    # A LOGISTIC between the updated layer and the loss has no backward.
    b = ModelBuilder()
    x = b.input([1, 4], scale=0.1, zero_point=0)
    w = b.const(np.ones((3, 4), np.int8), scale=0.01)
    h = b.tensor([1, 3], scale=0.05, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, b.const(np.zeros(3, np.int32), scale=0.001)], [h])
    s = b.tensor([1, 3], scale=1 / 256, zero_point=-128)
    b.op("LOGISTIC", [h], [s])
    b.output(s)
    with pytest.raises(UnsupportedModelError, match="no backward for LOGISTIC"):
        build_training(convert(b.build()), UpdateScheme(weights={0: 1.0}))


def _fix_crc(blob: bytearray) -> bytes:
    struct.pack_into("<I", blob, 12, zlib.crc32(bytes(blob[bf.CRC_START:])) & 0xFFFFFFFF)
    return bytes(blob)


def test_loader_and_trainer_reject_corrupt_train_sections():
    plan = build_training(convert(block_model()), UpdateScheme(bias_depth=2, weights={3: 1.0}))
    blob = bytearray(plan.blob)
    d_off, train_off = struct.unpack_from("<I", blob, 44)[0], struct.unpack_from("<I", blob, 56)[0]
    n_ops = struct.unpack_from("<H", blob, 22)[0]
    cases = []
    b = bytearray(blob)
    struct.pack_into("<H", b, d_off + train_off, n_ops)  # no backward op left
    cases.append(("n_forward_ops == n_ops", b, "TA_ERR_CORRUPT"))
    b = bytearray(blob)
    struct.pack_into("<I", b, 56, 0x7FFFFFF0)  # section outside the data
    cases.append(("train_offset", b, "TA_ERR_TRUNCATED"))
    b = bytearray(blob)
    struct.pack_into("<I", b, 16, bf.FLAG_TRAIN | bf.FLAG_PATCH)
    cases.append(("train + patch", b, "TA_ERR"))
    # A backward op's kept-channel list out of range.
    info = read_blob(plan.blob)
    op = next(o for o in info.ops[info.n_forward_ops:] if o.name == "FULLY_CONNECTED_BACKWARD")
    kept = info.tensors[op.inputs[6]]
    b = bytearray(blob)
    struct.pack_into("<i", b, d_off + kept.offset, 99)
    cases.append(("kept channel 99", b, "TA_ERR_CORRUPT"))
    # A forward opcode among the backward ops.
    ops_off = struct.unpack_from("<I", blob, 36)[0]
    b = bytearray(blob)
    struct.pack_into("<H", b, ops_off + 24 * (n_ops - 1), bf.OPCODES["CONV_2D"])
    cases.append(("forward opcode in backward part", b, "TA_ERR_CORRUPT"))
    for what, bad, status in cases:
        with pytest.raises(EngineError, match=status):
            HostTrainer(_fix_crc(bad))


def test_patch_based_forward_under_a_budget_trains_like_layer_by_layer():
    """Under a budget the forward pass's first ops run patch by patch; the backward pass starts
    after the stage, so the steps are the same as layer by layer."""
    cm = convert(DIGITS)
    scheme = UpdateScheme(bias_depth=2, weights={3: 0.5, 4: 1.0})
    flat = build_training(cm, scheme)
    patched = build_training(cm, scheme, budget=flat.param_ram_bytes + 1)  # cannot fit: the smallest
    assert patched.patch is not None and patched.arena_bytes < flat.arena_bytes
    check_blob(patched.blob)
    data = np.load(REPO / "models" / "digits" / "digits_test.npz")
    a, b = HostTrainer(flat.blob), HostTrainer(patched.blob)
    for i in range(6):
        x, y = data["x"][i], int(data["y"][i])
        assert a.step(x, y, 0.05) == b.step(x, y, 0.05)
    assert a.params() == b.params()
    assert_step_matches_replay(patched, data["x"][7], int(data["y"][7]), 0.05, steps=1)


def test_search_fits_the_budget_and_prefers_measured_gains():
    from tinyadapt.train.search import Gains, prior_gains, search

    cm = convert(block_model())
    full = build_training(cm, UpdateScheme.full(4))
    budget = (full.peak_sram_bytes * 2) // 3
    scheme, _ = search(cm, prior_gains(4), budget)
    assert build_training(cm, scheme, budget=budget).peak_sram_bytes <= budget
    # Measured gains that favour one layer steer the search to it.
    gains = Gains({1: 0.5, 4: 1.0}, {(0, 1.0): 9.0, (3, 1.0): 0.1}, measured=True)
    scheme, total = search(cm, gains, None)
    assert scheme.weights.get(0) == 1.0 and scheme.bias_depth == 4 and total == pytest.approx(10.1)
    with pytest.raises(Exception, match="no update scheme fits 100 bytes"):
        search(cm, prior_gains(4), 100)


def test_parameters_are_bit_identical_across_compilers(tmp_path):
    """The determinism rules (fixed summation order, no contraction, own expf/logf) make the
    trained parameters independent of the compiler: gcc and clang builds agree bit for bit."""
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("clang") is None:
        pytest.skip("needs clang beside the default compiler")
    script = REPO / "tests" / "support" / "train_digest.py"
    digests = []
    for cc in (None, "clang"):  # the library every test uses, then a clang build of it
        env = dict(os.environ) if cc is None else {**os.environ, "CC": cc, "TINYADAPT_BUILD": str(tmp_path / cc)}
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600,
                              cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        digests.append(proc.stdout.strip())
    assert digests[0] == digests[1] and len(digests[0]) == 64
