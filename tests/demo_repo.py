"""One real `dvc repro` of the shrunken demo for the whole session, in a git clone with a DVC remote.

Reproducing the demo takes minutes (one process per stage). The tests that only read its outputs share one
run (the `demo_repo` fixture in conftest.py); a test that changes params works in a copy of the built
repository (`copy_built`), so DVC reruns only the stages whose params or deps changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from schemas.timings import timing_path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dataset_builder", "quality", "trl_training", "schemas")
UP_TO_DATE = "Data and pipelines are up to date."
DEMO_LANGS = ["fra_Latn", "zho_Hans"]


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@e.st",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "t@e.st"}


def sh(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command (`dvc` runs as `python -m dvc`, from this interpreter); `check` fails with its output."""
    cmd = [sys.executable, "-m", "dvc", *args[1:]] if args[0] == "dvc" else list(args)
    # A generous limit: a repro takes about two minutes on an idle machine, much longer on a loaded shared one.
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=2400)
    if check:
        assert proc.returncode == 0, f"{' '.join(args)}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def copy_code(work: Path) -> None:
    """The stages' code deps (hashed by DVC), dvc.yaml and the ignore files, as a checkout has them."""
    for name in PACKAGES:
        shutil.copytree(REPO_ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, work / name)


def demo_params() -> dict:
    """The demo, shrunk: 40 records, two target languages, two mixtures, four training steps."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"]["limit"] = 40
    params["languages"]["targets"] = list(DEMO_LANGS)
    params["translate"]["per_language"] = params["languages"]["targets"]  # dvc.yaml's translate foreach
    # The length-ratio filter applies from 5 kept rows, so a changed threshold changes what it keeps.
    params["quality"]["filters"]["length_ratio"]["min_rows"] = 5
    params["mixtures"] = [{"name": "multilingual", "recipe": "multilingual"},
                          {"name": "downsampled", "recipe": "downsampled"}]
    params["training"]["budget"] = {"steps": 4}
    params["training"]["max_eval_examples"] = 4
    params["evaluate"].update(max_eval_examples=4, max_generation_prompts=2, max_new_tokens=8)
    params["evaluate"]["judge"]["decoding"] = {"max_new_tokens": 8, "temperature": 0.0}
    return params


@dataclass
class DemoRepo:
    root: Path  # holds origin.git (the git remote) and remote/ (the DVC remote)
    first: Path  # the clone that ran `dvc repro`, committed dvc.lock and ran `dvc push`
    code_commit: str  # the commit the pipeline ran at
    repro: subprocess.CompletedProcess[str]

    def require_success(self) -> None:
        assert self.repro.returncode == 0, self.repro.stdout[-3000:] + self.repro.stderr[-3000:]


def build_demo_repo(root: Path) -> DemoRepo:
    """Code committed to a git origin, cloned, `dvc repro` run in the clone; on success the run is pushed to a
    local-folder DVC remote (the README's) and dvc.lock committed and pushed to origin."""
    seed, remote = root / "seed", root / "remote"
    seed.mkdir()
    copy_code(seed)
    (seed / "params.yaml").write_text(yaml.safe_dump(demo_params(), sort_keys=False))
    sh(seed, "git", "init", "-q", "-b", "main")
    sh(seed, "dvc", "init", "-q")
    sh(seed, "dvc", "remote", "add", "-d", "store", str(remote))
    sh(seed, "git", "add", "-A")
    sh(seed, "git", "commit", "-q", "-m", "pipeline")
    sh(root, "git", "clone", "-q", "--bare", str(seed), "origin.git")

    sh(root, "git", "clone", "-q", "origin.git", "first")
    first = root / "first"
    code_commit = sh(first, "git", "rev-parse", "HEAD").stdout.strip()
    repro = sh(first, "dvc", "repro", check=False)
    if repro.returncode == 0:
        sh(first, "dvc", "push")
        sh(first, "git", "add", "-A")  # dvc.lock and the .gitignore files DVC wrote: no data, no metrics
        sh(first, "git", "commit", "-q", "-m", "run")
        sh(first, "git", "push", "-q", "origin", "main")
    return DemoRepo(root, first, code_commit, repro)


def copy_built(demo: DemoRepo, dest: Path, params: dict) -> Path:
    """A copy of the built clone (workspace, git history, DVC cache and dvc.lock) with `params` written: its
    `dvc repro` reruns only the stages whose params or deps changed. The outputs of the stages the new params
    drop (a mixture left out) are removed with their timing files, so no later stage reads a stale file."""
    demo.require_success()
    shutil.copytree(demo.first, dest, symlinks=True)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    kept = set(sh(dest, "dvc", "stage", "list", "--name-only").stdout.split())
    lock = yaml.safe_load((dest / "dvc.lock").read_text())["stages"]
    for name, entry in lock.items():
        if name in kept:
            continue
        for out in entry.get("outs", []):
            path = dest / out["path"]
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
                timing_path(path).unlink(missing_ok=True)
            if path.parent != dest and path.parent.is_dir() and not any(path.parent.iterdir()):
                path.parent.rmdir()
    return dest
