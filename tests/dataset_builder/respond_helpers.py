"""Helpers of the respond tests: translated-record files made from the embedded sample."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from dataset_builder.ingest import embedded_sample_path
from schemas.artifacts import write_parquet
from schemas.records import TRANSLATED_SCHEMA


def translated_file(path: Path, n: int, lang: str = "fra_Latn", extra: list[dict[str, str]] | None = None) -> Path:
    """`n` records of the embedded sample as a translate-stage output in `lang` (plus `extra` rows)."""
    records = json.loads(embedded_sample_path().read_text(encoding="utf-8"))[:n] + (extra or [])
    rows = [{"id": r.get("id", f"sample-{i:05d}"), "lang": lang, "instruction": r["instruction"],
             "input": r.get("input", ""), "output": r["output"], "model": "smoke:nllb", "smoke": True,
             "truncated_fields": [], "protected_spans_ok": True, "kept_verbatim": False}
            for i, r in enumerate(records)]
    return write_parquet(pa.Table.from_pylist(rows, schema=TRANSLATED_SCHEMA), path, TRANSLATED_SCHEMA)
