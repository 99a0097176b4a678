"""The `score` stage: NLLB's own score of translations it did not produce (quality estimation).

Imported machine translation (an LLM's, DeepL's, Google's) has no `log_prob`: our translate stage did not
write it. Here the translation model scores it by forced decoding (CTranslate2 `score_batch`, through
`CTranslate2Engine.score_pairs`), so `quality.filters.low_confidence` can judge it as it judges our own
translations (quality/confidence.py).

Units: every field is segmented as translate segments it (segment.py, the span contract: code, URLs,
numbers and placeholders are not scored, the model never sees them). The source's units are paired with
the translation's one to one when both have as many; else line by line (the units of a line joined) when
both have as many non-empty lines; else the field's units joined on each side. A field with no unit on
one side (all spans, or empty) is not scored. A pair longer than `quality.qe.max_pair_tokens` on either
side leaves its record unscored (`too_long`). The record's score is the units' mean log-probability per
token weighted by target tokens, as translate's `log_prob` (translation_memory.record_log_prob).

Pair scores go to the translation memory's store (`translate.cache`) under their own key (model, languages,
compute type, forced decoding), so a rerun or a second threshold scores nothing again. Rows that already
have a `log_prob` (ours) or were kept verbatim are not scored. Output, per language: Parquet (QE_SCHEMA),
the scored text's sha256 with each score, so quality never applies a score to text that changed since.
With a smoke model (random weights) the scores test the mechanics only: every row and the metrics say so.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataset_builder.backends import LocalBackend, run_pending
from dataset_builder.memory import pending_order
from dataset_builder.models.nllb import model_fingerprint
from dataset_builder.segment import Segmented, normalise_unit, segment
from dataset_builder.shard_work import Prebuilt
from dataset_builder.translate_engine import CTranslate2Engine, TranslatorFactory
from dataset_builder.translation_memory import TranslationMemory, UnitResult, record_log_prob
from schemas.artifacts import read_table, write_json, write_parquet
from schemas.errors import PolyinstructError
from schemas.languages import resolve
from schemas.params import Params
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS
from schemas.timings import split_timing, write_timing

STAGE = "score"
QE_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("lang", pa.string(), nullable=False),
    pa.field("qe_score", pa.float64(), nullable=True),  # null: not scorable (alignment says why)
    pa.field("scored_units", pa.int32(), nullable=False),
    pa.field("alignment", pa.string(), nullable=False),  # units | lines | field | none | too_long
    pa.field("text_sha256", pa.string(), nullable=False),  # of the scored fields, joined by "\n"
    pa.field("model", pa.string(), nullable=False),
    pa.field("smoke", pa.bool_(), nullable=False),
])
ALIGNMENTS = ("units", "lines", "field")  # finest first; a record reports its coarsest
SMOKE_NOTE = "smoke model (random weights): these scores test the mechanics only, not translation quality"


def text_sha256(row: dict[str, Any]) -> str:
    """What a score belongs to: the fields joined by newlines (quality recomputes it in SQL)."""
    return hashlib.sha256("\n".join(row[f] or "" for f in TEXT_FIELDS).encode()).hexdigest()


def _line_units(seg: Segmented) -> list[str]:
    """A field's units joined per line; lines without a unit (blank, code, spans only) left out."""
    lines: list[str] = []
    current: list[str] = []
    for piece in seg.pieces:
        if piece.translate:
            current.append(normalise_unit(piece.text))
        elif "\n" in piece.text and current:
            lines.append(" ".join(current))
            current = []
    return lines + ([" ".join(current)] if current else [])


def unit_pairs(source: str, target: str, src_iso: str, tgt_iso: str) -> tuple[list[tuple[str, str]], str]:
    """(source unit, target unit) pairs of one field and how they were aligned (see module docstring)."""
    src, tgt = segment(source, lang=src_iso), segment(target, lang=tgt_iso)
    su, tu = [normalise_unit(u) for u in src.units], [normalise_unit(u) for u in tgt.units]
    if not su or not tu:
        return [], "none"
    if len(su) == len(tu):
        return list(zip(su, tu, strict=True)), "units"
    sl, tl = _line_units(src), _line_units(tgt)
    if len(sl) == len(tl):
        return list(zip(sl, tl, strict=True)), "lines"
    return [(" ".join(su), " ".join(tu))], "field"


def pair_key(pair: tuple[str, str]) -> str:
    """A memory item: the pair, unambiguously."""
    return json.dumps(pair, ensure_ascii=False)


class PairScorer:
    """The work the local backend runs shard by shard: memory items (pair keys) -> scores."""

    def __init__(self, engine: CTranslate2Engine) -> None:
        self.engine = engine

    @property
    def on_batch(self) -> Any:
        return self.engine.on_batch

    @on_batch.setter
    def on_batch(self, call: Any) -> None:
        self.engine.on_batch = call

    def __call__(self, items: Sequence[str]) -> list[UnitResult]:
        return self.engine.score_pairs([tuple(json.loads(i)) for i in items])


def score_file(source: Path, translated: Path, model_dir: Path, out: Path, metrics_out: Path | None,
               params: Params, cache: Path | None = None) -> dict[str, Any]:
    """Score `translated` (one language, the parallel columns) against `source` (SOURCE_SCHEMA)."""
    started = time.perf_counter()
    table = read_table(translated, required=("id", "lang", *TEXT_FIELDS))
    langs = {resolve(c).flores for c in set(table.column("lang").to_pylist())}
    if len(langs) > 1:
        raise PolyinstructError(f"{translated}: holds several languages ({', '.join(sorted(langs))}); score takes "
                                "one language's file (data/translated/<lang>.parquet)")
    target = langs.pop() if langs else resolve(translated.stem).flores
    src_lang = params.languages.source
    if target == src_lang:
        raise PolyinstructError(f"{translated}: holds rows in the source language {src_lang}; nothing to score")
    if not params.quality.qe.enabled:  # the DVC stage, switched off: an empty file, no model loaded
        write_parquet(QE_SCHEMA.empty_table(), out, QE_SCHEMA)
        metrics = {"lang": target, "enabled": False, "records": table.num_rows, "scored": 0,
                   "note": "quality.qe.enabled is false: nothing scored"}
        if metrics_out is not None:
            write_json(metrics, metrics_out)
        return metrics
    originals = {r["id"]: r for r in read_table(source, required=SOURCE_SCHEMA.names).to_pylist()}
    rows = table.to_pylist()
    counts = {"records": len(rows), "already_scored": 0, "kept_verbatim": 0, "no_source": 0}
    todo = []
    for row in rows:
        if row.get("log_prob") is not None:
            counts["already_scored"] += 1  # our translate stage's own score: quality uses it
        elif row.get("kept_verbatim"):
            counts["kept_verbatim"] += 1
        elif row["id"] not in originals:
            counts["no_source"] += 1
        else:
            todo.append(row)

    settings = params.translate
    fingerprint, smoke = model_fingerprint(Path(model_dir))
    backend = LocalBackend()
    device, compute_type = backend.devices(settings, STAGE)
    engine = TranslatorFactory(Path(model_dir), src_lang, target, settings, device, compute_type)()
    src_iso, tgt_iso = resolve(src_lang).iso639_1 or "en", resolve(target).iso639_1 or "en"
    limit = params.quality.qe.max_pair_tokens
    planned: list[tuple[dict[str, Any], list[tuple[str, str]], str]] = []
    for row in todo:
        pairs: list[tuple[str, str]] = []
        coarsest = -1
        for f in TEXT_FIELDS:
            found, how = unit_pairs(originals[row["id"]][f] or "", row[f] or "", src_iso, tgt_iso)
            pairs += found
            coarsest = max(coarsest, ALIGNMENTS.index(how) if how in ALIGNMENTS else -1)
        planned.append((row, pairs, ALIGNMENTS[coarsest] if coarsest >= 0 else "none"))
    distinct = sorted({p for _, pairs, _ in planned for p in pairs})
    sides = sorted({s for p in distinct for s in p})
    lengths = dict(zip(sides, engine.count_tokens(sides), strict=True))
    too_long = {p for p in distinct if max(lengths[p[0]], lengths[p[1]]) > limit}

    memory_root = cache if cache is not None else Path(settings.cache)
    memory = TranslationMemory(memory_root, {"model": fingerprint, "src_lang": src_lang, "tgt_lang": target,
                                             "compute_type": compute_type, "scoring": "forced decoding"})
    wanted = {pair_key(p): p for p in distinct if p not in too_long}
    cached = memory.lookup(wanted)
    pending = pending_order(k for k in wanted if k not in cached)
    if pending:
        backend.check_work(settings.device, device, len(pending))
    run = run_pending(backend, pending, Prebuilt(PairScorer(engine), Path(model_dir), device, compute_type), memory,
                      settings.shard_units, f"score {target}", "pairs")
    results = {wanted[k]: r for k, r in {**cached, **run.results}.items()}

    out_rows = []
    for row, pairs, how in planned:
        long = any(p in too_long for p in pairs)
        score = None if long or not pairs else record_log_prob([results[p] for p in pairs])
        out_rows.append({"id": row["id"], "lang": target, "qe_score": score, "scored_units": 0 if long else len(pairs),
                         "alignment": "too_long" if long else how, "text_sha256": text_sha256(row),
                         "model": fingerprint, "smoke": smoke})
    out_rows.sort(key=lambda r: r["id"])
    write_parquet(pa.Table.from_pylist(out_rows, schema=QE_SCHEMA), out, QE_SCHEMA)
    scores = [r["qe_score"] for r in out_rows if r["qe_score"] is not None]
    by_alignment: dict[str, int] = {}
    for r in out_rows:
        by_alignment[r["alignment"]] = by_alignment.get(r["alignment"], 0) + 1
    metrics: dict[str, Any] = {
        "lang": target, "enabled": True, "source_lang": src_lang, "model": fingerprint, "smoke": smoke, **counts,
        "scored": len(scores), "not_scorable": len(out_rows) - len(scores),
        "by_alignment": dict(sorted(by_alignment.items())), "max_pair_tokens": limit,
        "mean_qe_score": round(sum(scores) / len(scores), 4) if scores else None,
        **({"note": SMOKE_NOTE} if smoke else {}),
        "pairs": len(distinct), "pairs_scored": len(pending), "cache_hits": len(cached),
        "memory": str(memory.directory), "seconds": round(time.perf_counter() - started, 3),
    }
    if metrics_out is not None:
        data_metrics, timing = split_timing(metrics, ("pairs_scored", "cache_hits", "memory", "seconds"))
        write_json(data_metrics, metrics_out)
        write_timing(timing, metrics_out)
    return metrics
