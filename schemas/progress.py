"""One progress bar style for all long work: count, rate (items/s), elapsed and remaining time.
It writes to stderr, so stage output on stdout stays clean, and it also renders in DVC logs."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, named by the task's `unit` field (e.g. `units/s`)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "it")
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} {unit}/s" if speed else f"- {unit}/s", style="cyan")


def progress_bar(*extra_columns: ProgressColumn) -> Progress:
    """Use as a context manager; `add_task(desc, total=N, unit="units")`. Extra columns may show
    further rates from task fields, e.g. `TextColumn("{task.fields[tok_rate]}")`."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
