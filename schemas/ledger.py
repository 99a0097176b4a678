"""The rejects ledger and the conservation check every stage runs: kept + rejected == in."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from schemas.artifacts import write_parquet
from schemas.errors import ConservationError, PolyinstructError
from schemas.records import REJECT_SCHEMA


def rejects_table(rows: list[dict[str, str]] | None = None) -> pa.Table:
    """Rows of (id, lang, stage, reason, detail) as a table with the Reject schema (possibly empty)."""
    rows = rows or []
    return pa.Table.from_pylist(rows, schema=REJECT_SCHEMA)


def write_rejects(table: pa.Table, path: Path | str) -> Path:
    return write_parquet(table.sort_by([("lang", "ascending"), ("id", "ascending"), ("reason", "ascending")])
                         if table.num_rows else table, path, REJECT_SCHEMA)


def check_conservation(stage: str, counts_in: Mapping[str, int], kept: Mapping[str, int],
                       rejected: Mapping[str, int]) -> None:
    """Fail loudly if, for any language, kept + rejected != in."""
    for lang in sorted(set(counts_in) | set(kept) | set(rejected)):
        n_in, n_kept, n_rej = counts_in.get(lang, 0), kept.get(lang, 0), rejected.get(lang, 0)
        if n_kept + n_rej != n_in:
            raise ConservationError(
                f"{stage}: conservation broken for {lang}: in={n_in} but kept={n_kept} + rejected={n_rej}"
                f" = {n_kept + n_rej}; this is a bug in polyinstruct, please report it"
            )


def refuse_empty_output(stage: str, n_in: int, n_kept: int, rejected_by_reason: Mapping[str, int],
                        rejects_path: Path | str) -> None:
    """A stage that would hand 0 rows on from a non-empty input stops instead, naming why rows went."""
    if n_in and not n_kept:
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(rejected_by_reason.items(), key=lambda kv: -kv[1]) if n)
        raise PolyinstructError(f"{stage}: all {n_in} input rows were rejected ({reasons or 'no reason recorded'});"
                                f" nothing written for the next stage; see the reasons in {rejects_path}")
