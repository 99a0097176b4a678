"""CLI command `recipe`: write one of the papers' presets (recipes/*.yaml) as params.yaml.
See dataset_builder/cli/commands/__init__.py for the conventions."""

# No `from __future__ import annotations`: typer evaluates the option annotations at registration.
from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.recipes import write_recipe
from schemas.params import load_params


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("recipe")
    def recipe(
        name: Annotated[str, typer.Argument(help="bactrian-x | chen2024")],
        out: Annotated[Path, typer.Option(help="params file to write")] = Path("params.yaml"),
        force: Annotated[bool, typer.Option("--force", help="replace an existing params file")] = False,
        smoke: Annotated[bool, typer.Option(
            "--smoke", help="the shrunken smoke version: embedded sample, smoke models, 2 training steps")] = False,
        limit: Annotated[int, typer.Option(help="--smoke: records to ingest")] = 20,
    ) -> None:
        """Write a paper's recipe as a complete params file for a real run (or its smoke version)."""
        path = write_recipe(name, out, force=force, smoke=smoke, limit=limit)
        params = load_params(path)
        kind = "smoke version of " if smoke else ""
        typer.echo(f"recipe: {kind}{name} -> {path} ({len(params.all_languages)} languages,"
                   f" {len(params.mixtures)} mixtures, budget {params.training.budget.describe()},"
                   f" responses {params.responses.mode}); then `polyinstruct doctor` and `dvc repro`")
