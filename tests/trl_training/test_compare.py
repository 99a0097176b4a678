"""`polyinstruct compare`: mixtures side by side per language, the base once, budgets, plot CSVs.
(The DVC pipeline test runs it on real evaluate outputs.)"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from schemas.errors import PolyinstructError
from tests.conftest import run_cli


def _eval(path: Path, mixture: str, adapter_loss: float, judge: float | None) -> None:
    row = {"base_loss": 3.0, "adapter_loss": adapter_loss, "fidelity_base": 0.5, "fidelity_adapter": 0.9,
           "judge_mean_score_base": 2.0, "judge_mean_score_adapter": judge, "judge_wrong_language_base": 3,
           "judge_wrong_language_adapter": 1, "win_rate_adapter_vs_base": 0.75}
    path.write_text(json.dumps({"mixture": mixture, "smoke": True, "note": "SMOKE: random weights",
                                "judge": {"model": "smoke:judge", "note": "SMOKE JUDGE: noise"},
                                "languages": {"fra_Latn": row, "zho_Hans": {**row, "judge_mean_score_adapter": None}}}))


def test_compare_tables_budget_and_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evals, mixes, bench = tmp_path / "eval", tmp_path / "mixes", tmp_path / "bench"
    for d in (evals, mixes / "mono-fr", mixes / "downsampled", bench):
        d.mkdir(parents=True)
    _eval(evals / "mono-fr.json", "mono-fr", 2.0, 6.0)
    _eval(evals / "downsampled.json", "downsampled", 2.5, 5.0)
    (evals / "mono-fr.md").write_text("not read")
    for name, n, tokens in (("mono-fr", 100, 9000), ("downsampled", 100, 8800)):
        (mixes / name / "manifest.json").write_text(json.dumps({"recipe": name, "total_examples": n,
                                                                "total_tokens": tokens}))
    (bench / "mono-fr.json").write_text(json.dumps({"results": [
        {"task": "xcopa_fr", "lang": "fra_Latn", "base": 0.5, "adapter": 0.6},
        {"task": "belebele_fra_Latn", "lang": "fra_Latn", "base": 0.3, "adapter": 0.4}]}))
    out, plots = tmp_path / "reports" / "comparison.md", tmp_path / "plots"
    assert run_cli(monkeypatch, "compare", "--eval", str(evals), "--mixes", str(mixes), "--benchmarks", str(bench),
                   "--out", str(out), "--plots", str(plots)) == 0
    report = out.read_text(encoding="utf-8")
    assert "SMOKE JUDGE: noise" in report and "| mono-fr | mono-fr | 100 | 9,000 | smoke:judge |" in report
    fr = report.split("## fra_Latn")[1].split("## zho_Hans")[0]
    # base once (from the evaluations), then the mixtures; benchmark accuracy = mean over the language's tasks
    assert fr.count("| base |") == 1 and "| base | 3.000 | 0.500 | 2.000 | 3 | – | 0.400 |" in fr
    assert "| mono-fr | 2.000 | 0.900 | 6.000 | 1 | 0.750 | 0.500 |" in fr
    assert "| downsampled | 2.500 | 0.900 | 5.000 | 1 | 0.750 | – |" in fr
    with (plots / "judge_score.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["lang"], r["mixture"]) for r in rows} == {("fra_Latn", "base"), ("fra_Latn", "mono-fr"),
                                                          ("fra_Latn", "downsampled"), ("zho_Hans", "base")}


def test_compare_without_evaluations(tmp_path: Path) -> None:
    from trl_training.compare import compare

    with pytest.raises(PolyinstructError, match="no evaluation results"):
        compare(tmp_path, tmp_path / "c.md")
