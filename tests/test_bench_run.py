"""benchmarks.run records the command a result came from, with the environment knobs that changed it."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from benchmarks import run


@pytest.fixture
def fake_bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A benchmark module `bench_fake` and a results folder of its own."""
    def fake(quick: bool = False, **_: Any) -> dict[str, Any]:
        return {"summary": {"answer": 42}}

    monkeypatch.setitem(sys.modules, "benchmarks.bench_fake", types.SimpleNamespace(run=fake))
    monkeypatch.setattr(run, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(run, "RESULTS_MD", tmp_path / "RESULTS.md")
    for key in [k for k in list(os.environ) if k.startswith(run.KNOB_PREFIXES)]:
        monkeypatch.delenv(key)
    return tmp_path


def test_the_recorded_command_names_the_knobs_set_in_the_environment(fake_bench: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_TRANSLATE_MANY_FULL", "1")
    monkeypatch.setenv("BENCH_TRANSLATE_MANY_RECORDS", "")  # Make passes an unset knob as empty: not a knob
    monkeypatch.setenv("POLYINSTRUCT_SHARED_DATA", "/data/shared")
    monkeypatch.setenv("UNRELATED_SETTING", "x")
    run.run_one("fake", quick=False)
    run.write_results_md()

    meta = json.loads((fake_bench / "results" / "fake.json").read_text())["meta"]
    assert meta["command"] == "BENCH_TRANSLATE_MANY_FULL=1 POLYINSTRUCT_SHARED_DATA=/data/shared make bench-fake"
    assert f"- command: `{meta['command']}`" in (fake_bench / "RESULTS.md").read_text()


def test_without_knobs_the_command_is_the_make_target(fake_bench: Path) -> None:
    assert run.run_one("fake", quick=False)["meta"]["command"] == "make bench-fake"
    assert run.run_one("fake", quick=False, rows=10)["meta"]["command"] == "python -m benchmarks.run fake --rows 10"


def test_the_machine_names_its_widest_vector_isa(fake_bench: Path) -> None:
    assert run.cpu_isa({"sse4_2", "avx2", "avx512f", "avx512_vnni"}) == "avx512_vnni"
    assert run.cpu_isa({"sse4_2", "avx2", "avx512f"}) == "avx512f"
    assert run.cpu_isa({"sse4_2", "avx2"}) == "avx2"
    assert run.cpu_isa({"sse4_2"}) == "older"
    run.run_one("fake", quick=False)
    run.write_results_md()
    isa = json.loads((fake_bench / "results" / "fake.json").read_text())["meta"]["machine"]["isa"]
    assert isa in {"avx512_vnni", "avx512f", "avx2", "older", "unknown"}
    assert f" ({isa}), " in (fake_bench / "RESULTS.md").read_text()
