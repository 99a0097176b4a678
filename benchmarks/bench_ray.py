"""The Ray backend: translation units/s with 1 and 2 local Ray workers on CPU, and the local backend.

Model: the smoke NLLB model (real NLLB architecture at a tiny size, random weights), on CTranslate2
int8, greedy. Units: the distinct translation units `segment` makes from the instruction, input
and output of real Alpaca records (../shared/data/alpaca_5000.json; the embedded sample without
it), normalised and in `pending_order`, as the translate stage sends them. Every measurement
starts from an empty translation memory and writes its shards into it, so the timed path is the
stage's own (translate_pending / translate_pending_ray).

- local: `translate_pending` with one CTranslate2Engine using every core (what `backend: local` runs);
- ray, 1 and 2 workers: `translate_pending_ray` on one local Ray instance (2 CPUs, started once,
  outside the timings), one actor per worker with one thread each.

units_per_s is end to end (the Ray figures include starting the actors and loading the model in
each: that is what a run pays); steady_units_per_s counts from the first finished shard to the
last. Shards are sized so each run has about 16, for balance. The machine is shared with other
work, so every configuration runs `repeats` times and the best run counts; the load average is
recorded. All three must produce identical translations (checked).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

WORK = Path(__file__).resolve().parent / "work" / "ray"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca_5000.json"
SHARDS_PER_RUN = 16


def _units(records: int) -> list[str]:
    from dataset_builder.ingest import embedded_sample_path
    from dataset_builder.segment import normalise_unit, segment
    from dataset_builder.translate import pending_order

    path = SHARED if SHARED.exists() else embedded_sample_path()
    rows = json.loads(path.read_text(encoding="utf-8"))[:records]
    return pending_order(normalise_unit(u) for r in rows for f in ("instruction", "input", "output")
                         for u in segment(r.get(f, "")).units)


def _measure(name: str, translate: Any, engine: Any, units: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one measurement; returns (figures, translations)."""
    marks: list[tuple[float, int]] = []
    engine.on_batch = lambda n, _tokens: marks.append((time.perf_counter(), n))
    started = time.perf_counter()
    results = translate()
    wall = time.perf_counter() - started
    if len(results) != len(units):
        raise RuntimeError(f"{name}: {len(results)} results for {len(units)} units")
    first = marks[0][0] if marks else started
    after_first = sum(n for _, n in marks[1:])
    return {
        "seconds": round(wall, 3), "units_per_s": round(len(units) / wall, 1),
        "first_result_s": round(first - started, 3),
        "steady_units_per_s": round(after_first / (marks[-1][0] - first), 1) if len(marks) > 1 else None,
        "target_tokens": engine.stats.target_tokens, "engine_busy_s": round(engine.stats.seconds, 3),
    }, results


def run(quick: bool = False) -> dict[str, Any]:
    from dataset_builder.models.nllb import resolve_translation_model
    from dataset_builder.translate import CTranslate2Engine, TranslationMemory, memory_key, translate_pending
    from dataset_builder.translate_ray import ray_session, translate_pending_ray
    from schemas.params import parse_params

    records, repeats = (300, 1) if quick else (5000, 2)
    units = _units(records)
    shard_units = max(64, math.ceil(len(units) / SHARDS_PER_RUN))
    WORK.mkdir(parents=True, exist_ok=True)
    params = parse_params({"models": {"cache_dir": str(WORK / "models")},
                           "translate": {"backend": "ray", "shard_units": shard_units, "ray_num_workers": 2}})
    model_dir = resolve_translation_model("smoke", params)
    key = memory_key("bench", "eng_Latn", "fra_Latn", params.translate, "int8")

    def engine_for(workers: int) -> Any:
        settings = params.translate.model_copy(update={"ray_num_workers": workers})
        return CTranslate2Engine(model_dir, "eng_Latn", "fra_Latn", settings, "cpu", "int8")

    def fresh_memory(name: str) -> TranslationMemory:
        shutil.rmtree(WORK / "memory" / name, ignore_errors=True)
        return TranslationMemory(WORK / "memory" / name, key)

    runs: dict[str, list[dict[str, Any]]] = {"local": [], "ray_1_worker": [], "ray_2_workers": []}
    outputs: dict[str, Any] = {}
    load_before = os.getloadavg()
    ray_started = time.perf_counter()
    with ray_session(params.translate):  # one local instance with 2 CPUs for all Ray measurements
        ray_start_s = time.perf_counter() - ray_started
        for _ in range(repeats):
            engine = engine_for(1)
            memory = fresh_memory("local")
            figures, outputs["local"] = _measure("local", lambda e=engine, m=memory: translate_pending(
                units, e, m, shard_units), engine, units)
            runs["local"].append(figures)
            for workers, name in ((1, "ray_1_worker"), (2, "ray_2_workers")):
                engine = engine_for(workers)
                memory = fresh_memory(name)
                figures, outputs[name] = _measure(name, lambda e=engine, m=memory: translate_pending_ray(
                    units, m, e, "eng_Latn"), engine, units)
                runs[name].append(figures)
    identical = outputs["local"] == outputs["ray_1_worker"] == outputs["ray_2_workers"]
    if not identical:
        raise RuntimeError("the Ray backend's translations differ from the local backend's")
    best = {name: max(r, key=lambda f: f["units_per_s"]) for name, r in runs.items()}
    one, two = best["ray_1_worker"], best["ray_2_workers"]
    steady_ratio = (round(two["steady_units_per_s"] / one["steady_units_per_s"], 3)
                    if one["steady_units_per_s"] and two["steady_units_per_s"] else None)
    return {
        "summary": {
            "units_per_s_1_worker": one["units_per_s"],
            "units_per_s_2_workers": two["units_per_s"],
            "scaling_ratio": round(two["units_per_s"] / one["units_per_s"], 3),
            "steady_scaling_ratio": steady_ratio,
            "local_units_per_s": best["local"]["units_per_s"],
            "units": len(units),
            "model": "smoke NLLB (random weights)",
        },
        "units": len(units), "records": records, "shard_units": shard_units, "repeats": repeats,
        "identical_output": identical, "ray_start_s": round(ray_start_s, 2),
        "best": best, "runs": runs,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
        "note": "smoke model: tiny and random, so per-unit work is small and fixed costs (Ray startup,"
                " per-shard scheduling, tokenization in Python) weigh more than with a real NLLB model",
    }
