"""Mixture recipes on an export in the real layout: exact counts, seeds, no leakage, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from schemas.errors import PolyinstructError
from schemas.params import MixtureParams
from tests.trl_training.conftest import export_rows, split_of, write_export
from trl_training.mixtures import build_mixture, equal_quotas, read_export_split, temperature_quotas


def _mix(export_dir: Path, out: Path, **kwargs: object) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    spec = MixtureParams(name=out.name, **kwargs)  # type: ignore[arg-type]
    result = build_mixture(export_dir, spec, out)
    return (pl.read_parquet(out / "train.parquet"), pl.read_parquet(out / "validation.parquet"), result.manifest)


def test_equal_quotas_water_fill_is_exact() -> None:
    assert equal_quotas({"a": 10, "b": 10, "c": 10}, 10) == {"a": 4, "b": 3, "c": 3}
    # a scarce language gives all it has; the others share the rest equally
    assert equal_quotas({"a": 2, "b": 50, "c": 50}, 30) == {"a": 2, "b": 14, "c": 14}
    assert equal_quotas({"a": 2, "b": 50, "c": 50}, 31) == {"a": 2, "b": 15, "c": 14}
    assert sum(equal_quotas({"a": 7, "b": 3, "c": 11}, 21).values()) == 21


def test_temperature_quotas_flatten_with_t() -> None:
    sizes = {"big": 900, "small": 100}
    natural = temperature_quotas(sizes, 1000, 1.0)
    flat = temperature_quotas(sizes, 1000, 100.0)
    assert natural == {"big": 900, "small": 100}
    assert sum(flat.values()) == 1000 and 480 <= flat["small"] <= 500  # near uniform
    t3 = temperature_quotas(sizes, 1000, 3.0)  # p ∝ n^(1/3): 9.65 : 4.64
    assert t3["small"] == round(1000 * 100 ** (1 / 3) / (900 ** (1 / 3) + 100 ** (1 / 3)))


def test_downsampled_counts_exact_and_seeded(export_dir: Path, tmp_path: Path) -> None:
    train, val, manifest = _mix(export_dir, tmp_path / "a", recipe="downsampled", budget=30, seed=7)
    assert manifest["counts"] == {"eng_Latn": 8, "fra_Latn": 8, "rus_Cyrl": 7, "zho_Hans": 7}
    assert dict(train.group_by("lang").len().iter_rows()) == manifest["counts"]
    assert manifest["total_examples"] == 30 == len(train)
    assert manifest["total_tokens"] > 0 and "proxy" in manifest["token_counter"]
    again, _, manifest_again = _mix(export_dir, tmp_path / "b", recipe="downsampled", budget=30, seed=7)
    assert again.equals(train) and manifest_again["content_sha256"] == manifest["content_sha256"]
    other, _, manifest_other = _mix(export_dir, tmp_path / "c", recipe="downsampled", budget=30, seed=8)
    assert manifest_other["counts"] == manifest["counts"]
    assert not other.equals(train) and manifest_other["content_sha256"] != manifest["content_sha256"]
    # sorted output, train ids never in validation, nothing from test
    assert train.equals(train.sort("lang", "id"))
    assert not set(train["id"]) & set(val["id"])
    assert {split_of(int(i.split("-")[1])) for i in train["id"]} == {"train"}
    assert {split_of(int(i.split("-")[1])) for i in val["id"]} == {"validation"}


def test_downsampled_default_budget_is_one_language(export_dir: Path, tmp_path: Path) -> None:
    train, _, manifest = _mix(export_dir, tmp_path / "d", recipe="downsampled")
    full = read_export_split(export_dir, "train")
    assert manifest["total_examples"] == full.group_by("lang").len()["len"].max() == 48
    assert set(manifest["counts"].values()) == {12}
    # matching Russian's (filtered, smaller) size instead
    _, _, ru = _mix(export_dir, tmp_path / "e", recipe="downsampled", lang="ru")
    assert ru["total_examples"] == 40


def test_disjoint_ids_cover_more_instructions(export_dir: Path, tmp_path: Path) -> None:
    train, _, manifest = _mix(export_dir, tmp_path / "f", recipe="downsampled", disjoint_ids=True)
    assert manifest["total_examples"] == 48 and set(manifest["counts"].values()) == {12}
    assert train["id"].n_unique() == 48 == manifest["distinct_ids"]  # every id once across languages
    _, _, overlapping = _mix(export_dir, tmp_path / "g", recipe="downsampled")
    assert overlapping["distinct_ids"] < manifest["distinct_ids"]


def test_budget_tokens_split_equally(export_dir: Path, tmp_path: Path) -> None:
    train, _, manifest = _mix(export_dir, tmp_path / "h", recipe="downsampled", budget_tokens=2000)
    assert manifest["total_tokens"] <= 2000
    assert all(lang["train_tokens"] <= 500 for lang in manifest["languages"].values())
    assert manifest["total_tokens"] > 1500  # each language fills most of its 500-token share


def test_recipes(export_dir: Path, tmp_path: Path) -> None:
    mono, mono_val, manifest = _mix(export_dir, tmp_path / "mono", recipe="monolingual", lang="fr")
    assert set(mono["lang"]) == {"fra_Latn"} == set(mono_val["lang"]) and len(mono) == 48
    assert manifest["validation_examples"] == 6
    multi, multi_val, manifest = _mix(export_dir, tmp_path / "multi", recipe="multilingual")
    assert len(multi) == 48 * 3 + 40 and len(multi_val) == 24
    english, _, _ = _mix(export_dir, tmp_path / "en", recipe="english-only")
    assert set(english["lang"]) == {"eng_Latn"}
    temp, _, manifest = _mix(export_dir, tmp_path / "t", recipe="temperature", temperature=5.0, budget=400)
    assert len(temp) == 400 and manifest["repeated_rows"] > 0  # upsampled beyond the data, rows repeat
    assert json.loads((tmp_path / "t" / "manifest.json").read_text())["recipe"] == "temperature"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"recipe": "monolingual", "lang": "de"}, "language deu_Latn is not in"),
    ({"recipe": "downsampled", "budget": 500}, "--budget 500 is larger than the data: 184 training rows"),
    ({"recipe": "downsampled", "budget_tokens": 10**9}, "--budget-tokens 1000000000 is larger than the data"),
    ({"recipe": "downsampled", "budget_tokens": 1}, "selected no training rows"),
    ({"recipe": "downsampled", "budget": 49, "disjoint_ids": True}, "48 training distinct ids"),
    ({"recipe": "multilingual", "budget": 10}, "budget/budget_tokens apply to recipes"),
])
def test_bad_input_is_one_clear_line(export_dir: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(PolyinstructError, match=message) as err:
        build_mixture(export_dir, MixtureParams(name="bad", **kwargs), tmp_path / "bad")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "bad" / "train.parquet").exists()


def test_missing_export_and_missing_splits(tmp_path: Path) -> None:
    with pytest.raises(PolyinstructError, match="export directory not found"):
        build_mixture(tmp_path / "nowhere", MixtureParams(name="x", recipe="multilingual"), tmp_path / "m")
    # Every train row filtered out upstream: the export leaves the empty split out of each config.
    train_ids = {i for i in range(60) if split_of(i) == "train"}
    rows = export_rows(langs=("eng_Latn", "fra_Latn"), drop={"eng_Latn": train_ids, "fra_Latn": train_ids})
    with pytest.raises(PolyinstructError, match="no train shards"):
        build_mixture(write_export(tmp_path / "export", rows), MixtureParams(name="x", recipe="multilingual"),
                      tmp_path / "m")
    # No validation split at all (export.validation_fraction: 0) is fine: the mix's validation is empty.
    no_val = export_rows(langs=("eng_Latn",), drop={"eng_Latn": {i for i in range(60) if split_of(i) != "train"}})
    train, val, manifest = _mix(write_export(tmp_path / "no_val", no_val), tmp_path / "mv", recipe="english-only")
    assert len(train) == 48 and len(val) == 0 and manifest["validation_examples"] == 0


def test_tokens_counted_with_the_base_lm_tokenizer(export_dir: Path, smoke_lm: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    spec = MixtureParams(name="tok", recipe="downsampled", budget_tokens=3000)
    manifest = build_mixture(export_dir, spec, tmp_path / "tok", tokenizer_dir=smoke_lm).manifest
    assert manifest["token_counter"] == f"tokenizer: {smoke_lm}"
    train = pl.read_parquet(tmp_path / "tok" / "train.parquet")
    tokenizer = AutoTokenizer.from_pretrained(smoke_lm)
    exact = sum(len(tokenizer(text, add_special_tokens=False)["input_ids"])
                for column in ("instruction", "input", "output") for text in train[column].to_list())
    assert manifest["total_tokens"] == exact and 2000 < exact <= 3000
