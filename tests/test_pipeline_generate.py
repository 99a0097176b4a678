"""Bactrian-X's recipe through DVC: `dvc repro` with responses.mode: generate (the embedded sample,
three languages, the smoke responder) runs end to end, every kept record has a generated output
marked smoke, and a second repro does nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import metrics_with_timing
from tests.test_pipeline import PACKAGES, REPO_ROOT, _dvc

LANGS = ["fra_Latn", "rus_Cyrl", "zho_Hans"]


def bactrian_params() -> dict:
    """params.yaml switched to the generate recipe, shrunk to run in about a minute."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"]["limit"] = 20
    params["languages"]["targets"] = LANGS
    params["translate"]["per_language"] = params["languages"]["targets"]  # dvc.yaml's translate foreach
    params["responses"].update(mode="generate", languages=LANGS, records="data/responded")
    params["responses"]["decoding"]["max_new_tokens"] = 32
    params["mixtures"] = [{"name": "multilingual", "recipe": "multilingual"}]
    params["training"].update(budget={"steps": 2}, max_eval_examples=4)
    params["evaluate"].update(max_eval_examples=4, max_generation_prompts=2, max_new_tokens=8)
    params["evaluate"]["judge"]["decoding"] = {"max_new_tokens": 8, "temperature": 0.0}
    return params


@pytest.mark.slow
def test_generate_recipe_repro(tmp_path: Path) -> None:
    work = tmp_path / "pipeline"
    work.mkdir()
    for name in PACKAGES:
        shutil.copytree(REPO_ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "dvc.yaml", work / "dvc.yaml")
    (work / "params.yaml").write_text(yaml.safe_dump(bactrian_params(), sort_keys=False))
    assert _dvc(work, "init", "--no-scm", "-q").returncode == 0
    first = _dvc(work, "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

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

    second = _dvc(work, "repro")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Data and pipelines are up to date." in second.stdout, second.stdout[-2000:]
