"""The whole language-ID step on real text: fastText (the default) against the lingua path, same run.

Texts are real: hplt-test's human translations (bg, es, fr, ru, zh, en) and the mt-dev sets (German DeepL,
Chinese), each row's instruction + output as the filter stage judges it, cycled up to `rows` texts.
Both identifiers run the same step as `quality.stage` does, one language at a time: DuckDB prose
extraction and script fraction, then `quality.langid.judge`. Reported: texts/s of each (wall and per
CPU-second, all threads counted), their ratios, the SQL share, and the share of texts each keeps per
language (the human translations should all stay).
quick=True: 4,000 texts; default 40,000; `python -m benchmarks.bench_langid --rows N` for any size.
Also `prefix`: the real texts judged with fastText reading a long text's beginning first (quality.lid_prefix) and
without; the verdicts that differ (`--prefix-only`). And `script_shortcut`: on the texts the script decides
alone (`langid.script_decides`), fastText's own verdict, to show it agrees (`--shortcut-only RECORDS` runs only
that).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.shared_data import SHARED_DATA
from benchmarks.synth import synthetic_parallel_set
from quality import langid, lid_sql
from schemas.errors import PolyinstructError
from schemas.languages import resolve
from schemas.params import LangIdParams

HPLT = ("bg", "es", "fr", "ru", "zh", "en")
MT_DEV = {"de_deepl.parquet": "deu_Latn", "zh_open-chinese_dev.parquet": "zho_Hans"}


def real_texts() -> list[tuple[str, str, str]]:
    """(corpus, FLORES code, text) for every real text the benchmark uses."""
    if not SHARED_DATA.is_dir():
        raise PolyinstructError(f"{SHARED_DATA} not found: this benchmark needs the shared real data (../shared/data)")
    texts = []
    for code in HPLT:
        for line in (SHARED_DATA / "hplt-test" / f"test_{code}.jsonl").read_text().splitlines():
            if line.strip():
                texts.append(("hplt-test", resolve(code).flores, json.loads(line)["prompt"]))
    for name, lang in MT_DEV.items():
        table = pq.read_table(SHARED_DATA / "mt-dev" / name, columns=["instruction", "output"]).to_pydict()
        for instruction, output in zip(table["instruction"], table["output"], strict=True):
            texts.append((f"mt-dev/{name}", lang, f"{instruction or ''}\n{output or ''}"))
    return texts


def language_id_step(con: duckdb.DuckDBPyConnection, config: langid.JudgeConfig) -> dict[str, Any]:
    """The filter stage's language-ID step over table `texts` (corpus, lang, text), one language at a time."""
    started, cpu_started = time.perf_counter(), time.process_time()
    sql_seconds = 0.0
    stats: dict[str, int] = {}
    kept: dict[str, list[int]] = {}
    prose = lid_sql.prose_sql("text", config.max_chars)
    for (lang,) in con.execute("SELECT DISTINCT lang FROM texts ORDER BY lang").fetchall():
        sql_started = time.perf_counter()
        table = con.sql(f"SELECT corpus, prose, {lid_sql.script_fraction_sql('prose', resolve(lang).script)} AS f "
                        f"FROM (SELECT corpus, {prose} AS prose FROM texts WHERE lang = $1)",
                        params=[lang]).to_arrow_table()
        sql_seconds += time.perf_counter() - sql_started
        verdicts, _ = langid.judge(table.column("prose").to_pylist(), table.column("f").to_pylist(), lang, config,
                                   stats)
        for corpus, verdict in zip(table.column("corpus").to_pylist(), verdicts, strict=True):
            tally = kept.setdefault(f"{corpus} {lang}", [0, 0])
            tally[0] += verdict is not False
            tally[1] += 1
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    rows = sum(n for _, n in kept.values())
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2), "sql_seconds": round(sql_seconds, 2),
            "texts_per_s": round(rows / seconds), "texts_per_cpu_s": round(rows / cpu_seconds),
            "texts_by_model": stats, "kept_share": {k: round(a / n, 4) for k, (a, n) in sorted(kept.items())}}


def _prose_of(con: duckdb.DuckDBPyConnection, prose: str, corpus: str, lang: str) -> tuple[list[Any], Any]:
    """The prose (SQL expression `prose`) of table texts' rows of `corpus` and `lang`, and its script fractions."""
    table = con.sql(f"SELECT prose, {lid_sql.script_fraction_sql('prose', resolve(lang).script)} AS f FROM "
                    f"(SELECT {prose} AS prose FROM texts WHERE corpus = $1 AND lang = $2)",
                    params=[corpus, lang]).to_arrow_table()
    return table.column("prose").to_pylist(), table.column("f").to_numpy()


def script_shortcut_agreement(records: int) -> dict[str, Any]:
    """Where the script decides alone (`langid.script_decides`: a text (almost) wholly in a script no other lid.176
    label uses), does fastText agree? Every text of those languages is judged both ways: with the shortcut, and
    through fastText alone. The texts: benchmarks.synth's real-shape set (`records` x 51 languages; its
    Gujarati, Khmer, Korean, ... rows are script substitutions of real English) and the real texts of
    `real_texts` (no language there has a script of its own: the shortcut must not apply to any of them)."""
    config = langid.JudgeConfig.of()
    con = duckdb.connect()
    per_lang: dict[str, dict[str, int]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-langid-") as tmp:
            synthetic_parallel_set(Path(tmp), records=records, languages=52, seed=0, real_text=True)
            con.execute(f"CREATE TABLE texts AS SELECT 'synth' AS corpus, lang, instruction || chr(10) || output AS "
                        f"text FROM read_parquet('{tmp}/translated/*.parquet')")
        real = real_texts()
        columns = ("corpus", "lang", "text")
        con.register("real", pa.table({name: [t[k] for t in real] for k, name in enumerate(columns)}))
        con.execute("INSERT INTO texts SELECT * FROM real")
        prose = lid_sql.prose_sql("text", config.max_chars)
        pairs = con.execute("SELECT DISTINCT corpus, lang FROM texts ORDER BY ALL").fetchall()
        for corpus, lang in [(c, lang) for c, lang in pairs if langid.script_decides(lang)]:
            texts, fractions = _prose_of(con, prose, corpus, lang)
            stats: dict[str, int] = {}
            short, _ = langid.judge_arrays(texts, fractions, lang, config, stats, measured=True)
            model, _ = langid.judge_arrays(texts, fractions, lang, config)
            decided = (short == langid.RIGHT) & (fractions >= langid.SOLE_SCRIPT_MIN_FRACTION)
            per_lang[f"{corpus} {lang}"] = {"by_script": int(decided.sum()),
                                           "fasttext_agrees": int((model[decided] == langid.RIGHT).sum()),
                                           "fasttext_rejects": int((model[decided] == langid.WRONG).sum())}
    finally:
        con.close()
    total = sum(v["by_script"] for v in per_lang.values())
    agree = sum(v["fasttext_agrees"] for v in per_lang.values())
    rejects = sum(v["fasttext_rejects"] for v in per_lang.values())
    return {"languages_real_texts": sorted({lang for _, lang, _ in real}),
            "real_languages_the_script_decides": sorted({lang for _, lang, _ in real if langid.script_decides(lang)}),
            "texts_decided_by_script": total, "fasttext_agrees": agree, "fasttext_rejects": rejects,
            "agreement": round(agree / total, 5) if total else None, "per_language": per_lang,
            "min_fraction": langid.SOLE_SCRIPT_MIN_FRACTION}


def prefix_changes() -> dict[str, Any]:
    """What reading a long text's beginning first (quality.lid_prefix) changes: every real text judged with
    `prefix_chars` and without it (the whole prose); verdicts that differ, per corpus and language."""
    config = langid.JudgeConfig.of()
    real = real_texts()
    con = duckdb.connect()
    changed: dict[str, list[str]] = {}
    settled, judged = 0, 0
    try:
        columns = ("corpus", "lang", "text")
        con.register("texts", pa.table({name: [t[k] for t in real] for k, name in enumerate(columns)}))
        prose = lid_sql.prose_sql("text", config.max_chars)
        for corpus, lang in con.execute("SELECT DISTINCT corpus, lang FROM texts ORDER BY ALL").fetchall():
            texts, fractions = _prose_of(con, prose, corpus, lang)
            stats: dict[str, int] = {}
            first, _ = langid.judge_arrays(texts, fractions, lang, config, stats, measured=True)
            whole, _ = langid.judge_arrays(texts, fractions, lang, replace(config, prefix_chars=None), measured=True)
            settled, judged = settled + stats.get("prefix", 0), judged + stats.get("fasttext", 0)
            names = {langid.NOT_JUDGED: "not judged", langid.WRONG: "rejected", langid.RIGHT: "kept"}
            for i in (first != whole).nonzero()[0].tolist():
                changed.setdefault(f"{corpus} {lang}", []).append(f"{names[int(whole[i])]} -> {names[int(first[i])]}")
    finally:
        con.close()
    return {"prefix_chars": config.prefix_chars, "prefix_accept": config.prefix_accept, "fasttext_texts": judged,
            "settled_on_prefix": settled, "changed": changed, "changed_total": sum(map(len, changed.values()))}


def run(quick: bool = False, rows: int | None = None) -> dict[str, Any]:
    rows = rows or (4_000 if quick else 40_000)
    texts = real_texts()
    # Every hplt-test text once, then the mt-dev texts cycled in a fixed order up to `rows`.
    hplt = [t for t in texts if t[0] == "hplt-test"]
    rest = [t for t in texts if t[0] != "hplt-test"]
    chosen = hplt + [rest[(i * 7919) % len(rest)] for i in range(max(rows - len(hplt), 0))]
    table = pa.table({name: [t[k] for t in chosen] for k, name in enumerate(("corpus", "lang", "text"))})
    con = duckdb.connect()
    try:
        con.register("texts", table)
        fast_cfg = langid.JudgeConfig.of()
        lingua_cfg = langid.JudgeConfig.of(LangIdParams(identifier="lingua"))
        # Model loading (fastText once, a lingua detector per candidate set and mode) is a fixed cost, not
        # throughput: both paths first see every language and both text lengths.
        warm = table.slice(0, len(hplt) + 2000)
        con.register("texts", warm)
        language_id_step(con, fast_cfg)
        language_id_step(con, lingua_cfg)
        con.register("texts", table)
        fast = language_id_step(con, fast_cfg)
        lingua = language_id_step(con, lingua_cfg)
    finally:
        con.close()
    hplt_kept = {k: v for k, v in fast["kept_share"].items() if k.startswith("hplt-test")}
    summary = {
        "texts": len(chosen),
        "fasttext_step_texts_per_s": fast["texts_per_s"],
        "lingua_step_texts_per_s": lingua["texts_per_s"],
        "fasttext_over_lingua": round(fast["texts_per_s"] / max(lingua["texts_per_s"], 1), 2),
        # CPU time is less sensitive than wall time to other work on a shared machine (all threads counted).
        "fasttext_texts_per_cpu_s": fast["texts_per_cpu_s"],
        "lingua_texts_per_cpu_s": lingua["texts_per_cpu_s"],
        "fasttext_over_lingua_cpu": round(fast["texts_per_cpu_s"] / max(lingua["texts_per_cpu_s"], 1), 2),
        "fasttext_sql_share": round(fast["sql_seconds"] / fast["seconds"], 3),
        "fasttext_min_hplt_kept": min(hplt_kept.values()),
        "fasttext_de_deepl_kept": fast["kept_share"]["mt-dev/de_deepl.parquet deu_Latn"],
        "fasttext_zh_dev_kept": fast["kept_share"]["mt-dev/zh_open-chinese_dev.parquet zho_Hans"],
        "meets_20k_per_s": fast["texts_per_s"] >= 20_000,
    }
    shortcut = script_shortcut_agreement(200 if quick else 2000)
    summary |= {"script_decided_texts": shortcut["texts_decided_by_script"],
                "script_decided_fasttext_agreement": shortcut["agreement"]}
    prefix = prefix_changes()
    summary |= {"settled_on_prefix": prefix["settled_on_prefix"], "prefix_changed_verdicts": prefix["changed_total"]}
    return {"summary": summary, "fasttext": fast, "lingua": lingua, "script_shortcut": shortcut, "prefix": prefix,
            "note": "both identifiers timed in the same run on the same texts, models loaded beforehand; "
                    "the step is what quality.stage runs: SQL prose + script fraction, then judge"}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shortcut-only", type=int, metavar="RECORDS", default=None,
                        help="only the script-shortcut agreement, on RECORDS x 51 languages")
    parser.add_argument("--prefix-only", action="store_true",
                        help="only what reading a text's beginning first changes, on the real texts")
    args = parser.parse_args()
    if args.prefix_only:
        print(json.dumps(prefix_changes(), indent=2))
        raise SystemExit(0)
    if args.shortcut_only:
        print(json.dumps(script_shortcut_agreement(args.shortcut_only), indent=2))
        raise SystemExit(0)
    print(json.dumps(run(quick=args.quick, rows=args.rows), indent=2))
