"""CLI commands of this area: `validate` (the Great Expectations suite over data/filtered, with Data Docs).
See dataset_builder/cli/commands/__init__.py for the conventions."""

# No `from __future__ import annotations`: typer evaluates the option annotations at registration.
from pathlib import Path
from typing import Annotated, Any

import typer

from dataset_builder.cli.options import ParamsOption, get_params
from quality.validation.report import failure_message
from quality.validation.run import validate_dataset
from schemas.artifacts import write_json
from schemas.errors import PolyinstructError
from schemas.outputs import ensure_writable
from schemas.timings import write_timing


def _observed_text(observed: Any, limit: int = 70) -> str:
    """A short rendering of a failure's observed value for the terminal table."""
    if isinstance(observed, dict) and "unexpected_count" in observed:
        text = f"{observed['unexpected_count']:,} rows"
        if observed.get("unexpected_percent") is not None:
            text += f" ({observed['unexpected_percent']:.3g}%)"
        examples = observed.get("examples") or []
        if examples:
            first = examples[0]
            text += f", e.g. {first.get('lang')}/{first.get('id')}"
    else:
        text = str(observed)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _where(failure: dict[str, Any]) -> str:
    """The failure's language; for a row expectation spanning languages, those of its examples."""
    if failure["lang"]:
        return failure["lang"]
    observed = failure["observed"]
    sampled = observed.get("listed_languages") if isinstance(observed, dict) else None
    return ", ".join(sampled[:3]) + (", …" if len(sampled) > 3 else "") if sampled else "-"


def print_failures(summary: dict[str, Any], docs_index: Path | str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    if summary["success"]:
        console.print(f"validation passed: {summary['evaluated_expectations']} expectations on "
                      f"{summary['rows']:,} rows; Data Docs: {docs_index}")
        return
    table = Table(title=f"validation: {summary['unsuccessful_expectations']} of "
                        f"{summary['evaluated_expectations']} expectations failed")
    for column in ("suite", "check", "column", "lang", "observed"):
        table.add_column(column, overflow="fold")
    shown = summary["failures"][:30]
    for failure in shown:
        table.add_row(failure["suite"].removeprefix("polyinstruct."), failure["check"] or failure["expectation"],
                      failure["column"] or "-", _where(failure), _observed_text(failure["observed"]))
    if len(summary["failures"]) > len(shown):
        table.caption = f"{len(summary['failures']) - len(shown)} more in the result JSON"
    console.print(table)


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("validate")
    def validate(
        in_dir: Annotated[Path, typer.Option("--in", help="data/filtered: one {flores}.parquet per language")] = Path(
            "data/filtered"),
        source: Annotated[Path, typer.Option(help="the English source Parquet")] = Path("data/source.parquet"),
        docs: Annotated[Path, typer.Option(help="Data Docs site directory")] = Path("reports/data_docs"),
        result: Annotated[Path, typer.Option(help="result summary JSON")] = Path("metrics/validation.json"),
        params_path: ParamsOption = None,
    ) -> None:
        """Validate data/filtered with the Great Expectations suite; build Data Docs; fail if it breaks."""
        params = get_params(params_path)
        ensure_writable(result, folders=(docs,))
        outcome = validate_dataset(in_dir, source, docs, params)
        write_json(outcome.summary, result)  # written before failing, so the failure can be read
        write_timing({"seconds": outcome.timings}, result)
        print_failures(outcome.summary, docs / "index.html")
        if not outcome.success:
            raise PolyinstructError(failure_message(outcome.summary, docs / "index.html"))
