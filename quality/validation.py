"""The Great Expectations suite that guards the released dataset (data/filtered) before export.

Three GE batches, each validated by its own Checkpoint in one ephemeral context whose Data Docs site
writes into `--docs`:

- `polyinstruct.rows`: every row of every language file as ONE pandas batch. Column-level
  expectations (types, nulls, (id, lang) uniqueness, language set, lengths, blank and bad-character
  regexes) run here, and GE names each failing row by (lang, id).
- `polyinstruct.languages`: a derived table with one row per language file, computed with DuckDB:
  row count vs the source count (retention), share of rows identical to the English source, ids not
  in the source, models per language, smoke-flag/model mismatches, input presence vs the source.
  GE checks those quantities against params.validation, naming the language of each failure.
- `polyinstruct.source`: data/source.parquet, the denominator of retention and the join key.

Why this route (measured on 3.4M rows, 2 cores; see benchmarks/bench_validation.py):
- GE 1.x reads pandas, not Polars. DuckDB reads the Parquet files into Arrow (in parallel, straight
  into large_string buffers) and pandas wraps those buffers without a copy: pandas' `str` dtype is an
  ArrowStringArray, so GE's `.astype(str)` is a no-op and its `.str.contains`/`.str.len` run in Arrow
  compute (RE2). The list column becomes an ArrowDtype, whose values are lists. With NumPy-object
  strings (pandas < 3, or `astype(object)`) every regex and length expectation is a per-row Python
  loop, and object-dtype lists hold NumPy arrays, which fail GE's `list` type check.
- The regexes avoid what RE2 cannot do the way Python does (`\\s`, `\\S`, `$`), otherwise pandas
  silently falls back to per-row Python `re` (8 s more per run at 3.4M rows).
- All columns are combined into ONE Arrow chunk first. GE's pandas map metrics index the frame with
  a boolean mask several times per expectation; on a chunked Arrow column every such `take`
  concatenates all chunks (7-15 s per run at 3.4M rows); on one chunk it costs nothing.
- Rows form one batch rather than one per language: GE's UpdateDataDocsAction renders a page and
  rebuilds the index for every validation result (~0.7 s each), so 52 language batches would spend
  ~40 s on HTML alone. Per-language attribution comes from `unexpected_index_column_names`
  (GE lists failing rows by lang and id) and from the per-language derived table.
- Cross-table quantities (a join of 3.4M rows with the source on id) are aggregations that GE's
  pandas engine cannot express; DuckDB computes them in about a second from the same Arrow buffers
  (zero-copy scan) and GE validates the resulting small table. Every pass/fail decision is a GE
  expectation; Python only shapes data and reports.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dataset_builder.models import SMOKE_MODEL_PREFIX
from quality.filters import BAD_CHARS_RE
from quality.offline_html import localize_site
from schemas.artifacts import parquet_files, read_table
from schemas.errors import PolyinstructError
from schemas.params import Params
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS, TRANSLATED_SCHEMA, check_column_types

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

ROWS_SUITE = "polyinstruct.rows"
LANGUAGES_SUITE = "polyinstruct.languages"
SOURCE_SUITE = "polyinstruct.source"
SUITES: tuple[str, ...] = (SOURCE_SUITE, LANGUAGES_SUITE, ROWS_SUITE)
DOCS_SITE = "polyinstruct"
# U+FFFD (a decoding failure upstream) or a control character other than tab and newline: the very
# definition the quality filter rejects rows by, so the suite asserts that the filter did its job.
# RE2 syntax, which is what pandas runs for arrow-backed strings.
BAD_CHARS_REGEX = BAD_CHARS_RE


def _not_whitespace_class() -> str:
    """`[^...]` over exactly the characters Python's str.isspace() accepts. Not `\\S`: RE2's `\\s` is
    ASCII-only, so pandas would fall back to per-row Python `re` (8 s more at 3.4M rows)."""
    spaces = [c for c in range(0x3001) if chr(c).isspace()]
    return "[^" + "".join(f"\\x{c:02x}" if c < 0x100 else chr(c) for c in spaces) + "]"


NOT_BLANK_REGEX = _not_whitespace_class()
# `{source}-{index}`, as written by ingest. `\\Z` (pandas hands RE2 `\\z`), not `$`, which Python also
# matches before a trailing newline.
ID_REGEX = "^.+-[0-9]+\\Z"
SOURCE_MODEL = "source"  # `model` of the English rows in data/filtered
# How many failing rows GE lists per expectation (by lang and id, in the Data Docs); up to this many,
# the result JSON attributes a row expectation's failure to each language exactly.
ROW_EXAMPLES = 200
_LANGUAGE_INDEX = "file"  # index column of the per-language table
_FILE_COLUMN = "__file"
# DuckDB -> Arrow batch size. Large batches read 2.5x faster than the default 131072 rows (measured on
# 3.4M rows) and leave one chunk per file to combine.
_ARROW_BATCH_ROWS = 1 << 30


@dataclass(frozen=True)
class ValidationOutcome:
    success: bool
    summary: dict[str, Any]  # what `polyinstruct validate` writes to --result
    docs_index: Path
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  # seconds per phase


# ---------------------------------------------------------------------------------------------- data


def _gx_type_name(arrow_type: pa.DataType) -> str:
    """The name GE's pandas engine compares with the column dtype's `.type` (str, bool, list)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "str"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return "list"
    if pa.types.is_floating(arrow_type):
        return "float"
    raise ValueError(f"no GE type name for {arrow_type}")


def _schema_signature(schema: pa.Schema) -> str:
    """`name:type` list of a file's columns; string widths are an encoding detail, not a type change."""
    def norm(t: pa.DataType) -> str:
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return f"list<{norm(t.value_type)}>"  # the item field's name is not part of the type
        return "string" if pa.types.is_large_string(t) else str(t)

    return ", ".join(f"{f.name}:{norm(f.type)}" for f in schema)


def _file_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise PolyinstructError(f"{path}: not a readable Parquet file ({err})") from None


def read_filtered(con: duckdb.DuckDBPyConnection, in_dir: Path | str) -> tuple[pa.Table, dict[str, str]]:
    """All rows of data/filtered as one single-chunk Arrow table, in file order, plus a `__file`
    column naming each row's file; and each file's schema signature.

    DuckDB reads the files straight into large_string buffers, so one chunk of millions of rows cannot
    overflow 32-bit offsets and pandas wraps it without conversion. On ONE thread it emits a single
    chunk per column: the same CPU as two threads (12 s at 3.4M rows), but no `combine_chunks` copy
    afterwards (7 s CPU, and twice the memory: 5.9 GiB instead of 3.0 GiB peak), and the other core
    imports GE meanwhile. `union_by_name` lets files with a wrong schema through, so the suite can
    report them instead of the read failing."""
    files = parquet_files(in_dir)
    for path in files:  # a wrong type is a one-line error; a missing column is the suite's to report
        check_column_types(_file_schema(path), TRANSLATED_SCHEMA, path)
    signatures = {path.stem: _schema_signature(_file_schema(path)) for path in files}
    con.execute("SET arrow_large_buffer_size = true")
    threads = con.sql("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")
    try:
        table = con.sql(
            f"SELECT * EXCLUDE (filename), parse_filename(filename, true) AS {_FILE_COLUMN} "
            "FROM read_parquet($files, union_by_name = true, filename = true)",
            params={"files": [str(path) for path in files]},
        ).to_arrow_table(batch_size=_ARROW_BATCH_ROWS)
    except duckdb.Error as err:
        raise PolyinstructError(f"{in_dir}: cannot read the Parquet files together ({err}); "
                                "rerun the filter stage") from None
    finally:
        con.execute(f"SET threads = {threads}")
    if any(column.num_chunks > 1 for column in table.columns):
        table = table.combine_chunks()
    return table, signatures


def language_table(con: duckdb.DuckDBPyConnection, rows: pa.Table, source: pa.Table,
                   signatures: dict[str, str]) -> pd.DataFrame:
    """One row per language file: counts that relate the file to the source (computed by DuckDB on
    the Arrow buffers, no copy). Thresholds are NOT applied here; the GE suite does that."""
    files = pa.table({"file": list(signatures), "file_schema": list(signatures.values())})
    con.execute("SET arrow_large_buffer_size = false")  # the derived table is small
    # A column missing from every file is a failure for the suite to report, not a SQL error here.
    con.register("rows_t", _with_columns(rows, TRANSLATED_SCHEMA))
    con.register("source_t", _with_columns(source, SOURCE_SCHEMA))
    con.register("files_t", files)
    known_fields = ", ".join(f"'{f}'" for f in TEXT_FIELDS)
    try:
        frame = con.sql(f"""
        WITH src AS (  -- one row per source id, so a duplicated id cannot inflate the counts
            SELECT id, instruction, input, output FROM source_t
            QUALIFY row_number() OVER (PARTITION BY id ORDER BY instruction, input, output) = 1
        ), source_count AS (SELECT count(*) AS n FROM source_t),
        joined AS (
            SELECT r.{_FILE_COLUMN} AS file, r.lang, r.model, r.smoke, r.kept_verbatim,
                   r.truncated_fields, s.id IS NOT NULL AS in_source,
                   s.id IS NOT NULL AND r.instruction = s.instruction AND r.input = s.input
                       AND r.output = s.output AS identical,
                   s.id IS NOT NULL AND ((r.input = '') <> (s.input = '')) AS input_mismatch
            FROM rows_t r LEFT JOIN src s ON r.id = s.id
        ), per_file AS (
            SELECT file,
                   string_agg(DISTINCT lang, ',' ORDER BY lang) AS lang,
                   count(*) AS rows,
                   count(*) FILTER (WHERE NOT in_source) AS orphan_rows,
                   count(*) FILTER (WHERE identical AND NOT coalesce(kept_verbatim, false)) AS identical_rows,
                   count(DISTINCT model) AS models,
                   string_agg(DISTINCT model, ',' ORDER BY model) AS model,
                   count(*) FILTER (WHERE smoke IS DISTINCT FROM starts_with(model, '{SMOKE_MODEL_PREFIX}'))
                       AS smoke_mismatch_rows,
                   count(*) FILTER (WHERE input_mismatch) AS input_mismatch_rows,
                   coalesce(sum(len(list_filter(truncated_fields, lambda f: f NOT IN ({known_fields})))), 0)
                       AS unknown_truncated_fields
            FROM joined GROUP BY file
        )
        SELECT f.file, p.lang, f.file_schema,
               coalesce(p.rows, 0) AS rows, sc.n AS source_rows,
               CASE WHEN sc.n > 0 THEN coalesce(p.rows, 0) / sc.n END AS retention,
               coalesce(p.identical_rows, 0) AS identical_rows,
               CASE WHEN p.rows > 0 THEN p.identical_rows / p.rows END AS identical_share,
               coalesce(p.orphan_rows, 0) AS orphan_rows,
               coalesce(p.models, 0) AS models, p.model,
               coalesce(p.smoke_mismatch_rows, 0) AS smoke_mismatch_rows,
               coalesce(p.input_mismatch_rows, 0) AS input_mismatch_rows,
               coalesce(p.unknown_truncated_fields, 0) AS unknown_truncated_fields
        FROM files_t f CROSS JOIN source_count sc LEFT JOIN per_file p USING (file)
        ORDER BY f.file
    """).to_arrow_table()
    except duckdb.Error as err:
        raise PolyinstructError(f"cannot compare data/filtered with the source ({err}); the files should "
                                f"have TRANSLATED_SCHEMA; rerun the filter stage") from None
    finally:
        for name in ("rows_t", "source_t", "files_t"):
            con.unregister(name)
    return frame.to_pandas()


def _with_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` plus an all-null column for each column of `schema` it lacks (for the derivation only)."""
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
    return table


def arrow_backed_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow-backed pandas: strings stay Arrow (large_string, zero-copy), lists become ArrowDtype."""
    import pandas as pd

    return table.to_pandas(
        types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_list(t) or pa.types.is_large_list(t) else None,
        split_blocks=True,
    )


# -------------------------------------------------------------------------------------------- suites


def import_gx() -> Any:
    """Import GE quietly: no analytics, no progress bars (set per context), no network."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    return great_expectations


def rows_suite(params: Params) -> gx.ExpectationSuite:
    """Row-level invariants of data/filtered, over every language at once."""
    gx = import_gx()
    E = gx.expectations
    v = params.validation
    exps: list[Any] = [
        E.ExpectTableColumnsToMatchOrderedList(
            column_list=TRANSLATED_SCHEMA.names, meta={"check": "columns"},
            notes="Columns and their order are TRANSLATED_SCHEMA (schemas/records.py)."),
    ]
    for field in TRANSLATED_SCHEMA:
        exps.append(E.ExpectColumnValuesToBeOfType(column=field.name, type_=_gx_type_name(field.type),
                                                   meta={"check": "type"}))
    for field in TRANSLATED_SCHEMA:
        if not field.nullable:
            exps.append(E.ExpectColumnValuesToNotBeNull(column=field.name, meta={"check": "not null"}))
    exps += [
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["id", "lang"], meta={"check": "(id, lang) unique"},
            notes="A record appears at most once per language."),
        E.ExpectColumnValuesToBeInSet(
            column="lang", value_set=params.all_languages, meta={"check": "configured language"},
            notes="FLORES-200 codes of languages.source and languages.targets."),
        E.ExpectColumnValuesToMatchRegex(column="id", regex=ID_REGEX, meta={"check": "id format"}),
        E.ExpectColumnValueLengthsToBeBetween(column="model", min_value=1, meta={"check": "model named"}),
    ]
    for field in TEXT_FIELDS:
        # `input` is legitimately empty for most instructions; the other two never are.
        exps.append(E.ExpectColumnValueLengthsToBeBetween(
            column=field, min_value=0 if field == "input" else v.min_chars, max_value=v.max_chars,
            meta={"check": "length"}, notes="Character bounds from params.validation."))
    for field in TEXT_FIELDS:
        if field != "input":
            exps.append(E.ExpectColumnValuesToMatchRegex(
                column=field, regex=NOT_BLANK_REGEX, meta={"check": "not blank"},
                notes="At least one non-whitespace character."))
    for field in TEXT_FIELDS:
        exps.append(E.ExpectColumnValuesToNotMatchRegex(
            column=field, regex=BAD_CHARS_REGEX, meta={"check": "bad characters"},
            notes="No U+FFFD and no control character other than tab and newline (as the quality filter)."))
    return gx.ExpectationSuite(name=ROWS_SUITE, expectations=exps)


def languages_suite(params: Params) -> gx.ExpectationSuite:
    """Per-language invariants on the derived table (one row per file of data/filtered)."""
    gx = import_gx()
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    v = params.validation
    source_lang = params.languages.source
    expected_schema = _schema_signature(TRANSLATED_SCHEMA)
    exps: list[Any] = [
        E.ExpectColumnDistinctValuesToContainSet(
            column="lang", value_set=params.all_languages, meta={"check": "every language present"},
            notes="Every configured language has rows."),
        E.ExpectColumnValuesToBeInSet(
            column="lang", value_set=params.all_languages, meta={"check": "configured language"}),
        E.ExpectColumnPairValuesToBeEqual(
            column_A="file", column_B="lang", meta={"check": "file holds its language"},
            notes="{flores}.parquet holds rows of that language only."),
        E.ExpectColumnValuesToBeInSet(
            column="file_schema", value_set=[expected_schema], meta={"check": "file schema"},
            notes="Each file's Parquet schema is TRANSLATED_SCHEMA."),
        E.ExpectColumnValuesToNotBeNull(column="retention", meta={"check": "retention"}),
        E.ExpectColumnValuesToBeBetween(
            column="retention", min_value=v.min_retention, max_value=1.0, meta={"check": "retention"},
            notes="rows / source rows: at least params.validation.min_retention of the source survives."),
        E.ExpectColumnValuesToBeBetween(
            column="identical_share", max_value=v.max_identical_to_source, strict_max=True,
            row_condition=Column("lang") != source_lang, meta={"check": "identical to source"},
            notes="Share of translated rows whose instruction, input and output all equal the English "
                  "source (rows kept verbatim on purpose excluded)."),
        E.ExpectColumnValuesToBeBetween(
            column="orphan_rows", min_value=0, max_value=0, meta={"check": "ids in source"},
            notes="Every id exists in data/source.parquet."),
        E.ExpectColumnValuesToBeBetween(
            column="models", min_value=0, max_value=1, meta={"check": "one model"},
            notes="All rows of a language come from a single model."),
        E.ExpectColumnValuesToBeInSet(
            column="model", value_set=[SOURCE_MODEL], row_condition=Column("lang") == source_lang,
            meta={"check": "source rows"}, notes="The English rows are the source itself."),
        E.ExpectColumnValuesToNotBeInSet(
            column="model", value_set=[SOURCE_MODEL], row_condition=Column("lang") != source_lang,
            meta={"check": "translation model"}, notes="Translated rows name the model that made them."),
        E.ExpectColumnValuesToBeBetween(
            column="smoke_mismatch_rows", min_value=0, max_value=0, meta={"check": "smoke flag"},
            notes=f"`smoke` is true exactly when the model fingerprint starts with '{SMOKE_MODEL_PREFIX}'."),
        E.ExpectColumnValuesToBeBetween(
            column="input_mismatch_rows", min_value=0, max_value=0, meta={"check": "input presence"},
            notes="A translation has an input exactly when its source record has one."),
        E.ExpectColumnValuesToBeBetween(
            column="unknown_truncated_fields", min_value=0, max_value=0, meta={"check": "truncated fields"},
            notes="truncated_fields only names instruction, input or output."),
    ]
    return gx.ExpectationSuite(name=LANGUAGES_SUITE, expectations=exps)


def source_suite() -> gx.ExpectationSuite:
    """The source the languages are measured against: non-empty, SOURCE_SCHEMA, unique ids."""
    gx = import_gx()
    E = gx.expectations
    return gx.ExpectationSuite(name=SOURCE_SUITE, expectations=[
        E.ExpectTableColumnsToMatchOrderedList(column_list=SOURCE_SCHEMA.names, meta={"check": "columns"}),
        E.ExpectTableRowCountToBeBetween(min_value=1, meta={"check": "source rows"}),
        E.ExpectColumnValuesToNotBeNull(column="id", meta={"check": "not null"}),
        E.ExpectColumnValuesToBeUnique(column="id", meta={"check": "id unique"}),
    ])


# ------------------------------------------------------------------------------------------- running


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
    rows_frame = arrow_backed_frame(rows.drop_columns([_FILE_COLUMN]))
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
        ("languages", languages_suite(params), languages, [_LANGUAGE_INDEX], 1000),
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


# ------------------------------------------------------------------------------------------- summary


def _plain(value: Any) -> Any:
    """JSON-safe copy of a GE value (numpy scalars, tuples, row-condition objects)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _column_of(config: Any) -> str | None:
    """The column(s) an expectation is about: `a`, `a+b` for pairs and compound keys; None for the table."""
    kwargs = config.kwargs
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}+{kwargs['column_B']}"
    if kwargs.get("column_list") and not config.type.startswith("expect_table_"):
        return "+".join(kwargs["column_list"])
    return None


_DROP_KWARGS = {"batch_id", "result_format", "catch_exceptions", "include_config", "condition_parser"}


def _clip(value: Any, limit: int = 120) -> Any:
    return value[:limit] + "…" if isinstance(value, str) and len(value) > limit else value


def _identify(frame: pd.DataFrame, positions: list[int], columns: list[str]) -> list[dict[str, Any]]:
    """(lang, id) and the checked value(s) of the rows GE listed by position."""
    keys = [c for c in ("lang", "id") if c in frame.columns]
    shown = keys + [c for c in columns if c in frame.columns and c not in keys]
    rows = frame.iloc[positions][shown].to_dict("records")
    return [{k: _clip(_plain(v)) for k, v in row.items()} for row in rows]


def _failures(result: Any, frame: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Failure entries of one failing expectation: one per language where GE's unexpected-row list
    names them all (the per-language table always; a row expectation when it failed on at most
    ROW_EXAMPLES rows), else one entry with lang null and the languages of the listed rows."""
    config = result.expectation_config
    kwargs = {k: _plain(v) for k, v in config.kwargs.items() if k not in _DROP_KWARGS and v is not None}
    base = {"suite": None, "expectation": config.type, "check": (config.meta or {}).get("check"),
            "column": _column_of(config), "kwargs": kwargs}
    info = result.exception_info or {}
    if info.get("raised_exception"):
        message = str(info.get("exception_message") or "GE raised an exception").splitlines()[0]
        return [base | {"lang": None, "observed": {"error": message}}]
    body = result.result or {}
    if "observed_value" in body:  # aggregate expectations (table columns, row count, distinct sets)
        observed = _plain(body["observed_value"] if body["observed_value"] is not None
                          else {k: v for k, v in body.items() if k != "observed_value"})
        missing = body.get("partial_missing_list")
        if missing and kwargs.get("column") == "lang":  # a configured language with no rows
            return [base | {"lang": lang, "observed": observed} for lang in sorted(_plain(missing))]
        return [base | {"lang": None, "observed": observed}]
    index_list: list[Any] = _plain(body.get("partial_unexpected_index_list") or [])
    if index_list and frame is not None and not isinstance(index_list[0], dict):  # row positions
        columns = [c for c in (base["column"] or "").split("+") if c]
        index_list = _identify(frame, index_list, columns)
    if index_list and _LANGUAGE_INDEX in index_list[0]:  # the per-language table: a row is a language
        column = kwargs.get("column")
        return [base | {"lang": entry[_LANGUAGE_INDEX],
                        "observed": entry[column] if column in entry
                        else {k: v for k, v in entry.items() if k != _LANGUAGE_INDEX}}
                for entry in index_list]
    count = int(body.get("unexpected_count") or 0)
    by_lang: dict[str | None, list[dict[str, Any]]] = {}
    for entry in index_list:
        by_lang.setdefault(entry.get("lang"), []).append(entry)
    if index_list and count == len(index_list):  # GE listed every failing row: exact per language
        return [base | {"lang": lang, "observed": {"unexpected_count": len(entries), "examples": entries[:5]}}
                for lang, entries in sorted(by_lang.items(), key=lambda item: item[0] or "")]
    observed = {"unexpected_count": count, "unexpected_percent": _plain(body.get("unexpected_percent")),
                "examples": index_list[:5],
                f"languages_in_first_{len(index_list)}": sorted(lang for lang in by_lang if lang)}
    return [base | {"lang": None, "observed": observed}]


def summarize(results: Iterable[Any], params: Params, row_count: int, docs_index: Path,
              frames: dict[str, pd.DataFrame] | None = None) -> dict[str, Any]:
    """The result JSON: deterministic (no run times), failures sorted, counts per suite. `frames`
    (suite name -> the validated frame) turn GE's row positions into (lang, id)."""
    failures: list[dict[str, Any]] = []
    suites: dict[str, dict[str, Any]] = {}
    expectations: list[dict[str, Any]] = []
    for suite_result in results:
        stats = suite_result.statistics
        suites[suite_result.suite_name] = {
            "success": bool(suite_result.success),
            "evaluated_expectations": int(stats["evaluated_expectations"]),
            "successful_expectations": int(stats["successful_expectations"]),
        }
        for result in suite_result.results:
            config = result.expectation_config
            expectations.append({"suite": suite_result.suite_name, "expectation": config.type,
                                 "check": (config.meta or {}).get("check"), "column": _column_of(config),
                                 "success": bool(result.success)})
            if not result.success:
                failures += [f | {"suite": suite_result.suite_name}
                             for f in _failures(result, (frames or {}).get(suite_result.suite_name))]
    failures.sort(key=lambda f: (SUITES.index(f["suite"]) if f["suite"] in SUITES else 99, f["expectation"],
                                 f["column"] or "", f["lang"] or ""))
    evaluated = sum(s["evaluated_expectations"] for s in suites.values())
    successful = sum(s["successful_expectations"] for s in suites.values())
    return {
        "success": evaluated > 0 and successful == evaluated and not failures,
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "failures": failures,
        "suites": suites,
        "expectations": expectations,
        "rows": row_count,
        "languages": params.all_languages,
        "thresholds": params.validation.model_dump(),
        "data_docs": str(docs_index),
    }


def failure_message(summary: dict[str, Any], docs_index: Path | str) -> str:
    """One line for PolyinstructError: how many failed, which, and where to read more."""
    names: list[str] = []
    for f in summary["failures"]:
        name = f"{f['check'] or f['expectation']}" + (f"({f['column']})" if f["column"] else "") \
            + (f" {f['lang']}" if f["lang"] else "")
        if name not in names:
            names.append(name)
    shown = "; ".join(names[:4]) + (f"; +{len(names) - 4} more" if len(names) > 4 else "")
    return (f"validation failed: {summary['unsuccessful_expectations']} of {summary['evaluated_expectations']} "
            f"expectations ({shown}); see {docs_index}")
