"""The Ray backend: translation units/s with 1 and 2 local Ray workers on CPU, and the local backend.

Model: the smoke NLLB model (real NLLB architecture at a tiny size, random weights), on CTranslate2
int8, greedy. Units: the distinct translation units `segment` makes from the instruction, input
and output of real Alpaca records (../shared/data/alpaca_5000.json; the embedded sample without
it), normalised and in `pending_order`, as the translate stage sends them. Every measurement
starts from an empty translation memory and writes its shards into it, so the timed path is the
stage's own (dataset_builder.backends: `LocalBackend.run` / `RayBackend.run`).

- local: `LocalBackend` with one CTranslate2Engine using every core (what `backend: local` runs);
- ray, 1 and 2 workers: `RayBackend` on one local Ray instance (2 CPUs, started once,
  outside the timings), one actor per worker with one thread each;
- respond: the respond stage's rendered prompts through the same two backends (local, 2 Ray
  workers) with the smoke responder (CTranslate2 Generator int8, 32 new tokens): prompts/s.

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

from benchmarks.shared_data import SHARED_ALPACA

WORK = Path(__file__).resolve().parent / "work" / "ray"
SHARDS_PER_RUN = 16


def _units(records: int) -> list[str]:
    from dataset_builder.ingest import embedded_sample_path
    from dataset_builder.memory import pending_order
    from dataset_builder.segment import normalise_unit, segment

    path = SHARED_ALPACA if SHARED_ALPACA.exists() else embedded_sample_path()
    rows = json.loads(path.read_text(encoding="utf-8"))[:records]
    return pending_order(normalise_unit(u) for r in rows for f in ("instruction", "input", "output")
                         for u in segment(r.get(f, "")).units)


def _measure(name: str, run: Any, items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one measurement: `run(on_batch)` is a backend's run over `items`; returns (figures, results)."""
    marks: list[tuple[float, int]] = []
    tokens = [0]

    def on_batch(n: int, produced: int) -> None:
        marks.append((time.perf_counter(), n))
        tokens[0] += produced

    started = time.perf_counter()
    results = run(on_batch).results
    wall = time.perf_counter() - started
    if len(results) != len(items):
        raise RuntimeError(f"{name}: {len(results)} results for {len(items)} items")
    first = marks[0][0] if marks else started
    after_first = sum(n for _, n in marks[1:])
    return {
        "seconds": round(wall, 3), "units_per_s": round(len(items) / wall, 1),
        "first_result_s": round(first - started, 3),
        "steady_units_per_s": round(after_first / (marks[-1][0] - first), 1) if len(marks) > 1 else None,
        "output_tokens": tokens[0],
    }, results


def _respond(params: Any, records: int, repeats: int) -> dict[str, Any]:
    """The respond stage's prompts (the embedded sample's instructions, in the stage's own rendering),
    through the same two backends with the smoke responder: prompts/s, local vs 2 Ray workers."""
    from dataset_builder.backends import LocalBackend
    from dataset_builder.generate import ResponseMemory, memory_key
    from dataset_builder.ingest import embedded_sample_path
    from dataset_builder.memory import pending_order
    from dataset_builder.respond import conversation, open_engine, system_message
    from dataset_builder.shard_work import RayOptions
    from dataset_builder.translate_ray import RayBackend

    rows = json.loads(embedded_sample_path().read_text(encoding="utf-8"))[:records]
    params = params.model_copy(update={"responses": params.responses.model_copy(update={
        "decoding": params.responses.decoding.model_copy(update={"max_new_tokens": 32})})})
    factory, compute_type = open_engine(params, "smoke")
    engine = factory()
    system = system_message("fra_Latn", params)
    prompts = pending_order(engine.render(conversation(system, r["instruction"], r.get("input", ""))) for r in rows)
    shard = max(8, math.ceil(len(prompts) / SHARDS_PER_RUN))
    key = memory_key("bench", params.responses.decoding, compute_type)
    runs: dict[str, list[dict[str, Any]]] = {"local": [], "ray_2_workers": []}
    outputs: dict[str, Any] = {}
    backends = {"local": LocalBackend(), "ray_2_workers": RayBackend(RayOptions.of("responses", params.responses))}
    for _ in range(repeats):
        for name, backend in backends.items():
            shutil.rmtree(WORK / "respond-memory" / name, ignore_errors=True)
            memory = ResponseMemory(WORK / "respond-memory" / name, key)
            figures, outputs[name] = _measure(name, lambda cb, b=backend, m=memory: b.run(
                prompts, factory, m, shard, cb), prompts)
            runs[name].append(figures)
    if outputs["local"] != outputs["ray_2_workers"]:
        raise RuntimeError("the Ray backend's responses differ from the local backend's")
    best = {name: max(r, key=lambda f: f["units_per_s"]) for name, r in runs.items()}
    return {"prompts": len(prompts), "shard_prompts": shard, "max_new_tokens": 32, "identical_output": True,
            "local_prompts_per_s": best["local"]["units_per_s"],
            "ray_2_workers_prompts_per_s": best["ray_2_workers"]["units_per_s"],
            "ray_2_workers_steady_prompts_per_s": best["ray_2_workers"]["steady_units_per_s"],
            "ray_over_local": round(best["ray_2_workers"]["units_per_s"] / best["local"]["units_per_s"], 3),
            "best": best, "runs": runs}


def run(quick: bool = False) -> dict[str, Any]:
    from dataset_builder.backends import LocalBackend
    from dataset_builder.models.nllb import resolve_translation_model
    from dataset_builder.shard_work import RayOptions
    from dataset_builder.translate_engine import TranslatorFactory
    from dataset_builder.translate_ray import RayBackend, ray_session
    from dataset_builder.translation_memory import TranslationMemory, memory_key
    from schemas.params import parse_params

    records, repeats = (300, 1) if quick else (5000, 2)
    units = _units(records)
    shard_units = max(64, math.ceil(len(units) / SHARDS_PER_RUN))
    WORK.mkdir(parents=True, exist_ok=True)
    params = parse_params({"models": {"cache_dir": str(WORK / "models")},
                           "translate": {"backend": "ray", "shard_units": shard_units, "ray_num_workers": 2},
                           "responses": {"ray_num_workers": 2}})
    model_dir = resolve_translation_model("smoke", params)
    key = memory_key("bench", "eng_Latn", "fra_Latn", params.translate, "int8")
    factory = TranslatorFactory(model_dir, "eng_Latn", "fra_Latn", params.translate, "cpu", "int8")

    def fresh_memory(name: str) -> TranslationMemory:
        shutil.rmtree(WORK / "memory" / name, ignore_errors=True)
        return TranslationMemory(WORK / "memory" / name, key)

    runs: dict[str, list[dict[str, Any]]] = {"local": [], "ray_1_worker": [], "ray_2_workers": []}
    outputs: dict[str, Any] = {}
    load_before = os.getloadavg()
    ray_started = time.perf_counter()
    options = RayOptions.of("translate", params.translate)
    with ray_session(options):  # one local instance with 2 CPUs for all Ray measurements
        ray_start_s = time.perf_counter() - ray_started
        for _ in range(repeats):
            backends = {"local": LocalBackend(),
                        "ray_1_worker": RayBackend(RayOptions("translate", None, 1, 1, 0.0)),
                        "ray_2_workers": RayBackend(options)}
            for name, backend in backends.items():
                memory = fresh_memory(name)
                figures, outputs[name] = _measure(name, lambda cb, b=backend, m=memory: b.run(
                    units, factory, m, shard_units, cb), units)
                runs[name].append(figures)
        respond = _respond(params, 60 if quick else 200, repeats)
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
            "respond_local_prompts_per_s": respond["local_prompts_per_s"],
            "respond_ray_2_workers_prompts_per_s": respond["ray_2_workers_prompts_per_s"],
            "respond_ray_2_workers_steady_prompts_per_s": respond["ray_2_workers_steady_prompts_per_s"],
            "model": "smoke NLLB and smoke responder (random weights)",
        },
        "units": len(units), "records": records, "shard_units": shard_units, "repeats": repeats,
        "identical_output": identical, "ray_start_s": round(ray_start_s, 2),
        "best": best, "runs": runs, "respond": respond,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
        "note": "smoke models: tiny and random, so per-item work is small and fixed costs (Ray startup,"
                " per-shard scheduling, tokenization in Python) weigh more than with real models",
    }
