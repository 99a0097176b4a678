"""Lineage: the git state (dvc.lock rewrites are not dirt), the upstream dvc.lock entries found by following
outs to deps, and `polyinstruct lineage` telling a matching dvc.lock from another run's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from dataset_builder.lineage import LINEAGE_NAME, check_lineage, collect_lineage, git_state, sha256_json, upstream_lock
from tests.conftest import run_cli

LOCK = {"schema": "2.0", "stages": {
    "ingest": {"cmd": "polyinstruct ingest", "deps": [{"path": "dataset_builder/data/sample.json", "md5": "a1"}],
               "outs": [{"path": "data/source.parquet", "md5": "s1"}, {"path": "metrics/ingest.json", "md5": "m1"}]},
    "models": {"cmd": "polyinstruct model prepare", "outs": [{"path": "models/translation", "md5": "t1.dir"},
                                                             {"path": "models/base_lm", "md5": "b1.dir"}]},
    "translate@fra_Latn": {"cmd": "polyinstruct translate", "deps": [
        {"path": "data/source.parquet", "md5": "s1"}, {"path": "models/translation", "md5": "t1.dir"}],
        "outs": [{"path": "data/translated/fra_Latn.parquet", "md5": "f1"}]},
    "filter": {"cmd": "polyinstruct filter", "deps": [{"path": "data/source.parquet", "md5": "s1"},
                                                      {"path": "data/translated", "md5": "d1.dir"}],
               "outs": [{"path": "data/filtered", "md5": "x1.dir"}, {"path": "metrics/quality.json", "md5": "q1"}]},
    "export": {"cmd": "polyinstruct export", "deps": [{"path": "data/filtered", "md5": "x1.dir"}],
               "outs": [{"path": "data/export", "md5": "e0.dir"}]},
    "train@0": {"cmd": "polyinstruct train", "deps": [{"path": "models/base_lm", "md5": "b1.dir"}],
                "outs": [{"path": "models/adapters/mono-fr", "md5": "l0.dir"}]},
}}
UPSTREAM = ["filter", "ingest", "models", "translate@fra_Latn"]


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e.st", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e.st"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(LOCK))
    (tmp_path / ".gitignore").write_text("/data\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "run")
    return tmp_path


def test_git_state_counts_tracked_changes_but_not_what_dvc_repro_rewrites(checkout: Path) -> None:
    head = git(checkout, "rev-parse", "HEAD").strip()
    assert git_state(checkout) == {"commit": head, "dirty": False, "dirty_paths": []}
    (checkout / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # `dvc repro` rewrites these
    (checkout / ".gitignore").write_text("/data\n/metrics\n")
    (checkout / "untracked.txt").write_text("x")
    assert git_state(checkout)["dirty"] is False
    (checkout / "params.yaml").write_text("a: 2\n")  # e.g. `dvc exp run -S` in the workspace
    assert git_state(checkout) == {"commit": head, "dirty": True, "dirty_paths": ["params.yaml"]}


def test_git_state_outside_a_checkout_says_so(tmp_path: Path) -> None:
    state = git_state(tmp_path)
    assert state["commit"] is None and state["dirty"] is None and "not a git checkout" in state["note"]


def test_upstream_lock_follows_outs_to_deps_and_leaves_out_the_rest(checkout: Path) -> None:
    found = upstream_lock(checkout, [checkout / "data/filtered", checkout / "metrics/quality.json"])
    assert found is not None and found["upstream_stages"] == UPSTREAM  # not export itself, not training
    assert found["upstream_sha256"] == sha256_json({name: LOCK["stages"][name] for name in UPSTREAM})
    assert found["outs"]["data/filtered"] == "x1.dir" and found["outs"]["models/translation"] == "t1.dir"
    assert "models/adapters/mono-fr" not in found["outs"] and "data/export" not in found["outs"]
    assert upstream_lock(checkout, [Path("/somewhere/else/filtered")])["upstream_stages"] == []
    assert upstream_lock(checkout / "nowhere", [checkout / "data/filtered"]) is None


def test_lineage_command_tells_the_matching_dvc_lock_from_another_run(
        checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    export = checkout / "data/export"
    export.mkdir(parents=True)
    lineage = collect_lineage(checkout, [checkout / "data/filtered"], {"quality": {"x": 1}}, ["smoke:abc", "smoke:abc"])
    assert lineage["models"] == {"translation": ["smoke:abc"]} and lineage["git"]["dirty"] is False
    (export / LINEAGE_NAME).write_text(json.dumps(lineage))
    monkeypatch.chdir(checkout)
    assert run_cli(monkeypatch, "lineage", "data/export") == 0
    assert "holds exactly those entries" in capsys.readouterr().out
    assert check_lineage(export, checkout)[0] is True

    changed = json.loads(json.dumps(LOCK))  # another run: the translation changed
    changed["stages"]["translate@fra_Latn"]["outs"][0]["md5"] = "f2"
    (checkout / "dvc.lock").write_text(yaml.safe_dump(changed))
    assert run_cli(monkeypatch, "lineage", "data/export") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dvc.lock here hashes those stages to ") and "git log -- dvc.lock" in err
    assert "Traceback" not in err
