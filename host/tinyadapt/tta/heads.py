"""Exit heads in float: 1x1 conv with weight standardisation, a learnable per-channel affine,
ReLU, global average pooling, fully connected. Training (offline, cross-entropy, Adam) and the
gradients of the entropy the adaptation minimises, both in NumPy.

Shapes: features x [N, P, C] (P = H * W positions of the cut tensor), conv weight [M, C],
affine gamma/beta [M], FC weight [K, M], bias [K].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EPS = 1e-5


def standardise(w: np.ndarray) -> np.ndarray:
    """Weight standardisation per output channel: (w - mean) / std over the input channels."""
    mu = w.mean(1, keepdims=True)
    sd = np.sqrt(w.var(1, keepdims=True) + EPS)
    return (w - mu) / sd


def _standardise_backward(w: np.ndarray, g_hat: np.ndarray) -> np.ndarray:
    w_hat = standardise(w)
    sd = np.sqrt(w.var(1, keepdims=True) + EPS)
    return (g_hat - g_hat.mean(1, keepdims=True) - w_hat * (g_hat * w_hat).mean(1, keepdims=True)) / sd


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def entropy(logits: np.ndarray) -> np.ndarray:
    p = softmax(logits)
    return -(p * np.log(np.maximum(p, 1e-12))).sum(-1)


@dataclass
class HeadParams:
    conv: np.ndarray     # [M, C] raw (standardised when used)
    gamma: np.ndarray    # [M]
    beta: np.ndarray     # [M]
    fc_w: np.ndarray     # [K, M]
    fc_b: np.ndarray     # [K]

    def copy(self) -> "HeadParams":
        return HeadParams(*(a.copy() for a in (self.conv, self.gamma, self.beta, self.fc_w, self.fc_b)))


@dataclass
class Forward:
    x: np.ndarray
    z: np.ndarray      # conv output [N, P, M]
    u: np.ndarray      # affine output before ReLU
    a: np.ndarray
    p: np.ndarray      # pooled [N, M]
    logits: np.ndarray


def forward(h: HeadParams, x: np.ndarray) -> Forward:
    z = x @ standardise(h.conv).T
    u = z * h.gamma + h.beta
    a = np.maximum(u, 0.0)
    p = a.mean(1)
    return Forward(x, z, u, a, p, p @ h.fc_w.T + h.fc_b)


@dataclass
class Grads:
    gamma: np.ndarray
    beta: np.ndarray
    fc_w: np.ndarray
    fc_b: np.ndarray
    conv: np.ndarray | None = None


def backward(h: HeadParams, f: Forward, d_logits: np.ndarray, conv: bool = False) -> Grads:
    """Gradients of sum_n loss_n given d loss / d logits [N, K]. With `conv`, the conv weight's too."""
    g_fc_w = d_logits.T @ f.p
    g_fc_b = d_logits.sum(0)
    d_p = d_logits @ h.fc_w
    d_u = (d_p[:, None, :] / f.a.shape[1]) * (f.u > 0)
    g = Grads(gamma=(d_u * f.z).sum((0, 1)), beta=d_u.sum((0, 1)), fc_w=g_fc_w, fc_b=g_fc_b)
    if conv:
        d_z = d_u * h.gamma
        g_hat = d_z.reshape(-1, d_z.shape[-1]).T @ f.x.reshape(-1, f.x.shape[-1])
        g.conv = _standardise_backward(h.conv, g_hat)
    return g


def entropy_grad(logits: np.ndarray) -> np.ndarray:
    """d H / d logits for H = -sum p log p: -p (log p + H)."""
    p = softmax(logits)
    logp = np.log(np.maximum(p, 1e-12))
    h = -(p * logp).sum(-1, keepdims=True)
    return -p * (logp + h)


@dataclass
class TrainConfig:
    width: int = 0          # M; 0: min(C, 32)
    epochs: int = 60
    batch: int = 64
    lr: float = 1e-2
    weight_decay: float = 1e-4
    seed: int = 0
    history: list = field(default_factory=list)


def init_head(c: int, m: int, k: int, rng: np.random.Generator) -> HeadParams:
    return HeadParams(conv=rng.normal(0, 1, (m, c)), gamma=np.full(m, 1.0 / np.sqrt(c)), beta=np.zeros(m),
                      fc_w=rng.normal(0, np.sqrt(2.0 / m), (k, m)), fc_b=np.zeros(k))


def train_head(x: np.ndarray, y: np.ndarray, n_classes: int, cfg: TrainConfig) -> HeadParams:
    """Cross-entropy training with Adam on features x [N, P, C] (the frozen backbone's
    dequantized int8 activations at the cut)."""
    rng = np.random.default_rng(cfg.seed)
    x = x.astype(np.float32)
    c = x.shape[2]
    m = cfg.width or min(c, 32)
    h = init_head(c, m, n_classes, rng)
    names = ("conv", "gamma", "beta", "fc_w", "fc_b")
    mom = {n: np.zeros_like(getattr(h, n)) for n in names}
    vel = {n: np.zeros_like(getattr(h, n)) for n in names}
    step = 0
    onehot = np.eye(n_classes)[y]
    for epoch in range(cfg.epochs):
        lr = cfg.lr * 0.5 * (1 + np.cos(np.pi * epoch / cfg.epochs))
        order = rng.permutation(len(x))
        for s in range(0, len(x), cfg.batch):
            idx = order[s:s + cfg.batch]
            f = forward(h, x[idx])
            d = (softmax(f.logits) - onehot[idx]) / len(idx)
            g = backward(h, f, d, conv=True)
            step += 1
            for n in names:
                gn = getattr(g, n) + cfg.weight_decay * getattr(h, n)
                mom[n] = 0.9 * mom[n] + 0.1 * gn
                vel[n] = 0.999 * vel[n] + 0.001 * gn * gn
                mh = mom[n] / (1 - 0.9 ** step)
                vh = vel[n] / (1 - 0.999 ** step)
                setattr(h, n, getattr(h, n) - lr * mh / (np.sqrt(vh) + 1e-8))
    return h
