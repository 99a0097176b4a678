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

import os
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from quality.filters import BAD_CHARS_RE
from schemas.models import SMOKE_MODEL_PREFIX
from schemas.params import Params
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS, TRANSLATED_SCHEMA

if TYPE_CHECKING:
    import great_expectations as gx

ROWS_SUITE = "polyinstruct.rows"
LANGUAGES_SUITE = "polyinstruct.languages"
SOURCE_SUITE = "polyinstruct.source"
SUITES: tuple[str, ...] = (SOURCE_SUITE, LANGUAGES_SUITE, ROWS_SUITE)
DOCS_SITE = "polyinstruct"
# U+FFFD (a decoding failure upstream) or a control character other than tab and newline: the very
# definition the quality filter rejects rows by, so the suite asserts that the filter did its job.
# RE2 syntax, which is what pandas runs for arrow-backed strings.
BAD_CHARS_REGEX = BAD_CHARS_RE


def gx_type_name(arrow_type: pa.DataType) -> str:
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


def schema_signature(schema: pa.Schema) -> str:
    """`name:type` list of a file's columns; string widths are an encoding detail, not a type change."""
    def norm(t: pa.DataType) -> str:
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return f"list<{norm(t.value_type)}>"  # the item field's name is not part of the type
        return "string" if pa.types.is_large_string(t) else str(t)

    return ", ".join(f"{f.name}:{norm(f.type)}" for f in schema)


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
LANGUAGE_INDEX = "file"  # index column of the per-language table
FILE_COLUMN = "__file"
# DuckDB -> Arrow batch size. Large batches read 2.5x faster than the default 131072 rows (measured on
# 3.4M rows) and leave one chunk per file to combine.
ARROW_BATCH_ROWS = 1 << 30



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
        exps.append(E.ExpectColumnValuesToBeOfType(column=field.name, type_=gx_type_name(field.type),
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
    expected_schema = schema_signature(TRANSLATED_SCHEMA)
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
