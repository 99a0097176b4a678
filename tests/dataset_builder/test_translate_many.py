"""Issue 14: several languages in one process (translate-many) write exactly what the per-language runs
write, load the model, the tokenizer and the plan once, and survive a SIGKILL midway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from dataset_builder.translate import translate_file
from dataset_builder.translate_many import ManyResult, language_paths, target_languages, translate_languages
from schemas.errors import PolyinstructError
from schemas.params import Params, parse_params
from schemas.timings import timing_path
from tests.conftest import REPO_ROOT
from tests.kill_helpers import kill_when

LANGS = ["fra_Latn", "rus_Cyrl", "zho_Hans"]
SETTINGS = {"translate": {"shard_units": 64}}  # ~10 shards per language of the embedded sample


@dataclass
class Layout:
    root: Path

    def paths(self, lang: str):  # noqa: ANN201 - LanguagePaths
        return language_paths(lang, self.root / "out", self.root / "metrics", self.root / "rejects",
                              self.root / "memory")


def _units(memory: Path) -> list[str]:
    return pq.read_table(sorted(memory.rglob("shard-*.parquet"))).column("unit").to_pylist()


@pytest.fixture(scope="module")
def per_language(embedded_source: Path, smoke_nllb: Path, tmp_path_factory: pytest.TempPathFactory) -> Layout:
    """The reference: one `translate_file` per language, each loading everything itself."""
    layout = Layout(tmp_path_factory.mktemp("per-language"))
    for lang in LANGS:
        p = layout.paths(lang)
        translate_file(embedded_source, lang, smoke_nllb, p.out, p.metrics, p.rejects, parse_params(SETTINGS),
                       cache=p.memory, plan_cache=layout.root / "memory")
    return layout


@pytest.fixture(scope="module")
def one_process(embedded_source: Path, smoke_nllb: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Layout, ManyResult]:
    layout = Layout(tmp_path_factory.mktemp("one-process"))
    done = translate_languages(embedded_source, LANGS, smoke_nllb, layout.root / "out", layout.root / "metrics",
                               layout.root / "rejects", parse_params(SETTINGS), layout.root / "memory")
    return layout, done


def test_one_process_writes_the_per_language_bytes(per_language: Layout, one_process: tuple[Layout, ManyResult]
                                                   ) -> None:
    layout, _ = one_process
    for lang in LANGS:
        ours, theirs = layout.paths(lang), per_language.paths(lang)
        for name in ("out", "rejects", "metrics"):
            assert getattr(ours, name).read_bytes() == getattr(theirs, name).read_bytes(), (lang, name)
        assert pq.read_table(ours.out).num_rows == 100
        assert sorted(_units(ours.memory)) == sorted(_units(theirs.memory))  # the same memory, unit for unit


def test_one_process_loads_model_tokenizer_and_plan_once(per_language: Layout,
                                                         one_process: tuple[Layout, ManyResult]) -> None:
    layout, done = one_process
    assert (done.loaded.model_loads, done.loaded.tokenizer_loads, len(done.loaded.plans)) == (1, 1, 1)
    timings = {lang: json.loads(timing_path(layout.paths(lang).metrics).read_text()) for lang in LANGS}
    first, *rest = LANGS
    assert timings[first]["model_load_seconds"] > 0 and timings[first]["tokenizer_load_seconds"] > 0
    for lang in rest:  # the later languages reuse them: no load, no segmentation, no source tokenisation
        assert timings[lang]["model_load_seconds"] == timings[lang]["tokenizer_load_seconds"] == 0
        assert timings[lang]["plan_seconds"] < timings[first]["plan_seconds"]
    assert set(done.loaded.token_ids) >= set(_units(layout.paths(first).memory))  # tokenised once, kept
    # The peer: every per-language run loaded the model and the tokenizer itself.
    for lang in LANGS:
        timing = json.loads(timing_path(per_language.paths(lang).metrics).read_text())
        assert timing["model_load_seconds"] > 0 and timing["tokenizer_load_seconds"] > 0


def test_bad_language_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(PolyinstructError, match="--langs zz_Fake|unknown language"):
        target_languages(["fra_Latn", "zz_Fake"], "eng_Latn")
    with pytest.raises(PolyinstructError, match="more than once"):
        target_languages(["fra_Latn", "fr"], "eng_Latn")
    with pytest.raises(PolyinstructError, match="source language"):
        target_languages(["eng_Latn"], Params().languages.source)


def test_sigkill_midway_then_rerun_loses_and_repeats_nothing(embedded_source: Path, smoke_nllb: Path,
                                                            per_language: Layout, tmp_path: Path) -> None:
    """A real `polyinstruct translate-many` is SIGKILLed while its second language is translating; the
    rerun finishes, redoes no finished shard and writes the per-language bytes."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(SETTINGS))
    layout = Layout(tmp_path / "run")
    args = [sys.executable, "-m", "dataset_builder.cli", "translate-many", "--in", str(embedded_source),
            "--langs", ",".join(LANGS), "--model", str(smoke_nllb), "--out-dir", str(layout.root / "out"),
            "--metrics-dir", str(layout.root / "metrics"), "--rejects-dir", str(layout.root / "rejects"),
            "--cache", str(layout.root / "memory"), "--params", str(tmp_path / "params.yaml")]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    second = layout.paths(LANGS[1])
    proc = kill_when(args, tmp_path, env, lambda: bool(list(second.memory.rglob("shard-*.parquet"))),
                     tmp_path / "killed.log")
    assert proc.returncode == -signal.SIGKILL
    assert layout.paths(LANGS[0]).out.exists() and not second.out.exists() and not layout.paths(LANGS[2]).out.exists()
    survivors = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (layout.root / "memory").rglob("shard-*")}
    done_second = len(_units(second.memory))

    finished = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "model loaded 1 time(s), tokenizer 1, source segmented 1 time(s)" in finished.stdout
    for shard, identity in survivors.items():  # finished shards were not redone
        assert (shard.stat().st_ino, shard.stat().st_mtime_ns) == identity
    for lang in LANGS:
        p = layout.paths(lang)
        metrics = json.loads(p.metrics.read_text()) | json.loads(timing_path(p.metrics).read_text())
        stored = _units(p.memory)
        assert len(stored) == len(set(stored)) == metrics["distinct_units"]  # none lost, none twice
        assert metrics["cache_hits"] + metrics["units_translated"] == metrics["distinct_units"]
        assert p.out.read_bytes() == per_language.paths(lang).out.read_bytes()
        assert p.rejects.read_bytes() == per_language.paths(lang).rejects.read_bytes()
    second_metrics = json.loads(timing_path(second.metrics).read_text())
    assert second_metrics["cache_hits"] == done_second > 0 and second_metrics["units_translated"] > 0
