"""The DVC graph end to end: `dvc repro` on a shrunken demo runs every stage, and a second repro does nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dataset_builder", "quality", "trl_training", "schemas")


def _dvc(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def repro(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    work = tmp_path_factory.mktemp("pipeline")
    for name in PACKAGES:  # the stages' code deps, hashed by DVC
        shutil.copytree(REPO_ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "dvc.yaml", work / "dvc.yaml")
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"]["limit"] = 40
    params["languages"]["targets"] = ["fra_Latn", "zho_Hans"]
    params["translate"]["per_language"] = params["languages"]["targets"]  # dvc.yaml's translate foreach
    params["mixtures"] = [{"name": "multilingual", "recipe": "multilingual"},
                          {"name": "downsampled", "recipe": "downsampled"}]
    params["training"]["budget"] = {"steps": 4}
    params["training"]["max_eval_examples"] = 4
    params["evaluate"].update(max_eval_examples=4, max_generation_prompts=2, max_new_tokens=8)
    params["evaluate"]["judge"]["decoding"] = {"max_new_tokens": 8, "temperature": 0.0}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _dvc(work, "init", "--no-scm", "-q").returncode == 0
    return work, _dvc(work, "repro")


def test_repro_runs_every_stage(repro: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, proc = repro
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((work / "metrics/validation.json").read_text())["success"] is True
    quality = json.loads((work / "metrics/quality.json").read_text())["languages"]
    for lang in ("eng_Latn", "fra_Latn", "zho_Hans"):
        stats = quality[lang]
        assert stats["kept"] + stats["rejected"] == stats["in"], lang
    translated = pq.read_table(work / "data/translated/fra_Latn.parquet").to_pylist()
    assert translated and all(row["smoke"] and row["model"].startswith("smoke:") for row in translated)
    card = (work / "data/export/README.md").read_text()
    assert "smoke" in card.lower() and "config_name: fr" in card
    for name in ("multilingual", "downsampled"):
        metrics = json.loads((work / f"metrics/train/{name}/train_metrics.json").read_text())
        assert metrics["first_loss"] > 0 and (work / f"models/adapters/{name}/adapter_config.json").exists()
        assert (work / f"metrics/eval/{name}.json").exists()
    assert (work / "reports/data_docs/index.html").exists()
    index = (work / "reports/index.html").read_text()  # the report stage ran last, with every section
    for section in ("Validation passed", "Retention per language", "Rejects per reason", "Comparison across mixtures",
                    'href="data_docs/index.html"', 'href="rejects.html"', 'href="plots/index.html"'):
        assert section in index, section
    # The smoke judge ran on every mixture's generations, and the comparison puts them side by side.
    judged = json.loads((work / "metrics/eval/multilingual.json").read_text())
    assert judged["smoke_judge"] and judged["judge"]["model"].startswith("smoke:")
    assert judged["languages"]["fra_Latn"]["judge_judged_adapter"] + judged["languages"]["fra_Latn"][
        "judge_wrong_language_adapter"] == judged["languages"]["fra_Latn"]["prompts"]
    report = (work / "reports/comparison.md").read_text()
    assert "## fra_Latn" in report and "| downsampled |" in report and "| base |" in report and "SMOKE" in report
    judge_plot = (work / "metrics/plots/comparison/held_out_loss.csv").read_text().splitlines()
    assert judge_plot[0] == "label,lang,mixture,held_out_loss" and len(judge_plot) > 1
    skipped = json.loads((work / "metrics/benchmarks/multilingual.json").read_text())
    assert skipped["results"] == [] and "skipped" in skipped  # benchmarks are opt-in


def test_second_repro_does_nothing(repro: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, first = repro
    if first.returncode != 0:
        pytest.skip("first repro failed; see test_repro_runs_every_stage")
    second = _dvc(work, "repro")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Data and pipelines are up to date." in second.stdout, second.stdout[-2000:]
