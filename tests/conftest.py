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

from dataset_builder.cli.app import main
from schemas.timings import timing_path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "POLYINSTRUCT_SHARED_DATA"
SHARED_DATA = Path(os.environ.get(SHARED_DATA_ENV) or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"needs the shared real data, not found at {SHARED_DATA} (set {SHARED_DATA_ENV})")
    return SHARED_DATA


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
