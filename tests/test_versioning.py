"""DVC versions everything: a shrunken demo is reproduced and pushed to a local-folder remote, a second clone
pulls it and finds nothing to do, and `dvc exp run -S` compares a changed filter threshold with the baseline.
The export's lineage names the git commit and the dvc.lock entries of the run. Slow: one real `dvc repro`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from dataset_builder.lineage import sha256_json

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dataset_builder", "quality", "trl_training", "schemas")
UP_TO_DATE = "Data and pipelines are up to date."
# The threshold the experiment changes, and its value: it must change what the filter keeps.
EXP_PARAM, EXP_VALUE = "quality.filters.length_ratio.mad_factor", "1"

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@e.st",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "t@e.st"}


def sh(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command (`dvc` runs as `python -m dvc`, from this interpreter); `check` fails with its output."""
    cmd = [sys.executable, "-m", "dvc", *args[1:]] if args[0] == "dvc" else list(args)
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=1200)
    if check:
        assert proc.returncode == 0, f"{' '.join(args)}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def shrunken_params() -> dict:
    """The demo, shrunk hard: 20 records, one target language, one mixture, two training steps."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"]["limit"] = 20
    params["languages"]["targets"] = ["fra_Latn"]
    params["translate"]["per_language"] = params["languages"]["targets"]  # dvc.yaml's translate foreach
    params["quality"]["filters"]["length_ratio"]["min_rows"] = 5
    params["mixtures"] = [{"name": "multilingual", "recipe": "multilingual"}]
    params["training"].update(budget={"steps": 2}, max_eval_examples=2)
    params["training"]["sft"]["per_device_train_batch_size"] = 4
    params["evaluate"].update(max_eval_examples=2, max_generation_prompts=1, max_new_tokens=4)
    params["evaluate"]["judge"]["decoding"] = {"max_new_tokens": 4, "temperature": 0.0}
    return params


@dataclass
class Versioned:
    first: Path  # the clone that ran `dvc repro` and `dvc push`
    second: Path  # a fresh clone that ran `dvc pull`
    code_commit: str  # the commit the pipeline ran at
    repro: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def versioned(tmp_path_factory: pytest.TempPathFactory) -> Versioned:
    root = tmp_path_factory.mktemp("versioning")
    seed, remote = root / "seed", root / "remote"
    seed.mkdir()
    for name in PACKAGES:  # the stages' code deps, hashed by DVC
        shutil.copytree(REPO_ROOT / name, seed / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(REPO_ROOT / name, seed / name)
    (seed / "params.yaml").write_text(yaml.safe_dump(shrunken_params(), sort_keys=False))
    sh(seed, "git", "init", "-q", "-b", "main")
    sh(seed, "dvc", "init", "-q")
    shutil.copy(REPO_ROOT / ".dvcignore", seed / ".dvcignore")  # run timings are no part of any hash
    sh(seed, "dvc", "remote", "add", "-d", "store", str(remote))  # the README's local-folder remote
    sh(seed, "git", "add", "-A")
    sh(seed, "git", "commit", "-q", "-m", "pipeline")
    sh(root, "git", "clone", "-q", "--bare", str(seed), "origin.git")

    sh(root, "git", "clone", "-q", "origin.git", "first")
    first = root / "first"
    code_commit = sh(first, "git", "rev-parse", "HEAD").stdout.strip()
    repro = sh(first, "dvc", "repro")
    sh(first, "dvc", "push")
    sh(first, "git", "add", "-A")  # dvc.lock and the .gitignore files DVC wrote: no data, no metrics
    sh(first, "git", "commit", "-q", "-m", "run")
    sh(first, "git", "push", "-q", "origin", "main")

    sh(root, "git", "clone", "-q", "origin.git", "second")
    second = root / "second"
    sh(second, "dvc", "pull")
    return Versioned(first, second, code_commit, repro)


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
    assert translate["records"] == 20 and "seconds" not in translate and "device" not in translate
    assert "cache_hits" not in translate  # depends on earlier runs, not on the data
    timing = json.loads((first / "metrics/translate/fra_Latn.timing.json").read_text())
    assert timing["seconds"] > 0 and timing["device"] == "cpu" and timing["machine"]["cpus"] >= 1
    train = json.loads((first / "metrics/train/multilingual/train_metrics.json").read_text())
    assert train["steps"] == 2 and "train_runtime_s" not in train and "tokens_per_s" not in train
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
    assert set(recorded["upstream_stages"]) == {"ingest", "models", "translate@fra_Latn", "round_trip@fra_Latn",
                                                "filter", "validate"}
    assert recorded["upstream_sha256"] == sha256_json({name: lock[name] for name in recorded["upstream_stages"]})
    assert recorded["outs"]["data/filtered"] == next(o["md5"] for o in lock["filter"]["outs"]
                                                     if o["path"] == "data/filtered")
    assert lineage["models"]["translation"] and all(m.startswith("smoke:") for m in lineage["models"]["translation"])
    assert lineage["params"]["languages"]["targets"] == ["fra_Latn"] and lineage["polyinstruct_version"]
    card = (second / "data/export/README.md").read_text()
    assert f"`{versioned.code_commit}` (clean)" in card and recorded["upstream_sha256"] in card
    check = sh(second, "polyinstruct", "lineage", "data/export")
    assert "holds exactly those entries" in check.stdout, check.stdout
    # The run's own stages wrote their lock entries before the export ran: the same entries, same hash.
    assert "Running stage 'export'" in versioned.repro.stdout


def test_an_experiment_with_one_changed_threshold_shows_beside_the_baseline(versioned: Versioned) -> None:
    first = versioned.first
    exp = sh(first, "dvc", "exp", "run", "-S", f"{EXP_PARAM}={EXP_VALUE}", "-n", "tight-length-ratio")
    assert "Running stage 'filter'" in exp.stdout and "Running stage 'translate" not in exp.stdout, exp.stdout
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
