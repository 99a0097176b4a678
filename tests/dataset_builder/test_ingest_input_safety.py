"""Issue 11, point 2 and 7 (ingest): encodings, a mapped column that does not exist, no empty hand-off,
and a conservation check that counts the records read on the reader's side."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import polars as pl
import pytest

from dataset_builder import ingest as ingest_module
from dataset_builder.ingest import embedded_sample_path, ingest
from schemas.errors import ConservationError, PolyinstructError
from schemas.params import DataParams
from tests.conftest import run_cli

RECORDS = json.loads(embedded_sample_path().read_text(encoding="utf-8"))[:50]


def _ingest(tmp_path: Path, source: Path, **data: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    out, rej = tmp_path / "out" / "source.parquet", tmp_path / "out" / "rejects.parquet"
    ingest(DataParams(source=str(source), **data), out, rej)
    return pl.read_parquet(out), pl.read_parquet(rej)


def test_json_array_with_utf8_bom_ingests_every_record(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(codecs.BOM_UTF8 + json.dumps(RECORDS, ensure_ascii=False).encode("utf-8"))
    kept, rejected = _ingest(tmp_path, path)
    assert kept.height == len(RECORDS) == 50 and rejected.height == 0


@pytest.mark.parametrize("lines", [False, True])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_with_bom_are_read(tmp_path: Path, encoding: str, lines: bool) -> None:
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS) if lines else json.dumps(RECORDS)
    path = tmp_path / ("in.jsonl" if lines else "in.json")
    path.write_bytes(text.encode(encoding))  # Python writes the byte-order mark for utf-16/utf-32
    kept, rejected = _ingest(tmp_path, path)
    assert kept.height == 50 and rejected.height == 0
    assert kept["instruction"].to_list()[0] == RECORDS[0]["instruction"].strip()


def test_utf16_without_bom_is_one_line_naming_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes("\n".join(json.dumps(r) for r in RECORDS).encode("utf-16-le"))
    with pytest.raises(PolyinstructError, match="UTF-16") as err:
        _ingest(tmp_path, path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out" / "source.parquet").exists()


def test_map_to_a_missing_column_fails_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "source.parquet"
    code = run_cli(monkeypatch, "ingest", "--in", "embedded", "--map", "output=nosuchcolumn", "--out", str(out),
                   "--rejects", str(tmp_path / "rej.parquet"), "--metrics", str(tmp_path / "m.json"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "nosuchcolumn" in err and "column_map" in err and len(err.splitlines()) == 1
    assert not out.exists() and not (tmp_path / "rej.parquet").exists()


def test_all_rejected_stops_instead_of_writing_an_empty_source(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps({"instruction": r["instruction"]}) for r in RECORDS), encoding="utf-8")
    with pytest.raises(PolyinstructError, match="all 50 input rows were rejected .missing_field=50"):
        _ingest(tmp_path, path)
    assert not (tmp_path / "out" / "source.parquet").exists()
    assert pl.read_parquet(tmp_path / "out" / "rejects.parquet").height == 50  # the reasons stay readable


def test_conservation_fails_when_a_row_is_dropped_between_read_and_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(RECORDS), encoding="utf-8")
    real = ingest_module.normalise_text
    monkeypatch.setattr(ingest_module, "normalise_text", lambda frame: real(frame).slice(1))  # the planted bug
    with pytest.raises(ConservationError, match="in=50 but kept=49"):
        _ingest(tmp_path, path)


def test_conservation_fails_when_the_reader_loses_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS), encoding="utf-8")
    real = ingest_module.check_records

    def lossy(batch: ingest_module.RawBatch, fmt: str, params: DataParams):  # type: ignore[no-untyped-def]
        batch.records = batch.records[1:]  # the planted bug: one record read but never passed on
        return real(batch, fmt, params)

    monkeypatch.setattr(ingest_module, "check_records", lossy)
    with pytest.raises(ConservationError, match="in=50 but kept=49 . rejected=0"):
        _ingest(tmp_path, path)
