"""Run timings live apart from metrics.

A stage's metrics JSON (declared as a DVC metric, compared by `dvc exp show` and `dvc metrics diff`)
holds numbers that change only when the data or the model change. How long the run took, how fast it
went, on which device, under which machine load, and how much the translation memory saved go to a
sibling `<stem>.timing.json` (a plain cached DVC output: pushed and pulled, never compared).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

TIMING_SUFFIX = ".timing.json"


def timing_path(metrics_path: Path | str) -> Path:
    """metrics/translate/fra_Latn.json -> metrics/translate/fra_Latn.timing.json"""
    path = Path(metrics_path)
    return path.with_name(path.name.removesuffix(".json") + TIMING_SUFFIX)


def machine() -> dict[str, Any]:
    """What the timings were taken on: CPUs and the 1-minute load average (None where unknown)."""
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not Unix
        load = None
    return {"cpus": os.cpu_count(), "load_1m": load}


def write_timing(timing: dict[str, Any], metrics_path: Path | str) -> Path:
    """Write `timing` plus the machine's CPUs and load beside `metrics_path`, atomically."""
    path = timing_path(metrics_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        text = json.dumps({**timing, "machine": machine()}, indent=2, sort_keys=True, ensure_ascii=False,
                          default=str)
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def split_timing(metrics: dict[str, Any], timing_keys: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(`metrics` without `timing_keys`, the `timing_keys` part)."""
    return ({k: v for k, v in metrics.items() if k not in timing_keys},
            {k: v for k, v in metrics.items() if k in timing_keys})
