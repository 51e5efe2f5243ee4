"""What a long call is doing, for whoever wants to show it.

Library calls that can take seconds (building firmware, starting QEMU, loading a model,
running a stack of samples) take an `activity` and report their steps to it; they never
print. The default `QUIET` shows nothing. The CLI passes a `TerminalActivity`: one line on
stderr, a spinner with the current step and, while samples run, a bar, only when stderr is
a terminal and neither --json nor -q was given.
"""

from __future__ import annotations

import shutil
import sys


class Activity:
    def step(self, text: str) -> None:
        """A new step started (e.g. "building the qemu-an386 firmware")."""

    def count(self, done: int, total: int) -> None:
        """`done` of `total` items (samples) are finished."""


QUIET = Activity()


class TerminalActivity(Activity):
    """A transient spinner line on stderr (rich), sized to the terminal."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()
        self._progress = None
        self._task = None

    def __enter__(self):
        if not self.enabled:
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn
        from rich.text import Text

        from tinyadapt.report.console import stderr

        class WhenCounting(ProgressColumn):   # the bar and N/M only once there is something to count
            def __init__(self, column):
                super().__init__()
                self.column = column

            def render(self, task):
                return Text("") if task.total is None else self.column.render(task)

        width = shutil.get_terminal_size().columns
        bar = BarColumn(bar_width=max(10, min(40, width - 60)))
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), WhenCounting(bar),
                                  WhenCounting(MofNCompleteColumn()), console=stderr, transient=True)
        self._progress.start()
        self._task = self._progress.add_task("", total=None)
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def step(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text + "...", total=None, completed=0)
            self._progress.refresh()    # steps are few and each may block for seconds: show it now

    def count(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=total, completed=done)
