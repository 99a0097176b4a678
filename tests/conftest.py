"""Shared test helpers: where the real data lives, and running the CLI in-process.

The real data is `../shared/data` beside the checkout, or the folder POLYINSTRUCT_SHARED_DATA names.
CI runs the suite a second time with POLYINSTRUCT_SHARED_DATA=/nonexistent, as a fresh clone sees it."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataset_builder.cli.app import main
from schemas.timings import timing_path
from tests.demo_repo import DEMO_GROUP, DemoRepo, build_demo_repo

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "POLYINSTRUCT_SHARED_DATA"
# pytest-xdist groups (`make test`): each runs in one worker. The heaviest start first (minutes each, from
# `pytest --durations`), so none is left to run alone at the end.
RAY_GROUP = "ray"
HEAVIEST_GROUPS = (DEMO_GROUP, "tests/test_recipes.py", RAY_GROUP)
SHARED_DATA = Path(os.environ.get(SHARED_DATA_ENV) or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"needs the shared real data, not found at {SHARED_DATA} (set {SHARED_DATA_ENV})")
    return SHARED_DATA


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """For `make test`'s `pytest -n 2 --dist loadgroup --no-loadscope-reorder` (pytest-xdist): a test module
    without an xdist group is its own group, so each module's fixtures are built in one worker only (modules
    sharing a session fixture name one group). HEAVIEST_GROUPS run first, then groups holding more slow tests,
    so the longest work does not start last while the other worker idles. Without xdist this only orders."""
    group_of: dict[pytest.Item, str] = {}
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
            mark = item.get_closest_marker("xdist_group")
        group_of[item] = str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    yield  # xdist names each item's group; pytest orders the items by their fixtures
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        groups.setdefault(group_of[item], []).append(item)
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
