"""Shared test helpers: where the real data lives, and running the CLI in-process.

The real data is `../shared/data` beside the checkout, or the folder POLYINSTRUCT_SHARED_DATA names.
CI runs the suite a second time with POLYINSTRUCT_SHARED_DATA=/nonexistent, as a fresh clone sees it."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.shared_data import SHARED_DATA, SHARED_DATA_ENV
from dataset_builder.cli.app import main
from dataset_builder.devices import available_cpus
from schemas.timings import timing_path
from tests.demo_repo import DemoRepo, build_demo_repo

REPO_ROOT = Path(__file__).resolve().parents[1]
# pytest-xdist (`make test`: -n 2 --dist loadfile): each test file runs in one worker, and the files of a group
# here run in one worker together: the demo tests share one `dvc repro` (a session fixture), the Ray tests keep
# one local Ray instance at a time on the machine. (xdist's --dist loadgroup cannot tag node ids under pytest 9.)
DEMO_GROUP, RAY_GROUP = "demo_repo", "ray"
XDIST_GROUPS = {"tests/test_pipeline.py": DEMO_GROUP, "tests/test_versioning.py": DEMO_GROUP,
                "tests/dataset_builder/test_translate_ray.py": RAY_GROUP,
                "tests/dataset_builder/test_respond_ray.py": RAY_GROUP}
# The heaviest groups (minutes each, from `pytest --durations`) start first, so none is left to run alone at the end.
HEAVIEST_GROUPS = (DEMO_GROUP, "tests/test_recipes.py", RAY_GROUP)
# Each xdist worker, and every process its tests start (the stages of a `dvc repro`), gets its share of the CPUs
# for OpenMP (torch, CTranslate2: dataset_builder.devices.cpu_threads): threads beyond it spin against the other
# worker's, which measured 4x slower smoke training on a loaded 2-core machine. Set before torch is imported.
if xdist_workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, available_cpus() // xdist_workers)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"needs the shared real data, not found at {SHARED_DATA} (set {SHARED_DATA_ENV})")
    return SHARED_DATA


def xdist_group(nodeid: str) -> str:
    """The group a test runs in under xdist: its file's XDIST_GROUPS entry, else its file."""
    path = nodeid.split("::")[0]
    return XDIST_GROUPS.get(path, path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadfile, with the files of one XDIST_GROUPS group as one unit of work."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # only under pytest-xdist

    class GroupedFileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return GroupedFileScheduling(config, log)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each xdist group's tests together, HEAVIEST_GROUPS first, then groups holding more slow tests, so the
    longest work does not start last while the other worker idles (`make test` passes
    --no-loadscope-reorder, which keeps this order). Without xdist this only orders the tests."""
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        groups.setdefault(xdist_group(item.nodeid), []).append(item)
    ordered = sorted(groups.items(), key=lambda group: (
        HEAVIEST_GROUPS.index(group[0]) if group[0] in HEAVIEST_GROUPS else len(HEAVIEST_GROUPS),
        -sum(bool(i.get_closest_marker("slow")) for i in group[1])))
    items[:] = [item for _, group in ordered for item in group]


@pytest.fixture(scope="session")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> DemoRepo:
    """The shrunken demo reproduced once per session (per xdist worker: its tests share one xdist group)."""
    return build_demo_repo(tmp_path_factory.mktemp("demo_repo"))


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Any real connection attempt fails the test; the token cache is an empty temp folder."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token-cache" / "token"))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run `polyinstruct ARGS` in-process through the real entry point; return its exit code."""
    monkeypatch.setattr(sys, "argv", ["polyinstruct", *args])
    try:
        main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def metrics_with_timing(metrics_path: Path) -> dict:
    """A stage's metrics JSON and its timing file (schemas/timings.py) as one dict, without the machine block."""
    timing = json.loads(timing_path(metrics_path).read_text())
    timing.pop("machine")
    metrics = json.loads(metrics_path.read_text())
    assert not set(metrics) & set(timing), "a key in both the metrics and the timing file"
    return metrics | timing
