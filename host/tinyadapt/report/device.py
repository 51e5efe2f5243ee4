"""Device measurements as a table, JSON, and a PNG/HTML report (matplotlib).

`device_report(...)` assembles one dict (schema 1) from HELLO, METRICS, a profiled INVOKE
and, when the model was converted from .tflite, the per-layer MACs of the converter; the
printers and writers below only read that dict. Counts go under the key of the device's
counter unit, `counter_key` ("instructions", "cycles" or "time_ns", see report/counters.py),
and under `count` whatever the unit; `instructions` is null on a device that does not count
instructions (the POSIX port counts nanoseconds).
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path

from tinyadapt.report.console import human_bytes, stdout

log = logging.getLogger(__name__)

JSON_SCHEMA_VERSION = 1


def device_report(info, metrics, *, model: str | None = None, invoke=None, op_names=None, macs=None,
                  link=None, board: str = "", target: str = "") -> dict:
    """info: DeviceInfo; metrics: Metrics; invoke: InvokeResult with a profile (or None);
    op_names / macs: per-op lists from the blob / converter (or None)."""
    from tinyadapt.report.counters import counter_fields, counter_key

    unit = info.counter_unit
    layers = []
    total = invoke.instructions if invoke else 0
    if invoke and invoke.profile:
        for p in invoke.profile:
            name = op_names[p.index] if op_names and p.index < len(op_names) else f"opcode {p.opcode}"
            mac = int(macs[p.index]) if macs and p.index < len(macs) else None
            layers.append({"index": p.index, "op": name, "opcode": p.opcode, "count": int(p.instructions),
                           **counter_fields(unit, int(p.instructions)),
                           "percent": round(100.0 * p.instructions / total, 2) if total else None,
                           "macs": mac, "per_mac": round(p.instructions / mac, 3) if mac else None})
    total_macs = sum(x["macs"] or 0 for x in layers) if layers else (sum(macs) if macs else None)
    return {
        "schema": JSON_SCHEMA_VERSION,
        "model": model,
        "target": target,
        "board": board,
        "device": info.as_dict(),
        "counter_unit": unit,
        "counter_key": counter_key(unit),
        "metrics": metrics.as_dict(),
        "invoke": {"count": int(invoke.instructions), **counter_fields(unit, int(invoke.instructions)),
                   "ops_profiled": int(invoke.n_ops_profiled),
                   "profiled_sum": int(sum(x["count"] for x in layers)),
                   "macs": total_macs, "per_mac": round(invoke.instructions / total_macs, 3) if total_macs else None}
        if invoke else None,
        "layers": layers,
        "link": link.as_dict() if link is not None else None,
    }


def print_report(r: dict) -> None:
    from rich.table import Table

    d, m, unit = r["device"], r["metrics"], r["counter_unit"]
    stdout.print(f"device {d['board']} ({d['core']}), engine {d['engine_version']}, protocol {d['proto_version']}, "
                 f"features: {', '.join(d['features']) or 'none'}")
    if r["layers"]:
        table = Table(title=f"{r['model']}: {unit} per layer (one profiled INVOKE)", title_justify="left")
        for col, just in (("#", "right"), ("op", "left"), (unit, "right"), ("%", "right"), ("MACs", "right"),
                          (f"{unit[:5]}/MAC", "right")):
            table.add_column(col, justify=just)
        for x in r["layers"]:
            table.add_row(str(x["index"]), x["op"], f"{x['count']:,}",
                          f"{x['percent']:.1f}" if x["percent"] is not None else "",
                          f"{x['macs']:,}" if x["macs"] is not None else "",
                          f"{x['per_mac']:.2f}" if x["per_mac"] is not None else "")
        stdout.print(table)
    if r["invoke"]:
        inv = r["invoke"]
        per = f", {inv['per_mac']:.2f} per MAC" if inv["per_mac"] else ""
        stdout.print(f"one inference: {inv['count']:,} {unit}{per} ({inv['profiled_sum']:,} inside the ops)")
    table = Table(title="device counters (METRICS)", title_justify="left")
    table.add_column("counter")
    table.add_column("value", justify="right")
    for key in ("frames_rx", "frames_tx", "crc_errors", "naks_sent", "duplicates", "invokes"):
        table.add_row(key, f"{m[key]:,}")
    table.add_row("arena used / size", f"{human_bytes(m['arena_used'])} / {human_bytes(m['arena_size'])} "
                                       f"({m['arena_used']:,} B)")
    table.add_row("stack used / size", f"{human_bytes(m['stack_used'])} / {human_bytes(m['stack_size'])} "
                                       f"({m['stack_used']:,} B)")
    stdout.print(table)


def _figure(r: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = r["layers"]
    fig, axes = plt.subplots(1, 2, figsize=(12, max(3.0, 0.35 * len(layers) + 1.5)),
                             gridspec_kw={"width_ratios": [3, 1]})
    ax = axes[0]
    if layers:
        labels = [f"{x['index']} {x['op']}" for x in layers][::-1]
        vals = [x["count"] for x in layers][::-1]
        bars = ax.barh(labels, vals, color="#3b75af")
        for bar, x in zip(bars, layers[::-1]):
            note = f" {x['percent']:.1f}%" + (f", {x['per_mac']:.2f}/MAC" if x["per_mac"] else "")
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, note, va="center", fontsize=8)
        ax.set_xlabel(f"{r['counter_unit']} per inference")
        ax.set_title(f"{Path(r['model'] or 'model').name} on {r['device']['board']} ({r['device']['core']})")
        ax.margins(x=0.25)
    else:
        ax.text(0.5, 0.5, "no per-layer profile", ha="center", va="center")
        ax.set_axis_off()
    m = r["metrics"]
    ax = axes[1]
    names = ["arena", "stack"]
    used = [m["arena_used"], m["stack_used"]]
    size = [m["arena_size"], m["stack_size"]]
    ax.bar(names, size, color="#dddddd", label="available")
    ax.bar(names, used, color="#d9822b", label="used (high-water)")
    ax.set_yscale("log")
    ax.set_ylabel("bytes")
    ax.set_title("device memory")
    for i, u in enumerate(used):
        ax.text(i, max(u, 1), f"{u:,} B", ha="center", va="bottom", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_png(r: dict, path: str | Path) -> None:
    from tinyadapt.cli.files import atomic_write

    fig = _figure(r)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    atomic_write(path, buf.getvalue())


def write_html(r: dict, path: str | Path) -> None:
    from tinyadapt.cli.files import atomic_write

    fig = _figure(r)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    img = base64.b64encode(buf.getvalue()).decode()
    e = html.escape
    unit = r["counter_unit"]
    def cell(v, fmt="{:,}"):
        return "" if v is None else fmt.format(v)

    rows = "".join(f"<tr><td>{x['index']}</td><td>{e(x['op'])}</td><td>{x['count']:,}</td>"
                   f"<td>{cell(x['percent'], '{}')}</td><td>{cell(x['macs'])}</td><td>{cell(x['per_mac'], '{}')}</td></tr>"
                   for x in r["layers"])
    metrics = "".join(f"<tr><td>{e(k)}</td><td>{v:,}</td></tr>" for k, v in r["metrics"].items())
    d = r["device"]
    inv = r["invoke"]
    summary = (f"<p>One inference: <b>{inv['count']:,}</b> {e(unit)}"
               + (f", {inv['per_mac']} per MAC" if inv and inv["per_mac"] else "") + "</p>") if inv else ""
    doc = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tinyadapt metrics: {e(str(r['model']))}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} td:nth-child(2),th:nth-child(2){{text-align:left}}</style>
</head><body>
<h1>tinyadapt metrics</h1>
<p>Model <code>{e(str(r['model']))}</code> on <b>{e(d['board'])}</b> ({e(d['core'])}), engine {e(d['engine_version'])},
target {e(r['target'])}; counts are {e(unit)}.</p>
{summary}
<img alt="per-layer profile" src="data:image/png;base64,{img}">
<h2>Per layer</h2>
<table><tr><th>#</th><th>op</th><th>{e(unit)}</th><th>%</th><th>MACs</th><th>per MAC</th></tr>{rows}</table>
<h2>Device counters</h2>
<table><tr><th>counter</th><th>value</th></tr>{metrics}</table>
</body></html>
"""
    atomic_write(path, doc)
