"""Run the suite: one ephemeral GE context, one Checkpoint per batch, Data Docs written into `--docs`."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from quality.offline_html import localize_site
from quality.validation.derive import arrow_backed_frame, language_table, read_filtered
from quality.validation.report import summarize
from quality.validation.suites import (
    DOCS_SITE,
    FILE_COLUMN,
    LANGUAGE_INDEX,
    ROW_EXAMPLES,
    ROWS_SUITE,
    SOURCE_SUITE,
    import_gx,
    languages_suite,
    rows_suite,
    source_suite,
)
from schemas.artifacts import read_table
from schemas.params import Params

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd


@dataclass(frozen=True)
class ValidationOutcome:
    success: bool
    summary: dict[str, Any]  # what `polyinstruct validate` writes to --result
    docs_index: Path
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  # seconds per phase





def result_format(index_columns: list[str] | None, examples: int) -> dict[str, Any]:
    """SUMMARY: counts plus the first `examples` failing rows. Named index columns only for small
    tables: GE fetches them for EVERY failing row with a per-row `.at` (23 s for 55k failing rows);
    with the default index it lists row numbers, which the summary maps to (lang, id) itself."""
    fmt = {"result_format": "SUMMARY", "partial_unexpected_count": examples, "return_unexpected_index_query": False}
    return fmt | ({"unexpected_index_column_names": index_columns} if index_columns else {})


def _clear_docs(docs_dir: Path) -> None:
    """Remove what an earlier run's Data Docs left (only GE's own entries), so the index lists this
    run alone."""
    for name in ("index.html", "static", "validations", "expectations"):
        target = docs_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def validate_dataset(in_dir: Path | str, source_path: Path | str, docs_dir: Path | str,
                     params: Params) -> ValidationOutcome:
    """Run the three suites through GE Checkpoints, build Data Docs in `docs_dir`, summarise."""
    clock = _Clock()
    in_dir, source_path, docs_shown = Path(in_dir), Path(source_path), Path(docs_dir)
    docs_dir = docs_shown.resolve()
    source = read_table(source_path)
    # Importing GE takes seconds of pure Python; DuckDB's read releases the GIL, so overlap the two.
    importer = threading.Thread(target=import_gx, name="import-great-expectations", daemon=True)
    importer.start()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # stderr belongs to the CLI
    try:
        rows, signatures = read_filtered(con, in_dir)
        clock.lap("read")
        languages = language_table(con, rows, source, signatures)
        clock.lap("derive")
    finally:
        con.close()
    rows_frame = arrow_backed_frame(rows.drop_columns([FILE_COLUMN]))
    row_count = rows.num_rows
    del rows
    source_frame = arrow_backed_frame(source)
    clock.lap("to_pandas")

    importer.join()
    gx = import_gx()
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.enable_analytics(False)
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    docs_dir.mkdir(parents=True, exist_ok=True)
    _clear_docs(docs_dir)
    for site in list(context.list_data_docs_sites()):  # the ephemeral default points into /tmp
        context.delete_data_docs_site(site)
    context.add_data_docs_site(DOCS_SITE, {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    datasource = context.data_sources.add_pandas("polyinstruct")
    batches: list[tuple[str, gx.ExpectationSuite, pd.DataFrame, list[str] | None, int]] = [
        ("source", source_suite(), source_frame, None, ROW_EXAMPLES),
        ("languages", languages_suite(params), languages, [LANGUAGE_INDEX], 1000),
        ("rows", rows_suite(params), rows_frame, None, ROW_EXAMPLES),
    ]
    clock.lap("gx_setup")
    results: list[Any] = []
    for asset_name, suite, frame, index_columns, examples in batches:
        suite = context.suites.add(suite)
        batch_definition = datasource.add_dataframe_asset(asset_name) \
            .add_batch_definition_whole_dataframe(asset_name)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=asset_name, data=batch_definition, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"polyinstruct-{asset_name}", validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])],
            result_format=result_format(index_columns, examples)))
        outcome = checkpoint.run(batch_parameters={"dataframe": frame},
                                 run_id=RunIdentifier(run_name="polyinstruct-validate"))
        results.extend(outcome.run_results.values())
        clock.lap(f"checkpoint_{asset_name}")
    localize_site(docs_dir)  # GE's pages load CDN assets; point them at vendored copies (offline)
    clock.lap("docs_offline")
    frames = {SOURCE_SUITE: source_frame, ROWS_SUITE: rows_frame}
    summary = summarize(results, params, row_count, docs_shown / "index.html", frames)
    return ValidationOutcome(success=summary["success"], summary=summary,
                             docs_index=docs_dir / "index.html", timings=clock.laps)


class _Clock:
    """Seconds per phase, for the benchmark (never written to the result JSON: not deterministic)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now
