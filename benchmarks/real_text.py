"""Real text for the quality benchmark: English sources with their real translations wherever ../shared/data
has them, so that language ID and the comparisons with the source meet real language.

The pool of base records, each an English record with the translations the shared data holds:
- mt-dev/zh_open-chinese_dev.parquet: 26,000 Alpaca records with their Chinese translation (zho_Hans);
- mt-dev/de_deepl.parquet: 11,950 Alpaca records with their German DeepL translation (deu_Latn);
- hplt-test: 50 human-translated prompts in en, bg, es, fr, ru, zh, paired (prompt a as instruction,
  prompt b as output, a != b: 2,450 records) so they form instruction records in all six languages;
- alpaca_5000.json: 5,000 English records without a translation.
`records` source rows cycle through the pool (shuffled: a small set mixes every source); the first pass
carries the real translations, later passes (replica r) get synth's word-level rewrite of the English and
no real translation (a replica's real text would be an exact duplicate).
Languages without real text get synth's script substitution.
"""

from __future__ import annotations

import itertools
import json

import polars as pl

from benchmarks.shared_data import SHARED_DATA
from schemas.records import TEXT_FIELDS

HPLT_LANGS: dict[str, str] = {"bg": "bul_Cyrl", "es": "spa_Latn", "fr": "fra_Latn", "ru": "rus_Cyrl",
                              "zh": "zho_Hans"}
REAL_LANGS: tuple[str, ...] = ("zho_Hans", "deu_Latn", "bul_Cyrl", "spa_Latn", "fra_Latn", "rus_Cyrl")


def _mt_dev(name: str, flores: str, prefix: str) -> pl.DataFrame:
    frame = pl.read_parquet(SHARED_DATA / "mt-dev" / f"{name}.parquet")
    text = {f: pl.col(f).cast(pl.String).fill_null("") for f in TEXT_FIELDS}
    return frame.select(pl.format(prefix + "-{}", pl.int_range(pl.len())).alias("base_id"),
                        *[pl.col(f"en_{f}").cast(pl.String).fill_null("").alias(f) for f in TEXT_FIELDS],
                        *[text[f].alias(f"{flores}:{f}") for f in TEXT_FIELDS])


def _hplt() -> pl.DataFrame:
    prompts = {code: [json.loads(line)["prompt"] for line in (SHARED_DATA / "hplt-test" / f"test_{code}.jsonl")
                      .read_text(encoding="utf-8").splitlines() if line.strip()] for code in ("en", *HPLT_LANGS)}
    pairs = [(a, b) for a, b in itertools.permutations(range(len(prompts["en"])), 2)]
    columns: dict[str, list[str]] = {"base_id": [f"hplt-{a}-{b}" for a, b in pairs]}
    for code in ("en", *HPLT_LANGS):
        prefix = "" if code == "en" else f"{HPLT_LANGS[code]}:"
        columns[f"{prefix}instruction"] = [prompts[code][a] for a, _ in pairs]
        columns[f"{prefix}input"] = [""] * len(pairs)
        columns[f"{prefix}output"] = [prompts[code][b] for _, b in pairs]
    return pl.DataFrame(columns)


def _alpaca() -> pl.DataFrame:
    frame = pl.DataFrame(json.loads((SHARED_DATA / "alpaca_5000.json").read_text(encoding="utf-8")))
    return frame.select(pl.format("alpaca-{}", pl.int_range(pl.len())).alias("base_id"),
                        *[pl.col(f).cast(pl.String).fill_null("") for f in TEXT_FIELDS])


def real_pool() -> pl.DataFrame:
    """base_id, the English fields, and `{flores}:{field}` for each language with real text (null elsewhere)."""
    parts = [_mt_dev("zh_open-chinese_dev", "zho_Hans", "zh"), _mt_dev("de_deepl", "deu_Latn", "de"), _hplt(),
             _alpaca()]
    return pl.concat(parts, how="diagonal")


def available() -> bool:
    return all((SHARED_DATA / p).exists() for p in ("mt-dev/zh_open-chinese_dev.parquet", "mt-dev/de_deepl.parquet",
                                               "hplt-test/test_en.jsonl", "alpaca_5000.json"))


def real_source(records: int, rewrites: tuple[tuple[str, str], ...], suffixes: str) \
        -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """`records` English rows (id, source, fields), sorted by id, and per language with real text its
    translations aligned with those rows (null where the row has none)."""
    pool = real_pool().sample(fraction=1.0, shuffle=True, seed=0)  # any prefix mixes every source
    n_base = pool.height
    idx = pl.int_range(0, records, eager=True)
    frame = pool[(idx % n_base).to_numpy()].with_columns((idx // n_base).alias("rep"))
    parts = []
    for rep, part in frame.group_by("rep", maintain_order=True):
        r = int(rep[0])
        if r > 0:  # as synth does for its replicas; real translations dropped
            steps = [rewrites[(r - 1) % len(rewrites)]]
            if r > len(rewrites):
                steps.append((r"\b(\w\w+)", "${1}" + suffixes[r % len(suffixes)]))
            for pattern, replacement in steps:
                part = part.with_columns([pl.col(f).str.replace_all(pattern, replacement) for f in TEXT_FIELDS])
            part = part.with_columns([pl.lit(None, pl.String).alias(c) for c in part.columns if ":" in c])
        parts.append(part)
    frame = pl.concat(parts).with_columns(
        pl.when(pl.col("rep") == 0).then(pl.col("base_id")).otherwise(pl.format("{}-{}", "base_id", "rep"))
        .alias("id")).sort("id")
    real = {lang: frame.select([pl.col(f"{lang}:{f}").alias(f) for f in TEXT_FIELDS]) for lang in REAL_LANGS}
    return frame.select("id", pl.lit("alpaca").alias("source"), *TEXT_FIELDS), real
