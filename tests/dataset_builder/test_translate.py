from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dataset_builder.segment import normalise_unit, protected_spans, reassemble, segment
from dataset_builder.translate import RUN_KEYS, TranslateResult, translate_file
from dataset_builder.translation_memory import UnitResult, memory_key
from schemas.artifacts import write_parquet
from schemas.errors import PolyinstructError
from schemas.params import Params, parse_params
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS, TRANSLATED_SCHEMA
from tests.conftest import REPO_ROOT, metrics_with_timing
from tests.kill_helpers import kill_when

LAYOUT = re.compile(r"^\s*(?:(?:[-*•+]|\d{1,3}[.)])(?=\s))?\s*")


@dataclass
class Run:
    result: TranslateResult
    rows: list[dict[str, Any]]
    rejects: list[dict[str, Any]]
    out: Path


def run(source: Path, model: Path, work: Path, lang: str = "fra_Latn", params: Params | None = None,
        cache: Path | None = None, translator: Any = None) -> Run:
    out, rejects = work / "out.parquet", work / "rejects.parquet"
    result = translate_file(source, lang, model, out, work / "metrics.json", rejects, params or Params(),
                            cache=cache or work / "memory", translator=translator)
    assert metrics_with_timing(work / "metrics.json") == json.loads(json.dumps(result.metrics))
    assert not set(RUN_KEYS) & set(json.loads((work / "metrics.json").read_text()))  # timings live apart
    return Run(result, pq.read_table(out).to_pylist(), pq.read_table(rejects).to_pylist(), out)


def source_file(path: Path, records: Sequence[dict[str, str]]) -> Path:
    rows = [{"id": f"t-{i}", "source": "t", **{f: r.get(f, "") for f in TEXT_FIELDS}} for i, r in enumerate(records)]
    return write_parquet(pa.Table.from_pylist(rows, schema=SOURCE_SCHEMA), path, SOURCE_SCHEMA)


@pytest.fixture(scope="module")
def first_run(alpaca_source: Path, smoke_nllb: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """400 real Alpaca records through the real CTranslate2 engine with the smoke model."""
    return run(alpaca_source, smoke_nllb, tmp_path_factory.mktemp("first-run"))


def test_real_translation_keeps_spans_lines_and_says_smoke(first_run: Run, alpaca_source: Path) -> None:
    source = {r["id"]: r for r in pq.read_table(alpaca_source).to_pylist()}
    metrics = first_run.result.metrics
    assert len(first_run.rows) == len(source) == metrics["records"] == 400
    assert [r["id"] for r in first_run.rows] == sorted(source)
    assert metrics["units_translated"] == metrics["distinct_units"] > 1500 and metrics["cache_hits"] == 0
    assert metrics["target_tokens"] > 0 and metrics["device"] == "cpu" and metrics["compute_type"] == "int8"
    changed = 0
    for row in first_run.rows:
        src = source[row["id"]]
        assert row["smoke"] is True and row["model"].startswith("smoke:") and row["lang"] == "fra_Latn"
        assert row["protected_spans_ok"] and row["truncated_fields"] == []  # the smoke model stops by itself
        for field in TEXT_FIELDS:
            before, after = src[field], row[field]
            for span in set(protected_spans(before)):  # every protected span comes back exactly once each
                assert after.count(span) == before.count(span), (row["id"], span)
            lines_before, lines_after = before.split("\n"), after.split("\n")
            assert len(lines_after) == len(lines_before), row["id"]
            for old, new in zip(lines_before, lines_after, strict=True):
                # Indentation and list markers are kept outside the translated text; what follows them is
                # the model's (a random smoke model may itself emit `1. ` at the start of a sentence).
                assert new.startswith(LAYOUT.match(old).group()), (row["id"], old, new)
                assert bool(old.strip()) == bool(new.strip())  # blank lines stay blank
            changed += after != before
    assert changed > 600  # prose really went through the model


def test_rerun_translates_nothing(first_run: Run, alpaca_source: Path, smoke_nllb: Path, tmp_path: Path) -> None:
    memory = first_run.out.parent / "memory"
    # A changed filter threshold is no reason to translate again.
    tuned = parse_params({"quality": {"filters": {"length_ratio": {"mad_factor": 3.0}}}})
    again = run(alpaca_source, smoke_nllb, tmp_path, params=tuned, cache=memory)
    metrics = again.result.metrics
    assert metrics["units_translated"] == 0 and metrics["engine_batches"] == 0
    assert metrics["cache_hits"] == metrics["distinct_units"] and metrics["cache_hit_rate"] == 1.0
    assert pq.read_table(again.out).equals(pq.read_table(first_run.out))
    # Decoding settings are part of the key: a different beam is a different translation.
    assert memory_key("m", "eng_Latn", "fra_Latn", Params().translate, "int8") != memory_key(
        "m", "eng_Latn", "fra_Latn", parse_params({"translate": {"beam_size": 4}}).translate, "int8")


def test_identity_translator_gives_back_the_records(smoke_nllb: Path, tmp_path: Path) -> None:
    from dataset_builder.ingest import ingest
    from schemas.params import DataParams

    src = tmp_path / "source.parquet"
    ingest(DataParams(), src, tmp_path / "ingest-rejects.parquet")  # the embedded 100-record sample

    def identity(units: Sequence[str]) -> list[UnitResult]:
        return [UnitResult(u, 1, 1, False) for u in units]

    result = run(src, smoke_nllb, tmp_path, translator=identity)
    source = {r["id"]: r for r in pq.read_table(src).to_pylist()}
    for row in result.rows:
        for field in TEXT_FIELDS:
            seg = segment(source[row["id"]][field])
            assert row[field] == reassemble(seg, [normalise_unit(u) for u in seg.units])
    identical = sum(all(row[f] == source[row["id"]][f] for f in TEXT_FIELDS) for row in result.rows)
    assert identical >= 95  # only whitespace runs inside a sentence are normalised


def test_code_policy_and_empty_records(smoke_nllb: Path, tmp_path: Path) -> None:
    code = {"instruction": "Write a function.", "output": "def square(x):\n    result = x * x\n    return result"}
    prose = {"instruction": "Say hello politely.", "output": "Hello, it is nice to meet you."}
    empty = {"instruction": "Describe the picture.", "output": "   "}
    src = source_file(tmp_path / "source.parquet", [code, prose, empty])
    for policy in ("keep", "skip", "translate"):
        work = tmp_path / policy
        result = run(src, smoke_nllb, work, params=parse_params({"translate": {"code_policy": policy}}))
        reasons = {r["id"]: r["reason"] for r in result.rejects}
        assert reasons["t-2"] == "empty_source"
        assert len(result.rows) + len(result.rejects) == 3  # conservation
        rows = {r["id"]: r for r in result.rows}
        if policy == "keep":
            assert rows["t-0"]["kept_verbatim"] and rows["t-0"]["output"] == code["output"]
        elif policy == "skip":
            assert reasons["t-0"] == "code_skipped" and "t-0" not in rows
        else:
            assert not rows["t-0"]["kept_verbatim"] and rows["t-0"]["output"] == code["output"]
            assert rows["t-0"]["instruction"] != code["instruction"]
        assert pq.read_schema(work / "out.parquet").names == TRANSLATED_SCHEMA.names


def test_20000_char_field_is_split_not_truncated(smoke_nllb: Path, tmp_path: Path) -> None:
    """Decision: a long field is split into units the model accepts (at sentence, clause, then
    word boundaries) and reassembled in order; nothing is cut and no error is raised."""
    sentence = "the river, which was wide and slow, carried boats of every size toward the old harbour"
    long_field = " and ".join([sentence] * 230)
    assert len(long_field) >= 20_000
    src = source_file(tmp_path / "source.parquet", [{"instruction": "Summarise this text.", "input": long_field,
                                                     "output": "It is about a river."}])
    params = Params()
    result = run(src, smoke_nllb, tmp_path, params=params)
    row = result.rows[0]
    assert row["truncated_fields"] == [] and result.result.metrics["fields_split_for_length"] == 1
    assert len(row["input"]) > 15_000  # translated whole, not cut
    shards = list((tmp_path / "memory").rglob("shard-*.parquet"))
    assert max(pq.read_table(shards).column("source_tokens").to_pylist()) <= params.translate.max_input_tokens


def test_bad_language_codes(smoke_nllb: Path, tmp_path: Path, embedded_source: Path) -> None:
    with pytest.raises(PolyinstructError, match="unknown language code 'fra_Lat': did you mean fra_Latn"):
        run(embedded_source, smoke_nllb, tmp_path, lang="fra_Lat")
    with pytest.raises(PolyinstructError, match="source language"):
        run(embedded_source, smoke_nllb, tmp_path, lang="en")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dataset_builder.cli", "translate", *args]


def test_resume_after_kill_9(alpaca_source: Path, smoke_nllb: Path, tmp_path: Path) -> None:
    """A real `polyinstruct translate` process is killed with SIGKILL after its first shard; the
    rerun finishes, redoes no finished shard, and equals an uninterrupted run."""
    settings = {"translate": {"shard_units": 64}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings))
    out, memory = tmp_path / "fra_Latn.parquet", tmp_path / "memory"
    args = _cli("--in", str(alpaca_source), "--lang", "fra_Latn", "--model", str(smoke_nllb), "--out", str(out),
                "--metrics", str(tmp_path / "metrics.json"), "--rejects", str(tmp_path / "rejects.parquet"),
                "--cache", str(memory), "--params", str(tmp_path / "params.yaml"))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = kill_when(args, tmp_path, env, lambda: bool(list(memory.rglob("shard-*.parquet"))), tmp_path / "killed.log")
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    survivors = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in memory.rglob("shard-*.parquet")}
    done_units = pq.read_table(list(survivors)).num_rows

    finished = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    metrics = metrics_with_timing(tmp_path / "metrics.json")
    assert metrics["cache_hits"] == done_units > 0 and metrics["units_translated"] > 0
    assert metrics["cache_hits"] + metrics["units_translated"] == metrics["distinct_units"]
    for shard, identity in survivors.items():  # finished shards were not redone
        assert (shard.stat().st_ino, shard.stat().st_mtime_ns) == identity
    stored = pq.read_table(list(memory.rglob("shard-*.parquet"))).column("unit").to_pylist()
    assert len(stored) == len(set(stored)) == metrics["distinct_units"]  # none lost, none twice

    reference = run(alpaca_source, smoke_nllb, tmp_path / "reference", params=parse_params(settings))
    assert pq.read_table(out).equals(pq.read_table(reference.out))


def test_cli_unknown_language_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(_cli("--in", "x.parquet", "--lang", "zz_Fake"), cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown language code 'zz_Fake'") and done.stderr.count("\n") == 1


def test_segmentation_plan_is_parallel_cached_and_equal(alpaca_source: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from dataset_builder import translate_plan as translate

    table = pq.read_table(alpaca_source).slice(0, 600)
    source = write_parquet(table, tmp_path / "source.parquet")
    rows = list(zip(*(table.column(f).to_pylist() for f in TEXT_FIELDS), strict=True))
    serial = translate.plan_source(source, rows, None)
    monkeypatch.setattr(translate, "PARALLEL_MIN_RECORDS", 100)  # 600 records: two worker processes
    parallel = translate.plan_source(source, rows, tmp_path / "memory")
    assert list((tmp_path / "memory" / "segments").glob("plan-*.parquet"))
    monkeypatch.setattr(translate, "_plan_chunk", lambda rows, **kw: pytest.fail("segmented again despite the cache"))
    cached = translate.plan_source(source, rows, tmp_path / "memory")
    assert serial == parallel == cached
    assert serial.fields[0] is not None and serial.fields[0]["instruction"] == segment(rows[0][0])
