"""CLI commands of this area: `filter` (dedup + quality filters + rejects ledger).
See dataset_builder/cli/commands/__init__.py for the conventions."""

# No `from __future__ import annotations`: typer evaluates the option annotations at registration.
from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.cli.options import ParamsOption, get_params
from quality.stage import run_filter
from schemas.outputs import ensure_writable
from schemas.params import parse_params


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("filter")
    def filter_command(
        source: Annotated[Path, typer.Option(help="English source Parquet (SOURCE_SCHEMA)")] = Path(
            "data/source.parquet"),
        translated: Annotated[Path, typer.Option(
            help="translated Parquet: a directory or a file with id, lang, instruction, input, output")] = Path(
            "data/translated"),
        out: Annotated[Path, typer.Option(help="output directory: {flores}.parquet per language")] = Path(
            "data/filtered"),
        rejects: Annotated[Path, typer.Option(help="rejects Parquet (id, lang, stage, reason, detail)")] = Path(
            "data/rejects/filter.parquet"),
        metrics: Annotated[Path | None, typer.Option(help="metrics JSON")] = Path("metrics/quality.json"),
        plots: Annotated[Path | None, typer.Option(help="directory for the DVC plot CSVs")] = Path(
            "metrics/plots"),
        alignment: Annotated[str | None, typer.Option(
            help="independent | parallel (overrides quality.alignment)")] = None,
        lang_id: Annotated[bool | None, typer.Option(
            "--lang-id/--no-lang-id", help="language ID filter (overrides quality.filters.lang_id.enabled)")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Deduplicate and filter the translated data; every dropped row goes to the rejects table."""
        params = get_params(params_path)
        raw = params.model_dump()
        if alignment is not None:
            raw["quality"]["alignment"] = alignment
        if lang_id is not None:
            raw["quality"]["filters"]["lang_id"]["enabled"] = lang_id
        if alignment is not None or lang_id is not None:
            params = parse_params(raw, "command line")
        ensure_writable(rejects, metrics, folders=(out, plots))
        result = run_filter(source, translated, out, rejects, metrics, plots, params)
        for lang in sorted(result.counts_in):
            reasons = ", ".join(f"{r}={n}" for r, n in sorted(result.rejected_by_reason[lang].items())) or "none"
            typer.echo(f"filter: {lang}: kept {result.kept[lang]}/{result.counts_in[lang]} (rejected: {reasons})")
        for check, why in sorted(result.skipped_checks.items()):
            typer.echo(f"filter: note: {check}: {why}")
        total_in, total_kept = sum(result.counts_in.values()), sum(result.kept.values())
        typer.echo(f"filter: kept {total_kept}/{total_in} rows -> {out}; rejects -> {rejects}")
