"""Quality gate fidelity on real data, every filter on (language ID included).

- zh (`mt-dev/zh_open-chinese_dev.parquet`, GPT-4o scores 1-5): the share of score-5 records dropped (good
  translations lost), the share of score 1-2 records dropped (bad ones caught), and per reason how many of each;
- de (`mt-dev/de_deepl.parquet`, DeepL): the share kept, per-reason drops and 20 random dropped records;
- hplt-test (human translations): the share kept per language;
- planted-defect recall: corrupted copies of hplt-test (languages swapped, loops, English copied in, cut in
  half), each expected under its reason, and the synthetic set's planted defects (`benchmarks.synth`).

Needs `../shared/data` (real data); without it the benchmark says so and records nothing else.
quick=True: 4,000 zh and 3,000 de records (a fixed sample), a smaller synthetic set.
"""

from __future__ import annotations

import json
import random
import shutil
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from benchmarks import fidelity_qe
from benchmarks.shared_data import SHARED_DATA
from benchmarks.synth import synthetic_parallel_set
from quality.filters import SPAN_REASONS
from quality.stage import run_filter
from schemas import language_bound as lb_rules
from schemas.params import Params, parse_params

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "work" / "fidelity"
HPLT = {"bg": "bul_Cyrl", "es": "spa_Latn", "fr": "fra_Latn", "ru": "rus_Cyrl", "zh": "zho_Hans"}
SWAP = {"es": "fr", "fr": "es", "bg": "ru", "ru": "bg"}  # same script: only language ID can tell
CODE = " Use `load_config()` as shown in https://example.com/docs/setup."
# Corruption -> the reasons that count as caught for the right cause.
CORRUPTIONS: dict[str, set[str]] = {"swap": {"lang_id"}, "repeat": {"repetition"}, "english": {"untranslated"},
                                    "cut": {"placeholder", *SPAN_REASONS}}
SYNTH_EXPECTED: dict[str, set[str]] = {"placeholder": {"placeholder", *SPAN_REASONS}}


# Filters that judge our own translate stage's artefacts (a second, back translation; the model's scores):
# third-party translations have neither, so they stay as params.yaml sets them.
OWN_TRANSLATION_ONLY = ("round_trip", "low_confidence")


def all_filters_params() -> Params:
    """params.yaml as shipped, with every filter switched on (language ID is off there for the smoke model)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, section in raw["quality"]["filters"].items():
        if isinstance(section, dict) and "enabled" in section and name not in OWN_TRANSLATION_ONLY:
            section["enabled"] = True
    raw["quality"]["dedup"].update(exact=True, near=True)
    return parse_params(raw, "params.yaml (all filters on)")


def _write(root: Path, source: pa.Table, translated: dict[str, pa.Table]) -> None:
    if root.exists():
        shutil.rmtree(root)
    (root / "translated").mkdir(parents=True)
    pq.write_table(source.append_column("source", pa.array(["bench"] * source.num_rows)), root / "source.parquet")
    for lang, table in translated.items():
        pq.write_table(table.append_column("lang", pa.array([lang] * table.num_rows)),
                       root / "translated" / f"{lang}.parquet")


def _run(root: Path, params: Params) -> tuple[Any, dict[tuple[str, str], dict[str, str]]]:
    result = run_filter(root / "source.parquet", root / "translated", root / "filtered", root / "rejects.parquet",
                        root / "quality.json", None, params)
    rejects = {(r["lang"], r["id"]): r for r in pq.read_table(root / "rejects.parquet").to_pylist()}
    return result, rejects


def _flagged(root: Path) -> dict[str, int]:
    """Rows kept but flagged as language-bound (quality.filters.language_bound.flag), per language."""
    return json.loads((root / "quality.json").read_text()).get("language_bound_flagged", {})


def _mt_sets(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    ids = pc.cast(table.column("id"), pa.string())
    source = pa.table({"id": ids, "instruction": table.column("en_instruction"), "input": table.column("en_input"),
                       "output": table.column("en_output")})
    target = pa.table({"id": ids, "instruction": table.column("instruction"), "input": table.column("input"),
                       "output": table.column("output")})
    return source, target


def _sample(table: pa.Table, n: int | None) -> pa.Table:
    if n is None or n >= table.num_rows:
        return table
    keep = sorted(random.Random(0).sample(range(table.num_rows), n))
    return table.take(pa.array(keep))


def zh_scores(params: Params, quick: bool) -> dict[str, Any]:
    table = _sample(pq.read_table(SHARED_DATA / "mt-dev" / "zh_open-chinese_dev.parquet"), 4000 if quick else None)
    source, target = _mt_sets(table)
    root = WORK / "zh"
    _write(root, source, {"zho_Hans": target})
    result, rejects = _run(root, params)
    ids = pc.cast(table.column("id"), pa.string()).to_pylist()
    scores = dict(zip(ids, table.column("gpt4o_score").to_pylist(), strict=True))
    groups = {"score_5": lambda s: s == 5, "score_1_2": lambda s: s is not None and s <= 2}
    out: dict[str, Any] = {"records": table.num_rows, "kept": result.kept.get("zho_Hans", 0),
                           "language_bound_flagged": _flagged(root),
                           "language_bound": language_bound_split(table, params.quality.filters.language_bound.reject)}
    for name, member in groups.items():
        members = [i for i in ids if member(scores[i])]
        dropped = [i for i in members if ("zho_Hans", i) in rejects]
        by_reason: dict[str, int] = {}
        for i in dropped:
            reason = rejects[("zho_Hans", i)]["reason"]
            by_reason[reason] = by_reason.get(reason, 0) + 1
        out[name] = {"records": len(members), "dropped": len(dropped),
                     "dropped_share": round(len(dropped) / max(len(members), 1), 4),
                     "dropped_by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1]))}
    out["reason_precision"] = reason_precision(ids, scores, {i: rejects[("zho_Hans", i)]["reason"] for i in ids
                                                             if ("zho_Hans", i) in rejects})
    return out


def reason_precision(ids: list[str], scores: dict[str, int | None], reasons: dict[str, str]) -> dict[str, Any]:
    """Per reject reason and per half of the zh dev set (ids with an even CRC32: the half rules were tuned on;
    odd: held out): records it dropped, how many GPT-4o scored 1-2 and 5, and precision (share scored 1-2)."""
    out: dict[str, Any] = {}
    for label, h in (("tuning_half", 0), ("held_out_half", 1)):
        rows: dict[str, dict[str, int]] = {}
        for i in ids:
            if i in reasons and scores[i] is not None and zlib.crc32(i.encode()) % 2 == h:
                row = rows.setdefault(reasons[i], {"dropped": 0, "score_1_2": 0, "score_5": 0})
                row["dropped"] += 1
                row["score_1_2"] += scores[i] <= 2
                row["score_5"] += scores[i] == 5
        out[label] = {reason: {**row, "precision": round(row["score_1_2"] / row["dropped"], 3)}
                      for reason, row in sorted(rows.items(), key=lambda kv: -kv[1]["dropped"])}
    return out


def language_bound_split(table: pa.Table, rejected: list[str]) -> dict[str, Any]:
    """Precision and recall of the language_bound rules against GPT-4o's scores, on the half of the zh dev set
    the rules were chosen on (ids with an even CRC32) and on the held-out half. precision: share of matched
    records scored 1-2; recall: share of the half's score 1-2 records matched; score5_share: matched and scored 5."""
    ids = pc.cast(table.column("id"), pa.string()).to_pylist()
    scores = table.column("gpt4o_score").to_pylist()
    half = [zlib.crc32(i.encode()) % 2 for i in ids]
    out: dict[str, Any] = {}
    for name, families in (("rejected_families", rejected), ("all_families", list(lb_rules.RULES)),
                           *((f"family_{f}", [f]) for f in lb_rules.RULES)):
        matched = pc.match_substring_regex(table.column("en_instruction"), lb_rules.pattern(families)).to_pylist()
        row = {}
        for label, h in (("tuning_half", 0), ("held_out_half", 1)):
            sel = [(m, s) for m, s, k in zip(matched, scores, half, strict=True) if k == h and s is not None]
            hits = [s for m, s in sel if m]
            bad = sum(s <= 2 for _, s in sel)
            row[label] = {"matched": len(hits), "precision": round(sum(s <= 2 for s in hits) / max(len(hits), 1), 3),
                          "recall": round(sum(s <= 2 for s in hits) / max(bad, 1), 3),
                          "score5_share_of_matched": round(sum(s == 5 for s in hits) / max(len(hits), 1), 3)}
        out[name] = row
    return out


def de_kept(params: Params, quick: bool) -> dict[str, Any]:
    table = _sample(pq.read_table(SHARED_DATA / "mt-dev" / "de_deepl.parquet"), 3000 if quick else None)
    source, target = _mt_sets(table)
    root = WORK / "de"
    _write(root, source, {"deu_Latn": target})
    result, rejects = _run(root, params)
    dropped = sorted(k[1] for k in rejects if k[0] == "deu_Latn")
    by_reason: dict[str, int] = {}
    for key, row in rejects.items():
        if key[0] == "deu_Latn":
            by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + 1
    examples = []
    rows = {r["id"]: r for r in target.to_pylist()}
    for ident in random.Random(1).sample(dropped, min(20, len(dropped))):
        row = rows[ident]
        examples.append({"id": ident, "reason": rejects[("deu_Latn", ident)]["reason"],
                         "detail": rejects[("deu_Latn", ident)]["detail"],
                         "instruction": row["instruction"][:300], "output": row["output"][:300]})
    bound = by_reason.get("language_bound", 0)
    return {"records": table.num_rows, "kept": result.kept.get("deu_Latn", 0),
            "kept_share": round(result.kept.get("deu_Latn", 0) / max(table.num_rows, 1), 4),
            # language_bound drops are tasks that break in any translation, not translation defects of DeepL
            "kept_share_of_translatable_tasks": round(result.kept.get("deu_Latn", 0) / max(table.num_rows - bound, 1),
                                                      4),
            "language_bound_flagged": _flagged(root),
            "dropped_by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
            "random_drops": examples}


def _hplt() -> dict[str, dict[str, str]]:
    prompts = {}
    for code in ("en", *HPLT):
        lines = (SHARED_DATA / "hplt-test" / f"test_{code}.jsonl").read_text().splitlines()
        prompts[code] = {r["id"]: r["prompt"] for r in map(json.loads, filter(str.strip, lines))}
    return prompts


def _pairs(prompts: dict[str, dict[str, str]], code: str) -> dict[str, tuple[str, str]]:
    """Prompt i as instruction, prompt i+1 as output (as in tests/quality/test_stage.py)."""
    order = sorted(prompts["en"])
    partner = dict(zip(order, order[1:] + order[:1], strict=True))
    have = prompts[code]
    return {i: (have[i], have[partner[i]]) for i in order if i in have and partner[i] in have}


def _table(rows: dict[str, tuple[str, str]]) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "instruction": t[0], "input": "", "output": t[1]} for i, t in rows.items()])


def hplt_retention(params: Params) -> dict[str, float]:
    prompts = _hplt()
    root = WORK / "hplt"
    _write(root, _table(_pairs(prompts, "en")), {f: _table(_pairs(prompts, c)) for c, f in HPLT.items()})
    result, _ = _run(root, params)
    return {f: round(result.kept[f] / result.counts_in[f], 4) for f in HPLT.values()}


def hplt_corruption_recall(params: Params) -> dict[str, Any]:
    prompts = _hplt()
    ids = sorted(prompts["en"])
    groups = {"swap": ids[0:10], "repeat": ids[10:20], "english": ids[20:30], "cut": ids[30:40]}
    english = _pairs(prompts, "en")
    source = {i: (t[0], t[1] + (CODE if i in groups["cut"] else "")) for i, t in english.items()}
    planted: dict[str, list[tuple[str, str]]] = {name: [] for name in CORRUPTIONS}
    translated = {}
    for code, flores in HPLT.items():
        swapped = _pairs(prompts, SWAP[code]) if code in SWAP else {}
        rows = {}
        for ident, texts in _pairs(prompts, code).items():
            if ident in groups["swap"] and ident in swapped:
                texts = swapped[ident]
                planted["swap"].append((flores, ident))
            elif ident in groups["repeat"]:
                texts = (texts[0], ((texts[1] + ("" if code == "zh" else " ")) * 10).strip())
                planted["repeat"].append((flores, ident))
            elif ident in groups["english"]:
                texts = english[ident]
                planted["english"].append((flores, ident))
            elif ident in groups["cut"]:
                full = texts[1] + CODE
                texts = (texts[0], full[: len(full) // 2])
                planted["cut"].append((flores, ident))
            rows[ident] = texts
        translated[flores] = _table(rows)
    root = WORK / "hplt-corrupt"
    _write(root, _table(source), translated)
    _, rejects = _run(root, params)
    out = {}
    for name, keys in planted.items():
        right = sum(rejects.get(k, {}).get("reason") in CORRUPTIONS[name] for k in keys)
        out[name] = {"planted": len(keys), "caught_right_reason": right, "recall": round(right / len(keys), 4)}
    return out


def synth_recall(params: Params, quick: bool) -> dict[str, Any]:
    """The synthetic set's planted defects (benchmarks.synth), each expected under its own reason."""
    root = WORK / "synth"
    if root.exists():
        shutil.rmtree(root)
    synthetic_parallel_set(root, records=1000 if quick else 3000, languages=6, seed=0)
    result, rejects = _run(root, params)
    plants = pq.read_table(root / "plants.parquet").to_pylist()
    ids = sorted(pq.read_table(root / "source.parquet").column("id").to_pylist())
    copied = dict(zip(ids[1:], ids, strict=False))  # synth plants a duplicate as a copy of the row before it
    out: dict[str, Any] = {}
    for plant in sorted({p["plant"] for p in plants}):
        keys = [(p["lang"], p["id"]) for p in plants if p["plant"] == plant]
        expected = SYNTH_EXPECTED.get(plant, {plant})
        right = sum(rejects.get(k, {}).get("reason") in expected for k in keys)
        # A duplicate whose original was rejected for its own defect is the one copy kept: nothing is duplicated.
        caught = right + sum(plant in ("duplicate", "near_duplicate") and k not in rejects
                             and (k[0], copied.get(k[1])) in rejects for k in keys)
        out[plant] = {"planted": len(keys), "caught_right_reason": right,
                      "recall_right_reason": round(right / len(keys), 4), "recall": round(caught / len(keys), 4)}
    return out


def _filter_at(root: Path, source: pa.Table, translated: dict[str, pa.Table], params: Params
               ) -> dict[tuple[str, str], dict[str, str]]:
    _write(root, source, translated)
    return _run(root, params)[1]


def qe_sets() -> dict[str, fidelity_qe.DevSet]:
    """The zh and DeepL dev sets as imported translations (no log_prob), for the QE measurement."""
    zh = pq.read_table(SHARED_DATA / "mt-dev" / "zh_open-chinese_dev.parquet")
    de = pq.read_table(SHARED_DATA / "mt-dev" / "de_deepl.parquet")
    zh_scores = dict(zip(pc.cast(zh.column("id"), pa.string()).to_pylist(), zh.column("gpt4o_score").to_pylist(),
                         strict=True))
    return {"zh": (*_mt_sets(zh), "zho_Hans", zh_scores), "de": (*_mt_sets(de), "deu_Latn", None)}


def run(quick: bool = False, qe_model: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """qe_model: a converted CTranslate2 NLLB directory; its QE scores of the dev sets (fidelity_qe),
    on `limit` records of each when given."""
    if not (SHARED_DATA / "mt-dev").exists() or not (SHARED_DATA / "hplt-test").exists():
        return {"summary": {"skipped": f"{SHARED_DATA} (mt-dev, hplt-test) not found: real data needed"}}
    params = all_filters_params()
    qe = fidelity_qe.measure(Path(qe_model) if qe_model else None, limit, params,
                             qe_sets() if qe_model else {}, WORK / "qe", _filter_at)
    zh = zh_scores(params, quick)
    de = de_kept(params, quick)
    hplt = hplt_retention(params)
    corrupt = hplt_corruption_recall(params)
    synth = synth_recall(params, quick)
    summary: dict[str, Any] = {
        "zh_score5_dropped_share": zh["score_5"]["dropped_share"],
        "zh_score1_2_dropped_share": zh["score_1_2"]["dropped_share"],
        "zh_language_bound_held_out_precision": zh["language_bound"]["rejected_families"]["held_out_half"]["precision"],
        "zh_language_bound_held_out_recall": zh["language_bound"]["rejected_families"]["held_out_half"]["recall"],
        "de_deepl_kept_share": de["kept_share"],
        **{f"hplt_kept_{lang}": share for lang, share in hplt.items()},
        **{f"recall_hplt_{name}": v["recall"] for name, v in corrupt.items()},
        **{f"recall_synth_{name}": v["recall"] for name, v in synth.items()},
        "qe_measured": qe["measured"],
        **({f"qe{'_smoke' if qe['smoke'] else ''}_{p}_{k}": v for p, row in qe["percentiles"].items()
            for k, v in row["all_filters"].items() if k.endswith("share")} if qe["measured"] else {}),
    }
    return {"summary": summary, "filters_left_as_in_params": list(OWN_TRANSLATION_ONLY), "zh": zh, "de": de,
            "hplt_retention": hplt, "hplt_corruption_recall": corrupt,
            "synth_recall": synth, "qe": qe}
