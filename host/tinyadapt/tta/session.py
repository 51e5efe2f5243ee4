"""An adaptation session over a stream, sample by sample, on the host target.

The forward and the exit decisions run in the C engine: backbone slices, the exit heads (their
int8 parameters overwritten in place after every update, as the device's parameter overlay),
and the entropy (engine/ta_tta.c). The update itself runs in NumPy float on the int8
intermediates the engine produced, the way the device's trainer does it (float32 master copy
of the adapted parameters, plain SGD, requantized into the int8 / int32 slots after each step).

Adaptation (modes): "norm" re-estimates each head's per-channel conv-output statistics from the
stream (exponential moving average, batch size 1) and folds them into the affine; "entropy"
minimises the answering head's softmax entropy w.r.t. affine and FC parameters; "norm+entropy"
does both. Safety: every `window` samples a health check looks for collapse (the predictions
narrowing to few classes while the entropy falls, or heads growing confident on shuffled
inputs); on collapse the heads roll back to the last good state (to the source heads when the
last good state fails again), and each rollback is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyadapt.tta.heads import Forward, HeadParams, backward, entropy_grad
from tinyadapt.tta.model import OpenModel, PreparedModel
from tinyadapt.tta.runner import entropy_int8

PARTS = ("input", "norm", "entropy")
MODES = ("none", "input", "norm", "entropy", "input+norm", "input+entropy", "norm+entropy", "input+norm+entropy")


@dataclass
class AdaptConfig:
    mode: str = "input+norm"
    lr: float = 5e-3
    momentum: float = 0.05       # EMA weight of one sample's statistics
    window: int = 50             # samples per health check
    narrow: float = 0.5          # collapse: prediction-histogram entropy below narrow * log(classes) ...
    probe_ratio: float = 0.5     # ... or shuffled-input entropy below probe_ratio * the source heads'
    shadow_rate: float = 0.3     # share of samples also run through the source model for the check
    worse_margin: float = 0.02   # "hurts": mean entropy above the source model's by this (nats) ...
    widen_margin: float = 0.1    # ... unless the prediction histogram's entropy widened by this,
    narrow_margin: float = 0.05  # or that histogram entropy narrowed by this
    pause: int = 100             # samples adaptation stays off after an "adapting hurts" rollback
    seed: int = 0


@dataclass
class Step:
    exit: int
    prediction: int
    entropy: float
    macs: int


@dataclass
class HeadState:
    params: HeadParams
    mu: np.ndarray
    var: np.ndarray

    def copy(self) -> "HeadState":
        return HeadState(self.params.copy(), self.mu.copy(), self.var.copy())


def _deq(q: np.ndarray, quant) -> np.ndarray:
    return (q.astype(np.float64) - quant[1]) * quant[0]


class Session:
    def __init__(self, pm: PreparedModel, cfg: AdaptConfig | None = None):
        self.pm, self.cfg = pm, cfg or AdaptConfig()
        self.parts = set() if self.cfg.mode == "none" else set(self.cfg.mode.split("+"))
        if not self.parts <= set(PARTS):
            raise ValueError(f"unknown adaptation mode {self.cfg.mode!r} (parts: none or {'+'.join(PARTS)})")
        self.in_mu, self.in_var = pm.input_mean.copy(), pm.input_var.copy()
        self.om: OpenModel = pm.open()
        self.source = [HeadState(h.copy(), m.copy(), v.copy()) for h, m, v in zip(pm.source_heads, pm.z_mean, pm.z_var)]
        self.state = [s.copy() for s in self.source]
        self.good = self._snapshot()
        self.shadow = pm.open()
        self._shadow: list[tuple[float, float]] = []
        self._paused = 0
        self._pause_len = self.cfg.pause
        self.rollbacks = 0
        self.updates = 0
        self._fails = 0
        self._rng = np.random.default_rng(self.cfg.seed)
        self._recent_pred: list[int] = []
        self._recent_h: list[float] = []
        self._prev_h: float | None = None
        self._probes: list[tuple[int, np.ndarray]] = []
        self._probe_source: list[float] = []
        self.steps: list[Step] = []
        for k in range(len(self.state)):
            self._apply(k)

    # -- parameters -------------------------------------------------------------------------
    def _effective(self, k: int) -> HeadParams:
        """The head as the engine runs it: the affine with the stream's statistics folded in."""
        s = self.state[k]
        if "norm" in self.parts:
            src = self.source[k]
            ratio = np.sqrt((src.var + 1e-6) / (s.var + 1e-6))
            h = s.params.copy()
            h.gamma = s.params.gamma * ratio
            h.beta = s.params.beta + s.params.gamma * (src.mu - s.mu * ratio)
            return h
        return s.params

    def _apply(self, k: int) -> None:
        self.om.set_head(k, self._effective(k))

    # -- one head, op by op, keeping what the update needs ---------------------------------
    def _head(self, om: OpenModel, k: int, feat: np.ndarray):
        eng, s = om.heads[k], self.pm.slots[k]
        eng.write_tensor(eng.info.inputs[0], feat)
        eng.invoke_ops(0, 1)
        zq = eng.tensor(s.z)
        eng.invoke_ops(1, 2)
        aq = eng.tensor(s.a)
        eng.invoke_ops(2, 3)
        pq = eng.tensor(self.pm.head_models[k].ops[2].outputs[0])
        eng.invoke_ops(3, 4)
        lq = eng.tensor(eng.info.outputs[0])
        q = self.pm.quant[k]
        h, pred = entropy_int8(lq, q.logits[0], q.logits[1])
        return zq, aq, pq, lq, h, pred

    def _probe_entropy(self, k: int, feat: np.ndarray) -> float:
        eng = self.om.heads[k]
        lq = eng.invoke([feat])[0]
        return entropy_int8(lq, *self.pm.quant[k].logits)[0]

    # -- the stream ---------------------------------------------------------------------------
    def step(self, x: np.ndarray) -> Step:
        active = self.cfg.mode != "none" and self._paused == 0
        xin = self._normalise_input(x, update=active) if "input" in self.parts and self._paused == 0 else x
        st = self._forward(self.om, xin, adapt=active)
        if self.cfg.mode != "none" and self._paused == 0 and self._rng.random() < self.cfg.shadow_rate:
            # the same sample through the source model (source heads, raw input): the health
            # check's "is adapting still better than not adapting" evidence
            shadow = self._forward(self.shadow, x, adapt=False)
            st.macs += shadow.macs
            self._shadow.append((st.entropy, shadow.entropy, st.prediction, shadow.prediction))
        self.steps.append(st)
        if self._paused:
            self._paused -= 1
            if self._paused == 0:
                self._resume()
        elif self.cfg.mode != "none":
            self._health(st)
        return st

    def _forward(self, om: OpenModel, x: np.ndarray, adapt: bool) -> Step:
        pm = self.pm
        om.backbone.write_tensor(om.backbone.info.inputs[0], x)
        first, macs = 0, 0
        for k, ex in enumerate(pm.exits):
            om.backbone.invoke_ops(first, ex["cut_op"])
            first = ex["cut_op"]
            feat = om.backbone.tensor(ex["cut_tensor"])
            zq, aq, pq, lq, h, pred = self._head(om, k, feat)
            macs += ex["macs_backbone"] + ex["macs_head"]
            if adapt:
                self._adapt(k, zq, aq, pq, lq)
                if k == 0 and len(self._probes) < 8 and self._rng.random() < 0.1:
                    self._add_probe(k, feat)
            if h < ex["threshold"] or k == len(pm.exits) - 1:
                return Step(k, pred, h, macs)
        raise AssertionError("the last exit always answers")

    def _normalise_input(self, x: np.ndarray, update: bool = True) -> np.ndarray:
        """Per input channel: the stream's running statistics mapped back to the source's (a
        sensor's gain and offset drift, an image's contrast), one sample at a time."""
        pm = self.pm
        xf = x.astype(np.float64) if x.dtype != np.int8 else (x.astype(np.float64) - pm.input_zp) * pm.input_scale
        flat = xf.reshape(-1, xf.shape[-1])
        m = self.cfg.momentum if update else 0.0
        self.in_mu = (1 - m) * self.in_mu + m * flat.mean(0)
        self.in_var = (1 - m) * self.in_var + m * ((flat - self.in_mu) ** 2).mean(0)
        out = (xf - self.in_mu) * np.sqrt((pm.input_var + 1e-8) / (self.in_var + 1e-8)) + pm.input_mean
        if x.dtype == np.int8:
            v = out / pm.input_scale
            return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + pm.input_zp, -128, 127).astype(np.int8)
        return out.astype(x.dtype)

    def _adapt(self, k: int, zq, aq, pq, lq) -> None:
        q = self.pm.quant[k]
        s = self.state[k]
        z = _deq(zq, q.z).reshape(-1, zq.shape[-1])
        norm = "norm" in self.parts
        if norm:
            m = self.cfg.momentum
            s.mu = (1 - m) * s.mu + m * z.mean(0)
            s.var = (1 - m) * s.var + m * (((z - s.mu) ** 2).mean(0))
        if "entropy" in self.parts:
            a = _deq(aq, q.a).reshape(1, -1, aq.shape[-1])
            p = _deq(pq, q.p).reshape(1, -1)
            logits = _deq(lq, q.logits).reshape(1, -1)
            if norm:
                src = self.source[k]
                zn = (z - s.mu) * np.sqrt((src.var + 1e-6) / (s.var + 1e-6)) + src.mu
            else:
                zn = z
            f = Forward(x=None, z=zn[None], u=a, a=a, p=p, logits=logits)
            g = backward(s.params, f, entropy_grad(logits))
            lr = self.cfg.lr
            s.params.gamma = s.params.gamma - lr * g.gamma
            s.params.beta = s.params.beta - lr * g.beta
            s.params.fc_w = s.params.fc_w - lr * g.fc_w
            s.params.fc_b = s.params.fc_b - lr * g.fc_b
            self.updates += 1
        self._apply(k)

    def _snapshot(self):
        return ([h.copy() for h in self.state], self.in_mu.copy(), self.in_var.copy())

    def _restore(self, snap) -> None:
        self.state = [h.copy() for h in snap[0]]
        self.in_mu, self.in_var = snap[1].copy(), snap[2].copy()
        for k in range(len(self.state)):
            self._apply(k)

    def _source_snapshot(self):
        return ([h.copy() for h in self.source], self.pm.input_mean.copy(), self.pm.input_var.copy())

    def _resume(self) -> None:
        self._recent_pred.clear()
        self._recent_h.clear()
        self._shadow.clear()

    # -- safety -------------------------------------------------------------------------------
    def _add_probe(self, k: int, feat: np.ndarray) -> None:
        flat = feat.reshape(-1, feat.shape[-1]).copy()
        shuffled = flat[self._rng.permutation(len(flat))]
        shuffled = shuffled[:, self._rng.permutation(flat.shape[1])].reshape(feat.shape)
        cur = [self._effective(j) for j in range(len(self.state))]
        self.om.set_head(k, self.source[k].params)
        self._probe_source.append(self._probe_entropy(k, shuffled))
        self.om.set_head(k, cur[k])
        self._probes.append((k, shuffled))

    def _health(self, st: Step) -> None:
        self._recent_pred.append(st.prediction)
        self._recent_h.append(st.entropy)
        if len(self._recent_pred) < self.cfg.window:
            return
        marg = _marginal(self._recent_pred, self.pm.n_classes)
        mean_h = float(np.mean(self._recent_h))
        narrowing = marg < self.cfg.narrow * np.log(self.pm.n_classes) and \
            (self._prev_h is None or mean_h < self._prev_h)
        confident = False
        if self._probes:
            ph = np.mean([self._probe_entropy(k, f) for k, f in self._probes])
            confident = ph < self.cfg.probe_ratio * np.mean(self._probe_source)
        worse = False
        if len(self._shadow) >= 10:
            # Label-free evidence, on the same samples: adapting narrows the predictions, or
            # raises the entropy without widening them. (Entropy alone misleads: under a shift
            # the source model is confidently wrong, e.g. on low-contrast digits.)
            sh = np.asarray(self._shadow)
            d_h = sh[:, 0].mean() - sh[:, 1].mean()
            d_marg = _marginal(sh[:, 2], self.pm.n_classes) - _marginal(sh[:, 3], self.pm.n_classes)
            worse = d_marg < -self.cfg.narrow_margin or (d_h > self.cfg.worse_margin and d_marg < self.cfg.widen_margin)
        if worse:
            # adapting does worse than not adapting on this stream: back to the source heads,
            # adaptation off for a while (twice as long each time it happens again)
            self.rollbacks += 1
            self._restore(self._source_snapshot())
            self.good = self._snapshot()
            self._paused, self._pause_len = self._pause_len, self._pause_len * 2
        elif narrowing or confident:
            self._fails += 1
            self.rollbacks += 1
            self._restore(self.good if self._fails == 1 else self._source_snapshot())
            if self._fails > 1:
                self.good = self._snapshot()
                self._fails = 0
        else:
            self._fails = 0
            self.good = self._snapshot()
        if worse or len(self._shadow) >= 10:
            self._shadow.clear()
        self._prev_h = mean_h
        self._recent_pred.clear()
        self._recent_h.clear()


def _marginal(pred, n_classes: int) -> float:
    """Entropy of the histogram of predictions (a class-balanced stream: log n_classes)."""
    hist = np.bincount(np.asarray(pred, np.int64), minlength=n_classes) / max(1, len(pred))
    hist = hist[hist > 0]
    return float(-(hist * np.log(hist)).sum())


def run_stream(pm: PreparedModel, x: np.ndarray, cfg: AdaptConfig | None = None, on_step=None) -> Session:
    s = Session(pm, cfg)
    for i, xi in enumerate(x):
        st = s.step(xi)
        if on_step is not None:
            on_step(i, st, s)
    return s
