"""An adaptation session over a stream, sample by sample, on the host target.

Everything a device would run runs in the C engine. Without entropy minimisation (modes none,
input, norm, input+norm) the whole loop is engine/ta_tta.c's ta_tta_adapt_t, exactly what the
device runs for ADAPT_SELECT mode 1-3: the input statistics, the heads' statistics folded into
their int8 affine (engine overlays), the source comparisons and the health check with its
rollbacks. With entropy minimisation the step is the trainer of engine/ta_train.c
(TA_LOSS_ENTROPY with QAS, one trainer per head over the head's TRAIN blob) and the rest of the
loop (input statistics, health check, probes) is the Python below, host only.

Adaptation parts (a mode joins them with "+"):
  input    per input channel, the stream's running mean / variance are mapped back to the
           source data's (a sensor's gain and offset drift, an image's contrast)
  norm     per head, the running statistics of the conv output replace the source's in the
           affine (weight standardisation keeps the heads batch-agnostic; this is the batch-1
           version of re-estimating batch-norm statistics)
  entropy  entropy minimisation of every traversed head's affine and FC (TinyTTA); not with norm
Safety: every `window` samples a health check looks for collapse (the predictions narrowing to
few classes while the entropy falls, or the heads growing confident on shuffled inputs) and
for "adapting does worse than not adapting" (a share of the samples also runs through the
source model: adapted predictions narrower than the source's, or more uncertain without being
wider). Collapse rolls back to the last good state (to the source when that fails again);
"worse" rolls back to the source and pauses adaptation (twice as long each time). Rollbacks
are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyadapt.tta.model import OpenModel, PreparedModel
from tinyadapt.tta.runner import HeadNorm, entropy_int8

PARTS = ("input", "norm", "entropy")
MODES = ("none", "input", "norm", "entropy", "input+norm", "input+entropy")
DEFAULT_MODE = "input+norm"


@dataclass
class AdaptConfig:
    mode: str = DEFAULT_MODE
    lr: float = 2e-4             # entropy minimisation's SGD step
    momentum: float = 0.05       # EMA weight of one sample's statistics
    window: int = 50             # samples per health check
    entropy_window: int = 15     # ... with entropy minimisation, which can collapse within a few steps
    narrow: float = 0.5          # collapse: prediction-histogram entropy below narrow * log(classes) ...
    probe_ratio: float = 0.5     # ... or shuffled-input entropy below probe_ratio * the source heads'
    shadow_rate: float = 0.3     # share of samples also run through the source model for the check
    min_source: int = 10         # source comparisons a "worse" verdict needs (5 with entropy)
    early_worse: bool = False    # judge "worse" as soon as min_source comparisons are in (C loop)
    probation: bool = True       # the source model answers while the adapted statistics are unproven
                                 # and off the source's (C loop; docs/TTA.md, "Safety")
    probe_share: float = 0.25    # ... on this share of the channels, or after a comparison disagreed
    worse_margin: float = 0.05   # "worse": mean entropy above the source model's by this (nats) ...
    widen_margin: float = 0.1    # ... unless the prediction histogram's entropy widened by this,
    narrow_margin: float = 0.05  # or that histogram entropy narrowed by this
    pause: int = 200             # samples adaptation stays off after a "worse" rollback
    dead_zone: float = 0.1       # statistics within this of the source's (mean: in source std, std:
                                 # relative) count as unshifted: no-op on the source distribution
    max_drift: float = 0.3       # entropy: heads whose int8 parameters moved further than this
                                 # (mean |change| / mean |source value|) roll back at once
    seed: int = 0


@dataclass
class Step:
    exit: int
    prediction: int
    entropy: float
    macs: int


def _marginal(pred, n_classes: int) -> float:
    """Entropy of the histogram of predictions (log n_classes on a class-balanced stream)."""
    hist = np.bincount(np.asarray(pred, np.int64), minlength=n_classes) / max(1, len(pred))
    hist = hist[hist > 0]
    return float(-(hist * np.log(hist)).sum())


def parse_mode(mode: str) -> set[str]:
    parts = set() if mode == "none" else set(mode.split("+"))
    if not parts <= set(PARTS) or ("norm" in parts and "entropy" in parts):
        raise ValueError(f"unknown adaptation mode {mode!r} (one of: {', '.join(MODES)})")
    return parts


class Session:
    def __init__(self, pm: PreparedModel, cfg: AdaptConfig | None = None):
        self.pm, self.cfg = pm, cfg or AdaptConfig()
        self.parts = parse_mode(self.cfg.mode)
        self.om: OpenModel = pm.open()
        # without entropy minimisation the whole loop is the device's C code (ta_tta_adapt_t)
        self.in_c = "entropy" not in self.parts
        self.shadow = pm.open() if self.parts and not self.in_c else None
        self.trainers = pm.trainers() if "entropy" in self.parts else None
        if self.trainers:
            self._slots = [[(L.filter, L.bias) for L in plan.updated_layers] for plan in pm.train_plans()]
            self._src_params = [self._params_of(k) for k in range(len(self.trainers))]
        n = len(pm.exits)
        # "norm": the device's C code keeps the statistics and folds them into the affine's
        # overlays (engine/ta_tta.c), so host and device adapt identically
        self.norms = [HeadNorm(self.om.heads[k], pm, k, self.cfg.momentum, self.cfg.dead_zone)
                      for k in range(n)] if "norm" in self.parts else None
        self.in_mu, self.in_var = pm.input_mean.copy(), pm.input_var.copy()
        self.good = self._snapshot()
        self.rollbacks = self.updates = 0
        self._fails = self._paused = 0
        self._pause_len = self.cfg.pause
        self._rng = np.random.default_rng(self.cfg.seed)
        self._recent_pred: list[int] = []
        self._recent_h: list[float] = []
        self._prev_h: float | None = None
        self._probes: list[tuple[int, np.ndarray]] = []
        self._probe_source: list[float] = []
        self._shadow: list[tuple[float, float, int, int]] = []
        self.steps: list[Step] = []
        self.adapter = None
        if self.in_c:
            from tinyadapt.tta.runner import Adapter

            self.adapter = Adapter(self.om.runner(), pm, self.norms, "input" in self.parts, self.cfg)

    # -- state --------------------------------------------------------------------------------
    def _zone(self, mu, var, src_mu, src_var):
        """Per channel, the stream's statistics, or the source's where they differ by less than
        the dead zone (the EMA's own noise on unshifted data)."""
        sd = np.sqrt(src_var + 1e-12)
        same = (np.abs(mu - src_mu) < self.cfg.dead_zone * sd) & \
            (np.abs(np.sqrt(var + 1e-12) / sd - 1) < self.cfg.dead_zone)
        return np.where(same, src_mu, mu), np.where(same, src_var, var)

    def _snapshot(self):
        return ([n.stats() for n in self.norms] if self.norms else None, None, self.in_mu.copy(), self.in_var.copy(),
                [t.params() for t in self.trainers] if self.trainers else None)

    def _restore(self, snap) -> None:
        if self.norms:
            for n, (mu, var) in zip(self.norms, snap[0]):
                n.set_stats(mu, var)
        self.in_mu, self.in_var = snap[2].copy(), snap[3].copy()
        if self.trainers:
            for t, p in zip(self.trainers, snap[4]):
                t.load_params(p)

    def _restore_source(self) -> None:
        if self.norms:
            for k, n in enumerate(self.norms):
                n.set_stats(self.pm.z_mean[k], self.pm.z_var[k])
        self.in_mu, self.in_var = self.pm.input_mean.copy(), self.pm.input_var.copy()
        if self.trainers:
            for t in self.trainers:
                t.reset()

    def _params_of(self, k: int) -> np.ndarray:
        t = self.trainers[k]
        return np.concatenate([t.tensor(i).astype(np.float64).ravel() for pair in self._slots[k] for i in pair])

    def _drifted(self, k: int) -> bool:
        src = self._src_params[k]
        return float(np.abs(self._params_of(k) - src).mean()) > self.cfg.max_drift * float(np.abs(src).mean())

    def _pause(self) -> None:
        self._paused, self._pause_len = self._pause_len, self._pause_len * 2

    def head_params(self) -> bytes:
        """The adapted heads' parameters as the device persists them (TTA tag of the store)."""
        if self.trainers:
            return b"".join(t.params() for t in self.trainers)
        return self.om.head_params_bytes()

    # -- one head -----------------------------------------------------------------------------
    def _head(self, om: OpenModel, k: int, feat: np.ndarray, adapt: bool):
        """(entropy, prediction, conv output) of head k on `feat`; adapts it when asked."""
        if adapt and self.trainers:
            h, pred, _ = self.trainers[k].step(feat, -1, self.cfg.lr, "entropy")
            self.updates += 1
            if self._drifted(k):
                # a trust region: one runaway step must not wait for the next health check
                self.rollbacks += 1
                self._restore_source()
                self.good = self._snapshot()
                self._pause()
            return h, pred, None
        eng, s = om.heads[k], self.pm.slots[k]
        eng.write_tensor(eng.info.inputs[0], feat)
        eng.invoke_ops(0, 1)
        zq = eng.tensor(s.z)
        eng.invoke_ops(1, len(eng.info.ops))
        lq = eng.tensor(eng.info.outputs[0])
        h, pred = entropy_int8(lq, *self.pm.quant[k].logits)
        return h, pred, zq

    def _probe_entropy(self, k: int, feat: np.ndarray, source: bool = False) -> float:
        if self.trainers and not source:
            return self.trainers[k].step(feat, -1, 0.0, "entropy")[0]
        om = self.shadow if source else self.om
        return entropy_int8(om.heads[k].invoke([feat])[0], *self.pm.quant[k].logits)[0]

    # -- the stream ---------------------------------------------------------------------------
    def step(self, x: np.ndarray) -> Step:
        if self.adapter is not None:
            r = self.adapter.step(x)
            self.rollbacks, self.updates = self.adapter.rollbacks, self.adapter.updates
            st = Step(r.exit, r.prediction, r.entropy, r.macs)
            self.steps.append(st)
            return st
        active = bool(self.parts) and self._paused == 0
        xin = self._normalise_input(x, update=active) if "input" in self.parts and self._paused == 0 else x
        st = self._forward(self.om, xin, adapt=active)
        if active and self._rng.random() < self.cfg.shadow_rate:
            # the same sample through the source model (source heads, raw input): evidence for
            # "is adapting still better than not adapting"
            shadow = self._forward(self.shadow, x, adapt=False)
            st.macs += shadow.macs
            self._shadow.append((st.entropy, shadow.entropy, st.prediction, shadow.prediction))
        self.steps.append(st)
        if self._paused:
            self._paused -= 1
            if self._paused == 0:
                self._recent_pred.clear()
                self._recent_h.clear()
                self._shadow.clear()
        elif self.parts:
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
            use_trainer = adapt or (self.trainers is not None and om is self.om and self._paused == 0)
            h, pred, zq = self._head(om, k, feat, adapt=use_trainer and adapt)
            macs += ex["macs_backbone"] + ex["macs_head"]
            if adapt:
                if "norm" in self.parts:
                    self._update_stats(k, zq)
                if self.trainers and k == 0 and len(self._probes) < 8 and self._rng.random() < 0.1:
                    self._add_probe(k, feat)
            if h < ex["threshold"] or k == len(pm.exits) - 1:
                return Step(k, pred, h, macs)
        raise AssertionError("the last exit always answers")

    def _normalise_input(self, x: np.ndarray, update: bool = True) -> np.ndarray:
        pm = self.pm
        xf = x.astype(np.float64) if x.dtype != np.int8 else (x.astype(np.float64) - pm.input_zp) * pm.input_scale
        flat = xf.reshape(-1, xf.shape[-1])
        m = self.cfg.momentum if update else 0.0
        self.in_mu = (1 - m) * self.in_mu + m * flat.mean(0)
        self.in_var = (1 - m) * self.in_var + m * ((flat - self.in_mu) ** 2).mean(0)
        mu, var = self._zone(self.in_mu, self.in_var, pm.input_mean, pm.input_var)
        out = (xf - mu) * np.sqrt((pm.input_var + 1e-8) / (var + 1e-8)) + pm.input_mean
        if x.dtype == np.int8:
            v = out / pm.input_scale
            return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + pm.input_zp, -128, 127).astype(np.int8)
        return out.astype(x.dtype)

    def _update_stats(self, k: int, zq: np.ndarray) -> None:
        self.norms[k].update(zq)
        self.updates += 1

    # -- safety -------------------------------------------------------------------------------
    def _add_probe(self, k: int, feat: np.ndarray) -> None:
        flat = feat.reshape(-1, feat.shape[-1])
        shuffled = flat[self._rng.permutation(len(flat))][:, self._rng.permutation(flat.shape[1])]
        shuffled = np.ascontiguousarray(shuffled).reshape(feat.shape)
        self._probe_source.append(self._probe_entropy(k, shuffled, source=True))
        self._probes.append((k, shuffled))

    def _health(self, st: Step) -> None:
        self._recent_pred.append(st.prediction)
        self._recent_h.append(st.entropy)
        if len(self._recent_pred) < (self.cfg.entropy_window if self.trainers else self.cfg.window):
            return
        marg = _marginal(self._recent_pred, self.pm.n_classes)
        mean_h = float(np.mean(self._recent_h))
        worse, d_marg = False, None
        if len(self._shadow) >= (5 if self.trainers else self.cfg.min_source):
            # Label-free, on the same samples. Entropy alone misleads: under a shift the source
            # model is often confidently wrong (low-contrast digits all become one class).
            sh = np.asarray(self._shadow)
            d_h = sh[:, 0].mean() - sh[:, 1].mean()
            d_marg = _marginal(sh[:, 2], self.pm.n_classes) - _marginal(sh[:, 3], self.pm.n_classes)
            # the same answers on every compared sample: adapting cannot have done worse there
            worse = bool((sh[:, 2] != sh[:, 3]).any()) and (
                (d_marg < -self.cfg.narrow_margin and d_h > -self.cfg.worse_margin) or
                (d_h > self.cfg.worse_margin and d_marg < self.cfg.widen_margin))
            self._shadow.clear()
        # collapse: predictions narrow to few classes while the entropy falls, and (when the
        # source model ran on some of the same samples) narrower than the source's: a shift can
        # narrow the source model's predictions by itself
        narrowing = marg < self.cfg.narrow * np.log(self.pm.n_classes) and \
            (self._prev_h is None or mean_h < self._prev_h) and (d_marg is None or d_marg < 0)
        confident = False
        if self._probes and self.trainers:   # the signature of entropy minimisation gone wrong
            ph = np.mean([self._probe_entropy(k, f) for k, f in self._probes])
            confident = ph < self.cfg.probe_ratio * np.mean(self._probe_source)
        if worse:
            self.rollbacks += 1
            self._restore_source()
            self.good = self._snapshot()
            self._pause()
        elif narrowing or confident:
            # collapse: back to the last good state (the source when that collapses again), and
            # adaptation pauses like after "worse"
            self._fails += 1
            self.rollbacks += 1
            if self._fails == 1:
                self._restore(self.good)
            else:
                self._restore_source()
                self.good = self._snapshot()
                self._fails = 0
            self._pause()
        else:
            self._fails = 0
            self.good = self._snapshot()
        self._prev_h = mean_h
        self._recent_pred.clear()
        self._recent_h.clear()


def run_stream(pm: PreparedModel, x: np.ndarray, cfg: AdaptConfig | None = None, on_step=None) -> Session:
    s = Session(pm, cfg)
    for i, xi in enumerate(x):
        st = s.step(xi)
        if on_step is not None:
            on_step(i, st, s)
    return s
