"""CTranslate2 scores in the translation memory (format 2), per-record log_prob, the migration of a
format-1 memory and the refusal of a newer one. With the smoke model only the mechanics are tested:
its scores are those of random weights."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset_builder.memory_format import FORMAT_FILE, MEMORY_FORMAT, memory_format
from dataset_builder.translate import translate_file
from dataset_builder.translation_memory import TranslationMemory, UnitResult, record_log_prob
from schemas.artifacts import write_json, write_parquet
from schemas.errors import PolyinstructError
from schemas.params import Params
from schemas.records import SOURCE_SCHEMA, TEXT_FIELDS

RECORDS = [
    {"instruction": "Give three tips for staying healthy.", "output": "Eat well. Sleep enough. Walk every day."},
    {"instruction": "Name a primary colour.", "output": "Red is a primary colour."},
    {"instruction": "Summarise the text.", "input": "The cat sat on the mat all afternoon.",
     "output": "A cat rested on a mat."},
]


def _source(path: Path) -> Path:
    rows = [{"id": f"t-{i}", "source": "t", **{f: r.get(f, "") for f in TEXT_FIELDS}} for i, r in enumerate(RECORDS)]
    return write_parquet(pa.Table.from_pylist(rows, schema=SOURCE_SCHEMA), path, SOURCE_SCHEMA)


def _translate(source: Path, model: Path, work: Path, memory: Path) -> tuple[list[dict], dict]:
    out = work / "out.parquet"
    result = translate_file(source, "fra_Latn", model, out, None, work / "rejects.parquet", Params(), cache=memory)
    return pq.read_table(out).to_pylist(), result.metrics


def test_scores_reach_the_memory_and_each_record(smoke_nllb: Path, tmp_path: Path) -> None:
    rows, metrics = _translate(_source(tmp_path / "src.parquet"), smoke_nllb, tmp_path, tmp_path / "memory")
    memory = Path(metrics["memory"])
    assert memory_format(memory) == MEMORY_FORMAT
    shards = pa.concat_tables([pq.read_table(p) for p in sorted(memory.glob("shard-*.parquet"))])
    scores = shards.column("score").to_pylist()
    assert len(scores) == metrics["units_translated"] > 0 and all(s is not None and s <= 0 for s in scores)
    assert metrics["units_without_score"] == 0
    assert all(r["log_prob"] is not None and r["log_prob"] <= 0 for r in rows)
    # The record's value is the token-weighted mean of its units' scores, read back from the memory.
    (tmp_path / "rerun").mkdir()
    rerun, again = _translate(tmp_path / "src.parquet", smoke_nllb, tmp_path / "rerun", tmp_path / "memory")
    assert again["units_translated"] == 0 and [r["log_prob"] for r in rerun] == pytest.approx(
        [r["log_prob"] for r in rows], abs=1e-6)


def test_record_log_prob_weights_units_by_length() -> None:
    units = [UnitResult("a", 1, 1, False, -1.0), UnitResult("b c d", 3, 3, False, -0.2)]
    assert record_log_prob(units) == pytest.approx((2 * -1.0 + 4 * -0.2) / 6)
    assert record_log_prob([*units, UnitResult("x", 1, 1, False, None)]) is None
    assert record_log_prob([]) is None


def test_format_1_memory_is_migrated_and_newer_refused(smoke_nllb: Path, tmp_path: Path) -> None:
    source = _source(tmp_path / "src.parquet")
    _, metrics = _translate(source, smoke_nllb, tmp_path, tmp_path / "memory")
    memory = Path(metrics["memory"])
    # Make it a format-1 memory: no score column, no format file.
    for shard in memory.glob("shard-*.parquet"):
        write_parquet(pq.read_table(shard).drop_columns(["score"]), shard)
    (memory / FORMAT_FILE).unlink()
    assert memory_format(memory) == 1
    (tmp_path / "second").mkdir()
    rows, second = _translate(source, smoke_nllb, tmp_path / "second", tmp_path / "memory")
    assert second["memory_migrated_shards"] >= 1 and second["units_translated"] == 0  # nothing re-translated
    assert second["units_without_score"] == second["distinct_units"] and all(r["log_prob"] is None for r in rows)
    assert memory_format(memory) == MEMORY_FORMAT
    assert all(pq.read_table(p).column_names[-1] == "score" for p in memory.glob("shard-*.parquet"))

    write_json({"version": MEMORY_FORMAT + 1}, memory / FORMAT_FILE)
    with pytest.raises(PolyinstructError, match=r"format 3 is newer") as err:
        TranslationMemory(tmp_path / "memory", json.loads((memory / "key.json").read_text()))
    assert "\n" not in str(err.value)
