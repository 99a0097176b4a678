"""The filter stage's inputs: the source and translated Parquet files, read by DuckDB straight into table `rows`.

Python checks each file's schema (the Parquet footer) and its lang codes (that one column), then one
`CREATE TABLE rows AS SELECT ... FROM read_parquet(...) UNION ALL ...` reads every file, in DuckDB's threads
and under its memory limit: no file's text passes through Python. Each row gets the standard columns (lang
as FLORES-200 codes, the text fields with NULL as '', the translate stage's extra columns or NULLs,
is_source, file) and a row id `rid`: the file's index (the source first, then the sorted translated files)
times 2^32 plus the row's number in its file, so ids are the same in every run.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.artifacts import parquet_files, read_schema
from schemas.errors import PolyinstructError
from schemas.languages import UnknownLanguageError, resolve
from schemas.records import PARALLEL_REQUIRED_COLUMNS, SOURCE_SCHEMA, TEXT_FIELDS, TRANSLATED_SCHEMA, check_column_types

# Extra columns of our translate stage, with their DuckDB types; absent ones are NULL and get defaults.
EXTRA_COLUMNS: dict[str, str] = {
    "model": "VARCHAR", "smoke": "BOOLEAN", "truncated_fields": "VARCHAR[]", "protected_spans_ok": "BOOLEAN",
    "kept_verbatim": "BOOLEAN", "output_model": "VARCHAR", "log_prob": "DOUBLE",
}
_FILE_BITS = 32  # rid = file index << 32 | row number in the file


def _schema(path: Path, required: tuple[str, ...], contract: pa.Schema) -> pa.Schema:
    schema = read_schema(path, required)
    check_column_types(schema, contract, path)
    return schema


def _lang_codes(path: Path, source_lang: str, flores: dict[str, str]) -> None:
    """Adds the file's lang codes to `flores` (code -> FLORES-200); unknown or empty codes, and rows in the
    source language, are a one-line error naming the file."""
    column = pq.read_table(path, columns=["lang"]).column("lang")
    if column.null_count:
        raise PolyinstructError(f"{path}: column lang has empty values; every row needs a language code")
    for code in pc.unique(column.cast(pa.string())).to_pylist():
        if code not in flores:
            try:
                flores[code] = resolve(code).flores
            except UnknownLanguageError as err:
                raise PolyinstructError(f"{path}: lang {err}") from None
        if flores[code] == source_lang:
            raise PolyinstructError(f"{path}: holds rows in the source language {source_lang}; the source rows "
                                    f"come from --source, remove them from --translated")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _select(index: int, path: Path, schema: pa.Schema, source_lang: str | None) -> str:
    """The SELECT of one file's rows in the standard columns (`source_lang`: the source file's language; None
    for a translated file, whose codes come from table lang_codes)."""
    is_source = source_lang is not None

    def present(name: str) -> bool:  # a column of Arrow type null holds no value: read as absent
        return name in schema.names and not pa.types.is_null(schema.field(name).type)

    lang = _quote(source_lang) if source_lang is not None else "c.flores"
    columns = [f"({index}::BIGINT << {_FILE_BITS}) + file_row_number AS rid", f"{lang} AS lang",
               "id::VARCHAR AS id"]
    columns += [f"coalesce({name}::VARCHAR, '') AS {name}" if present(name) else f"''::VARCHAR AS {name}"
                for name in TEXT_FIELDS]
    columns += [f"{name}::{dtype} AS {name}" if present(name) and not is_source else f"NULL::{dtype} AS {name}"
                for name, dtype in EXTRA_COLUMNS.items()]
    columns += [f"{str(is_source).lower()} AS is_source", f"{_quote(str(path))} AS file"]
    join = "" if is_source else " JOIN lang_codes c ON c.code = p.lang::VARCHAR"
    return f"SELECT {', '.join(columns)} FROM read_parquet({_quote(str(path))}, file_row_number = true) p{join}"


def load_rows(con: duckdb.DuckDBPyConnection, source: Path, translated: Path, source_lang: str) \
        -> dict[str, list[str]]:
    """Table rows (see the module docstring); returns, per extra column, the translated files that lacked it."""
    missing: dict[str, list[str]] = {name: [] for name in EXTRA_COLUMNS}
    selects = [_select(0, source, _schema(source, ("id", *TEXT_FIELDS), SOURCE_SCHEMA), source_lang)]
    flores: dict[str, str] = {}
    for index, path in enumerate(parquet_files(translated), start=1):
        schema = _schema(path, PARALLEL_REQUIRED_COLUMNS, TRANSLATED_SCHEMA)
        _lang_codes(path, source_lang, flores)
        for name in EXTRA_COLUMNS:
            if name not in schema.names:
                missing[name].append(path.name)
        selects.append(_select(index, path, schema, None))
    con.register("lang_codes", pa.table({"code": list(flores), "flores": list(flores.values())}))
    con.execute(f"CREATE TABLE rows AS {' UNION ALL '.join(selects)}")
    con.unregister("lang_codes")
    empty = con.execute("SELECT file, count(*) FROM rows WHERE id IS NULL GROUP BY file ORDER BY file LIMIT 1") \
        .fetchall()
    if empty:
        path, n = empty[0]
        raise PolyinstructError(f"{path}: column id has {n} empty value(s); every row needs an id")
    return missing
