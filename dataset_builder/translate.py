"""The translate stage: source records -> records in one target language, with NLLB on CTranslate2.

The flow has three separable parts; the middle one runs on a shard backend (dataset_builder.backends:
`local` in this process, `ray` on a cluster), chosen by `translate.backend`:

1. plan (translate_plan.py): segment every field into units (segment.py; in worker processes for large inputs, and
   cached per source file under `<memory>/segments/`, so the next language reuses it), split units
   over the model's input limit, look the distinct units up in the translation memory, list what
   is still pending;
2. translate (translate_engine.py): `UnitTranslator` -- a callable from a list of unit texts to `UnitResult`s,
   `CTranslate2Engine`, built where the work runs by `TranslatorFactory`; pending units go to it in
   shards of `translate.shard_units`, and every finished shard is written to the memory at once
   (atomic Parquet file);
3. assemble: put translations back into the fields, flag truncation and span loss, write rows.

The translation memory (translation_memory.py) is a directory of immutable Parquet shards per key (model fingerprint,
source and target language, decoding settings). A unit is translated once per target language,
however many records hold it and however often the stage reruns; a filter threshold or a new
language re-translates nothing already done. A run killed with SIGKILL loses at most the shard in
flight, and the rerun translates only what no finished shard holds.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataset_builder.backends import LocalBackend, run_pending
from dataset_builder.memory import pending_order
from dataset_builder.models.nllb import model_fingerprint
from dataset_builder.segment import normalise_unit, reassemble, spans_preserved
from dataset_builder.shard_work import Prebuilt
from dataset_builder.translate_engine import (
    LoadedOnce,
    TranslatorFactory,
    UnitTranslator,
    open_translator,
    shard_backend,
)
from dataset_builder.translate_plan import STAGE, apply_policy, fit_units, language_bound_flags, plan_source
from dataset_builder.translation_memory import TranslationMemory, UnitResult, memory_key, record_log_prob
from schemas.artifacts import parquet_rows, read_table, write_json, write_parquet
from schemas.errors import PolyinstructError
from schemas.languages import nllb_codes, resolve
from schemas.ledger import check_conservation, refuse_empty_output, rejects_table, write_rejects
from schemas.params import Params
from schemas.progress import progress_bar
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS, TRANSLATED_SCHEMA
from schemas.timings import split_timing, write_timing

# Metrics of how this run went rather than of the data: they move to the timing file (schemas/timings.py).
# What the memory served, and so what the engine did, depends on earlier runs, not on the data.
RUN_KEYS: tuple[str, ...] = (
    "backend", "device", "units_translated", "cache_hits", "cache_hit_rate", "source_tokens", "target_tokens",
    "translate_seconds", "units_per_second", "target_tokens_per_second", "engine_batches", "memory",
    "memory_shards", "seconds",
    # The fixed costs, per language (issue 14): 0 where a multi-language run (translate_many) reused them.
    "model_load_seconds", "tokenizer_load_seconds", "plan_seconds", "fit_seconds", "engine_seconds",
    "setup_seconds")


@dataclass
class TranslateResult:
    lang: str
    translated: int
    kept_verbatim: int
    rejected: int
    metrics: dict[str, Any] = field(default_factory=dict)


def translate_file(source: Path, lang: str, model_dir: Path, out: Path, metrics_out: Path | None,
                   rejects_out: Path, params: Params, cache: Path | None = None,
                   translator: UnitTranslator | None = None,
                   factory: TranslatorFactory | None = None, loaded: LoadedOnce | None = None,
                   plan_cache: Path | None = None) -> TranslateResult:
    """Translate `source` (SOURCE_SCHEMA Parquet) into `lang`; see the module docstring.
    `translator` replaces the CTranslate2 call (tests; run by the local backend); tokenization stays the
    model's. `factory`: an engine already opened for this language pair (`open_translator`), reused.
    `loaded`: the tokenizer, model, plan and token counts an earlier language of this process loaded
    (translate_many). `plan_cache`: its `segments/` caches the segmentation plan; default: the memory directory."""
    started = time.perf_counter()
    settings = params.translate
    target = resolve(lang).flores
    src_lang = params.languages.source
    if target not in nllb_codes():
        raise PolyinstructError(f"--lang {lang}: NLLB-200 does not translate into {target}")
    if target == src_lang:
        raise PolyinstructError(f"--lang {lang}: that is the source language; pick a target language")
    table = read_table(source, required=SOURCE_SCHEMA.names)
    columns: dict[str, list[str]] = {c: table.column(c).to_pylist() for c in ("id", *TEXT_FIELDS)}
    n_in = table.num_rows

    fingerprint, smoke = model_fingerprint(Path(model_dir))
    factory = factory or open_translator(Path(model_dir), src_lang, target, settings, loaded)
    device, compute_type = factory.device, factory.compute_type
    engine = factory()  # the driver's: tokenizes for planning; the local backend translates with it
    memory_root = cache if cache is not None else Path(settings.cache)
    memory = TranslationMemory(memory_root, memory_key(fingerprint, src_lang, target, settings, compute_type))
    if memory.migrated_shards:
        print(f"translation memory {memory.directory}: {memory.migrated_shards} shard(s) migrated to format 2; "
              "their units' scores are unknown (delete the directory to rebuild it with scores)", file=sys.stderr)

    plan_started = time.perf_counter()
    plan_key = (str(Path(source).resolve()), resolve(src_lang).iso639_1 or "en")
    plan = loaded.plans.get(plan_key) if loaded is not None else None
    if plan is None:
        with progress_bar() as progress:
            task = progress.add_task(f"segment {target}", total=n_in, unit="records")
            rows_in = list(zip(*(columns[f] for f in TEXT_FIELDS), strict=True))
            plan = plan_source(source, rows_in, plan_cache or memory_root, lambda k: progress.advance(task, k),
                               lang=plan_key[1])
        if loaded is not None:
            loaded.plans[plan_key] = plan
    plan_seconds = time.perf_counter() - plan_started
    planned, verbatim, rejects = apply_policy(plan, columns["id"], settings.code_policy, target,
                                               language_bound_flags(table, params))
    fit_started = time.perf_counter()
    split_fields = fit_units(planned, engine.input_budget, engine.count_tokens)
    fit_seconds = time.perf_counter() - fit_started
    occurrences = [normalise_unit(u) for p in planned for s in p.fields.values() for u in s.units]
    distinct = sorted(set(occurrences))
    cached = memory.lookup(distinct)
    pending = pending_order(u for u in distinct if u not in cached)
    # translate.backend picks where the work runs (backends.py); a caller's stand-in runs in this process.
    backend = shard_backend(settings) if translator is None else LocalBackend()
    if translator is None:
        backend.check_work(settings.device, device, len(pending))
    work = factory if translator is None else Prebuilt(translator, factory.model_dir, device, compute_type)
    translate_started = time.perf_counter()
    run = run_pending(backend, pending, work, memory, settings.shard_units, f"translate {target}", "units")
    fresh: dict[str, UnitResult] = run.results
    translate_seconds = run.seconds
    results = {**cached, **fresh}

    rows: list[dict[str, Any]] = []
    truncated_units = sum(results[u].truncated for u in distinct)
    spans_lost = 0
    for p in planned:
        row: dict[str, Any] = {"id": columns["id"][p.index], "lang": target, "model": fingerprint, "smoke": smoke,
                               "kept_verbatim": False}
        truncated: list[str] = []
        spans_ok = True
        record_units: list[UnitResult] = []
        for f, seg in p.fields.items():
            unit_results = [results[normalise_unit(u)] for u in seg.units]
            row[f] = reassemble(seg, [r.translation for r in unit_results])
            record_units.extend(unit_results)
            if any(r.truncated for r in unit_results):
                truncated.append(f)
            spans_ok = spans_ok and spans_preserved(columns[f][p.index], row[f], seg.spans)
        spans_lost += not spans_ok
        rows.append({**row, "truncated_fields": truncated, "protected_spans_ok": spans_ok,
                     "log_prob": record_log_prob(record_units)})
    for i in verbatim:
        rows.append({"id": columns["id"][i], "lang": target, **{f: columns[f][i] for f in TEXT_FIELDS},
                     "model": fingerprint, "smoke": smoke, "truncated_fields": [], "protected_spans_ok": True,
                     "kept_verbatim": True, "log_prob": None})

    rows.sort(key=lambda r: r["id"])
    write_rejects(rejects_table(rejects), rejects_out)
    refuse_empty_output(STAGE, n_in, len(rows), Counter(r["reason"] for r in rejects), rejects_out)
    write_parquet(pa.Table.from_pylist(rows, schema=TRANSLATED_SCHEMA), out, TRANSLATED_SCHEMA)
    # In: the rows of the source file; kept and rejected: the rows of the files written.
    check_conservation(STAGE, {target: n_in}, {target: parquet_rows(out)}, {target: parquet_rows(rejects_out)})

    by_reason: dict[str, int] = {}
    for r in rejects:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    sent = len(pending)
    metrics = {
        "lang": target, "model": fingerprint, "smoke": smoke, "backend": backend.name, "device": device,
        "compute_type": compute_type,
        "beam_size": settings.beam_size, "max_batch_tokens": settings.max_batch_tokens,
        "records": n_in, "translated": len(planned), "kept_verbatim": len(verbatim), "rejected": len(rejects),
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "units": len(occurrences), "distinct_units": len(distinct), "units_translated": sent,
        "cache_hits": len(cached), "cache_hit_rate": round(len(cached) / len(distinct), 4) if distinct else 1.0,
        "fields_split_for_length": split_fields, "truncated_units": truncated_units,
        "truncated_records": sum(bool(r["truncated_fields"]) for r in rows), "records_spans_not_preserved": spans_lost,
        "empty_unit_translations": sum(not results[u].translation for u in distinct),
        "source_tokens": sum(fresh[u].source_tokens for u in fresh),
        "target_tokens": sum(fresh[u].target_tokens for u in fresh),
        "translate_seconds": round(translate_seconds, 3),
        "units_per_second": round(sent / translate_seconds, 1) if sent and translate_seconds > 0 else None,
        "target_tokens_per_second": round(sum(fresh[u].target_tokens for u in fresh) / translate_seconds, 1)
        if sent and translate_seconds > 0 else None,
        "engine_batches": run.batches if translator is None else None,
        "memory": str(memory.directory), "memory_shards": len(memory.shards()),
        "memory_migrated_shards": memory.migrated_shards,
        "units_without_score": sum(results[u].score is None for u in distinct),
        "seconds": round(time.perf_counter() - started, 3),
        "model_load_seconds": round(engine.stats.model_load_seconds, 3),
        "tokenizer_load_seconds": round(engine.stats.tokenizer_load_seconds, 3),
        "plan_seconds": round(plan_seconds, 3), "fit_seconds": round(fit_seconds, 3),
        "engine_seconds": round(engine.stats.engine_seconds, 3) if translator is None else None,
        "setup_seconds": round(translate_started - started, 3),  # from the call to the first unit sent
    }
    if metrics_out:
        data_metrics, timing = split_timing(metrics, RUN_KEYS)
        write_json(data_metrics, metrics_out)
        write_timing(timing, metrics_out)
    return TranslateResult(target, len(planned), len(verbatim), len(rejects), metrics)
