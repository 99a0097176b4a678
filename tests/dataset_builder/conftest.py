"""Fixtures for the translation tests: the smoke NLLB model built once per session, the real
Alpaca records, and source Parquet files made from them by the real ingest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.params import DataParams


@pytest.fixture(scope="session")
def smoke_nllb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke NLLB model (CTranslate2 + tokenizer + manifest), built once."""
    from dataset_builder.models.smoke import build_smoke_nllb

    return build_smoke_nllb(tmp_path_factory.mktemp("models") / "smoke-nllb", seed=0)


@pytest.fixture(scope="session")
def smoke_tokenizer(smoke_nllb: Path) -> Any:
    from dataset_builder.models.nllb import load_tokenizer

    return load_tokenizer(smoke_nllb, "eng_Latn")


@pytest.fixture(scope="session")
def alpaca_records(shared_data: Path) -> list[dict[str, str]]:
    return json.loads((shared_data / "alpaca_5000.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def alpaca_source(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 400 real Alpaca records as data/source.parquet, through the real ingest."""
    from dataset_builder.ingest import ingest

    work = tmp_path_factory.mktemp("alpaca-source")
    out = work / "source.parquet"
    ingest(DataParams(source=str(shared_data / "alpaca_5000.json"), limit=400), out, work / "rejects.parquet")
    return out


@pytest.fixture(scope="session")
def embedded_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 100 records embedded in the package as data/source.parquet, through the real ingest: for
    tests that need a source file but not the shared real data."""
    from dataset_builder.ingest import ingest

    work = tmp_path_factory.mktemp("embedded-source")
    out = work / "source.parquet"
    ingest(DataParams(source="embedded"), out, work / "rejects.parquet")
    return out
