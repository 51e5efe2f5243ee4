"""The training report: loss and accuracy curves (PNG, or an HTML page embedding it)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path


def _figure(r: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    losses = np.asarray(r["losses"], dtype=float)
    if len(losses):
        w = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        a.plot(np.arange(len(losses)), losses, color="#cccccc", lw=0.6, label="per step")
        a.plot(np.arange(len(smooth)) + w - 1, smooth, color="#3b75af", label=f"mean of {w}")
    a.set_xlabel("step")
    a.set_ylabel("loss")
    a.set_title("training loss")
    a.legend(fontsize=8)
    ep = [0] + [e["epoch"] for e in r["epochs"]]
    b.plot(ep, [100 * r["accuracy_before"]] + [100 * e["eval_accuracy"] for e in r["epochs"]], "o-",
           color="#d9822b", label="eval")
    b.plot(ep[1:], [100 * e["train_accuracy"] for e in r["epochs"]], "s--", color="#3b75af",
           label="train (during the epoch)")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy (%)")
    b.set_title(f"{Path(r['model']).name}: {100 * r['accuracy_before']:.1f} % -> {100 * r['accuracy_after']:.1f} %")
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _png(r: dict) -> bytes:
    import matplotlib.pyplot as plt

    fig = _figure(r)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_report(r: dict, path: str | Path) -> None:
    """PNG or HTML by the file's extension."""
    from tinyadapt.cli.files import atomic_write

    png = _png(r)
    if str(path).lower().endswith((".html", ".htm")):
        e = html.escape
        rows = "".join(f"<tr><td>{x['epoch']}</td><td>{x['loss']:.4f}</td><td>{100 * x['train_accuracy']:.2f}</td>"
                       f"<td>{100 * x['eval_accuracy']:.2f}</td></tr>" for x in r["epochs"])
        scheme = r.get("scheme", {})
        doc = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tinyadapt train: {e(str(r['model']))}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head><body>
<h1>tinyadapt train</h1>
<p>Model <code>{e(str(r['model']))}</code>, target {e(r['target'])}, {r['steps']} steps,
learning rate {r['learning_rate']}. Accuracy on the evaluation set:
<b>{100 * r['accuracy_before']:.2f} % before, {100 * r['accuracy_after']:.2f} % after</b>.</p>
<p>Update scheme: biases of the last {scheme.get('bias_depth')} layers; weights
{e(', '.join(f"layer {x['index']} x{x['channel_ratio']:g}" for x in scheme.get('layers', [])) or 'none')}.
Training step: {r['peak_sram_bytes'] if r.get('peak_sram_bytes') is not None else 'n/a'} bytes of SRAM
({e(r.get('peak_sram_source', ''))}).</p>
<img alt="curves" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<table><tr><th>epoch</th><th>mean loss</th><th>train acc %</th><th>eval acc %</th></tr>{rows}</table>
</body></html>
"""
        atomic_write(path, doc)
    else:
        atomic_write(path, png)
