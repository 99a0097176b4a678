"""CLI command `doctor`: what this machine can run (versions, GPUs, a real translation and training step).
See dataset_builder/cli/commands/__init__.py for the conventions."""

# No `from __future__ import annotations`: typer evaluates the option annotations at registration.
import json
from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.doctor import run_doctor


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("doctor")
    def doctor(
        as_json: Annotated[Path | None, typer.Option("--json", help="also write the report as JSON here")] = None,
        translate: Annotated[bool, typer.Option("--translate/--no-translate",
                                                help="one real smoke translation on the CPU and on each GPU")] = True,
        train: Annotated[bool, typer.Option("--train/--no-train", help="one real LoRA training step")] = True,
    ) -> None:
        """Check the machine before a long run: versions, CUDA devices (torch and CTranslate2), bf16, a real
        smoke translation per GPU and one training step. Exit 1 when a check fails; no GPU is not a failure."""
        report = run_doctor(translate=translate, train=train)
        typer.echo(f"python {report.python}")
        typer.echo("packages: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in report.packages.items()))
        typer.echo(f"GPUs: {report.summary()}")
        for gpu in report.torch_gpus:
            typer.echo(f"  cuda:{gpu['index']} {gpu['name']}, {gpu['memory_gib']} GiB, compute {gpu['capability']}")
        for check in report.checks:
            typer.echo(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        if as_json is not None:
            as_json.parent.mkdir(parents=True, exist_ok=True)
            as_json.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
        typer.echo(f"doctor: {'all checks passed' if report.ok else 'some checks FAILED'}; {report.summary()}")
        if not report.ok:
            raise typer.Exit(1)
