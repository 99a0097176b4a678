"""Quality stage at Bactrian-X scale: every filter, language ID included, on ~3.4M pairs of real shape.

The rows come from benchmarks.synth with real_text: real English with its real Chinese, German, Bulgarian,
Spanish, French and Russian translations wherever ../shared/data has them (benchmarks.real_text), script
substitution for the other languages, and the same planted defects as before. Each run of the stage is its
own process (benchmarks/quality_child.py), so its wall and CPU time, its peak RSS (the process tree, sampled,
and the largest single process) and the load average are taken in the same run. The peer, in the same run,
is the implementation of commit PEER (extracted with git archive) on a smaller sample, next to this one on
the same sample: the ratio of their times, and whether they keep and reject the same ids.

`--rows N` sets the size of the main run (default 3.4M; quick: ~100K); results of a non-default size go to
benchmarks/results/quality_<N>.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq

from benchmarks.synth import synthetic_parallel_set

WORK = Path(__file__).resolve().parent / "work" / "quality"
REPO = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).resolve().parent / "quality_child.py"
PEER = "cd50d45"  # the implementation before issue 14: one in-memory DuckDB over every language at once
LANGUAGES = 52  # English and the 51 Bactrian-X targets
FULL_ROWS = 3_417_000
PEER_ROWS = 204_000  # the equivalence sample: 4,000 records x 51 languages


def run_stage(data: Path, out: Path, pythonpath: Path) -> dict[str, Any]:
    """One stage run in a child process, with its tree's peak RSS sampled every 0.2 s."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    load_start = os.getloadavg()[0]
    proc = subprocess.Popen([sys.executable, str(CHILD), str(data), str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    peak = [0]

    def sample() -> None:
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"the filter stage failed on {data} (PYTHONPATH={pythonpath}), exit {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_tree_mib"] = round(peak[0] / 2**20)
    result["load_average_1min"] = {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}
    return result


def _decisions(out: Path) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
    kept: set[tuple[str, str]] = set()
    for path in sorted((out / "filtered").glob("*.parquet")):
        table = pq.read_table(path, columns=["lang", "id"])
        kept |= set(zip(table.column("lang").to_pylist(), table.column("id").to_pylist(), strict=True))
    table = pq.read_table(out / "rejects.parquet", columns=["lang", "id", "reason"])
    rejected = dict(zip(zip(table.column("lang").to_pylist(), table.column("id").to_pylist(), strict=True),
                        table.column("reason").to_pylist(), strict=True))
    return kept, rejected


def equivalence(new: Path, peer: Path, ignore_reasons: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Kept and rejected (lang, id) of two runs on the same rows, and the rows whose reason differs. Rows either run
    rejects for one of `ignore_reasons` (a rule changed on purpose since the peer) are left out of the comparison."""
    new_kept, new_rej = _decisions(new)
    peer_kept, peer_rej = _decisions(peer)
    ignored = {k for rej in (new_rej, peer_rej) for k, reason in rej.items() if reason in ignore_reasons}
    new_kept, peer_kept = new_kept - ignored, peer_kept - ignored
    new_rej = {k: v for k, v in new_rej.items() if k not in ignored}
    peer_rej = {k: v for k, v in peer_rej.items() if k not in ignored}
    moved = sorted(set(new_rej) ^ set(peer_rej))
    reason = sorted(k for k in set(new_rej) & set(peer_rej) if new_rej[k] != peer_rej[k])
    return {"identical_kept": new_kept == peer_kept, "identical_rejected": set(new_rej) == set(peer_rej),
            "kept": len(new_kept), "rejected": len(new_rej), "rows_that_changed_side": len(moved),
            "rows_with_another_reason": len(reason), "examples": [list(k) for k in (moved + reason)[:10]],
            "rows_left_out": len(ignored), "reasons_left_out": sorted(ignore_reasons)}


def recall(data: Path, out: Path) -> dict[str, Any]:
    """Planted defects: the share rejected (any reason), per kind."""
    plants = pq.read_table(data / "plants.parquet")
    _, rejected = _decisions(out)
    found: dict[str, list[int]] = {}
    for lang, ident, plant in zip(*(plants.column(c).to_pylist() for c in ("lang", "id", "plant")), strict=True):
        counts = found.setdefault(plant, [0, 0])
        counts[0] += 1
        counts[1] += (lang, ident) in rejected
    return {plant: {"planted": n, "rejected": hit, "recall": round(hit / n, 4)} for plant, (n, hit) in
            sorted(found.items())}


def peer_tree(into: Path) -> Path | None:
    """The peer's quality, schemas and dataset_builder packages, extracted from git (None without git)."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", PEER, "quality", "schemas", "dataset_builder"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return into


def _summary(run: dict[str, Any], pairs: int) -> dict[str, Any]:
    steps = run["steps_s"]
    return {"wall_s": run["wall_s"], "cpu_s": run["cpu_s"], "peak_rss_tree_mib": run["peak_rss_tree_mib"],
            "peak_rss_process_mib": run["maxrss_mib"], "rows_per_s": round(pairs / run["wall_s"]),
            "langid_texts_per_s": round(run["langid_rows"] / steps["lang_id"]) if steps.get("lang_id") else 0}


def run(quick: bool = False, rows: int | None = None) -> dict[str, Any]:
    rows = rows or (100_000 if quick else FULL_ROWS)
    records = max(1, rows // (LANGUAGES - 1))
    sample_records = min(records, PEER_ROWS // (LANGUAGES - 1))
    started = time.perf_counter()
    full, sample = WORK / f"rows{rows}", WORK / f"rows{sample_records * (LANGUAGES - 1)}"
    synth = synthetic_parallel_set(full, records=records, languages=LANGUAGES, seed=0, real_text=True)
    if sample != full:
        synthetic_parallel_set(sample, records=sample_records, languages=LANGUAGES, seed=0, real_text=True)
    synth_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        tmp_path = Path(tmp)
        main = run_stage(full, tmp_path / "new_full", REPO)
        planted = recall(full, tmp_path / "new_full")
        new_sample = main if sample == full else run_stage(sample, tmp_path / "new_sample", REPO)
        if sample == full:
            (tmp_path / "new_full").rename(tmp_path / "new_sample")
        peer = peer_tree(tmp_path / "peer_tree")
        peer_sample = run_stage(sample, tmp_path / "peer_sample", peer) if peer else None
        # Language ID's rules changed on purpose after the peer (issues 13/14): its rejects are left out.
        same = equivalence(tmp_path / "new_sample", tmp_path / "peer_sample", frozenset({"lang_id"})) \
            if peer_sample else None
        peer_recall = recall(sample, tmp_path / "peer_sample") if peer_sample else None
        new_sample_recall = recall(sample, tmp_path / "new_sample")

    sample_pairs = sample_records * (LANGUAGES - 1)
    summary = {"pairs": synth["rows"], **_summary(main, synth["rows"] + synth["source_rows"]),
               "under_5_min": main["wall_s"] < 300, "under_4_gb": main["peak_rss_tree_mib"] <= 4096,
               "langid_rows": main["langid_rows"], "langid_model_texts": main["langid_texts"],
               "langid_meets_20k_per_s": (main["langid_rows"] / main["steps_s"]["lang_id"]) >= 20_000
               if main["steps_s"].get("lang_id") else False,
               "kept": main["kept"], "load_1min_start": main["load_average_1min"]["start"],
               "load_1min_end": main["load_average_1min"]["end"]}
    if peer_sample:
        def ratio(key: str) -> float:
            return round(peer_sample[key] / new_sample[key], 2)

        summary |= {"peer_pairs": sample_pairs, "peer_over_new_wall": ratio("wall_s"),
                    "peer_over_new_cpu": ratio("cpu_s"), "peer_over_new_peak_rss": ratio("peak_rss_tree_mib"),
                    "same_ids_as_peer": bool(same and same["identical_kept"] and same["identical_rejected"])}
    return {
        "summary": summary,
        "stage_steps_s": main["steps_s"],
        "main_run": main,
        "sample_runs": {"rows": sample_pairs, "new": new_sample, "peer": peer_sample, "peer_commit": PEER,
                        "equivalence": same, "recall_new": new_sample_recall, "recall_peer": peer_recall},
        "planted_recall": planted,
        "synth": {**synth, "seconds": round(synth_seconds, 1)},
        "note": ("Real text where ../shared/data has it (zho_Hans, deu_Latn, bul_Cyrl, spa_Latn, fra_Latn, rus_Cyrl "
                 "for the first pass over the pool), script substitution elsewhere: language ID rightly rejects "
                 "much of the substituted Latin- and Cyrillic-script text. Wall times depend on the machine's load "
                 "(recorded); peak RSS does not."),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    size = int(args[args.index("--rows") + 1]) if "--rows" in args else None
    print(json.dumps(run(quick="--quick" in args, rows=size), indent=2, default=str))
