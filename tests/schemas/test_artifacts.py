"""write_parquet_batches writes, from a stream of record batches, the very file write_parquet writes from
the whole table: the same bytes, across a row-group boundary and for no rows at all."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from schemas.artifacts import PARQUET_ROW_GROUP_ROWS, write_parquet, write_parquet_batches
from schemas.records import REJECT_SCHEMA


@pytest.mark.parametrize("rows", [0, 5, PARQUET_ROW_GROUP_ROWS + 7_000])
def test_batches_write_the_same_file_as_the_table(tmp_path: Path, rows: int) -> None:
    table = pa.table({"id": [f"id-{i:07d}" for i in range(rows)], "lang": ["fra_Latn"] * rows,
                      "stage": ["filter"] * rows, "reason": [("empty", "duplicate")[i % 2] for i in range(rows)],
                      "detail": [f"detail {i % 977}" for i in range(rows)]})
    whole = write_parquet(table, tmp_path / "whole.parquet", REJECT_SCHEMA)
    streamed = write_parquet_batches(table.to_batches(max_chunksize=100_000), tmp_path / "streamed.parquet",
                                     REJECT_SCHEMA)
    assert streamed.read_bytes() == whole.read_bytes()
    assert not list(tmp_path.glob(".*"))  # no temp file left
