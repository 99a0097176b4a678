"""Training throughput with and without packing, on the smoke base model, in the same run.

Real Alpaca records (../shared/data/alpaca_5000.json, else the embedded sample) in the alpaca template
go through `trl_training.sft.train` twice with identical settings except `packing`: TRL's default
`bfd` packing, which makes batches padding-free (one flattened row, attention kept within each
example via position ids), against padded batches. Tokens/s counts non-padding tokens only (the
Trainer's `num_input_tokens_seen`), so both sides measure useful work."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmarks.shared_data import SHARED_ALPACA

BENCH_WORK = Path(__file__).resolve().parent / "work" / "training"


def _write_mix(out: Path, records: list[dict[str, Any]]) -> Path:
    from schemas.artifacts import write_json, write_parquet
    from schemas.export_layout import EXPORT_SCHEMA

    rows = [{"id": f"alpaca-{i}", "lang": "eng_Latn", "instruction": r["instruction"], "input": r["input"],
             "output": r["output"], "model": "source"} for i, r in enumerate(records)]
    write_parquet(pa.Table.from_pylist(rows, schema=EXPORT_SCHEMA), out / "train.parquet", EXPORT_SCHEMA)
    write_json({"name": "bench", "recipe": "english-only", "total_examples": len(rows)}, out / "manifest.json")
    return out


def run(quick: bool = False) -> dict[str, Any]:
    from dataset_builder.ingest import embedded_sample_path
    from dataset_builder.models.smoke import build_smoke_lm
    from schemas.params import parse_params
    from trl_training.sft import train

    # Alternating repetitions (unpacked, packed, unpacked, ...) and the median per side, so that a change
    # in machine load during the run does not favour one side.
    reps, steps, batch, max_length = (1, 3, 4, 512) if quick else (3, 8, 8, 512)
    source = SHARED_ALPACA if SHARED_ALPACA.exists() else embedded_sample_path()
    records = json.loads(source.read_text(encoding="utf-8"))
    n_records = steps * batch * 4  # enough that packed runs never cycle through the data
    if BENCH_WORK.exists():
        shutil.rmtree(BENCH_WORK)
    base = build_smoke_lm(BENCH_WORK / "smoke_lm", seed=0)
    mix = _write_mix(BENCH_WORK / "mix", records[:n_records])
    params = parse_params({
        "models": {"cache_dir": str(BENCH_WORK / "cache")},
        "training": {"template": "alpaca", "max_steps": steps, "max_eval_examples": 1,
                     "sft": {"learning_rate": 5e-3, "per_device_train_batch_size": batch, "logging_steps": 1,
                             "seed": 0, "max_length": max_length, "save_strategy": "no"}},
    })
    runs: dict[str, list[dict[str, Any]]] = {"unpacked": [], "packed": []}
    load_before = os.getloadavg()  # this machine may be shared; the figures are only as quiet as it was
    for _ in range(reps):
        for packing in (False, True):
            name = "packed" if packing else "unpacked"
            start = time.perf_counter()
            metrics = train(mix, base, BENCH_WORK / f"adapter_{name}", params, packing=packing)
            runs[name].append({
                "tokens_per_s": metrics["tokens_per_s"],
                "train_tokens": metrics["train_tokens"],
                "train_runtime_s": metrics["train_runtime_s"],
                "wall_s": time.perf_counter() - start,
                "tokens_per_step": metrics["train_tokens"] / max(metrics["steps"], 1),
                "first_loss": metrics["first_loss"],
                "last_loss": metrics["last_loss"],
                "padding_free": metrics["padding_free"],
            })
    packed = statistics.median(r["tokens_per_s"] for r in runs["packed"])
    unpacked = statistics.median(r["tokens_per_s"] for r in runs["unpacked"])
    return {
        "summary": {
            "packed_tokens_per_s": round(packed, 1),
            "unpacked_tokens_per_s": round(unpacked, 1),
            "ratio": round(packed / unpacked, 3),
            "steps": f"{reps}x{steps}",
            "model": "smoke Llama (336k params), CPU fp32",
        },
        "settings": {"repetitions": reps, "steps": steps, "per_device_train_batch_size": batch,
                     "max_length": max_length, "records": n_records, "source": str(source),
                     "packing_strategy": "bfd (padding-free)", "statistic": "median over repetitions",
                     "load_average_before": list(load_before), "load_average_after": list(os.getloadavg())},
        "runs": runs,
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
