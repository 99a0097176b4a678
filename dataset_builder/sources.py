"""Ingest of several sources (`data.sources`, e.g. Alpaca + Dolly as in Bactrian-X) into one source table.

Each source is ingested on its own by `ingest.ingest` (its format, column map, Hub revision and config),
so its ids are `{name}-{index}` with the index in that source: stable and distinct across sources. The
parts are then concatenated, and a record that repeats one of another source is rejected as a duplicate.
Counts are checked independently: every record of every source is kept or rejected."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from dataset_builder.ingest import STAGE, IngestResult, ingest, split_exact_duplicates
from schemas.artifacts import write_json, write_parquet
from schemas.languages import ENGLISH
from schemas.ledger import check_conservation, rejects_table, write_rejects
from schemas.params import DataParams
from schemas.records import SOURCE_SCHEMA
from schemas.timings import write_timing


def source_params(data: DataParams, index: int) -> DataParams:
    """The single-source params of `data.sources[index]`; limit/sample/seed/max_field_chars are shared."""
    src = data.sources[index]
    return DataParams(source=src.source, format=src.format, column_map=src.column_map, source_name=src.name,
                      revision=src.revision, config=src.config, limit=src.limit or data.limit, sample=data.sample,
                      seed=data.seed, max_field_chars=data.max_field_chars)


def ingest_sources(data: DataParams, out: Path, rejects_out: Path, metrics_out: Path | None = None,
                   source_lang: str = ENGLISH.flores) -> IngestResult:
    started = time.perf_counter()
    frames: list[pl.DataFrame] = []
    rejects: list[dict[str, str]] = []
    per_source: dict[str, dict[str, object]] = {}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".ingest-", dir=Path(out).parent) as tmp:
        for i, src in enumerate(data.sources):
            part, part_rejects = Path(tmp) / f"{i}.parquet", Path(tmp) / f"{i}.rejects.parquet"
            result = ingest(source_params(data, i), part, part_rejects, source_lang=source_lang)
            frame = pl.read_parquet(part)
            rejected = pq.read_table(part_rejects).to_pylist()
            assert len(frame) == result.kept and len(rejected) == result.rejected  # what ingest reported
            frames.append(frame)
            rejects += rejected
            per_source[src.name] = {"source": src.source, "revision": src.revision, "config": src.config,
                                    "license": src.license, "in": result.kept + result.rejected,
                                    "kept": result.kept, "rejected": result.rejected,
                                    "rejected_by_reason": result.by_reason}
    combined, cross_dups = split_exact_duplicates(pl.concat(frames), source_lang)
    rejects += [{**r, "detail": f"{r['detail']} (across sources)"} for r in cross_dups]
    n_in = sum(int(s["in"]) for s in per_source.values())  # type: ignore[call-overload]
    check_conservation(STAGE, {source_lang: n_in}, {source_lang: combined.height}, {source_lang: len(rejects)})
    write_parquet(combined.to_arrow(), out, SOURCE_SCHEMA)
    write_rejects(rejects_table(rejects), rejects_out)
    by_reason: dict[str, int] = {}
    for r in rejects:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    result = IngestResult(kept=combined.height, rejected=len(rejects), by_reason=dict(sorted(by_reason.items())))
    if metrics_out:
        write_json({"source": [s.source for s in data.sources], "in": n_in, "kept": result.kept,
                    "rejected": result.rejected, "rejected_by_reason": result.by_reason,
                    "duplicates_across_sources": len(cross_dups), "sources": per_source}, metrics_out)
        write_timing({"seconds": round(time.perf_counter() - started, 3)}, metrics_out)
    return result
