"""Several languages: one `polyinstruct translate` process per language (the DVC foreach) against one
`polyinstruct translate-many` process, in the same run, on the same source, with the smoke model.

Reported per mode: total wall, the seconds inside the engine (the CTranslate2 translate_batch calls and
the waits on their results, summed from each language's timing file), the share outside it, and the
per-language fixed costs (process start and imports, tokenizer and model load, segmentation, token
counting) with the seconds from a process's start to its first unit sent. Both modes start from empty
translation memories; the per-language processes share one plan cache (`--plan-cache`, as dvc.yaml).
The fixed costs in isolation: tokenizer, CTranslate2 model and plan loads, and a Ray instance plus
actor-pool start (backend ray, 2 CPU workers, a few records).

Default: the embedded 100-record sample into 3 languages (it runs on a shared 2-core machine).
BENCH_TRANSLATE_MANY_FULL=1 (`make bench-translate-many FULL=1`): ../shared/data/alpaca_5000.json
into 10 languages, plus the model load of a random-weight model of the NLLB-200-distilled-600M shape;
BENCH_TRANSLATE_MANY_RECORDS=N (`RECORDS=N`) takes its first N records.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_translate import WORK, _build
from benchmarks.shared_data import SHARED_ALPACA
from dataset_builder.ingest import ingest
from dataset_builder.models.nllb import load_tokenizer
from dataset_builder.models.smoke import NLLB_600M_ARCH, NLLB_VOCAB_SIZE, build_smoke_nllb
from dataset_builder.translate_plan import plan_source
from schemas.artifacts import write_parquet
from schemas.params import DataParams
from schemas.records import TEXT_FIELDS
from schemas.timings import timing_path

ROOT = Path(__file__).resolve().parents[1]
LANGS = ["deu_Latn", "fra_Latn", "spa_Latn", "rus_Cyrl", "zho_Hans", "jpn_Jpan", "arb_Arab", "hin_Deva",
         "por_Latn", "ita_Latn"]
CLI = [sys.executable, "-m", "dataset_builder.cli"]


def _cli(args: list[str], work: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([*CLI, *args], cwd=work, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return time.perf_counter() - started


def _timings(metrics_dir: Path, langs: list[str]) -> dict[str, dict[str, Any]]:
    return {lang: json.loads(timing_path(metrics_dir / f"{lang}.json").read_text()) for lang in langs}


def _mode(name: str, walls: list[float], timings: dict[str, dict[str, Any]], load: tuple[float, float]
          ) -> dict[str, Any]:
    wall = sum(walls)
    engine = sum(t["engine_seconds"] for t in timings.values())
    in_process = sum(t["seconds"] for t in timings.values())
    return {
        "mode": name, "wall_seconds": round(wall, 2), "engine_seconds": round(engine, 2),
        "outside_engine_share": round(1 - engine / wall, 3),
        "process_overhead_seconds": round(wall - in_process, 2),  # interpreter start, imports, CLI, model path
        "model_load_seconds": round(sum(t["model_load_seconds"] for t in timings.values()), 3),
        "tokenizer_load_seconds": round(sum(t["tokenizer_load_seconds"] for t in timings.values()), 3),
        "plan_seconds": round(sum(t["plan_seconds"] for t in timings.values()), 3),
        "fit_seconds": round(sum(t["fit_seconds"] for t in timings.values()), 3),
        "target_tokens": sum(t["target_tokens"] for t in timings.values()),
        "load_average_1min": {"start": round(load[0], 2), "end": round(load[1], 2)},
        "per_language": {lang: {k: t[k] for k in ("seconds", "setup_seconds", "engine_seconds", "model_load_seconds",
                                                  "tokenizer_load_seconds", "plan_seconds", "fit_seconds")}
                         for lang, t in timings.items()},
    }


def _compare(source: Path, model: Path, langs: list[str], work: Path) -> dict[str, Any]:
    """Per-language processes, then one process; each from empty memories."""
    common = ["--in", str(source), "--model", str(model)]
    per, many = work / "per_language", work / "one_process"
    for folder in (per, many):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    load_start = os.getloadavg()[0]
    walls = [_cli(["translate", *common, "--lang", lang, "--out", str(per / "out" / f"{lang}.parquet"),
                   "--metrics", str(per / "metrics" / f"{lang}.json"),
                   "--rejects", str(per / "rejects" / f"{lang}.parquet"), "--cache", str(per / "memory" / lang),
                   "--plan-cache", str(per / "memory")], work) for lang in langs]
    per_result = _mode("per_language", walls, _timings(per / "metrics", langs), (load_start, os.getloadavg()[0]))
    first_wall = walls[0]
    load_start = os.getloadavg()[0]
    wall = _cli(["translate-many", *common, "--langs", ",".join(langs), "--out-dir", str(many / "out"),
                 "--metrics-dir", str(many / "metrics"), "--rejects-dir", str(many / "rejects"),
                 "--cache", str(many / "memory")], work)
    many_result = _mode("one_process", [wall], _timings(many / "metrics", langs), (load_start, os.getloadavg()[0]))
    same = all((per / "out" / f"{lang}.parquet").read_bytes() == (many / "out" / f"{lang}.parquet").read_bytes()
               for lang in langs)
    # Start of translation for the languages after the first: process start to first unit sent.
    later = [w - t["seconds"] + t["setup_seconds"] for w, t in
             zip(walls[1:], list(per_result["per_language"].values())[1:], strict=True)]
    return {"per_language": per_result, "one_process": many_result, "outputs_identical": same,
            "first_language_wall_seconds": round(first_wall, 2),
            "later_languages_seconds_to_first_unit": {"max": round(max(later), 2) if later else None,
                                                      "mean": round(sum(later) / len(later), 2) if later else None}}


def _fixed_costs(source: Path, model: Path, work: Path) -> dict[str, Any]:
    """Each fixed cost alone, in this process (warm imports): tokenizer, model, segmentation."""
    import ctranslate2
    import pyarrow.parquet as pq

    started = time.perf_counter()
    load_tokenizer(model, "eng_Latn")
    tokenizer_s = time.perf_counter() - started
    started = time.perf_counter()
    ctranslate2.Translator(str(model), device="cpu", compute_type="int8")
    model_s = time.perf_counter() - started
    table = pq.read_table(source)
    rows = list(zip(*(table.column(f).to_pylist() for f in TEXT_FIELDS), strict=True))
    shutil.rmtree(work / "plans", ignore_errors=True)
    started = time.perf_counter()
    plan_source(source, rows, work / "plans")
    segment_s = time.perf_counter() - started
    started = time.perf_counter()
    plan_source(source, rows, work / "plans")
    cached_s = time.perf_counter() - started
    return {"tokenizer_load_seconds": round(tokenizer_s, 3), "model_load_seconds": round(model_s, 3),
            "segment_seconds": round(segment_s, 3), "cached_plan_read_seconds": round(cached_s, 3),
            "records": len(rows)}


def _ray_start(source: Path, model: Path, work: Path) -> dict[str, Any]:
    """A Ray run of a few records against a local run of the same records: the difference is the Ray
    instance and actor-pool start (each actor loads the model)."""
    import pyarrow.parquet as pq

    small = write_parquet(pq.read_table(source).slice(0, 10), work / "ray" / "source.parquet")
    walls = {}
    for backend in ("local", "ray"):
        out = work / "ray" / backend
        shutil.rmtree(out, ignore_errors=True)
        try:
            walls[backend] = _cli(["translate", "--in", str(small), "--model", str(model), "--lang", "fra_Latn",
                                   "--backend", backend, "--num-workers", "2", "--out", str(out / "out.parquet"),
                                   "--metrics", str(out / "m.json"), "--rejects", str(out / "r.parquet"),
                                   "--cache", str(out / "memory")], work)
        except RuntimeError as err:  # e.g. Ray cannot start here: say so rather than fail the benchmark
            return {"error": str(err).strip().splitlines()[-1][:300], "ray_start_seconds": None}
    return {"local_wall_seconds": round(walls["local"], 2), "ray_wall_seconds": round(walls["ray"], 2),
            "ray_start_seconds": round(walls["ray"] - walls["local"], 2), "records": 10, "workers": 2}


def _shape_600m(work: Path) -> dict[str, Any]:
    """CTranslate2 model load at the NLLB-200-distilled-600M shape (random weights, float32 on disk)."""
    import ctranslate2

    model_dir = work / "nllb-600m-shape"
    _build(NLLB_600M_ARCH, NLLB_VOCAB_SIZE, model_dir)
    out: dict[str, Any] = {"disk_bytes": sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())}
    for compute_type in ("int8", "float32"):
        started = time.perf_counter()
        translator = ctranslate2.Translator(str(model_dir), device="cpu", compute_type=compute_type)
        out[f"load_seconds_{compute_type}"] = round(time.perf_counter() - started, 2)
        del translator
    shutil.rmtree(model_dir, ignore_errors=True)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    full = os.environ.get("BENCH_TRANSLATE_MANY_FULL") == "1" and not quick
    work = WORK.parent / "translate_many"
    work.mkdir(parents=True, exist_ok=True)
    model = work / "smoke-nllb"
    if not (model / "model.bin").exists():
        build_smoke_nllb(model, seed=0)
    langs = LANGS if full else LANGS[:3]
    limit = int(os.environ.get("BENCH_TRANSLATE_MANY_RECORDS") or 0) or None  # full: the first N of alpaca_5000
    data = DataParams(source=str(SHARED_ALPACA), limit=limit) if full else DataParams(source="embedded")
    if full and not SHARED_ALPACA.exists():
        raise RuntimeError(f"the full run reads {SHARED_ALPACA}, which is not here")
    source = work / ("alpaca_5000.parquet" if full else "sample.parquet")
    ingest(data, source, work / "ingest_rejects.parquet")

    fixed = _fixed_costs(source, model, work)
    compared = _compare(source, model, langs, work)
    ray = _ray_start(source, model, work)
    per, many = compared["per_language"], compared["one_process"]
    result: dict[str, Any] = {
        "summary": {
            "languages": len(langs), "records": fixed["records"],
            "per_language_wall_s": per["wall_seconds"], "one_process_wall_s": many["wall_seconds"],
            "ratio_per_language_vs_one_process": round(per["wall_seconds"] / many["wall_seconds"], 2),
            "per_language_outside_engine": per["outside_engine_share"],
            "one_process_outside_engine": many["outside_engine_share"],
            "per_language_fixed_s_per_language": round((per["wall_seconds"] - per["engine_seconds"]) / len(langs), 2),
            "later_languages_s_to_first_unit": compared["later_languages_seconds_to_first_unit"]["max"],
            "smoke_model_load_s": fixed["model_load_seconds"],
            "smoke_tokenizer_load_s": fixed["tokenizer_load_seconds"],
            "segment_s": fixed["segment_seconds"], "cached_plan_read_s": fixed["cached_plan_read_seconds"],
            "ray_start_s": ray["ray_start_seconds"],
            "outputs_identical": compared["outputs_identical"],
        },
        "fixed_costs_smoke": fixed, "ray": ray, **compared,
        "model": "smoke NLLB (random weights)", "languages": langs, "full": full,
    }
    if full:
        shape = _shape_600m(work)
        result["nllb_600m_shape"] = shape
        result["summary"]["nllb_600m_shape_load_s_int8"] = shape["load_seconds_int8"]
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
