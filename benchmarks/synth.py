"""A realistic synthetic parallel set for the quality and validation benchmarks.

Real English (../shared/data/alpaca_5000.json) is replicated to any size and "translated" into up to 51
Bactrian-X languages by vectorised, script-appropriate character substitution (Polars Aho-Corasick
`replace_many`), so every language has its own script and its own length ratio. Defects are planted at
known rates on rows chosen by a seeded generator: exact duplicates (case/whitespace variants of the
row before in id order) and near duplicates (one token appended), both planted in the English so every
language inherits them, and per language: repetition loops, empty outputs,
untranslated copies, truncation flags, bad characters and lost placeholders.

The text is not real language: a language-ID filter rightly rejects much of the Latin- and
Cyrillic-script output (it reads as accented English). Use it for throughput, not for retention.

`synthetic_parallel_set(out_dir, records=67_000, languages=52)` writes ~3.4M translated rows.
"""

from __future__ import annotations

import json
import time
import unicodedata
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.real_text import real_source
from benchmarks.shared_data import SHARED_ALPACA
from schemas.artifacts import write_parquet
from schemas.languages import BACTRIAN_X, ENGLISH, Language
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS, TRANSLATED_SCHEMA

MODEL = "synthetic"
# Planted defect -> fraction of rows per language. Chosen on disjoint rows, so counts are exact.
PLANT_RATES: dict[str, float] = {
    "repetition": 0.005,
    "empty": 0.005,
    "untranslated": 0.005,
    "truncated": 0.005,
    "bad_chars": 0.003,
    "placeholder": 0.003,
}
# Planted in the English source (so every translation inherits them, as real duplicates do): a
# case/whitespace variant of the row before in id order, or that row with one token appended.
SOURCE_PLANT_RATES: dict[str, float] = {"duplicate": 0.010, "near_duplicate": 0.010}
# Replica r of an English record gets a word-level regex rewrite (every word changes), so replicas
# are neither exact nor near duplicates of each other; compositions give enough distinct variants.
_WORD_REWRITES: tuple[tuple[str, str], ...] = (
    (r"\b(\w)(\w+)", "${1}${1}${2}"),  # double the first letter
    (r"(\w+)(\w)\b", "${1}${2}${2}"),  # double the last letter
    (r"\b(\w)(\w)(\w*)", "${2}${1}${3}"),  # swap the first two letters
    (r"(\w*)(\w)(\w)\b", "${1}${3}${2}"),  # swap the last two letters
    (r"\b(\w\w+)", "${1}o"),  # append a vowel
    (r"\b(\w\w+)", "u${1}"),  # prepend a vowel
)
_SUFFIXES = "bcdfghjklmnpqrstvwxz"  # replica-specific letter for replicas past the single rewrites
# Scripts written without spaces between words.
_UNSPACED = {"Hans", "Hant", "Jpan", "Thai", "Khmr", "Mymr"}
# Code point ranges whose letters stand in for a-z, per script.
_SCRIPT_RANGES: dict[str, tuple[int, int]] = {
    "Cyrl": (0x0430, 0x045F), "Arab": (0x0621, 0x064A), "Deva": (0x0905, 0x0939), "Beng": (0x0985, 0x09B9),
    "Gujr": (0x0A85, 0x0AB9), "Hebr": (0x05D0, 0x05EA), "Geor": (0x10D0, 0x10F0), "Khmr": (0x1780, 0x17A2),
    "Mlym": (0x0D05, 0x0D39), "Mymr": (0x1000, 0x102A), "Sinh": (0x0D85, 0x0DC6), "Taml": (0x0B85, 0x0BB9),
    "Telu": (0x0C05, 0x0C39), "Thai": (0x0E01, 0x0E2E), "Hans": (0x4E00, 0x9FA5), "Jpan": (0x3041, 0x3096),
    "Hang": (0xAC00, 0xD7A3),
}
_ACCENTS: dict[str, str] = {"a": "àáâäãåą", "e": "èéêëęě", "i": "ìíîïı", "o": "òóôöõøő", "u": "ùúûüůű",
                            "c": "çčć", "s": "šśş", "z": "žźż", "n": "ñńň", "r": "ř", "l": "ł", "g": "ğ",
                            "y": "ý", "d": "đ", "t": "ţ"}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _script_letters(script: str, offset: int) -> list[str]:
    """26 letters of `script`, rotated by `offset` so languages sharing a script differ."""
    lo, hi = _SCRIPT_RANGES[script]
    letters = [chr(c) for c in range(lo, hi + 1) if unicodedata.category(chr(c)).startswith("L")]
    step = max(1, len(letters) // 40) if script in ("Hans", "Hang") else 1
    letters = letters[::step]
    return [letters[(i * 3 + offset) % len(letters)] for i in range(26)]


def _substitution(lang: Language, index: int) -> tuple[list[str], list[str]]:
    """Patterns and replacements that turn English into this language's look-alike. Bigrams first
    (leftmost-first matching), so each language shortens or lengthens text by its own amount."""
    patterns: list[str] = []
    repl: list[str] = []
    if lang.script == "Latn":
        # Language-specific spelling habits: some lengthen the text, some shorten it.
        habits = [{}, {"a": "aa", "o": "oo"}, {"th": "t", "h": ""}, {"c": "ch", "k": "kk", "w": "vv"},
                  {"ee": "i", "oo": "u"}, {"sh": "sz", "ch": "cz", "y": "ij"}][index % 6]
        for pat, rep in habits.items():
            patterns += [pat, pat.capitalize()]
            repl += [rep, rep.capitalize()]
        for pos, letter in enumerate(_LETTERS):
            pool = _ACCENTS.get(letter, "")
            choice = (index + pos) % (len(pool) + 2)
            if choice < len(pool) and letter not in habits:
                patterns += [letter, letter.upper()]
                repl += [pool[choice], pool[choice].upper()]
        return patterns, repl
    letters = _script_letters(lang.script, index)
    # Common English bigrams map to one letter: scripts differ in how much they shorten the text.
    bigrams = ["th", "he", "in", "er", "an", "re", "on", "at", "en", "nd"][: (index % 4) * 3]
    for k, bigram in enumerate(bigrams):
        patterns += [bigram, bigram.capitalize()]
        repl += [letters[(k * 7) % 26]] * 2
    for pos, letter in enumerate(_LETTERS):
        patterns += [letter, letter.upper()]
        repl += [letters[pos]] * 2
    return patterns, repl


def _load_alpaca() -> pl.DataFrame:
    if not SHARED_ALPACA.exists():
        raise FileNotFoundError(f"{SHARED_ALPACA}: the shared Alpaca sample is missing")
    frame = pl.DataFrame(json.loads(SHARED_ALPACA.read_text(encoding="utf-8")))
    return frame.select([pl.col(f).cast(pl.String).fill_null("") for f in TEXT_FIELDS])


def _plant_source_duplicates(source: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Copy the previous row (id order) into planted rows; only when that row is clean and long enough
    (>= 200 chars) that one extra token keeps it far above any sane near-duplicate threshold."""
    labels = np.full(source.height, "", dtype=object)
    order = rng.permutation(source.height)
    start = 0
    for name, rate in SOURCE_PLANT_RATES.items():
        count = int(round(rate * source.height))
        labels[order[start:start + count]] = name
        start += count
    frame = source.with_columns(pl.Series("plant", labels, dtype=pl.String))
    prev = {f: pl.col(f).shift(1) for f in TEXT_FIELDS}
    prev_ok = (pl.col("plant").shift(1) == "") & (
        pl.sum_horizontal([prev[f].str.len_chars() for f in TEXT_FIELDS]) >= 200)
    plant = pl.col("plant")
    dup, near = (plant == "duplicate") & prev_ok, (plant == "near_duplicate") & prev_ok
    return frame.with_columns(
        pl.when(prev_ok).then(plant).otherwise(pl.lit("")).alias("plant"),
        *[pl.when(dup).then(prev[f].str.to_uppercase().str.replace_all(" ", "  ", literal=True))
          .when(near).then(prev[f] + (" ok" if f == "output" else "")).otherwise(pl.col(f)).alias(f)
          for f in TEXT_FIELDS],
    )


def _source(records: int) -> pl.DataFrame:
    """`records` English rows: alpaca_5000 replicated; replica r > 0 gets rewrite r, id suffix -r."""
    alpaca = _load_alpaca()
    n_base = alpaca.height
    idx = pl.int_range(0, records, eager=True)
    base = alpaca[(idx % n_base).to_numpy()].with_columns(
        (idx // n_base).alias("rep"), (idx % n_base).alias("base")
    )
    parts = []
    for rep, part in base.group_by("rep", maintain_order=True):
        r = int(rep[0])
        if r > 0:
            rewrites = [_WORD_REWRITES[(r - 1) % len(_WORD_REWRITES)]]
            if r > len(_WORD_REWRITES):  # later replicas: also a replica-specific letter after each word
                rewrites.append((r"\b(\w\w+)", "${1}" + _SUFFIXES[r % len(_SUFFIXES)]))
            for pattern, replacement in rewrites:
                part = part.with_columns([pl.col(f).str.replace_all(pattern, replacement) for f in TEXT_FIELDS])
        parts.append(part)
    frame = pl.concat(parts)
    ident = pl.when(pl.col("rep") == 0).then(pl.format("alpaca-{}", "base")) \
        .otherwise(pl.format("alpaca-{}-{}", "base", "rep"))
    return frame.select(ident.alias("id"), pl.lit("alpaca").alias("source"), *TEXT_FIELDS).sort("id")


def _plant_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """One label per row ('' = clean), on disjoint rows at PLANT_RATES."""
    labels = np.full(n, "", dtype=object)
    order = rng.permutation(n)
    start = 0
    for name, rate in PLANT_RATES.items():
        count = int(round(rate * n))
        labels[order[start:start + count]] = name
        start += count
    return labels


def _translate(source: pl.DataFrame, lang: Language, index: int, rng: np.random.Generator,
               real: pl.DataFrame | None = None) -> pl.DataFrame:
    """`real` (aligned with `source`): real translations, null where a row has none (substitution there)."""
    patterns, repl = _substitution(lang, index)
    texts = [pl.col(f).str.replace_many(patterns, repl, leftmost=True).alias(f) for f in TEXT_FIELDS]
    frame = source.select("id", *TEXT_FIELDS, *[pl.col(f).alias(f"src_{f}") for f in TEXT_FIELDS],
                          pl.col("plant").alias("source_plant")).with_columns(texts)
    if lang.script in _UNSPACED:
        frame = frame.with_columns([pl.col(f).str.replace_all(" ", "", literal=True) for f in TEXT_FIELDS])
    if real is not None:
        frame = frame.with_columns(real.select([pl.col(f).alias(f"real_{f}") for f in TEXT_FIELDS])).with_columns(
            [pl.coalesce(f"real_{f}", f).alias(f) for f in TEXT_FIELDS]).drop([f"real_{f}" for f in TEXT_FIELDS])
    # Source duplicates translate to duplicates: the previous row's translation, in another case and
    # spacing, or with one more token (a real engine would be that consistent, near enough).
    prev = {f: pl.col(f).shift(1) for f in TEXT_FIELDS}
    extra = "好" if lang.script in _UNSPACED else " " + "".join(
        dict(zip(patterns, repl, strict=True)).get(c, c) for c in "ok")
    frame = frame.with_columns(
        [pl.when(pl.col("source_plant") == "duplicate")
         .then(prev[f].str.to_uppercase().str.replace_all(" ", "  ", literal=True))
         .when(pl.col("source_plant") == "near_duplicate").then(prev[f] + (extra if f == "output" else ""))
         .otherwise(pl.col(f)).alias(f) for f in TEXT_FIELDS])
    # Per-language defects on rows whose source is clean, so each row has one planted cause.
    labels = _plant_labels(frame.height, rng)
    frame = frame.with_columns(pl.Series("plant", labels, dtype=pl.String)).with_columns(
        pl.when(pl.col("source_plant") != "").then(pl.col("source_plant")).otherwise(pl.col("plant"))
        .alias("plant"))
    plant = pl.col("plant")
    sep = "" if lang.script in _UNSPACED else " "
    out = pl.col("output")
    half = (out.str.len_chars() // 2).cast(pl.Int64)
    frame = frame.with_columns(
        pl.when(plant == "repetition").then(pl.concat_str([pl.col("instruction") + sep] * 10))
        .when(plant == "empty").then(pl.lit(""))
        .when(plant == "untranslated").then(pl.col("src_output"))
        .when(plant == "truncated").then(out.str.slice(0, half))
        .when(plant == "bad_chars").then(out.str.slice(0, half) + "\ufffd" + out.str.slice(half))
        .otherwise(out).alias("output"),
        *[pl.when(plant == "untranslated").then(pl.col(f"src_{f}")).otherwise(pl.col(f)).alias(f)
          for f in ("instruction", "input")],
    )
    return frame.select(
        "id", pl.lit(lang.flores).alias("lang"), *TEXT_FIELDS,
        pl.lit(MODEL).alias("model"), pl.lit(False).alias("smoke"),
        pl.when(plant == "truncated").then(pl.lit(["output"])).otherwise(pl.lit([], dtype=pl.List(pl.String)))
        .alias("truncated_fields"),
        (plant != "placeholder").alias("protected_spans_ok"), pl.lit(False).alias("kept_verbatim"),
        pl.lit(None, dtype=pl.Float64).alias("log_prob"), "plant",
    )


def target_languages(languages: int) -> list[Language]:
    """The first `languages` Bactrian-X codes (English counted), English itself excluded."""
    return [lang for lang in BACTRIAN_X[:languages] if lang != ENGLISH] if languages <= len(BACTRIAN_X) \
        else [lang for lang in BACTRIAN_X if lang != ENGLISH]


def synthetic_parallel_set(out_dir: Path, records: int = 5000, languages: int = 52, seed: int = 0,
                           real_text: bool = False) -> dict:
    """Write out_dir/source.parquet and out_dir/translated/{flores}.parquet; return row and plant counts.

    `languages` counts English: 52 gives the 51 Bactrian-X targets, so records=67_000 gives ~3.4M pairs.
    The `plant` labels of every row are also written to out_dir/plants.parquet (id, lang, plant).
    real_text: English and translations from benchmarks.real_text wherever the shared data has them."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    (out_dir / "translated").mkdir(parents=True, exist_ok=True)
    for stale in (out_dir / "translated").glob("*.parquet"):
        stale.unlink()
    rng = np.random.default_rng(seed)
    base, real = real_source(records, _WORD_REWRITES, _SUFFIXES) if real_text else (_source(records), {})
    source = _plant_source_duplicates(base, rng)
    write_parquet(source.to_arrow(), out_dir / "source.parquet", SOURCE_SCHEMA)
    planted: dict[str, int] = dict.fromkeys([*SOURCE_PLANT_RATES, *PLANT_RATES], 0)
    plants = []
    rows = 0
    for index, lang in enumerate(target_languages(languages)):
        frame = _translate(source, lang, index, rng, real.get(lang.flores))
        write_parquet(frame.to_arrow(), out_dir / "translated" / f"{lang.flores}.parquet", TRANSLATED_SCHEMA)
        counts = frame.filter(pl.col("plant") != "").group_by("plant").len()
        for name, count in counts.iter_rows():
            planted[name] += count
        plants.append(frame.filter(pl.col("plant") != "").select("id", "lang", "plant"))
        rows += frame.height
    write_parquet(pl.concat(plants).sort("lang", "id").to_arrow() if plants else
                  pl.DataFrame(schema={"id": pl.String, "lang": pl.String, "plant": pl.String}).to_arrow(),
                  out_dir / "plants.parquet")
    source_planted = source.filter(pl.col("plant") != "").group_by("plant").len()
    return {"rows": rows, "source_rows": source.height,
            "source_planted": dict(source_planted.sort("plant").iter_rows()),
            "languages": [lang.flores for lang in target_languages(languages)],
            "planted": planted, "seconds": round(time.perf_counter() - started, 2)}


if __name__ == "__main__":  # python -m benchmarks.synth OUT_DIR [RECORDS] [LANGUAGES]
    import sys

    args = sys.argv[1:]
    print(json.dumps(synthetic_parallel_set(Path(args[0]), *[int(a) for a in args[1:3]]), indent=2))
