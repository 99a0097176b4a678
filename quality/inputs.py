"""The filter stage's inputs: the source and translated Parquet files, one file at a time, as standard tables.

Each file becomes a table of the same columns (lang as FLORES-200 codes, the text fields, the translate stage's
extra columns or NULLs, is_source, file); the stage inserts them one by one into its DuckDB database, so no
more than one file's rows is ever held in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from schemas.artifacts import parquet_files, read_table
from schemas.errors import PolyinstructError
from schemas.languages import UnknownLanguageError, resolve
from schemas.records import PARALLEL_REQUIRED_COLUMNS, SOURCE_SCHEMA, TEXT_FIELDS, TRANSLATED_SCHEMA, check_column_types

# Extra columns of our translate stage, with their Arrow types; absent ones are NULL and get defaults.
EXTRA_COLUMNS: dict[str, pa.DataType] = {
    "model": pa.string(), "smoke": pa.bool_(), "truncated_fields": pa.list_(pa.string()),
    "protected_spans_ok": pa.bool_(), "kept_verbatim": pa.bool_(), "output_model": pa.string(),
    "log_prob": pa.float64(),
}


def _canonical_lang(column: pa.ChunkedArray, path: Path) -> pa.Array:
    """The lang column as FLORES-200 codes; unknown codes are a one-line error naming the file."""
    encoded = column.combine_chunks().dictionary_encode()
    codes = encoded.dictionary.to_pylist()
    canonical = []
    for code in codes:
        if code is None:
            raise PolyinstructError(f"{path}: column lang has empty values; every row needs a language code")
        try:
            canonical.append(resolve(code).flores)
        except UnknownLanguageError as err:
            raise PolyinstructError(f"{path}: lang {err}") from None
    return pa.DictionaryArray.from_arrays(encoded.indices, pa.array(canonical, pa.string())).cast(pa.string())


def _text_column(table: pa.Table, name: str, path: Path) -> pa.Array:
    column = table.column(name)
    try:
        column = column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise PolyinstructError(f"{path}: column {name} must hold text, not {column.type}") from None
    return pc.fill_null(column.combine_chunks(), "") if name != "id" else column.combine_chunks()


def _standard_table(table: pa.Table, path: Path, lang: pa.Array, is_source: bool) -> pa.Table:
    ids = _text_column(table, "id", path)
    if ids.null_count:
        raise PolyinstructError(f"{path}: column id has {ids.null_count} empty value(s); every row needs an id")
    columns: dict[str, pa.Array] = {"lang": lang, "id": ids}
    for name in TEXT_FIELDS:
        columns[name] = _text_column(table, name, path)
    for name, dtype in EXTRA_COLUMNS.items():
        if name in table.column_names and not is_source:
            try:
                columns[name] = table.column(name).cast(dtype).combine_chunks()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise PolyinstructError(f"{path}: column {name} must be {dtype}, not "
                                        f"{table.column(name).type}") from None
        else:
            columns[name] = pa.nulls(table.num_rows, dtype)
    columns["is_source"] = pa.array([is_source] * table.num_rows, pa.bool_())
    columns["file"] = pa.array([str(path)] * table.num_rows, pa.string())
    return pa.table(columns)


def input_tables(source: Path, translated: Path, source_lang: str, missing_extras: dict[str, list[str]]) \
        -> Iterator[pa.Table]:
    """The source, then each translated file, as standard tables; notes in `missing_extras` (column -> files)
    which extra columns each translated file lacked."""
    for name in EXTRA_COLUMNS:
        missing_extras.setdefault(name, [])
    src = read_table(source, required=("id", *TEXT_FIELDS))
    check_column_types(src.schema, SOURCE_SCHEMA, source)
    yield _standard_table(src, source, pa.array([source_lang] * src.num_rows, pa.string()), True)
    del src
    for path in parquet_files(translated):
        table = read_table(path, required=PARALLEL_REQUIRED_COLUMNS)
        check_column_types(table.schema, TRANSLATED_SCHEMA, path)
        lang = _canonical_lang(table.column("lang"), path)
        if table.num_rows and pc.any(pc.equal(lang, source_lang)).as_py():
            raise PolyinstructError(f"{path}: holds rows in the source language {source_lang}; the source rows "
                                    f"come from --source, remove them from --translated")
        for name in EXTRA_COLUMNS:
            if name not in table.column_names:
                missing_extras[name].append(path.name)
        yield _standard_table(table, path, lang, False)
