"""Every table of figures in README.md and docs/*.md is written by scripts/figures.py from a
benchmark script's output and names the command that made it. Running the benchmarks is
slow (QEMU), so this checks only the bookkeeping; `scripts/figures.py --check` compares the
tables with a fresh run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def figures():
    spec = importlib.util.spec_from_file_location("figures", REPO / "scripts" / "figures.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["figures"] = mod      # its dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules["figures"]
    return mod


def test_every_figure_block_is_known_and_names_its_command():
    f = figures()
    found, problems, unnamed = f.find_blocks()
    assert not problems and not unnamed, problems + unnamed
    names = {b.name for b in found}
    assert {"demo", "kernels", "memory", "patch", "link"} <= names
    for b in found:
        body = b.path.read_text().splitlines()[b.begin + 1:b.end]
        assert body[-1] == f.BLOCKS[b.name].made_by(b.name)
        assert any(line.startswith("|") for line in body), f"{b.name}: no table"
        for source in f.BLOCKS[b.name].sources:
            script = REPO / f.SOURCES[source][0]
            assert script.is_file() and '"--json"' in script.read_text(), f"{script} prints no JSON"
            assert f.command(source) in body[-1]


def test_markers_that_do_not_pair_up_are_reported(tmp_path):
    f = figures()
    doc = tmp_path / "x.md"
    doc.write_text("<!-- figures:kernels begin -->\n| a |\n<!-- figures:nope begin -->\n<!-- figures:memory end -->\n")
    f.REPO = tmp_path
    _, problems, _ = f.find_blocks([doc])
    text = "\n".join(problems)
    assert "no block named 'nope'" in text and "figures:memory ends without its begin" in text
    assert "begins inside figures:kernels" in text and "never ends" in text


def test_counts_are_written_with_three_significant_figures():
    f = figures()
    assert [f.count3(v) for v in (5_512, 367_912, 1_160_174, 1_503_694, 76_900_123, 33_876_336)] == \
        ["5.51 K", "368 K", "1.16 M", "1.50 M", "76.9 M", "33.9 M"]
