"""Early-exit test-time adaptation (issue 11, docs/TTA.md): shifted streams, tta-prepare, the C
early-exit runner, adaptation sessions with their safety checks, the float TENT reference, and
the CLI. Heads train for a few epochs on a subset so the module stays fast."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from tinyadapt.reference import run_tflm
from tinyadapt.tta import streams
from tinyadapt.tta.datasets import load
from tinyadapt.tta.heads import entropy as float_entropy
from tinyadapt.tta.heads import softmax
from tinyadapt.tta.memory import estimate_full_training, full_model_step, ours_step
from tinyadapt.tta.model import PreparedModel, to_model_input
from tinyadapt.tta.prepare import cut_candidates, prepare, write
from tinyadapt.tta.runner import entropy_int8
from tinyadapt.tta.session import AdaptConfig, Session, parse_mode, run_stream
from tinyadapt.tta.tent import FloatModel

TINYADAPT = [sys.executable, "-m", "tinyadapt"]


def _model_x(pm: PreparedModel, x: np.ndarray) -> np.ndarray:
    return to_model_input(x.reshape((len(x),) + tuple(pm.input_shape)), pm.input_dtype, pm.input_scale, pm.input_zp)


@pytest.fixture(scope="module")
def digits_tta(tmp_path_factory) -> PreparedModel:
    ds = load("digits")
    out = tmp_path_factory.mktemp("tta") / "digits.tta"
    man = prepare(str(ds.model), ds.train.x, ds.train.y, exits=2, epochs=25, log=lambda *a: None)
    write(man, out)
    return PreparedModel(out)


# -- streams ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset", sorted(streams.SHIFTS))
def test_streams_are_seeded_and_shift_part_way(dataset):
    ds = load(dataset)
    for shift in streams.SHIFTS[dataset]:
        a = streams.make_stream(dataset, shift, length=120, seed=3)
        b = streams.make_stream(dataset, shift, length=120, seed=3)
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
        assert a.x.shape == (120,) + ds.test.x.shape[1:] and a.x.dtype == np.float32
        if shift == "none":
            assert not a.shifted.any()
        else:
            assert not a.shifted[:24].any() and a.shifted[24:].all()
            clean = streams.make_stream(dataset, "none", length=120, seed=3)
            assert not np.array_equal(a.x[a.shifted], clean.x[a.shifted]) or dataset == "basicmotions"
    other = streams.make_stream(dataset, streams.SHIFTS[dataset][1], length=120, seed=4)
    assert not np.array_equal(other.x, streams.make_stream(dataset, streams.SHIFTS[dataset][1], length=120, seed=3).x)


def test_shifts_lower_the_backbone_accuracy():
    # the streams are worth adapting to: the int8 model itself loses accuracy on the shifted part
    from tinyadapt.convert import convert
    from tinyadapt.engine.host import HostEngine

    m = convert(str(load("digits").model))
    eng = HostEngine(m.blob)
    t = m.tensors[m.inputs[0]]
    s = streams.make_stream("digits", "contrast", length=100)
    x = to_model_input(s.x, t.dtype, t.scale, t.zero_point)
    ok = np.array([np.argmax(eng.invoke([xi[None]])[0]) for xi in x]) == s.y
    assert ok[~s.shifted].mean() > 0.9 and ok[s.shifted].mean() < 0.6


# -- prepare ------------------------------------------------------------------------------------

def test_cut_candidates():
    from tinyadapt.convert import convert

    digits = cut_candidates(convert(str(load("digits").model)))
    assert [c.op for c in digits] == [1, 2, 3, 4] and digits[-1].shape == (1, 4, 4, 32)
    imu = cut_candidates(convert(str(load("basicmotions").model)))
    # none before the first convolution (a head there would be the whole model), 4-D only
    assert imu[0].op == 3 and all(len(c.shape) == 4 for c in imu)


def test_prepared_model_folder(digits_tta):
    pm = digits_tta
    man = pm.manifest
    assert {p.name for p in pm.folder.iterdir()} == {"manifest.json", "backbone.tflite", "head_0.tflite",
                                                    "head_1.tflite", "heads.npz"}
    assert len(pm.exits) == 2 and pm.exits[0]["cut_op"] < pm.exits[1]["cut_op"]
    assert man["calibration"]["early_exit_accuracy"] >= man["calibration"]["last_exit_accuracy"] - 0.01
    assert man["calibration"]["macs_saved"] > 0.3


def test_heads_are_bit_exact_with_tflite_micro(digits_tta):
    from tinyadapt.engine.host import HostEngine

    rng = np.random.default_rng(0)
    for e, hm in zip(digits_tta.exits, digits_tta.head_models):
        tfl = (digits_tta.folder / e["head"]).read_bytes()
        x = rng.integers(-128, 128, (8,) + tuple(e["cut_shape"][1:]), dtype=np.int8)
        eng = HostEngine(hm.blob)
        ours = np.stack([eng.invoke([xi])[0] for xi in x])
        ref = run_tflm(tfl, [x])[0].reshape(ours.shape)
        assert np.array_equal(ours, ref)


def test_prepare_rejects_bad_input():
    from tinyadapt.errors import InputError

    ds = load("digits")
    with pytest.raises(InputError, match="labels"):
        prepare(str(ds.model), ds.train.x[:50], ds.train.y[:40], log=lambda *a: None)
    with pytest.raises(InputError, match="shape"):
        prepare(str(ds.model), np.zeros((10, 7, 7, 1), np.float32), np.zeros(10), log=lambda *a: None)
    with pytest.raises(InputError, match="exits"):
        prepare(str(ds.model), ds.train.x[:50], ds.train.y[:50], exits=9, log=lambda *a: None)


# -- the C early-exit runner -------------------------------------------------------------------

def test_entropy_int8_matches_float():
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = rng.integers(-128, 128, 10).astype(np.int8)
        scale = float(rng.uniform(0.01, 0.3))
        h, arg = entropy_int8(q, scale, int(rng.integers(-10, 10)))
        assert arg == int(np.argmax(q))
        assert abs(h - float_entropy(scale * q.astype(np.float64))) < 1e-5


def test_c_runner_and_session_agree(digits_tta):
    pm = digits_tta
    s = streams.make_stream("digits", "blur", length=60)
    x = _model_x(pm, s.x)
    runner = pm.open().runner()
    sess = Session(pm, AdaptConfig(mode="none"))
    saw_exit = set()
    for xi in x:
        r, st = runner.infer(xi), sess.step(xi)
        assert (r.exit, r.prediction, r.macs) == (st.exit, st.prediction, st.macs)
        assert r.entropy == pytest.approx(st.entropy, abs=0.0)
        assert r.macs_skipped == max(0, pm.macs_full - r.macs)
        saw_exit.add(r.exit)
    assert saw_exit == {0, 1}


def test_thresholds_decide_the_exit(digits_tta):
    pm = digits_tta
    x = _model_x(pm, streams.make_stream("digits", "none", length=20).x)
    om = pm.open()
    never = om.runner([-1.0, 1e30])
    always = om.runner([1e30, 1e30])
    assert all(never.infer(xi).exit == 1 for xi in x)
    assert all(always.infer(xi).exit == 0 for xi in x)
    assert all(always.infer(xi).macs_skipped > 0.5 * pm.macs_full for xi in x)


def test_set_head_requantizes_in_place(digits_tta):
    pm = digits_tta
    om = pm.open()
    feat = np.random.default_rng(2).integers(-128, 128, tuple(pm.exits[0]["cut_shape"]), dtype=np.int8)
    before = om.heads[0].invoke([feat])[0]
    om.set_head(0, pm.source_heads[0])                 # the source values round-trip exactly
    assert np.array_equal(om.heads[0].invoke([feat])[0], before)
    h = pm.source_heads[0].copy()
    h.fc_b = h.fc_b + 5.0
    om.set_head(0, h)
    assert not np.array_equal(om.heads[0].invoke([feat])[0], before)


# -- adaptation ----------------------------------------------------------------------------------

def _acc(pm, stream, mode, **kw):
    x = _model_x(pm, stream.x)
    sess = run_stream(pm, x, AdaptConfig(mode=mode, **kw))
    return float(np.mean([st.prediction for st in sess.steps] == stream.y)), sess


def test_adaptation_recovers_a_shift_and_leaves_clean_data_alone(digits_tta):
    shifted = streams.make_stream("digits", "contrast", length=250)
    none, _ = _acc(digits_tta, shifted, "none")
    ours, sess = _acc(digits_tta, shifted, "input+norm")
    assert ours >= none + 0.10, (none, ours)
    assert sess.updates > 0
    clean = streams.make_stream("digits", "none", length=250)
    none, _ = _acc(digits_tta, clean, "none")
    ours, _ = _acc(digits_tta, clean, "input+norm")
    assert ours >= none - 0.01, (none, ours)


def test_entropy_minimisation_uses_the_trainer(digits_tta):
    pm = digits_tta
    x = _model_x(pm, streams.make_stream("digits", "blur", length=30).x)
    sess = run_stream(pm, x, AdaptConfig(mode="entropy", lr=1e-2))
    assert sess.updates >= 30
    start = [t.params() for t in pm.trainers()]
    assert [t.params() for t in sess.trainers] != start   # the heads moved
    sess._restore_source()
    assert [t.params() for t in sess.trainers] == start


def test_collapse_is_rolled_back(digits_tta):
    # a learning rate that drives entropy minimisation into collapse: the health check must
    # fire and keep the model close to not adapting
    clean = streams.make_stream("digits", "none", length=300)
    none, _ = _acc(digits_tta, clean, "none")
    wild, sess = _acc(digits_tta, clean, "entropy", lr=0.5)
    assert sess.rollbacks >= 1
    assert wild >= none - 0.15, (none, wild)


def test_worse_than_not_adapting_is_rolled_back(digits_tta):
    # "input" adaptation against a stream whose statistics say nothing about its shift (a
    # rotation keeps the pixel statistics): the source-model comparison must not let it drift
    s = streams.make_stream("digits", "rotation", length=300)
    none, _ = _acc(digits_tta, s, "none")
    ours, _ = _acc(digits_tta, s, "input+norm")
    assert ours >= none - 0.02, (none, ours)


@pytest.fixture(scope="module")
def imu_tta(tmp_path_factory) -> PreparedModel:
    ds = load("basicmotions")
    out = tmp_path_factory.mktemp("tta") / "imu.tta"
    write(prepare(str(ds.model), ds.train.x, ds.train.y, exits=2, epochs=10, log=lambda *a: None), out)
    return PreparedModel(out)


@pytest.mark.parametrize("which", ["digits", "imu"])
def test_c_input_normalisation_matches_numpy(which, digits_tta, imu_tta):
    # the "input" part in C (engine/ta_tta.c, float32 on the device) against the same EMA and
    # mapping in float64 NumPy, on an int8 input (digits) and a float32 one (BasicMotions)
    pm = digits_tta if which == "digits" else imu_tta
    s = streams.make_stream("basicmotions" if which == "imu" else "digits", "gain" if which == "imu" else "contrast",
                            length=40, shift_at=0.0)
    x = _model_x(pm, s.x)
    sess = Session(pm, AdaptConfig(mode="input"))
    mu, var = pm.input_mean.astype(np.float64), pm.input_var.astype(np.float64)
    m, dz = sess.cfg.momentum, sess.cfg.dead_zone
    moved = 0
    for xi in x:
        xf = xi.astype(np.float64) if xi.dtype != np.int8 else (xi.astype(np.float64) - pm.input_zp) * pm.input_scale
        flat = xf.reshape(-1, xf.shape[-1])
        mu = (1 - m) * mu + m * flat.mean(0)
        var = (1 - m) * var + m * ((flat - mu) ** 2).mean(0)
        sd = np.sqrt(pm.input_var)
        same = (np.abs(mu - pm.input_mean) < dz * sd) & (np.abs(np.sqrt(var) / sd - 1) < dz)
        u, v = np.where(same, pm.input_mean, mu), np.where(same, pm.input_var, var)
        want = (xf - u) * np.sqrt((pm.input_var + 1e-8) / (v + 1e-8)) + pm.input_mean
        got = sess.adapter.normalise_input(xi)
        if xi.dtype == np.int8:
            want = np.clip(np.round(want / pm.input_scale) + pm.input_zp, -128, 127)
            assert np.abs(got.astype(np.int64) - want).max() <= 1
            moved += int((got != xi).any())
        else:
            assert np.allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
            moved += int(not np.allclose(got, xi))
    assert moved > len(x) // 2          # the shift is being undone, not passed through


def test_health_check_rolls_back_and_pauses(digits_tta):
    # the C loop's health check: rollbacks are counted, a rollback pauses adaptation (the
    # statistics then stay put) and the pauses double; with no comparisons with the source
    # model and no collapse it never acts
    pm = digits_tta
    x = _model_x(pm, streams.make_stream("digits", "rotation", length=200, shift_at=0.1).x)
    sess = Session(pm, AdaptConfig(window=15, min_source=4, pause=10))
    paused = []
    for xi in x:
        sess.step(xi)
        paused.append(sess.adapter.paused)
    assert sess.rollbacks >= 2
    starts = [p for a, p in zip([0] + paused, paused) if a == 0 and p > 0]
    assert starts[:2] == [10, 20]
    quiet = run_stream(pm, x, AdaptConfig(window=15, shadow_rate=0.0, narrow=0.0))
    assert quiet.rollbacks == 0 and quiet.updates > 0


def test_probation_answers_with_the_source_until_proven(digits_tta):
    # probation: with the adapted statistics off the source's and no approval possible (too
    # few comparisons ever), every answer is the source model's, exit and entropy included,
    # while the statistics go on adapting in the background and both runs count their MACs
    pm = digits_tta
    s = streams.make_stream("digits", "contrast", length=60, shift_at=0.0)
    x = _model_x(pm, s.x)
    source = [pm.open().runner().infer(xi) for xi in x]
    cfg = dict(min_source=1000, narrow=0.0, window=30)
    held = run_stream(pm, x, AdaptConfig(probe_share=0.0, **cfg))
    assert held.updates > 0 and held.rollbacks == 0
    same = [st.macs > r.macs and (st.exit, st.prediction, np.float32(st.entropy)) ==
            (r.exit, r.prediction, np.float32(r.entropy)) for st, r in zip(held.steps, source)]
    first = same.index(True)             # once the statistics have moved (a few samples in) ...
    assert first <= 10 and all(same[first:]), same   # ... every sample runs both, the source answering
    free = run_stream(pm, x, AdaptConfig(probation=False, **cfg))
    assert [st.prediction for st in free.steps] != [r.prediction for r in source]   # adapting changes answers


@pytest.mark.parametrize("which", ["digits", "imu"])
def test_heads_run_where_the_backbone_plan_leaves_room(which, digits_tta, imu_tta):
    # ta_tta_head_base against an independent reading of the blob's plan: a head's arena never
    # overlaps a backbone activation written before its cut and read after it; on both shipped
    # models both heads fit inside the backbone's arena
    from tinyadapt.convert import blob_format as bf

    pm = digits_tta if which == "digits" else imu_tta
    m = pm.backbone_model
    arenas = [h.peak_sram_bytes for h in pm.head_models]
    bases = pm.open().runner().head_bases(arenas)
    for e, base, size in zip(pm.exits, bases, arenas):
        cut = e["cut_op"]
        live = {t for i, op in enumerate(m.ops) if i >= cut for t in op.inputs
                if t >= 0 and m.tensors[t].kind == bf.KIND_ACTIVATION and
                not any(t in o.outputs for o in m.ops[cut:i])}
        assert e["cut_tensor"] in live
        for t in live:
            r = m.tensors[t]
            assert r.offset + r.nbytes <= base or base + size <= r.offset, (t, base)
        assert base % 16 == 0 and base + size <= m.peak_sram_bytes


def test_bad_modes():
    assert parse_mode("none") == set() and parse_mode("input+norm") == {"input", "norm"}
    for bad in ("norm+entropy", "magic", "input+"):
        with pytest.raises(ValueError):
            parse_mode(bad)


# -- the float TENT reference and memory ---------------------------------------------------------

@pytest.mark.parametrize("dataset", sorted(streams.SHIFTS))
def test_tent_reference_gradients(dataset):
    from tinyadapt.convert import convert

    m = convert(str(load(dataset).model))
    fm = FloatModel(m)
    t = m.tensors[m.inputs[0]]
    x = to_model_input(load(dataset).test.x[:1].reshape(t.shape), t.dtype, t.scale, t.zero_point)

    def h(model):
        p = softmax(model.forward(x)[0])
        return float(-(p * np.log(p)).sum())

    stepped = copy.deepcopy(fm)
    stepped.step(x, 1.0)
    for k in list(fm.gamma)[::2]:
        for attr in ("gamma", "beta"):
            plus = copy.deepcopy(fm)
            getattr(plus, attr)[k][0] += 1e-6
            numeric = (h(plus) - h(fm)) / 1e-6
            analytic = getattr(fm, attr)[k][0] - getattr(stepped, attr)[k][0]
            assert analytic == pytest.approx(numeric, rel=2e-3, abs=1e-7)


def test_tent_reference_matches_the_int8_model():
    from tinyadapt.convert import convert
    from tinyadapt.engine.host import HostEngine

    m = convert(str(load("digits").model))
    fm, eng = FloatModel(m), HostEngine(m.blob)
    ds = load("digits")
    t = m.tensors[m.inputs[0]]
    x = to_model_input(ds.test.x[:100], t.dtype, t.scale, t.zero_point)
    agree = np.mean([fm.step(xi[None], 0)[0] == np.argmax(eng.invoke([xi[None]])[0]) for xi in x])
    assert agree >= 0.95


def test_adaptation_step_memory(digits_tta, imu_tta):
    # the target on both models: at most 1/6 of full-model entropy minimisation (the
    # device measures the same layout: tests/device/test_tta_device.py)
    assert ours_step(imu_tta, {"input", "norm"}) * 6 <= full_model_step(imu_tta.backbone_model)[0]
    full, how = full_model_step(digits_tta.backbone_model)
    estimate = estimate_full_training(digits_tta.backbone_model)
    assert full == estimate if how.startswith("estimated") else (how == "planned" and abs(full - estimate) <= 0.15 * full)
    assert ours_step(digits_tta, {"input", "norm"}) * 6 <= full
    assert ours_step(digits_tta, {"entropy"}) > ours_step(digits_tta, {"input", "norm"})
    # the estimate against train-core's planner where it can plan full training: the heads
    from tinyadapt.train.graph import build_training
    from tinyadapt.train.scheme import UpdateScheme

    for hm in digits_tta.head_models:
        planned = build_training(hm, UpdateScheme.full(3)).peak_sram_bytes
        assert abs(estimate_full_training(hm) - planned) <= 0.05 * planned


# -- CLI -----------------------------------------------------------------------------------------

def _cli(*args, cwd=None):
    return subprocess.run(TINYADAPT + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_prepare_and_adapt(tmp_path, digits_tta):
    r = subprocess.run([sys.executable, "-m", "tinyadapt.tta.streams", "digits", "contrast", "--length", "120",
                        "-o", tmp_path / "x.npy", "--labels", tmp_path / "y.npy"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = _cli("adapt", digits_tta.folder, "--stream", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
             "--report", tmp_path / "r.html", "--save-heads", tmp_path / "heads.bin", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    for key in ("accuracy_no_adapt", "accuracy_adapted", "exit_rate", "macs_saved", "peak_sram_bytes", "rollbacks",
                "accuracy_tent_float"):
        assert key in j
    assert len(j["exit_rate"]) == 2 and abs(sum(j["exit_rate"]) - 1) < 1e-3
    assert j["accuracy_adapted"] > j["accuracy_no_adapt"]
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    assert (tmp_path / "heads.bin").stat().st_size > 0
    r = _cli("adapt", digits_tta.folder, "--stream", tmp_path / "x.npy", "--seed", "-1")   # the device's seed is u32
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "--seed" in r.stderr, r.stderr


def test_cli_errors_are_one_line_and_keep_outputs(tmp_path):
    out = tmp_path / "out.tta"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    np.save(tmp_path / "x.npy", np.zeros((4, 8, 8, 1), np.float32))
    np.save(tmp_path / "y.npy", np.zeros(3))
    model = load("digits").model
    for args in (["tta-prepare", tmp_path / "missing.tflite", "--data", tmp_path / "x.npy", "--labels",
                  tmp_path / "y.npy", "-o", out],
                 ["tta-prepare", model, "--data", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "-o", out],
                 ["adapt", tmp_path / "nothing", "--stream", tmp_path / "x.npy"]):
        r = _cli(*args)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert (out / "keep.txt").read_text() == "mine"
    assert _cli("tta-prepare", "--help").returncode == 0 and _cli("adapt", "--help").returncode == 0


def test_prepare_respects_the_budget():
    from tinyadapt.convert import convert
    from tinyadapt.errors import PlanError

    ds = load("digits")
    backbone = convert(str(ds.model)).peak_sram_bytes
    with pytest.raises(PlanError, match="fits"):
        prepare(str(ds.model), ds.train.x[:120], ds.train.y[:120], budget=backbone + 256, epochs=1,
                log=lambda *a: None)
    man = prepare(str(ds.model), ds.train.x[:120], ds.train.y[:120], budget=backbone + 768, epochs=1,
                  log=lambda *a: None)
    assert all(backbone + e["head_arena_bytes"] <= backbone + 768 for e in man["exits"])
