"""Bactrian-X's recipe through DVC: `dvc repro` with responses.mode: generate (the shrunken demo's sample and
target languages, the smoke responder) runs end to end, every kept record has a generated output marked smoke,
and a second repro does nothing. It starts from a copy of the session's demo run (tests/demo_repo.py): the
ingest, model, translate and round-trip stages are unchanged and DVC does not rerun them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import metrics_with_timing
from tests.demo_repo import DEMO_LANGS, UP_TO_DATE, DemoRepo, copy_built, demo_params, sh

LANGS = DEMO_LANGS

pytestmark = pytest.mark.slow


def bactrian_params() -> dict:
    """The shrunken demo's params switched to the generate recipe."""
    params = demo_params()
    params["responses"].update(mode="generate", languages=LANGS, records="data/responded")
    params["responses"]["decoding"]["max_new_tokens"] = 32
    params["mixtures"] = [{"name": "multilingual", "recipe": "multilingual"}]
    params["training"].update(budget={"steps": 2}, max_eval_examples=4)
    return params


def test_generate_recipe_repro(demo_repo: DemoRepo, tmp_path: Path) -> None:
    work = copy_built(demo_repo, tmp_path / "pipeline", bactrian_params())
    first = sh(work, "dvc", "repro", check=False)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for lang in LANGS:
        assert f"Running stage 'respond@{lang}'" in first.stdout and f"'translate@{lang}' didn't change" in (
            first.stdout), first.stdout[-3000:]

    responder = None
    for lang in LANGS:
        metrics = metrics_with_timing(work / f"metrics/respond/{lang}.json")
        assert metrics["smoke"] and metrics["prompts_generated"] > 0
        responder = metrics["model"]
        responded = pq.read_table(work / f"data/responded/{lang}.parquet").to_pylist()
        translated = {r["id"]: r for r in pq.read_table(work / f"data/translated/{lang}.parquet").to_pylist()}
        rejected = pq.read_table(work / f"data/rejects/respond/{lang}.parquet").num_rows
        assert len(responded) + rejected == len(translated)
        for row in responded:
            assert row["output_model"] == responder and row["smoke"]
            assert row["instruction"] == translated[row["id"]]["instruction"]  # translated prompts kept
        kept = pq.read_table(work / f"data/filtered/{lang}.parquet").to_pylist()
        by_id = {r["id"]: r for r in responded}
        assert kept, lang
        for row in kept:  # every kept record carries its generated output, marked smoke
            assert row["output"] == by_id[row["id"]]["output"] and row["smoke"]
    assert responder and responder.startswith("smoke:")
    quality = json.loads((work / "metrics/quality.json").read_text())["languages"]
    for lang in LANGS:
        assert quality[lang]["kept"] + quality[lang]["rejected"] == quality[lang]["in"]
    assert json.loads((work / "metrics/validation.json").read_text())["success"] is True

    second = sh(work, "dvc", "repro", check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    assert UP_TO_DATE in second.stdout, second.stdout[-2000:]
