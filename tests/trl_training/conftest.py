"""Fixtures for the training tests: one smoke base LM per session, and export directories in the
export's contract (`DIR/{config}/{split}-{i:05d}-of-{n:05d}.parquet`, columns id, lang, instruction,
input, output, model; the same ids held out in every language)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dataset_builder.ingest import embedded_sample_path
from dataset_builder.models.smoke import build_smoke_lm
from schemas.artifacts import write_parquet
from schemas.export_layout import EXPORT_SCHEMA, SHARD_NAME
from schemas.languages import resolve
from schemas.params import MixtureParams, Params, parse_params
from tests.conftest import SHARED_DATA
from trl_training.mixtures import build_mixture
from trl_training.sft import train

LANGS: tuple[str, ...] = ("eng_Latn", "fra_Latn", "rus_Cyrl", "zho_Hans")
N_IDS = 60
SPLIT_SIZES = {"validation": 6, "test": 6}  # the rest is train


def _english(n: int) -> list[dict[str, str]]:
    """`n` real Alpaca records: from the shared 5,000 when present, else from the 100 embedded in the
    package, whose short records are fewer than `n`: the rest are numbered variants of them, so a
    fresh clone tests exactly as much as CI."""
    source = SHARED_DATA / "alpaca_5000.json"
    path = source if source.exists() else embedded_sample_path()
    records = json.loads(path.read_text(encoding="utf-8"))
    # Short records keep tokenised lengths (and so test time) small.
    short = [{k: str(r[k]) for k in ("instruction", "input", "output")} for r in records
             if len(r["instruction"]) + len(r["input"]) + len(r["output"]) < 200]
    out = short[:n]
    for i in range(len(out), n):
        base, round_ = short[i % len(short)], i // len(short)
        out.append({**base, "instruction": f"{base['instruction']} ({round_ + 1})"})
    return out


def _human_prompts(lang: str) -> list[str]:
    """Human-translated prompts of the HPLT test set in `lang` (real text in the right script)."""
    iso = resolve(lang).iso639_1
    path = SHARED_DATA / "hplt-test" / f"test_{iso}.jsonl"
    if not path.exists():
        return []
    prompts = [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [p for p in prompts if len(p.encode()) < 100]  # short: the smoke BPE spends ~1 token per CJK byte


def export_rows(langs: tuple[str, ...] = LANGS, n_ids: int = N_IDS,
                drop: dict[str, set[int]] | None = None) -> dict[str, list[dict[str, str]]]:
    """Rows per language. English is Alpaca; other languages use human translations of real prompts
    where available (instruction = one prompt, output = the next), else tagged English text."""
    english = _english(n_ids)
    drop = drop or {}
    rows: dict[str, list[dict[str, str]]] = {}
    for lang in langs:
        prompts = _human_prompts(lang) if lang != "eng_Latn" else []
        out = []
        for i, rec in enumerate(english):
            if i in drop.get(lang, set()):
                continue  # as if the quality stage had filtered it out
            if lang == "eng_Latn":
                text = rec
            elif prompts:
                # The "response" is the next prompt's first 40 characters: real text, and short.
                text = {"instruction": prompts[i % len(prompts)], "input": "",
                        "output": prompts[(i + 1) % len(prompts)][:40]}
            else:
                text = {k: f"[{lang}] {v}" if v else "" for k, v in rec.items()}
            out.append({"id": f"alpaca-{i}", "lang": lang, **text,
                        "model": "source" if lang == "eng_Latn" else "facebook/nllb-200-distilled-600M"})
        rows[lang] = out
    return rows


def split_of(index: int) -> str:
    """Fixed id -> split, identical in every language (the last ids are held out)."""
    if index >= N_IDS - SPLIT_SIZES["test"]:
        return "test"
    if index >= N_IDS - SPLIT_SIZES["test"] - SPLIT_SIZES["validation"]:
        return "validation"
    return "train"


def write_export(root: Path, rows: dict[str, list[dict[str, str]]], shards: int = 2) -> Path:
    """Like `polyinstruct export`: train in `shards` files, an empty split left out of its config."""
    for lang, lang_rows in rows.items():
        config = resolve(lang).config_name
        for split in ("train", "validation", "test"):
            part = [r for r in lang_rows if split_of(int(r["id"].split("-")[1])) == split]
            n = shards if split == "train" else 1
            for i in range(n if part else 0):
                write_parquet(pa.Table.from_pylist(part[i::n], schema=EXPORT_SCHEMA),
                              root / config / SHARD_NAME.format(split=split, i=i, n=n), EXPORT_SCHEMA)
    (root / "README.md").write_text("---\nconfigs: []\n---\n# test export\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def smoke_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_smoke_lm(tmp_path_factory.mktemp("models") / "smoke_lm", seed=0)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 languages x 60 ids; Russian lost 8 train rows to filtering, so sizes differ."""
    return write_export(tmp_path_factory.mktemp("export"), export_rows(drop={"rus_Cyrl": set(range(8))}))


def smoke_params(cache_dir: Path, **training: object) -> Params:
    """Params for fast smoke training: memorise a small mix with full batches and a high LR."""
    sft = {"learning_rate": 1e-2, "per_device_train_batch_size": 16, "logging_steps": 1, "seed": 0,
           "max_length": 128, **dict(training.pop("sft", {}))}  # type: ignore[call-overload]
    return parse_params({"models": {"cache_dir": str(cache_dir)},
                         "training": {"template": "bactrian", "max_steps": 16, "max_eval_examples": 8, "sft": sft,
                                      **training}})


@pytest.fixture(scope="session")
def memorise_mix(export_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 training examples, 4 per language (downsampled, stratified)."""
    out = tmp_path_factory.mktemp("mixes") / "memorise"
    build_mixture(export_dir, MixtureParams(name="memorise", recipe="downsampled", budget=16), out)
    return out


@pytest.fixture(scope="session")
def trained(memorise_mix: Path, smoke_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real training run shared by the SFT and evaluation tests: 16 full-batch steps on 16 examples."""
    root = tmp_path_factory.mktemp("train")
    params = smoke_params(root / "cache")
    metrics = train(memorise_mix, smoke_lm, root / "adapter", params, metrics_dir=root / "metrics")
    return {"adapter": root / "adapter", "metrics_dir": root / "metrics", "metrics": metrics, "params": params}
