"""What a person sees while ``meridian serve`` or ``node`` migrates a data folder.

``node/data_format.py`` migrates a folder written in an older on-disk format
when it opens it, and reports to a ``MigrationDisplay``; this one prints a
line on stderr when a migration starts and ends, and a rich progress bar for
each step over a big folder (stdout stays the server's: tools read its
first line for the address).  ``install`` puts it in place for the process;
rich is imported only when a bar is shown.
"""

from __future__ import annotations

import sys

from meridian.node import data_format


class _BarProgress(data_format.StepProgress):
    def __init__(self, description: str, total_keys: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )  # fmt: skip
        self._task = self._progress.add_task(f"  {description}", total=total_keys)
        self._progress.start()

    def advance(self, keys: int) -> None:
        self._progress.advance(self._task, keys)

    def close(self) -> None:
        task = self._progress.tasks[0]
        self._progress.update(self._task, total=max(task.completed, 1), completed=task.completed)
        self._progress.stop()


class ConsoleMigrationDisplay(data_format.MigrationDisplay):
    """A line when a migration starts and ends, a bar for each big step (stderr)."""

    def __init__(self, command: str) -> None:
        self._command = command

    def started(self, path: str, found: int, target: int) -> None:
        print(f"meridian {self._command}: migrating data folder {path} from format {found} to {target} "
              "(in place; safe to interrupt, the next start resumes)", file=sys.stderr, flush=True)  # fmt: skip

    def step(self, description: str, total_keys: int) -> data_format.StepProgress:
        return _BarProgress(description, total_keys)

    def finished(self, path: str, target: int, seconds: float) -> None:
        print(f"meridian {self._command}: data folder {path} is now in format {target} ({seconds:.1f} s)",
              file=sys.stderr, flush=True)  # fmt: skip


def install(command: str) -> None:
    """Show this process's migrations on its terminal."""
    data_format.set_display(ConsoleMigrationDisplay(command))
