"""The round-trip stage: a sample of one language back-translated with the same (smoke) model through
the translation memory. With the smoke model only the mechanics are tested."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataset_builder.round_trip import ROUND_TRIP_SCHEMA, round_trip_file, sample_ids
from dataset_builder.translate import translate_file
from quality.round_trip import score
from schemas.errors import PolyinstructError
from schemas.params import Params, parse_params
from tests.dataset_builder.test_memory_scores import _source


def test_sample_is_chosen_by_id_hash_and_stable() -> None:
    ids = [f"alpaca-{i}" for i in range(100)]
    picked = sample_ids(ids, 10)
    assert len(picked) == 10 and picked == sample_ids(list(reversed(ids)), 10) == sorted(picked)
    assert sample_ids(ids, None) == sorted(ids)


def test_back_translation_goes_through_the_memory(smoke_nllb: Path, tmp_path: Path) -> None:
    source = _source(tmp_path / "src.parquet")
    translated = tmp_path / "fra_Latn.parquet"
    translate_file(source, "fra_Latn", smoke_nllb, translated, None, tmp_path / "rej.parquet", Params(),
                   cache=tmp_path / "memory")
    params = parse_params({"quality": {"round_trip": {"sample": 2}}}, "test")
    out, metrics_path = tmp_path / "rt" / "fra_Latn.parquet", tmp_path / "rt.json"
    first = round_trip_file(source, translated, smoke_nllb, out, metrics_path, params, cache=tmp_path / "memory")
    assert first["sampled"] == first["back_translated"] == 2 and first["records"] == 3
    assert first["smoke"] is True and first["back_to"] == "eng_Latn" and first["units_translated"] > 0
    # The metrics file holds the data's numbers; what the memory served and the seconds go to the timing file.
    run_keys = ("units_translated", "cache_hits", "memory", "seconds")
    assert json.loads(metrics_path.read_text()) == {k: v for k, v in first.items() if k not in run_keys}
    assert json.loads(metrics_path.with_suffix(".timing.json").read_text())["units_translated"] > 0
    table = pq.read_table(out)
    assert table.schema.equals(ROUND_TRIP_SCHEMA, check_metadata=False)
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == sample_ids(["t-0", "t-1", "t-2"], 2)
    assert all(r["lang"] == "fra_Latn" and r["smoke"] and r["back_text"] for r in rows)
    # The smoke model's token map is its own inverse by construction, so a correctly wired round trip
    # (right ids, fields, units) recovers much of the source; pairing each text with another record's does not.
    sources, backs = [r["source_text"] for r in rows], [r["back_text"] for r in rows]
    assert score(sources, backs, per_record=False)["chrf_pp"] > 50
    assert score(sources, backs[1:] + backs[:1], per_record=False)["chrf_pp"] < 40
    # The back-translation has its own memory key (fra -> eng): a rerun sends nothing to the engine.
    again = round_trip_file(source, translated, smoke_nllb, out, None, params, cache=tmp_path / "memory")
    assert again["units_translated"] == 0 and again["cache_hits"] > 0
    # The filter on: every record is back-translated.
    every = parse_params({"quality": {"filters": {"round_trip": {"enabled": True}}}}, "test")
    assert round_trip_file(source, translated, smoke_nllb, out, None, every, cache=tmp_path / "memory")[
        "back_translated"] == 3


def test_several_languages_in_one_file_is_one_line(smoke_nllb: Path, tmp_path: Path) -> None:
    import pyarrow as pa

    mixed = tmp_path / "mixed.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "lang": ["fra_Latn", "deu_Latn"], "instruction": ["x", "y"],
                             "input": ["", ""], "output": ["x", "y"]}), mixed)
    with pytest.raises(PolyinstructError, match="several languages") as err:
        round_trip_file(_source(tmp_path / "src.parquet"), mixed, smoke_nllb, tmp_path / "o.parquet", None, Params())
    assert "\n" not in str(err.value)


def test_card_shows_the_audit_next_to_bactrian_x(tmp_path: Path) -> None:
    from dataset_builder.export.build import export_dataset
    from dataset_builder.export.card import card_body
    from tests.dataset_builder.test_export import demo_params, make_filtered, write_metrics

    filtered = make_filtered(tmp_path)
    validation, quality_path = write_metrics(tmp_path)
    quality = json.loads(quality_path.read_text())
    quality["round_trip"] = {"reference": {"bactrian_x_chrf_pp_mean": 68.1},
                             "languages": {"fra_Latn": {"records": 50, "chrf_pp": 12.3, "bleu": 0.4, "smoke": True}}}
    result = export_dataset(filtered, tmp_path / "export", demo_params(), validation_path=validation)
    body = card_body(result, demo_params(), None, quality)
    assert "| fr | 50 | 12.3 | 0.4 | yes |" in body and "chrF++ 68.1 on average" in body
    assert "mechanics only" in body
    del quality["round_trip"]
    assert "Round-trip audit" not in card_body(result, demo_params(), None, quality)
