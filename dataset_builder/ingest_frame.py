"""The ingest record contract for columnar sources (CSV, Parquet), checked column-wise in Polars: the same
rows kept and the same rejects, with the same details, as the per-record check of JSON sources, but no
row is ever turned into a Python dict."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pyarrow as pa

from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS

# Columns whose values read back as Python str: accepted as text.
_TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Null)


def _python_type_name(column: pl.Series) -> str:
    """The Python type a non-null value of `column` reads back as (what the per-record check names)."""
    return type(column.drop_nulls().head(1).to_list()[0]).__name__


def check_frame(frame: pl.DataFrame, selected: list[int], mapping: dict[str, str], max_field_chars: int,
                source_name: str, locate: Callable[[int], str]) -> tuple[pa.Table, list[tuple[str, str, str]]]:
    """Check the rows at `selected` (sorted positions) of `frame`; `mapping` is field -> column. Returns the
    good rows (SOURCE_SCHEMA, unnormalised) and the rejects as (id, reason, detail), in position order.
    The first problem of a row, in TEXT_FIELDS order, is its reason; `locate(i)` says where row i is."""
    picked = frame.select(pl.all().gather(selected)) if len(selected) != frame.height else frame
    exprs: list[pl.Expr] = [pl.lit(pl.Series("_i", selected, dtype=pl.Int64))]
    type_names: dict[str, str] = {}
    for fld in TEXT_FIELDS:
        col = mapping[fld]
        dtype = picked.schema[col] if col in picked.columns else pl.Null
        value = pl.col(col) if col in picked.columns else pl.lit(None, dtype=pl.String)
        is_text = any(dtype == t or isinstance(dtype, t) for t in _TEXT_TYPES)
        if is_text:
            text, wrong = value.cast(pl.String), pl.lit(False)
        else:
            text, wrong = pl.lit(None, dtype=pl.String), value.is_not_null()
            type_names[fld] = _python_type_name(picked[col]) if picked[col].null_count() < picked.height else ""
        missing = value.is_null()
        if fld == "input":  # an absent input is an empty one
            text, missing = text.fill_null(""), pl.lit(False)
        length = text.str.len_chars()
        exprs += [
            text.alias(fld),
            length.alias(f"_len_{fld}"),
            pl.when(missing).then(pl.lit("missing_field")).when(wrong).then(pl.lit("bad_type"))
            .when(length > max_field_chars).then(pl.lit("field_too_long")).otherwise(pl.lit(None, dtype=pl.String))
            .alias(f"_problem_{fld}"),
        ]
    checked = picked.select(exprs).with_columns(
        pl.coalesce([pl.col(f"_problem_{f}") for f in TEXT_FIELDS]).alias("_reason"),
        pl.coalesce([pl.when(pl.col(f"_problem_{f}").is_not_null()).then(pl.lit(f)) for f in TEXT_FIELDS])
        .alias("_field"),
        pl.format("{}-{}", pl.lit(source_name), pl.col("_i")).alias("id"),
    )
    rejects = []
    for row in checked.filter(pl.col("_reason").is_not_null()).iter_rows(named=True):  # the rejected rows only
        fld, col, where = row["_field"], mapping[row["_field"]], locate(row["_i"])
        detail = {
            "missing_field": f"{where}: missing field '{col}' (maps to {fld})",
            "bad_type": f"{where}: field '{col}' must be a string, got {type_names.get(fld)}",
            "field_too_long": f"{where}: field '{col}' has {row[f'_len_{fld}'] or 0:,} characters, over"
                              f" data.max_field_chars={max_field_chars:,}",
        }[row["_reason"]]
        rejects.append((row["id"], row["_reason"], detail))
    good = checked.filter(pl.col("_reason").is_null()).select(
        "id", pl.lit(source_name, dtype=pl.String).alias("source"), *TEXT_FIELDS)
    return good.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(SOURCE_SCHEMA), rejects
