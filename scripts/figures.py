"""The figures in README.md and docs/*.md are the output of the benchmark scripts.

Every table of measured figures sits between two markers and ends with the command that
made it:

    <!-- figures:kernels begin -->
    | model | ... |
    |---|...|
    made by `.venv/bin/python benchmarks/kernels.py --json` (table: `scripts/figures.py kernels`)
    <!-- figures:kernels end -->

The name after `figures:` picks a block below: the scripts it runs (each prints JSON) and
how their JSON becomes the table. This script runs those scripts and rewrites the text
between the markers; nothing else in the files is touched.

    .venv/bin/python scripts/figures.py                 # run every script, rewrite every block
    .venv/bin/python scripts/figures.py kernels demo    # only these blocks
    .venv/bin/python scripts/figures.py --check         # exit 1 when a committed table differs
                                                        # from a fresh run (slow: runs QEMU)
    .venv/bin/python scripts/figures.py --list          # blocks, where they are, their commands
    .venv/bin/python scripts/figures.py --lint          # markers well formed, no script run
    .venv/bin/python scripts/figures.py --json-dir D    # also keep each script's JSON in D/

A script that exits non-zero (outputs that differ, a failed check) stops everything: a table
is never made from a failed run.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
PYTHON = ".venv/bin/python"

# name -> the script and arguments that print its JSON
SOURCES: dict[str, list[str]] = {
    "memory": ["benchmarks/memory.py", "--json"],
    "kernels": ["benchmarks/kernels.py", "--json"],
    "patch": ["benchmarks/patch.py", "--json"],
    "demo": ["scripts/demo.py", "--json"],
    "link": ["benchmarks/link.py", "--json"],
}

MARKER = re.compile(r"<!-- figures:([a-z0-9-]+) (begin|end) -->")


def command(source: str) -> str:
    return " ".join([PYTHON] + SOURCES[source])


# -- formatting ------------------------------------------------------------------------------
def n(v: int) -> str:
    return f"{v:,}"


def pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def count3(v: float) -> str:
    """Three significant figures with K / M: 367,912 -> 368 K, 1,503,694 -> 1.50 M."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if v >= div:
            x = v / div
            return f"{x:.2f} {unit}" if x < 10 else f"{x:.1f} {unit}" if x < 100 else f"{x:.0f} {unit}"
    return f"{v:.0f}"


def table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["---"] * len(header)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


# -- blocks ----------------------------------------------------------------------------------
def render_demo(data: dict) -> list[str]:
    d, p = data["demo"]["digits"], data["demo"]["patch"]
    ref = next(r for r in data["kernels"]["models"] if r["model"] == "digits")["kernels"]["ref"]["total"]
    same = d["accuracy_host"] == d["accuracy_device"]
    acc = (f"{100 * d['accuracy_host']:.2f} % (host and on QEMU)" if same else
           f"{100 * d['accuracy_host']:.2f} % host, {100 * d['accuracy_device']:.2f} % on QEMU")
    identical = d["identical_to_tflm"] and d["device_identical_to_host"]
    mean = d["instructions_mean"]
    dsp = count3(mean) + ("" if d["instructions_min"] == d["instructions_max"] else " on average")
    rows = [
        [f"digits CNN accuracy, {d['samples']} held-out images", acc, f"{100 * d['accuracy_tflm']:.2f} %"],
        ["outputs", f"identical on all {d['samples']}, host and device" if identical else "**DIFFER**", ""],
        ["peak SRAM (activations)", f"{n(d['peak_sram_bytes'])} B; device high-water mark {n(d['device_arena_used'])} B",
         f"{n(d['tflm_arena_head_bytes'])} B arena head"],
        ["instructions per inference, Cortex-M4 (QEMU `-icount`)",
         f"{dsp} with the DSP kernels ({count3(ref)} with the portable reference kernels)", ""],
        [f"MobileNetV2-0.35 144x144 on the STM32F746 budget ({n(p['budget_bytes'])} B for activations)",
         f"{n(p['peak_sram_bytes'])} B patch-based (first {p['split_ops']} ops, "
         f"{p.get('tiles', str(p['grid']) + 'x' + str(p['grid']) + ' tiles')}, "
         f"+{pct(p['mac_overhead'])} MACs), {'bit-exact' if p['bit_exact'] else '**NOT bit-exact**'} on QEMU, "
         f"{count3(p['instructions'])} instructions",
         f"{n(p['tflm_arena_head_bytes'])} B: " + ("does not fit" if p["tflm_arena_head_bytes"] > p["budget_bytes"]
                                                   else "fits")],
    ]
    return table(["", "tinyadapt", "TensorFlow Lite Micro"], rows)


def render_kernels(data: dict) -> list[str]:
    rows = []
    for r in data["kernels"]["models"]:
        ref, dsp = r["kernels"]["ref"]["total"], r["kernels"]["dsp"]["total"]
        macs = max(r["macs"], 1)
        rows.append([r["model"], n(r["macs"]), n(ref), f"{ref / macs:.2f}", n(dsp), f"{dsp / macs:.2f}",
                     f"{ref / dsp:.2f}x", "identical" if r["outputs_identical"] else "**DIFFER**"])
    return table(["model", "MACs", "reference kernels", "per MAC", "DSP kernels", "per MAC", "speed-up", "outputs"],
                 rows, ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---"])


def render_memory(data: dict) -> list[str]:
    rows = []
    for r in data["memory"]:
        if "error" in r:
            rows.append([r["model"], "", "", "not supported: " + r["error"].split(" (supported")[0], "", ""])
            continue
        rows.append([r["model"], str(r["ops"]), n(r["macs"]), n(r["peak_sram_bytes"]), n(r["tflm_head_bytes"]),
                     f"{r['ratio']:.2f}x"])
    return table(["model", "ops", "MACs", "tinyadapt peak SRAM", "TFLM arena head", "TFLM / tinyadapt"], rows,
                 ["---", "---:", "---:", "---:", "---:", "---:"])


def render_patch(data: dict) -> list[str]:
    """Per model: the smallest-peak plan within 15 % estimated instruction overhead, the
    cheapest plan under a budget 2.5x below TFLM's arena, and the smallest with the input
    frame outside SRAM; each with its estimated and measured instruction overhead."""
    rows = []

    def cell(x: dict | None, ratio_to: int) -> list[str]:
        if not x:
            return ["-", "-", "-"]
        ovh = pct(x["estimated_instruction_overhead"]) + " / " + (
            pct(x["qemu_instruction_overhead"]) if "qemu_instruction_overhead" in x else "-")
        return [f"{n(x['peak_sram_bytes'])} ({ratio_to / x['peak_sram_bytes']:.2f}x)",
                f"{x['split_ops']}, {x['tiles']}, +{pct(x['mac_overhead'])} MACs", ovh]

    for r in data["patch"]:
        if "error" in r or "plans" not in r:
            continue
        plans, e = r["plans"], r.get("external")
        same = all(x.get("outputs_identical", True) for x in [*plans.values(), e or {}])
        tight = plans.get("tight")
        rows.append([r["model"] + ("" if same else " **(outputs DIFFER)**"), n(r["tflm_head_bytes"]),
                     n(r["layer_by_layer_bytes"]), *cell(plans.get("smallest"), r["tflm_head_bytes"]),
                     n(r["tight_budget_bytes"]), *cell(tight, r["tflm_head_bytes"]),
                     *cell(e, r["tflm_head_bytes"])])
    out = table(["model", "TFLM arena head", "layer by layer", "smallest (TFLM / it)", "its plan",
                 "instr. overhead est. / measured", "tight budget", "cheapest under it", "its plan",
                 "instr. overhead est. / measured", "frame outside SRAM", "its plan",
                 "instr. overhead est. / measured"], rows,
                ["---", "---:", "---:", "---:", "---", "---:", "---:", "---:", "---", "---:", "---:", "---", "---:"])
    targets = []
    for r in data["patch"]:
        goal = r.get("target")
        if not goal or "plans" not in r:
            continue
        want = f">= {goal['ratio']:g}x below TFLM" + (f", <= {n(goal['limit_bytes'])} B" if goal["limit_bytes"] else "")
        p = r["plans"].get("target")
        if p is None:
            targets.append([r["model"], want, n(r["target_budget_bytes"]), "no plan fits", "-", "-", "**no**"])
            continue
        measured = p.get("qemu_instruction_overhead")
        met = (r["tflm_head_bytes"] / p["peak_sram_bytes"] >= goal["ratio"] and measured is not None
               and measured <= 0.15 and (not goal["limit_bytes"] or p["peak_sram_bytes"] <= goal["limit_bytes"]))
        targets.append([r["model"], want, n(r["target_budget_bytes"]), *cell(p, r["tflm_head_bytes"]),
                        "yes" if met else "**no**"])
    if targets:
        out += ["", "Issue 13's targets, each judged on the plan `tinyadapt plan --budget B` chooses for the "
                "target's budget B (the cheapest estimated plan that fits; met = the ratio, the byte limit and "
                "<= 15 % measured instruction overhead):", ""]
        out += table(["model", "target", "budget B", "chosen plan's peak (TFLM / it)", "its plan",
                      "instr. overhead est. / measured", "met"], targets,
                     ["---", "---", "---:", "---:", "---", "---:", "---"])
    return out


def render_link(data: dict) -> list[str]:
    d = data["link"]
    rows = []
    for r in d["round_trips"]:
        lo, hi = r["instructions_min"], r["instructions_max"]
        count = count3(lo) if count3(lo) == count3(hi) else f"{count3(lo)} to {count3(hi)}"
        rows.append([f"INFER round trip, {r['model']} ({r['input_bytes']} B in, {r['output_bytes']} B out, "
                     f"{count} instructions)", f"{r['median_ms']:.2f} ms median, {r['p90_ms']:.2f} ms p90"])
    c, f = d["stream_clean"], d["stream_faults"]
    rows.append(["stream throughput, digits, clean link", f"{c['samples_per_second']:.0f} samples/s"])
    rows.append([f"stream throughput, digits, {pct(f['rate']).replace('.0 %', ' %')} faults per byte",
                 f"{f['samples_per_second']:.0f} samples/s, "
                 + ("every sample answered once" if f["answered_once"] else f"**{f['device_invokes']} invokes for "
                                                                           f"{f['samples']} samples**")
                 + (", outputs identical" if f["outputs_identical"] else ", **outputs DIFFER**")])
    rows.append(["`LOAD_*` over the QEMU UART (host to device)", f"{d['load']['kib_per_second']:.0f} KiB/s"])
    if d.get("posix_pty"):
        rows.append(["POSIX port over a pty, digits", f"{n(int(d['posix_pty']['samples_per_second']))} samples/s"])
    killed = d["killed_seconds"]
    killed = "under 10 ms" if killed < 0.01 else f"{1000 * killed:.0f} ms" if killed < 1 else f"{killed:.1f} s"
    rows.append(["killed emulator to one-line error", f"{killed}; hung (SIGSTOPped) emulator: "
                                                      f"{d['hung_seconds']:.1f} s"])
    i, ln, m = f["injected"], f["link"], f["device_metrics"]
    text = (f"At {pct(f['rate']).replace('.0 %', ' %')} per byte and {f['samples']} digits samples "
            f"({i['bytes_in'] / 1000:.0f} KB through the proxy): {n(i['dropped'])} bytes dropped, "
            f"{n(i['corrupted'])} corrupted, {n(i['duplicated'])} duplicated and {n(i['frames_duplicated'])} frames "
            f"duplicated; the host retransmitted {n(ln['retransmits'])} times (NAKs {n(ln['naks'])}, corrupt answers "
            f"{n(ln['bad_frames'])}, truncated frames {n(ln['truncated_frames'])}, timeouts {n(ln['timeouts'])}), "
            f"the device counted {n(m['crc_errors'])} CRC errors and answered {n(m['duplicates'])} repeats from its "
            f"cache, and ran {n(m['invokes'])} inferences for {f['samples']} samples.")
    if "load_average_before" in d:
        text += (f" Measured on {d['cpus']} cores with a 1-minute load average of {d['load_average_before']} before "
                 f"and {d['load_average_after']} after: timings vary with the host's load, counts do not.")
    return table(["what", "figure"], rows) + ["", *textwrap.wrap(text, 92)]


@dataclass
class Block:
    sources: list[str]
    render: Callable[[dict], list[str]]
    timed: bool = False     # wall-clock figures: they vary run to run, so --check does not compare them

    def made_by(self, name: str) -> str:
        cmds = " and ".join(f"`{command(s)}`" for s in self.sources)
        return f"made by {cmds} (table: `{PYTHON} scripts/figures.py {name}`)"


BLOCKS: dict[str, Block] = {
    "demo": Block(["demo", "kernels"], render_demo),
    "kernels": Block(["kernels"], render_kernels),
    "memory": Block(["memory"], render_memory),
    "patch": Block(["patch"], render_patch),
    "link": Block(["link"], render_link, timed=True),
}


# -- files -----------------------------------------------------------------------------------
def doc_files() -> list[Path]:
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


@dataclass
class Found:
    path: Path
    name: str
    begin: int      # line index of the begin marker
    end: int        # line index of the end marker


def find_blocks(paths: list[Path] | None = None) -> tuple[list[Found], list[str], list[str]]:
    """Every marker pair in the docs, what is wrong with the markers, and which blocks do not
    end with the line naming their command (not made by this script yet)."""
    found, problems, unnamed = [], [], []
    for path in paths or doc_files():
        lines = path.read_text().splitlines()
        open_at: tuple[str, int] | None = None
        for i, line in enumerate(lines):
            m = MARKER.search(line)
            if not m:
                continue
            name, kind = m.groups()
            where = f"{path.relative_to(REPO)}:{i + 1}"
            if kind == "begin":
                if open_at:
                    problems.append(f"{where}: figures:{name} begins inside figures:{open_at[0]}")
                open_at = (name, i)
                if name not in BLOCKS:
                    problems.append(f"{where}: no block named '{name}' in scripts/figures.py")
            else:
                if not open_at or open_at[0] != name:
                    problems.append(f"{where}: figures:{name} ends without its begin")
                    continue
                found.append(Found(path, name, open_at[1], i))
                open_at = None
        if open_at:
            problems.append(f"{path.relative_to(REPO)}:{open_at[1] + 1}: figures:{open_at[0]} never ends")
    for f in found:
        body = f.path.read_text().splitlines()[f.begin + 1:f.end]
        if f.name in BLOCKS and (not body or body[-1] != BLOCKS[f.name].made_by(f.name)):
            unnamed.append(f"{f.path.relative_to(REPO)}:{f.begin + 1}: figures:{f.name} does not end with "
                           f"'{BLOCKS[f.name].made_by(f.name)}'")
    return found, problems, unnamed


def run_source(source: str, json_dir: Path | None) -> object:
    print(f"running {command(source)} ...", file=sys.stderr, flush=True)
    proc = subprocess.run([sys.executable] + SOURCES[source], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"figures: {command(source)} failed (exit {proc.returncode}): {tail}")
    data = json.loads(proc.stdout)
    if json_dir:
        json_dir.mkdir(parents=True, exist_ok=True)
        (json_dir / f"{source}.json").write_text(proc.stdout)
    return data


def render(name: str, data: dict) -> list[str]:
    block = BLOCKS[name]
    return block.render(data) + ["", block.made_by(name)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("blocks", nargs="*", metavar="BLOCK", help=f"blocks to make (default all: {', '.join(BLOCKS)})")
    ap.add_argument("--check", action="store_true", help="compare with a fresh run instead of rewriting")
    ap.add_argument("--list", action="store_true", help="list the blocks, where they are and their commands")
    ap.add_argument("--lint", action="store_true", help="check the markers only; run nothing")
    ap.add_argument("--from-json", type=Path, metavar="DIR", help="render from DIR/<source>.json instead of running")
    ap.add_argument("--json-dir", type=Path, metavar="DIR", help="keep each script's JSON output in DIR")
    args = ap.parse_args()

    unknown = [b for b in args.blocks if b not in BLOCKS]
    if unknown:
        ap.error(f"no block named {', '.join(unknown)} (blocks: {', '.join(BLOCKS)})")
    found, problems, unnamed = find_blocks()
    if args.lint or args.check:
        problems += unnamed
    if problems:
        for p in problems:
            print(f"figures: {p}", file=sys.stderr)
        if not args.list:
            return 1
    if args.list:
        for f in found:
            print(f"{f.name:<10}{f.path.relative_to(REPO)}:{f.begin + 1}  {BLOCKS[f.name].made_by(f.name)}")
        return 0
    if args.lint:
        print(f"{len(found)} figure blocks, markers and commands in order")
        return 0

    wanted = [f for f in found if not args.blocks or f.name in args.blocks]
    if args.check:
        timed = sorted({f.name for f in wanted if BLOCKS[f.name].timed})
        if timed:
            print(f"figures: not comparing {', '.join(timed)}: wall-clock figures vary run to run", file=sys.stderr)
        wanted = [f for f in wanted if not BLOCKS[f.name].timed]
    sources = sorted({s for f in wanted for s in BLOCKS[f.name].sources})
    if args.from_json:
        data = {s: json.loads((args.from_json / f"{s}.json").read_text()) for s in sources}
    else:
        data = {s: run_source(s, args.json_dir) for s in sources}

    differ = 0
    for path in sorted({f.path for f in wanted}):
        lines = path.read_text().splitlines()
        new = list(lines)
        for f in sorted((f for f in wanted if f.path == path), key=lambda f: -f.begin):
            new[f.begin + 1:f.end] = render(f.name, data)
        if new == lines:
            continue
        differ += 1
        if args.check:
            sys.stdout.writelines(difflib.unified_diff([ln + "\n" for ln in lines], [ln + "\n" for ln in new],
                                                       f"{path.relative_to(REPO)} (committed)",
                                                       f"{path.relative_to(REPO)} (fresh run)"))
        else:
            path.write_text("\n".join(new) + "\n")
            print(f"rewrote {path.relative_to(REPO)}", file=sys.stderr)
    if args.check:
        names = ", ".join(sorted({f.name for f in wanted}))
        print(f"figures: {'tables differ from a fresh run' if differ else 'tables match a fresh run'} ({names})",
              file=sys.stderr)
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
