"""Issue 11, point 6: DVC never serves stale data. The source file is a dependency of ingest, and each
stage depends on the whole packages it runs (plus schemas/), so editing either reruns what it feeds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from dataset_builder.ingest import embedded_sample_path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dataset_builder", "quality", "trl_training", "schemas")
# The project packages whose code each stage's command runs (the CLI lives in dataset_builder).
RUNS = {
    "ingest": {"dataset_builder", "schemas"},
    "models": {"dataset_builder", "schemas"},
    "translate": {"dataset_builder", "schemas"},
    "translate_many": {"dataset_builder", "schemas"},
    "filter": {"dataset_builder", "quality", "schemas"},
    "validate": {"dataset_builder", "quality", "schemas"},
    "export": {"dataset_builder", "schemas"},
    "mix": {"dataset_builder", "schemas", "trl_training"},
    "train": {"dataset_builder", "schemas", "trl_training"},
    "evaluate": {"dataset_builder", "quality", "schemas", "trl_training"},  # fidelity uses quality.langid
    "respond": {"dataset_builder", "schemas"},
    "round_trip": {"dataset_builder", "schemas"},
    "qe_score": {"dataset_builder", "schemas"},
    "report": {"dataset_builder", "quality", "schemas"},
    "benchmark": {"dataset_builder", "schemas", "trl_training"},
    "compare": {"dataset_builder", "schemas", "trl_training"},
}


def _deps(stage: dict) -> list[str]:
    return stage.get("do", stage)["deps"]


def test_every_stage_depends_on_all_the_code_it_runs() -> None:
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert set(stages) == set(RUNS)
    for name, stage in stages.items():
        packages = {d for d in _deps(stage) if d in PACKAGES}
        assert packages == RUNS[name], name
    assert "${data.source}" in _deps(stages["ingest"])
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert (REPO_ROOT / params["data"]["source"]).resolve() == embedded_sample_path().resolve()


def _dvc(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)


def _changed(work: Path) -> dict[str, list]:
    proc = _dvc(work, "status", "--json", "ingest")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout or "{}")


def test_editing_the_source_file_or_a_schema_reruns_ingest(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    for name in PACKAGES:
        shutil.copytree(REPO_ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "dvc.yaml", work / "dvc.yaml")
    records = json.loads(embedded_sample_path().read_text(encoding="utf-8"))[:10]
    source = work / "raw" / "alpaca.json"
    source.parent.mkdir()
    source.write_text(json.dumps(records), encoding="utf-8")
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["data"] |= {"source": "raw/alpaca.json", "source_name": "alpaca"}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    assert _dvc(work, "init", "--no-scm", "-q").returncode == 0
    first = _dvc(work, "repro", "ingest")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert _changed(work) == {}

    source.write_text(json.dumps(records[:9]), encoding="utf-8")  # the user edits the source file
    assert json.dumps(_changed(work)).count("raw/alpaca.json") == 1
    again = _dvc(work, "repro", "ingest")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "ingest: kept 9" in again.stdout
    assert _changed(work) == {}

    with (work / "schemas" / "records.py").open("a", encoding="utf-8") as fh:
        fh.write("\n# an edit to a record contract\n")
    assert '"schemas": "modified"' in json.dumps(_changed(work))

