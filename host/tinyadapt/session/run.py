"""Running a stack of samples on a target and collecting the outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyadapt.errors import TinyAdaptError


@dataclass
class RunResult:
    outputs: list[np.ndarray]                   # one stacked array per model output
    extra: dict = field(default_factory=dict)   # target-specific figures (instructions, device memory)


def run_samples(target: str, blob: bytes, stacks: list[np.ndarray], progress: bool = False) -> RunResult:
    if target != "host":
        raise TinyAdaptError(f"unknown target '{target}'")
    from tinyadapt.engine.host import HostEngine

    engine = HostEngine(blob)
    n = len(stacks[0])
    per_output: list[list[np.ndarray]] = [[] for _ in engine.info.outputs]
    for k in _progress(range(n), n, progress, "running on host"):
        outs = engine.invoke([s[k] for s in stacks])
        for j, o in enumerate(outs):
            per_output[j].append(o)
    return RunResult(outputs=[np.stack(o) for o in per_output])


def _progress(it, total: int, enabled: bool, label: str):
    if not enabled or total < 50:
        yield from it
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from tinyadapt.report.console import stderr

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=total)
        for x in it:
            yield x
            bar.advance(task)
