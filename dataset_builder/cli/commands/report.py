"""CLI commands of this area: `report` (reports/index.html and the pages it links, readable offline).
See dataset_builder/cli/commands/__init__.py for the conventions."""

# No `from __future__ import annotations`: typer evaluates the option annotations at registration.
from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.cli.options import ParamsOption, get_params
from quality.report_build import build_reports


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("report")
    def report(
        out: Annotated[Path, typer.Option(help="reports folder: index.html, rejects.html, plots/, assets/")] = Path(
            "reports"),
        validation: Annotated[Path, typer.Option(help="validation result JSON")] = Path("metrics/validation.json"),
        quality: Annotated[Path, typer.Option(help="quality metrics JSON")] = Path("metrics/quality.json"),
        eval_dir: Annotated[Path, typer.Option("--eval", help="folder of `evaluate` JSONs, one per mixture")] = Path(
            "metrics/eval"),
        rejects: Annotated[Path, typer.Option(help="rejects folder (every *.parquet under it) or file")] = Path(
            "data/rejects"),
        translated: Annotated[Path, typer.Option(help="translated Parquet folder or file")] = Path("data/translated"),
        source: Annotated[Path, typer.Option(help="the English source Parquet")] = Path("data/source.parquet"),
        docs: Annotated[Path, typer.Option(help="Data Docs site written by `validate`")] = Path("reports/data_docs"),
        params_path: ParamsOption = None,
    ) -> None:
        """Write reports/index.html linking the Data Docs, the rejects report and the DVC plots; no page
        loads anything from the network."""
        params = get_params(params_path).report
        result = build_reports(out, validation=validation, quality=quality, eval_dir=eval_dir, rejects=rejects,
                               translated=translated, source=source, docs=docs, examples=params.examples,
                               dvc_plots=params.dvc_plots)
        for note in result.notes:
            typer.echo(f"report: note: {note}")
        reasons = ", ".join(f"{r}={n}" for r, n in result.rejects.by_reason().items()) or "none"
        typer.echo(f"report: {len(result.pages)} page(s) linked; rejects: {reasons}")
        typer.echo(f"report: open {result.index}")
