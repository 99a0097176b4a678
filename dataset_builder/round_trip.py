"""The `round-trip` stage: back-translate a sample of one language's translations into the source
language with the same model, through the translation memory, for the quality stage to score.

Bactrian-X audited its translations by hand-picked back-translation (chrF++ 68.1 mean); this makes that
check automatic. Which records: `quality.round_trip.sample` per language, chosen by a hash of the id (the
same ids in every language and every run), or every record when `quality.filters.round_trip` is on (it
costs a second translation). Records kept verbatim (code) are left out: a round trip says nothing of them.

The back-translation is `translate_file` with the roles swapped (source language = the translation's,
target = the original source language), so it is segmented, batched, cached and resumed exactly as the
forward translation is; its memory key differs by language pair. Output, per language: Parquet
(id, lang, source_text, back_text, model, smoke), each text the record's fields joined by newlines;
the quality stage (quality/round_trip.py) scores it with sacrebleu.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataset_builder.translate import translate_file
from dataset_builder.translate_engine import UnitTranslator
from schemas.artifacts import read_table, write_json, write_parquet
from schemas.errors import PolyinstructError
from schemas.languages import resolve
from schemas.params import Params
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS
from schemas.timings import split_timing, write_timing

STAGE = "round_trip"
ROUND_TRIP_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("lang", pa.string(), nullable=False),
    pa.field("source_text", pa.string(), nullable=False),  # the original record, fields joined by "\n"
    pa.field("back_text", pa.string(), nullable=False),  # its translation translated back, likewise
    pa.field("model", pa.string(), nullable=False),
    pa.field("smoke", pa.bool_(), nullable=False),
])


def sample_ids(ids: list[str], size: int | None) -> list[str]:
    """`size` ids chosen by sha256 of the id (None: all), so every language and rerun picks the same."""
    order = sorted(ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    return sorted(order if size is None else order[:size])


def joined(row: dict[str, Any]) -> str:
    return "\n".join(row[f] for f in TEXT_FIELDS if row[f])


def round_trip_file(source: Path, translated: Path, model_dir: Path, out: Path, metrics_out: Path | None,
                    params: Params, cache: Path | None = None, translator: UnitTranslator | None = None
                    ) -> dict[str, Any]:
    """Back-translate a sample of `translated` (one language, TRANSLATED_SCHEMA) into the source language."""
    table = read_table(translated, required=("id", "lang", *TEXT_FIELDS))
    langs = set(table.column("lang").to_pylist())
    if len(langs) > 1:
        raise PolyinstructError(f"{translated}: holds several languages ({', '.join(sorted(langs))}); the round trip "
                                "takes one language's file (data/translated/<lang>.parquet)")
    rows = table.to_pylist()
    lang = resolve(rows[0]["lang"]).flores if rows else resolve(translated.stem).flores
    originals = {r["id"]: r for r in read_table(source, required=SOURCE_SCHEMA.names).to_pylist()}
    rows = [r for r in rows if not r.get("kept_verbatim") and r["id"] in originals]
    size = None if params.quality.filters.round_trip.enabled else params.quality.round_trip.sample
    chosen = set(sample_ids([r["id"] for r in rows], size))
    picked = [r for r in rows if r["id"] in chosen]
    src_lang = params.languages.source
    back_params = params.model_copy(update={"languages": params.languages.model_copy(update={"source": lang})})
    with tempfile.TemporaryDirectory(prefix="polyinstruct-round-trip-") as tmp:
        work = Path(tmp)
        forward = pa.Table.from_pylist([{"id": r["id"], "source": STAGE, **{f: r[f] for f in TEXT_FIELDS}}
                                        for r in picked], schema=SOURCE_SCHEMA)
        write_parquet(forward, work / "forward.parquet", SOURCE_SCHEMA)
        result = translate_file(work / "forward.parquet", src_lang, model_dir, work / "back.parquet", None,
                                work / "rejects.parquet", back_params, cache=cache, translator=translator)
        back = {r["id"]: r for r in pq.read_table(work / "back.parquet").to_pylist()}
    out_rows = [{"id": i, "lang": lang, "source_text": joined(originals[i]), "back_text": joined(b),
                 "model": b["model"], "smoke": b["smoke"]} for i, b in sorted(back.items())]
    write_parquet(pa.Table.from_pylist(out_rows, schema=ROUND_TRIP_SCHEMA), out, ROUND_TRIP_SCHEMA)
    m = result.metrics
    metrics = {"lang": lang, "back_to": src_lang, "records": len(rows), "sampled": len(picked),
               "back_translated": len(out_rows), "not_back_translated": len(picked) - len(out_rows),
               "sample_size": size, "model": m["model"], "smoke": m["smoke"],
               "units_translated": m["units_translated"], "cache_hits": m["cache_hits"], "memory": m["memory"],
               "seconds": m["seconds"]}
    if metrics_out is not None:
        # What the memory served and how long it took depend on earlier runs, not on the data: timings.
        data_metrics, timing = split_timing(metrics, ("units_translated", "cache_hits", "memory", "seconds"))
        write_json(data_metrics, metrics_out)
        write_timing(timing, metrics_out)
    return metrics
