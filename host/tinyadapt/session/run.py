"""Running a stack of samples on a target and collecting the outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyadapt.errors import TinyAdaptError


@dataclass
class RunResult:
    outputs: list[np.ndarray]                   # one stacked array per model output
    extra: dict = field(default_factory=dict)   # target-specific figures (instructions, device memory)


TARGETS = ["host", "qemu", "device"]


def run_samples(target: str, blob: bytes, stacks: list[np.ndarray], activity=None, device=None) -> RunResult:
    """Run every sample of `stacks` (one [N, ...] array per model input) on `target`.

    host: the C engine in-process; qemu: the firmware on an emulated board (`device`, a
    tinyadapt.session.device.DeviceOptions, picks the board); device: a flashed board on
    `device.port`. `activity` (tinyadapt.report.activity.Activity) is told the steps and
    the samples done.
    """
    from tinyadapt.report.activity import QUIET

    activity = activity or QUIET
    if target in ("qemu", "device"):
        return _run_on_device(target, blob, stacks, activity, device)
    if target != "host":
        raise TinyAdaptError(f"unknown target '{target}' (targets: {', '.join(TARGETS)})")
    from tinyadapt.engine.host import HostEngine

    engine = HostEngine(blob)
    n = len(stacks[0])
    per_output: list[list[np.ndarray]] = [[] for _ in engine.info.outputs]
    activity.step("running on host")
    for k in range(n):
        outs = engine.invoke([s[k] for s in stacks])
        for j, o in enumerate(outs):
            per_output[j].append(o)
        activity.count(k + 1, n)
    return RunResult(outputs=[np.stack(o) for o in per_output])


def _run_on_device(target: str, blob: bytes, stacks: list[np.ndarray], activity, opts) -> RunResult:
    from dataclasses import replace

    from tinyadapt.report.counters import counter_fields
    from tinyadapt.session.device import DeviceOptions, open_device

    n = len(stacks[0])
    opts = replace(opts or DeviceOptions(), activity=activity)
    with open_device(blob, opts, target=target) as dev:
        per_output: list[list[np.ndarray]] = [[] for _ in dev.blob_info.outputs]
        counts = []
        activity.step(f"running on {dev.board or target}")
        for k in range(n):
            outs, result = dev.run_sample([s[k] for s in stacks])
            counts.append(int(result.instructions))
            for j, o in enumerate(outs):
                per_output[j].append(o)
            activity.count(k + 1, n)
        metrics = dev.metrics()
        extra = {"board": dev.board, "device": dev.info.board, "core": dev.info.core,
                 "counter_unit": dev.counter_unit, **counter_fields(dev.counter_unit, counts),
                 "peak_sram_bytes": metrics.arena_used, "stack_used_bytes": metrics.stack_used,
                 "link": {"retransmits": dev.link.stats.retransmits, "naks": dev.link.stats.naks,
                          "timeouts": dev.link.stats.timeouts}}
        extra.update(dev.extra)
    return RunResult(outputs=[np.stack(o) for o in per_output], extra=extra)
