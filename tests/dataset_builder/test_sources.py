"""Several sources (`data.sources`): Alpaca + Dolly layouts into one table with stable, distinct ids;
duplicates across sources rejected; Hub revision and config passed through; licenses carried to the card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from dataset_builder.export.licenses import source_component
from dataset_builder.ingest import embedded_sample_path
from schemas.errors import PolyinstructError
from schemas.params import parse_params
from tests.conftest import run_cli


@pytest.fixture()
def two_sources(tmp_path: Path) -> dict[str, Any]:
    """Real Alpaca records: 10 as an Alpaca JSON array, 6 others in Dolly's JSONL layout, plus one Dolly
    record that repeats an Alpaca one and one without a response."""
    records = json.loads(embedded_sample_path().read_text(encoding="utf-8"))
    alpaca = tmp_path / "alpaca_data.json"
    alpaca.write_text(json.dumps(records[:10]), encoding="utf-8")
    dolly_rows = [{"instruction": r["instruction"], "context": r["input"], "response": r["output"],
                   "category": "open_qa"} for r in [*records[10:16], records[3]]]
    dolly_rows.append({"instruction": "Name a colour.", "context": "", "category": "open_qa"})
    dolly = tmp_path / "dolly.jsonl"
    dolly.write_text("".join(json.dumps(r) + "\n" for r in dolly_rows), encoding="utf-8")
    params = {"data": {"sources": [
        {"name": "alpaca", "source": str(alpaca), "format": "alpaca", "license": "cc-by-nc-4.0"},
        {"name": "dolly", "source": str(dolly), "format": "dolly", "license": "cc-by-sa-3.0"},
    ]}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return {"params": path, "dir": tmp_path}


def test_two_sources_one_table(two_sources: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    work: Path = two_sources["dir"]
    out, rejects, metrics = work / "source.parquet", work / "rejects.parquet", work / "ingest.json"
    code = run_cli(monkeypatch, "ingest", "--params", str(two_sources["params"]), "--out", str(out), "--rejects",
                   str(rejects), "--metrics", str(metrics))
    assert code == 0, capsys.readouterr().err
    rows = pq.read_table(out).to_pylist()
    ids = [r["id"] for r in rows]
    assert ids[:10] == [f"alpaca-{i}" for i in range(10)]
    assert ids[10:] == [f"dolly-{i}" for i in range(6)]  # dolly-6 repeats alpaca-3, dolly-7 lacks a response
    assert {r["source"] for r in rows} == {"alpaca", "dolly"}
    assert rows[10]["output"] and rows[10]["instruction"]  # Dolly's response/context mapped
    rejected = {r["id"]: r["reason"] for r in pq.read_table(rejects).to_pylist()}
    assert rejected == {"dolly-6": "duplicate_source", "dolly-7": "missing_field"}
    m = json.loads(metrics.read_text())
    assert (m["in"], m["kept"], m["rejected"], m["duplicates_across_sources"]) == (18, 16, 2, 1)
    assert m["sources"]["dolly"]["in"] == 8 and m["sources"]["alpaca"]["license"] == "cc-by-nc-4.0"
    assert "ingest: kept 16, rejected 2" in capsys.readouterr().out


def test_source_licenses_reach_the_card_table(two_sources: dict[str, Any]) -> None:
    params = parse_params(yaml.safe_load(two_sources["params"].read_text()))
    assert params.license_table == {"alpaca": "cc-by-nc-4.0", "dolly": "cc-by-sa-3.0"}
    component, _ = source_component("dolly", params.license_table)
    assert component.license == "cc-by-sa-3.0"
    custom = parse_params({"data": {"sources": [{"name": "mydata", "source": "x.json", "license": "apache-2.0"}]}})
    assert source_component("mydata", custom.license_table)[0].license == "apache-2.0"


def test_hub_source_passes_revision_and_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the network is mocked: `datasets.load_dataset` gets the pinned revision and the config."""
    import datasets

    calls: list[tuple[Any, ...]] = []

    def fake_load(path: str, name: str | None = None, split: str | None = None, revision: str | None = None) -> list:
        calls.append((path, name, split, revision))
        return [{"instruction": "Say hi.", "input": "", "output": "Hi."}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    from dataset_builder.sources import ingest_sources

    data = parse_params({"data": {"sources": [
        {"name": "cleaned", "source": "hf:yahma/alpaca-cleaned", "revision": "12567ca", "license": "cc-by-4.0"},
        {"name": "sub", "source": "hf:org/multi", "config": "en", "revision": "v1.0"}]}}).data
    result = ingest_sources(data, tmp_path / "s.parquet", tmp_path / "r.parquet")
    assert calls == [("yahma/alpaca-cleaned", None, "train", "12567ca"), ("org/multi", "en", "train", "v1.0")]
    assert result.kept == 1 and result.by_reason == {"duplicate_source": 1}  # same record in both sources


@pytest.mark.parametrize(("data", "message"), [
    ({"source": "a.json", "sources": [{"name": "a", "source": "a.json"}]}, "give data.source .* or data.sources"),
    ({"sources": [{"name": "a", "source": "a.json"}, {"name": "a", "source": "b.json"}]}, "names must be distinct"),
    ({"sources": [{"name": "my-data", "source": "a.json"}]}, "data.sources.0.name"),
    ({"sources": [{"name": "a", "source": "a.json", "licence": "mit"}]},
     "unknown key 'data.sources.0.licence'; allowed keys here: name, source, format, column_map, revision, config,"
     " license"),
])
def test_bad_sources_are_one_line(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolyinstructError, match=message) as err:
        parse_params({"data": data})
    assert "\n" not in str(err.value)
