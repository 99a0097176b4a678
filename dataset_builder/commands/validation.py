"""CLI commands of this area; see dataset_builder/commands/__init__.py for the conventions."""

from __future__ import annotations

import typer


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
