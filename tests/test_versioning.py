"""DVC versions everything: a shrunken demo is reproduced and pushed to a local-folder remote, a second clone
pulls it and finds nothing to do, and `dvc exp run -S` compares a changed filter threshold with the baseline.
The export's lineage names the git commit and the dvc.lock entries of the run. Slow: the session's real
`dvc repro` of the demo (tests/demo_repo.py) and the experiment's rerun from the filter stage to the first
mixture's evaluation.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from dataset_builder.lineage import sha256_json
from tests.demo_repo import DEMO_LANGS, UP_TO_DATE, DemoRepo, sh

# The threshold the experiment changes, and its value: it must change what the filter keeps.
EXP_PARAM, EXP_VALUE = "quality.filters.length_ratio.mad_factor", "1"
# The experiment reproduces the multilingual mixture's evaluation (`dvc exp run TARGET`): the stages from the
# filter to it run for real; the other mixture's training and evaluation, the benchmarks, the comparison and
# the report (each run by the session's full repro) are not repeated.
EXP_TARGET = "evaluate@0"
EXP_STAGES = {"filter", "validate", "export", "mix@0", "train@0", "evaluate@0"}

pytestmark = pytest.mark.slow


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class Versioned:
    first: Path  # the clone that ran `dvc repro` and `dvc push`
    second: Path  # a fresh clone that ran `dvc pull`
    code_commit: str  # the commit the pipeline ran at
    repro: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def versioned(demo_repo: DemoRepo) -> Versioned:
    """The session's demo run (reproduced, pushed, dvc.lock committed: tests/demo_repo.py), and a second
    clone of its git origin that pulled the run from the DVC remote."""
    demo_repo.require_success()
    second = demo_repo.root / "second"
    if not second.exists():
        sh(demo_repo.root, "git", "clone", "-q", "origin.git", "second")
        sh(second, "dvc", "pull")
    return Versioned(demo_repo.first, second, demo_repo.code_commit, demo_repo.repro)


def test_a_pulled_clone_is_up_to_date_and_translates_nothing(versioned: Versioned) -> None:
    first, second = versioned.first, versioned.second
    committed = sh(first, "git", "ls-files").stdout.split()
    assert "dvc.lock" in committed
    assert not [f for f in committed if f.startswith(("data/", "models/", "metrics/", "reports/"))
                and not f.endswith(".gitignore")], committed  # outputs live in the DVC cache, not in git
    status = sh(second, "dvc", "status")
    assert UP_TO_DATE in status.stdout, status.stdout
    again = sh(second, "dvc", "repro")
    assert UP_TO_DATE in again.stdout and "Running stage" not in again.stdout, again.stdout
    assert tree_digest(second / "data/export") == tree_digest(first / "data/export")
    # The translation memory came with the pull: a rerun would translate nothing.
    memory = tree_digest(second / "data/translation_memory/fra_Latn")
    assert memory and memory == tree_digest(first / "data/translation_memory/fra_Latn")
    for metrics in ("metrics/quality.json", "metrics/validation.json", "metrics/eval/multilingual.json",
                    "metrics/train/multilingual/train_metrics.json", "metrics/translate/fra_Latn.json"):
        assert (second / metrics).read_bytes() == (first / metrics).read_bytes(), metrics


def test_metrics_hold_no_timings(versioned: Versioned) -> None:
    first = versioned.first
    translate = json.loads((first / "metrics/translate/fra_Latn.json").read_text())
    assert translate["records"] == 40 and "seconds" not in translate and "device" not in translate
    assert "cache_hits" not in translate  # depends on earlier runs, not on the data
    timing = json.loads((first / "metrics/translate/fra_Latn.timing.json").read_text())
    assert timing["seconds"] > 0 and timing["device"] == "cpu" and timing["machine"]["cpus"] >= 1
    train = json.loads((first / "metrics/train/multilingual/train_metrics.json").read_text())
    assert train["steps"] == 4 and "train_runtime_s" not in train and "tokens_per_s" not in train
    assert json.loads((first / "metrics/train/multilingual/train_metrics.timing.json").read_text())[
        "train_runtime_s"] > 0
    assert "seconds" not in json.loads((first / "metrics/ingest.json").read_text())
    for stage in ("ingest", "quality", "validation"):
        assert "seconds" in json.loads((first / f"metrics/{stage}.timing.json").read_text()), stage


def test_the_export_names_its_commit_and_dvc_lock(versioned: Versioned) -> None:
    second = versioned.second
    lineage = json.loads((second / "data/export/lineage.json").read_text())
    assert lineage["git"] == {"commit": versioned.code_commit, "dirty": False, "dirty_paths": []}
    lock = yaml.safe_load((second / "dvc.lock").read_text())["stages"]  # the dvc.lock committed with the run
    recorded = lineage["dvc_lock"]
    assert set(recorded["upstream_stages"]) == {"ingest", "models", "filter", "validate", *(
        f"{stage}@{lang}" for stage in ("translate", "round_trip", "qe_score") for lang in DEMO_LANGS)}
    assert recorded["upstream_sha256"] == sha256_json({name: lock[name] for name in recorded["upstream_stages"]})
    assert recorded["outs"]["data/filtered"] == next(o["md5"] for o in lock["filter"]["outs"]
                                                     if o["path"] == "data/filtered")
    assert lineage["models"]["translation"] and all(m.startswith("smoke:") for m in lineage["models"]["translation"])
    assert lineage["params"]["languages"]["targets"] == DEMO_LANGS and lineage["polyinstruct_version"]
    card = (second / "data/export/README.md").read_text()
    assert f"`{versioned.code_commit}` (clean)" in card and recorded["upstream_sha256"] in card
    check = sh(second, "polyinstruct", "lineage", "data/export")
    assert "holds exactly those entries" in check.stdout, check.stdout
    # The run's own stages wrote their lock entries before the export ran: the same entries, same hash.
    assert "Running stage 'export'" in versioned.repro.stdout


def test_an_experiment_with_one_changed_threshold_shows_beside_the_baseline(versioned: Versioned,
                                                                           tmp_path: Path) -> None:
    first = tmp_path / "first"  # `dvc exp run` leaves its results in the workspace: run it in a copy
    shutil.copytree(versioned.first, first, symlinks=True)
    exp = sh(first, "dvc", "exp", "run", "-S", f"{EXP_PARAM}={EXP_VALUE}", "-n", "tight-length-ratio", EXP_TARGET)
    ran = {line.removeprefix("Running stage '").removesuffix("':") for line in exp.stdout.splitlines()
           if line.startswith("Running stage '")}
    assert ran == EXP_STAGES, exp.stdout  # from the filter to the target: no translation, no other mixture
    shown = json.loads(sh(first, "dvc", "exp", "show", "--json").stdout)
    baseline = next(rev for rev in shown if rev["name"] == "main")
    runs = {"baseline": baseline["data"]}
    runs |= {rev["name"]: rev["data"] for exp_ in baseline["experiments"] or [] for rev in exp_["revs"]}
    assert set(runs) == {"baseline", "tight-length-ratio"}, list(runs)
    quality = {name: data["metrics"]["metrics/quality.json"]["data"]["languages"]["fra_Latn"]
               for name, data in runs.items()}
    assert quality["baseline"]["kept"] != quality["tight-length-ratio"]["kept"], quality
    for name, data in runs.items():
        shown_metrics = set(data["metrics"])
        assert {"metrics/validation.json", "metrics/train/multilingual/train_metrics.json",
                "metrics/eval/multilingual.json"} <= shown_metrics, (name, shown_metrics)
        assert not any(m.endswith(".timing.json") for m in shown_metrics)
    diff = json.loads(sh(first, "dvc", "metrics", "diff", "main", "tight-length-ratio", "--json").stdout)
    assert "languages.fra_Latn.kept" in diff["metrics/quality.json"]
    plots = sh(first, "dvc", "plots", "diff", "main", "tight-length-ratio", "--json")
    assert "metrics/plots/retention.csv" in plots.stdout
