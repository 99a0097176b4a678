"""The data the suite validates: data/filtered read into one Arrow table through DuckDB, the derived
per-language table (retention, identical-to-source share, unknown ids, models, smoke flags), and the
zero-copy pandas frame GE reads. See suites.py for why this route."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from quality.validation.suites import ARROW_BATCH_ROWS, FILE_COLUMN, schema_signature
from schemas.artifacts import parquet_files
from schemas.errors import PolyinstructError
from schemas.models import SMOKE_MODEL_PREFIX
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS, TRANSLATED_SCHEMA, check_column_types

if TYPE_CHECKING:
    import pandas as pd




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
    signatures = {path.stem: schema_signature(_file_schema(path)) for path in files}
    con.execute("SET arrow_large_buffer_size = true")
    threads = con.sql("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")
    try:
        table = con.sql(
            f"SELECT * EXCLUDE (filename), parse_filename(filename, true) AS {FILE_COLUMN} "
            "FROM read_parquet($files, union_by_name = true, filename = true)",
            params={"files": [str(path) for path in files]},
        ).to_arrow_table(batch_size=ARROW_BATCH_ROWS)
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
            SELECT r.{FILE_COLUMN} AS file, r.lang, r.model, r.smoke, r.kept_verbatim,
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
