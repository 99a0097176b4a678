"""The DVC graph end to end: `dvc repro` on a shrunken demo runs every stage, and a second repro does nothing.
The repro is the session's one run of the demo (tests/demo_repo.py), shared with test_versioning."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.demo_repo import UP_TO_DATE, DemoRepo, sh

pytestmark = pytest.mark.slow


def test_repro_runs_every_stage(demo_repo: DemoRepo) -> None:
    work = demo_repo.first
    demo_repo.require_success()
    stages = sh(work, "dvc", "stage", "list", "--name-only").stdout.split()
    assert "report" in stages and "translate@zho_Hans" in stages and "train@1" in stages, stages
    assert [s for s in stages if f"Running stage '{s}'" not in demo_repo.repro.stdout] == []  # none restored
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


def test_second_repro_does_nothing(demo_repo: DemoRepo) -> None:
    if demo_repo.repro.returncode != 0:
        pytest.skip("first repro failed; see test_repro_runs_every_stage")
    second = sh(demo_repo.first, "dvc", "repro", check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    assert UP_TO_DATE in second.stdout, second.stdout[-2000:]
