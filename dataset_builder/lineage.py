"""Lineage of an export: which code, which pipeline run, which params and which models made it.

`polyinstruct export` writes `lineage.json` beside the dataset card (and a "Lineage" section in the card):

- `git`: the last commit of the checkout that changed more than `dvc.lock`/`.gitignore` files (the code and
  params that ran), and whether tracked files differed from it (`dirty`).
  `dvc.lock` and `.gitignore` files do not count: `dvc repro` itself rewrites them while it runs, so counting
  them would call every pipeline run dirty.
- `dvc_lock`: the `dvc.lock` entries of the stages upstream of the export (found by following outs to deps
  from the export's inputs), and a sha256 of them. `dvc.lock` as a whole cannot be named: DVC writes the
  export's own entry after the export has run, so the file's final hash does not exist yet. The upstream
  entries do: DVC writes each stage's entry as soon as that stage finishes. They hold the md5 of every
  input, model and intermediate output, so the `dvc.lock` committed with the run (the same entries) names
  the exact data, and `dvc checkout`/`dvc pull` at that commit restores it.
- `params`: the params.yaml sections that shape the data (defaults filled in) and their sha256.
- `models`: the translation model fingerprints the rows carry (`model` column).
- `polyinstruct_version`: the installed package version.

Everything here is a function of the inputs, the code commit and the upstream lock entries, never of the
time or the machine: re-exporting the same run gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from schemas.errors import PolyinstructError

LINEAGE_NAME = "lineage.json"
LOCK_NAME = "dvc.lock"
PACKAGE = "polyinstruct"
MAX_DIRTY_PATHS = 20
_NOT_DIRTYING = ("dvc.lock",)  # plus any .gitignore: both rewritten by `dvc repro` while it runs


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(root: Path) -> dict[str, Any]:
    """{"commit", "dirty", "dirty_paths"}; commit None (with a note) outside a git checkout."""
    # The last commit that changed anything but the files `dvc repro` rewrites itself: committing the run's
    # dvc.lock afterwards does not change what a rerun of the same code records (so a clean rerun leaves the
    # export, and with it dvc.lock, byte-identical).
    commit = _git(root, "log", "-1", "--format=%H", "--", ".", *(f":(exclude){p}" for p in _NOT_DIRTYING),
                  ":(glob,exclude)**/.gitignore") or _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "dirty_paths": [],
                "note": "not a git checkout (or git is missing): the code version is unknown"}
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=no") or ""
    paths = []
    entries = iter(status.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if "R" in code or "C" in code:
            next(entries, None)  # -z puts a rename's source path in its own field
        if path in _NOT_DIRTYING or Path(path).name == ".gitignore":
            continue
        paths.append(path)
    paths.sort()
    return {"commit": commit.strip(), "dirty": bool(paths), "dirty_paths": paths[:MAX_DIRTY_PATHS]}


def _relative(path: Path, root: Path) -> str | None:
    """`path` as dvc.lock spells it (relative to the repo root, posix), or None when outside the root."""
    rel = os.path.relpath(Path(path).resolve(), root.resolve())
    return None if rel.startswith("..") else Path(rel).as_posix()


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def upstream_lock(root: Path, inputs: Iterable[Path]) -> dict[str, Any] | None:
    """The dvc.lock entries of the stages the `inputs` come from, transitively; None without a dvc.lock."""
    lock_path = root / LOCK_NAME
    if not lock_path.is_file():
        return None
    try:
        stages = (yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}).get("stages") or {}
    except yaml.YAMLError as err:
        raise PolyinstructError(f"{lock_path}: not valid YAML ({str(err).splitlines()[0]}); restore it with"
                                " `git checkout dvc.lock` or rerun `dvc repro`") from None
    frontier = {rel for rel in (_relative(p, root) for p in inputs) if rel is not None}
    upstream: dict[str, Any] = {}
    grown = True
    while grown:
        grown = False
        for name, entry in stages.items():
            if name in upstream or not isinstance(entry, dict):
                continue
            outs = [o.get("path", "") for o in entry.get("outs") or []]
            if any(_overlaps(out, wanted) for out in outs for wanted in frontier):
                upstream[name] = entry
                frontier |= {d.get("path", "") for d in entry.get("deps") or []}
                grown = True
    ordered = {name: upstream[name] for name in sorted(upstream)}
    outs = {o["path"]: o.get("md5") or o.get("hash") for entry in ordered.values() for o in entry.get("outs") or []
            if "path" in o}
    return {"path": LOCK_NAME, "upstream_stages": list(ordered), "upstream_sha256": sha256_json(ordered),
            "outs": dict(sorted(outs.items()))}


def package_version() -> str | None:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def collect_lineage(root: Path, inputs: Iterable[Path], data_params: dict[str, Any],
                    models: Iterable[str]) -> dict[str, Any]:
    """The lineage record of an export made in `root` from `inputs` (see the module docstring)."""
    return {
        "polyinstruct_version": package_version(),
        "git": git_state(root),
        "dvc_lock": upstream_lock(root, inputs),
        "params_sha256": sha256_json(data_params),
        "params": data_params,
        "models": {"translation": sorted(set(models))},
    }


def lineage_markdown(lineage: dict[str, Any]) -> str:
    """The card's "Lineage" section."""
    git = lineage["git"]
    if git["commit"] is None:
        commit = f"unknown ({git.get('note', 'no git')})"
    else:
        commit = f"`{git['commit']}`" + (" (**dirty**: " + ", ".join(f"`{p}`" for p in git["dirty_paths"]) + ")"
                                         if git["dirty"] else " (clean)")
    lock = lineage["dvc_lock"]
    lock_text = ("none (the export ran outside a DVC pipeline)" if lock is None else
                 f"`{lock['upstream_sha256']}`: sha256 of the entries of {', '.join(lock['upstream_stages']) or 'no'}"
                 " stage(s)")
    models = ", ".join(f"`{m}`" for m in lineage["models"]["translation"]) or "none"
    rows = [f"- git commit: {commit}", f"- dvc.lock, upstream stages: {lock_text}",
            f"- params (the sections below): sha256 `{lineage['params_sha256']}`",
            f"- translation model(s): {models}",
            f"- polyinstruct: `{lineage['polyinstruct_version'] or 'unknown'}`"]
    return "\n".join([
        "## Lineage", "",
        f"The run that made this data, also in `{LINEAGE_NAME}` beside this card:", "", *rows, "",
        "To trace it: check out the commit, find the `dvc.lock` commit whose upstream entries hash to the value"
        " above (`polyinstruct lineage data/export` compares them), then `dvc pull` restores every"
        " input and intermediate output of the run.", ""])


def check_lineage(export_dir: Path, root: Path) -> tuple[bool, dict[str, Any], dict[str, Any] | None]:
    """(does `root`'s dvc.lock hold the upstream entries the export names?, the recorded lineage, the
    lock's upstream now)."""
    path = export_dir / LINEAGE_NAME
    if not path.is_file():
        raise PolyinstructError(f"{path}: not found; rebuild the export with `polyinstruct export`")
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        lock = recorded["dvc_lock"]
        stages = lock["upstream_stages"] if lock else []
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise PolyinstructError(f"{path}: not a lineage record ({err}); rebuild the export") from None
    if lock is None:
        return False, recorded, None
    lock_path = root / LOCK_NAME
    if not lock_path.is_file():
        raise PolyinstructError(f"{lock_path}: not found; run this in the pipeline's checkout")
    current = (yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}).get("stages") or {}
    now = {name: current.get(name) for name in stages}
    now_digest = sha256_json(now)
    return now_digest == lock["upstream_sha256"], recorded, {"upstream_sha256": now_digest}
