"""Training mixtures drawn from the exported dataset: monolingual, multilingual, budget-matched
downsampled (Chen et al. 2024), temperature-sampled, and English-only.

Train rows come only from the export's `train` split and validation rows only from its
`validation` split (the same ids are held out in every language), so nothing of `test` leaks into
training. Sampling is vectorised: each row gets a key from a seeded NumPy generator over the rows
sorted by (lang, id), so the same seed always picks the same rows, whatever order the shards have."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from schemas.artifacts import write_json, write_parquet
from schemas.errors import PolyinstructError
from schemas.export_layout import EXPORT_COLUMNS, EXPORT_SCHEMA, export_split_files, is_smoke_model
from schemas.languages import ENGLISH, resolve
from schemas.params import MixtureParams
from schemas.records import TEXT_FIELDS

# A mixture's splits have the export's columns and types.
MIX_SCHEMA: pa.Schema = EXPORT_SCHEMA
# Documented proxy when no tokenizer is given: about 4 UTF-8 bytes per token, which is what byte-level
# BPE tokenizers of Llama-class models average over mixed-script text (English ~4.5, CJK ~3).
PROXY_BYTES_PER_TOKEN = 4
PROXY_COUNTER = f"proxy: ceil(utf8_bytes / {PROXY_BYTES_PER_TOKEN}) of instruction+input+output"
RECIPES_WITH_BUDGET = ("downsampled", "temperature")


@dataclass(frozen=True)
class MixResult:
    out: Path
    manifest: dict[str, Any]


# ---------------------------------------------------------------------------------------------- reading


def read_export_split(export_dir: Path, split: str, required: bool = True) -> pl.DataFrame:
    """One split of the export, all languages, sorted by (lang, id); empty when `required` is off and
    the export has no such split."""
    files = export_split_files(export_dir, split, required)
    if not files:
        return pl.DataFrame(schema=dict.fromkeys(EXPORT_COLUMNS, pl.String))
    for path in files:
        names = pl.read_parquet_schema(path)
        missing = [c for c in EXPORT_COLUMNS if c not in names]
        if missing:
            raise PolyinstructError(f"{path}: missing column(s) {', '.join(missing)}; an export shard has "
                                    f"{', '.join(EXPORT_COLUMNS)}")
    frame = pl.read_parquet(files, columns=list(EXPORT_COLUMNS))
    return frame.with_columns(pl.col(c).cast(pl.String) for c in EXPORT_COLUMNS).sort("lang", "id")


# ------------------------------------------------------------------------------------------- counting


def token_counts(frame: pl.DataFrame, tokenizer_dir: Path | None = None) -> pl.Series:
    """Tokens per row of instruction+input+output (no template, no special tokens): exact with the base
    LM's tokenizer when given, else the documented byte proxy."""
    if frame.is_empty():
        return pl.Series("tokens", [], dtype=pl.Int64)
    if tokenizer_dir is None:
        nbytes = sum((frame[c].str.len_bytes().cast(pl.Int64) for c in TEXT_FIELDS), pl.Series([0] * len(frame)))
        return ((nbytes + PROXY_BYTES_PER_TOKEN - 1) // PROXY_BYTES_PER_TOKEN).alias("tokens")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    counts = np.zeros(len(frame), dtype=np.int64)
    chunk = 50_000  # bounds the memory of the encoded ids on millions of rows
    for column in TEXT_FIELDS:  # encoded in batches in Rust; Python loops over fields and chunks only
        for start in range(0, len(frame), chunk):
            texts = frame[column].slice(start, chunk).to_list()
            encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
            counts[start:start + len(texts)] += np.fromiter((len(ids) for ids in encoded), dtype=np.int64,
                                                            count=len(texts))
    return pl.Series("tokens", counts)


def equal_quotas(available: dict[str, int], total: int) -> dict[str, int]:
    """Split `total` as equally as possible across languages (water-filling): a language with less
    than its share gives all it has and the others share the rest; leftover units go one each to the
    alphabetically first languages that still have room. Exact: the quotas sum to `total`."""
    if total > sum(available.values()):
        raise ValueError("total exceeds what is available")
    level_lo, level_hi = 0, max(available.values(), default=0)
    while level_lo < level_hi:  # the highest cap level whose capped sum fits in the total
        mid = (level_lo + level_hi + 1) // 2
        if sum(min(n, mid) for n in available.values()) <= total:
            level_lo = mid
        else:
            level_hi = mid - 1
    quotas = {lang: min(n, level_lo) for lang, n in available.items()}
    left = total - sum(quotas.values())
    for lang in sorted(lang for lang, n in available.items() if n > level_lo)[:left]:
        quotas[lang] += 1
    return quotas


def temperature_quotas(available: dict[str, int], total: int, temperature: float) -> dict[str, int]:
    """p(lang) ∝ n^(1/T), turned into integer counts summing to `total` by largest remainder. T=1 keeps
    the natural proportions, T→∞ tends to uniform; a quota above a language's size repeats its rows."""
    weights = {lang: n ** (1.0 / temperature) for lang, n in available.items() if n > 0}
    norm = sum(weights.values())
    exact = {lang: total * w / norm for lang, w in weights.items()}
    quotas = {lang: math.floor(x) for lang, x in exact.items()}
    left = total - sum(quotas.values())
    by_remainder = sorted(exact, key=lambda lang: (-(exact[lang] - quotas[lang]), lang))
    for lang in by_remainder[:left]:
        quotas[lang] += 1
    return quotas


# ------------------------------------------------------------------------------------------- sampling


def _with_rank(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """A seeded random order within each language: `_rank` 0..n-1, reproducible for the same seed."""
    keys = np.random.default_rng(seed).random(len(frame))
    return frame.with_columns(pl.Series("_key", keys)).with_columns(
        (pl.col("_key").rank("ordinal").over("lang") - 1).cast(pl.Int64).alias("_rank")
    )


def _take_counts(frame: pl.DataFrame, quotas: dict[str, int]) -> pl.DataFrame:
    """The `quota` lowest-ranked rows of each language; quotas above a language's size repeat rows
    (whole copies, then a random part), as temperature upsampling needs."""
    sizes = frame.group_by("lang").len("_n")
    quota_frame = pl.DataFrame({"lang": list(quotas), "_quota": list(quotas.values())},
                               schema={"lang": pl.String, "_quota": pl.Int64})
    joined = frame.join(sizes, on="lang").join(quota_frame, on="lang")
    copies = joined.with_columns(
        pl.int_ranges(0, (pl.col("_quota") + pl.col("_n") - 1) // pl.col("_n")).alias("_copy")
    ).explode("_copy")
    return copies.filter(pl.col("_copy") * pl.col("_n") + pl.col("_rank") < pl.col("_quota")).drop(
        "_n", "_quota", "_copy"
    )


def _take_tokens(frame: pl.DataFrame, token_quotas: dict[str, int]) -> pl.DataFrame:
    """Rows of each language in random order while the running token sum stays within its quota."""
    quota_frame = pl.DataFrame({"lang": list(token_quotas), "_tq": list(token_quotas.values())},
                               schema={"lang": pl.String, "_tq": pl.Int64})
    ordered = frame.sort("lang", "_rank").with_columns(pl.col("tokens").cum_sum().over("lang").alias("_cum"))
    return ordered.join(quota_frame, on="lang").filter(pl.col("_cum") <= pl.col("_tq")).drop("_cum", "_tq")


def _take_disjoint(frame: pl.DataFrame, quotas: dict[str, int], by_tokens: bool) -> pl.DataFrame:
    """Like `_take_counts` / `_take_tokens`, but no id is used in two languages, so the sample covers
    more distinct instructions. Scarce languages pick first; the loop is over languages only."""
    used = pl.DataFrame({"id": []}, schema={"id": pl.String})
    picked: list[pl.DataFrame] = []
    sizes = dict(frame.group_by("lang").len().iter_rows())
    for lang in sorted(quotas, key=lambda lang: (sizes.get(lang, 0), lang)):
        free = frame.filter(pl.col("lang") == lang).join(used, on="id", how="anti").sort("_rank")
        if by_tokens:
            chosen = free.filter(pl.col("tokens").cum_sum() <= quotas[lang])
        else:
            if len(free) < quotas[lang]:
                raise PolyinstructError(
                    f"--disjoint-ids: {lang} needs {quotas[lang]} rows but only {len(free)} of its ids are not"
                    " used by another language; lower the budget or drop --disjoint-ids"
                )
            chosen = free.head(quotas[lang])
        picked.append(chosen)
        used = pl.concat([used, chosen.select("id")])
    return pl.concat(picked) if picked else frame.clear()


# ------------------------------------------------------------------------------------------- recipes


def _languages_in(frame: pl.DataFrame) -> list[str]:
    return sorted(frame["lang"].unique().to_list())


def _require_language(code: str, present: list[str], export_dir: Path) -> str:
    flores = resolve(code).flores
    if flores not in present:
        raise PolyinstructError(
            f"language {flores} is not in {export_dir} (train split has: {', '.join(present) or 'nothing'});"
            " pick one of those, or add it to languages.targets and rerun the pipeline"
        )
    return flores


def _check_args(mixture: MixtureParams) -> None:
    """Arguments a recipe would ignore are an error, not silently dropped."""
    if mixture.recipe not in RECIPES_WITH_BUDGET and (mixture.budget or mixture.budget_tokens):
        raise PolyinstructError(f"mixture '{mixture.name}': budget/budget_tokens apply to recipes "
                                f"{' and '.join(RECIPES_WITH_BUDGET)}, not {mixture.recipe}")
    if mixture.budget and mixture.budget_tokens:
        raise PolyinstructError(f"mixture '{mixture.name}': give budget (examples) or budget_tokens, not both")
    if mixture.recipe in ("multilingual", "temperature", "english-only") and mixture.lang:
        raise PolyinstructError(f"mixture '{mixture.name}': lang applies to monolingual and downsampled,"
                                f" not {mixture.recipe}")
    if mixture.recipe != "temperature" and mixture.temperature is not None:
        raise PolyinstructError(f"mixture '{mixture.name}': temperature applies only to recipe temperature")
    if mixture.disjoint_ids and mixture.recipe != "downsampled":
        raise PolyinstructError(f"mixture '{mixture.name}': disjoint_ids applies only to recipe downsampled")
    if mixture.recipe == "temperature" and mixture.budget_tokens:
        raise PolyinstructError(f"mixture '{mixture.name}': recipe temperature takes budget (examples),"
                                " not budget_tokens")


def _too_large(what: str, asked: int, have: int, unit: str, export_dir: Path, n_langs: int) -> PolyinstructError:
    return PolyinstructError(
        f"{what} {asked} is larger than the data: {have} training {unit} in {export_dir} across {n_langs}"
        " language(s); lower it, or use recipe multilingual for all of the data"
    )


def select_train(train: pl.DataFrame, mixture: MixtureParams, export_dir: Path) -> pl.DataFrame:
    """Apply the recipe to the train split (with `tokens` and `_rank` columns)."""
    present = _languages_in(train)
    recipe = mixture.recipe
    if recipe in ("monolingual", "english-only"):
        lang = _require_language(mixture.lang if recipe == "monolingual" else ENGLISH.flores, present, export_dir)
        return train.filter(pl.col("lang") == lang)
    if recipe == "multilingual":
        return train
    sizes: dict[str, int] = dict(train.group_by("lang").len().iter_rows())
    if recipe == "temperature":
        total = mixture.budget or sum(sizes.values())
        assert mixture.temperature is not None  # enforced by MixtureParams
        return _take_counts(train, temperature_quotas(sizes, total, mixture.temperature))
    # downsampled: stratified equally across languages
    if mixture.budget_tokens:
        token_sizes: dict[str, int] = dict(train.group_by("lang").agg(pl.col("tokens").sum()).iter_rows())
        if mixture.budget_tokens > sum(token_sizes.values()):
            raise _too_large("--budget-tokens", mixture.budget_tokens, sum(token_sizes.values()), "tokens",
                             export_dir, len(present))
        quotas = equal_quotas(token_sizes, mixture.budget_tokens)
        if mixture.disjoint_ids:
            return _take_disjoint(train, quotas, by_tokens=True)
        return _take_tokens(train, quotas)
    if mixture.budget:
        total = mixture.budget
    elif mixture.lang:  # match one named language's size, as in Chen et al.'s comparison with it
        total = sizes[_require_language(mixture.lang, present, export_dir)]
    else:  # one language's size: the largest, i.e. the full parallel set's number of ids
        total = max(sizes.values(), default=0)
    limit = train["id"].n_unique() if mixture.disjoint_ids else sum(sizes.values())
    if total > limit:
        what = "--budget" if mixture.budget else "default budget"
        unit = "distinct ids (--disjoint-ids)" if mixture.disjoint_ids else "rows"
        raise _too_large(what, total, limit, unit, export_dir, len(present))
    quotas = equal_quotas(sizes, total)
    if mixture.disjoint_ids:
        return _take_disjoint(train, quotas, by_tokens=False)
    return _take_counts(train, quotas)


def content_sha256(splits: dict[str, pl.DataFrame]) -> str:
    """sha256 of the canonical rows: splits in name order, rows in their sorted order, columns in
    EXPORT_COLUMNS order, joined with ASCII unit/record separators."""
    digest = hashlib.sha256()
    for name in sorted(splits):
        frame = splits[name]
        digest.update(f"{name}\x1d{len(frame)}\x1d".encode())
        if len(frame):
            rows = frame.select(pl.concat_str(list(EXPORT_COLUMNS), separator="\x1f").alias("row"))["row"]
            digest.update(rows.str.join("\x1e").item().encode())
    return digest.hexdigest()


def build_mixture(export_dir: Path, mixture: MixtureParams, out: Path, seed: int | None = None,
                  tokenizer_dir: Path | None = None) -> MixResult:
    """Write out/train.parquet, out/validation.parquet and out/manifest.json for one mixture."""
    export_dir, out = Path(export_dir), Path(out)
    _check_args(mixture)
    if tokenizer_dir is not None and not (Path(tokenizer_dir) / "tokenizer_config.json").is_file():
        raise PolyinstructError(f"{tokenizer_dir}: not a tokenizer folder (no tokenizer_config.json); pass the base"
                                " model's folder, e.g. --tokenizer models/base_lm, or drop --tokenizer")
    seed = mixture.seed if seed is None else seed
    train = read_export_split(export_dir, "train")
    validation = read_export_split(export_dir, "validation", required=False)  # validation_fraction may be 0
    train = _with_rank(train.with_columns(token_counts(train, tokenizer_dir)), seed)

    chosen = select_train(train, mixture, export_dir)
    if chosen.is_empty():
        raise PolyinstructError(
            f"mixture '{mixture.name}' (recipe {mixture.recipe}) selected no training rows from {export_dir}"
            " (export train split is empty for its languages, or the token budget is below one example);"
            " check the export or raise the budget"
        )
    chosen = chosen.sort("lang", "id", "_rank")
    langs = _languages_in(chosen)
    val = validation.filter(pl.col("lang").is_in(langs))
    leaked = chosen.join(val, on="id", how="semi")["id"].n_unique()
    if leaked:  # the export guarantees split-disjoint ids; a violation is a bug upstream, never trained on
        raise PolyinstructError(f"{export_dir}: {leaked} id(s) are in both train and validation; re-run export")

    splits = {"train": chosen.select(EXPORT_COLUMNS), "validation": val.select(EXPORT_COLUMNS)}
    for name, frame in splits.items():
        write_parquet(frame.to_arrow(), out / f"{name}.parquet", MIX_SCHEMA)

    val_counts = dict(val.group_by("lang").len().iter_rows())
    per_lang = {
        row["lang"]: {"train": row["train"], "validation": val_counts.get(row["lang"], 0),
                      "train_tokens": row["train_tokens"], "distinct_ids": row["distinct_ids"]}
        for row in chosen.group_by("lang").agg(
            pl.len().alias("train"), pl.col("tokens").sum().alias("train_tokens"),
            pl.col("id").n_unique().alias("distinct_ids"),
        ).sort("lang").iter_rows(named=True)
    }
    manifest: dict[str, Any] = {
        "name": mixture.name,
        "recipe": mixture.recipe,
        "seed": seed,
        "arguments": mixture.model_dump(exclude={"name", "recipe", "seed"}),
        "source": str(export_dir),
        "languages": per_lang,
        "counts": {lang: c["train"] for lang, c in per_lang.items()},
        "total_examples": len(chosen),
        "validation_examples": len(val),
        "total_tokens": int(chosen["tokens"].sum()),
        "token_counter": f"tokenizer: {tokenizer_dir}" if tokenizer_dir else PROXY_COUNTER,
        "distinct_ids": chosen["id"].n_unique(),
        "repeated_rows": len(chosen) - chosen.select("id", "lang").n_unique(),
        # Rows translated by a smoke model are noise; say so wherever they go.
        "smoke_data": any(is_smoke_model(m) for m in chosen["model"].unique().to_list()),
        "content_sha256": content_sha256(splits),
    }
    write_json(manifest, out / "manifest.json")
    return MixResult(out=out, manifest=manifest)


def find_mixture(mixtures: list[MixtureParams], name: str) -> MixtureParams:
    for mixture in mixtures:
        if mixture.name == name:
            return mixture
    names = ", ".join(m.name for m in mixtures) or "none defined"
    raise PolyinstructError(f"params.yaml: no mixture named '{name}' under `mixtures` (have: {names}); add it or"
                            " use --recipe")
