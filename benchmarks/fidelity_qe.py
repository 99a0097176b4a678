"""The fidelity benchmark's quality-estimation part (`python -m benchmarks.run fidelity --qe-model DIR`).

The zh and DeepL dev sets are translations our translate stage did not produce: they have no log_prob. With
`--qe-model` (a converted CTranslate2 NLLB directory the user has), the score stage (dataset_builder/qe_score.py)
gives every record NLLB's forced-decoding score, and for each percentile of `PERCENTILES` this reports:
- `qe_only`: the records below their language's percentile of QE scores (what low_confidence alone drops):
  zh score-5 and score 1-2 shares, and the share of DeepL records kept;
- `all_filters`: the whole gate (every filter on, as the rest of the benchmark, plus low_confidence with that
  percentile): zh score-5 dropped, zh score 1-2 dropped, DeepL kept; the figures the issue's targets are on.
A per-language percentile drops about that share of any set by construction: the DeepL figure is its price.
`--limit N` scores a fixed sample of N records of each set (a quick check of the mechanics).

Without `--qe-model`, nothing is measured and the JSON says why. With a smoke model (random weights) every
figure is labelled smoke: it proves the mechanics, not the method.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataset_builder.models.nllb import is_ct2_dir
from dataset_builder.qe_score import score_file
from schemas.params import Params

PERCENTILES = (0.05, 0.10, 0.15, 0.20)
NOT_MEASURED = ("no --qe-model given: the QE score needs a converted CTranslate2 NLLB model, which cannot be "
                "downloaded here; run `python -m benchmarks.run fidelity --qe-model DIR` where one is (e.g. the "
                "translate stage's models/translation after `polyinstruct model prepare` with real weights)")
SMOKE_NOTE = "smoke model (random weights): these figures prove the mechanics only, not the QE method"
# name -> (source table, imported translation table, FLORES code, GPT-4o score per id or None)
DevSet = tuple[pa.Table, pa.Table, str, dict[str, Any] | None]
# Runs the filter stage on a folder (source.parquet, translated/<lang>.parquet); returns the rejects by (lang, id).
FilterRun = Callable[[Path, pa.Table, dict[str, pa.Table], Params], dict[tuple[str, str], dict[str, str]]]


def with_qe(params: Params, qe_dir: Path, percentile: float | None) -> Params:
    """`params` with the score stage on, reading `qe_dir`, and low_confidence at `percentile` (None: off)."""
    raw = params.model_dump()
    raw["quality"]["qe"].update(enabled=True, dir=str(qe_dir))
    raw["quality"]["filters"]["low_confidence"].update(enabled=percentile is not None, percentile=percentile,
                                                       min_log_prob=None, min_qe_score=None, min_rows=1)
    return Params.model_validate(raw)


def _quantile(values: list[float], share: float) -> float:
    """Linear-interpolated quantile, as DuckDB's quantile_cont in the filter."""
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _groups(scores: dict[str, Any], ids: list[str]) -> dict[str, list[str]]:
    return {"score_5": [i for i in ids if scores.get(i) == 5],
            "score_1_2": [i for i in ids if scores.get(i) is not None and scores[i] <= 2]}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def measure(model_dir: Path | None, limit: int | None, params: Params, sets: dict[str, DevSet], work: Path,
            run_filter: FilterRun) -> dict[str, Any]:
    if model_dir is None:
        return {"measured": False, "why": NOT_MEASURED}
    if not is_ct2_dir(model_dir):
        return {"measured": False, "why": f"--qe-model {model_dir} is not a converted CTranslate2 model directory"}
    if work.exists():
        shutil.rmtree(work)
    qe_dir = work / "qe"
    scored: dict[str, dict[str, float]] = {}
    stage: dict[str, Any] = {}
    for name, (source, target, lang, _) in sets.items():
        if limit is not None and limit < target.num_rows:
            keep = sorted(random.Random(0).sample(range(target.num_rows), limit))
            source, target = source.take(pa.array(keep)), target.take(pa.array(keep))
            sets[name] = (source, target, lang, sets[name][3])
        root = work / name
        (root / "translated").mkdir(parents=True)
        pq.write_table(source.append_column("source", pa.array(["bench"] * source.num_rows)), root / "source.parquet")
        pq.write_table(target.append_column("lang", pa.array([lang] * target.num_rows)),
                       root / "translated" / f"{lang}.parquet")
        metrics = score_file(root / "source.parquet", root / "translated" / f"{lang}.parquet", model_dir,
                             qe_dir / f"{lang}.parquet", None, with_qe(params, qe_dir, None), cache=work / "memory")
        stage[name] = {k: metrics[k] for k in ("records", "scored", "not_scorable", "by_alignment", "mean_qe_score",
                                               "model", "smoke")}
        scored[name] = {r["id"]: r["qe_score"] for r in pq.read_table(qe_dir / f"{lang}.parquet").to_pylist()
                        if r["qe_score"] is not None}
    smoke = any(s["smoke"] for s in stage.values())
    zh_ids = sets["zh"][1].column("id").to_pylist()
    zh_groups = _groups(sets["zh"][3] or {}, zh_ids)
    per_percentile: dict[str, Any] = {}
    for share in PERCENTILES:
        bounds = {name: _quantile(list(s.values()), share) for name, s in scored.items() if s}
        qe_only = {f"zh_{g}_dropped_share": _share(sum(scored["zh"].get(i, 0.0) < bounds["zh"] for i in members
                                                       if i in scored["zh"]), sum(i in scored["zh"] for i in members))
                   for g, members in zh_groups.items()}
        qe_only["de_deepl_kept_share"] = _share(sum(v >= bounds["de"] for v in scored["de"].values()),
                                                len(scored["de"]))
        gate: dict[str, Any] = {}
        for name, (source, target, lang, _) in sets.items():
            rejects = run_filter(work / f"gate-{name}", source, {lang: target}, with_qe(params, qe_dir, share))
            dropped = {i for (code, i) in rejects if code == lang}
            low = sum(r["reason"] == "low_confidence" for (code, _), r in rejects.items() if code == lang)
            if name == "zh":
                for g, members in zh_groups.items():
                    gate[f"zh_{g}_dropped_share"] = _share(sum(i in dropped for i in members), len(members))
                    gate[f"zh_{g}_low_confidence"] = sum(i in dropped and rejects[(lang, i)]["reason"] ==
                                                         "low_confidence" for i in members)
            else:
                gate["de_deepl_kept_share"] = _share(target.num_rows - len(dropped), target.num_rows)
                gate["de_low_confidence"] = low
        per_percentile[f"{round(share * 100)}%"] = {"qe_bound": {k: round(v, 4) for k, v in bounds.items()},
                                                    "qe_only": qe_only, "all_filters": gate}
    return {"measured": True, "model": str(model_dir), "smoke": smoke, **({"note": SMOKE_NOTE} if smoke else {}),
            "limit": limit, "score_stage": stage, "zh_groups": {g: len(m) for g, m in zh_groups.items()},
            "percentiles": per_percentile}
