"""The adaptation report: accuracy over the stream (no adaptation, ours, float TENT), exit rate."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np


def running(correct: np.ndarray, window: int = 50) -> np.ndarray:
    c = np.cumsum(np.insert(correct.astype(np.float64), 0, 0.0))
    idx = np.arange(1, len(correct) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def _figure(r: dict, curves: dict[str, np.ndarray], exits: np.ndarray):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for name, corr in curves.items():
        ax.plot(100 * running(corr), label=f"{name} ({100 * corr.mean():.1f} %)")
    ax.set_ylabel("accuracy, last 50 samples (%)")
    ax.set_title(f"{r['model']} on {r['stream']}")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    for k in range(int(exits.max()) + 1):
        bx.plot(100 * running(exits == k), label=f"exit {k}")
    bx.set_ylabel("exit rate (%)")
    bx.set_xlabel("sample")
    bx.legend(loc="lower left")
    bx.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write_report(path: str | Path, r: dict, curves: dict[str, np.ndarray], exits: np.ndarray) -> None:
    from tinyadapt.cli.files import atomic_write

    import matplotlib.pyplot as plt

    fig = _figure(r, curves, exits)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    if str(path).endswith(".png"):
        atomic_write(path, buf.getvalue())
        return
    img = base64.b64encode(buf.getvalue()).decode()
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in r.items())
    atomic_write(path, f"""<!doctype html><html><head><meta charset="utf-8"><title>tinyadapt adapt</title></head>
<body><h1>Test-time adaptation: {html.escape(r['model'])}</h1><img src="data:image/png;base64,{img}">
<table border="1" cellpadding="4">{rows}</table></body></html>""")
