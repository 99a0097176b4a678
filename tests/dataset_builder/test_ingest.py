from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from dataset_builder.ingest import ingest
from schemas.errors import PolyinstructError
from schemas.params import DataParams
from schemas.records import SOURCE_SCHEMA


def run_ingest(tmp_path: Path, **data: object) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    out, rej, met = tmp_path / "source.parquet", tmp_path / "rejects.parquet", tmp_path / "m.json"
    ingest(DataParams(**data), out, rej, met)
    return pl.read_parquet(out), pl.read_parquet(rej), json.loads(met.read_text())


def test_real_alpaca_5000_is_kept_whole(tmp_path: Path, shared_data: Path) -> None:
    src, rej, metrics = run_ingest(tmp_path, source=str(shared_data / "alpaca_5000.json"))
    raw = json.loads((shared_data / "alpaca_5000.json").read_text())
    # Every record is either kept or named in the rejects table.
    assert src.height + rej.height == len(raw) == 5000
    assert metrics["in"] == 5000 and metrics["kept"] == src.height
    assert src["id"][0] == "alpaca_5000-0" and src["id"].is_unique().all()
    assert src.schema.names() == SOURCE_SCHEMA.names
    assert (src["input"] != "").sum() == sum(1 for r in raw if r["input"].strip())


def test_embedded_sample_has_the_documented_coverage(tmp_path: Path) -> None:
    src, rej, _ = run_ingest(tmp_path)
    assert src.height == 100 and rej.height == 0
    outputs = "\n".join(src["output"])
    for needle in ("```", "def ", "[Your Name]", "{name}", "https://", "@example.com", "1. ", "- ", "°C", "wikipedia("):
        assert needle in outputs, needle
    assert src["output"].str.len_chars().max() > 4000


def test_normalises_text_and_rejects_exact_duplicates(tmp_path: Path) -> None:
    records = [
        {"instruction": "  Say hi\r\n", "input": "", "output": "Cafe\u0301"},
        {"instruction": "Say hi", "input": "", "output": "Café"},  # same record after NFC + trim
        {"instruction": "Other", "output": "x"},  # missing input is allowed: becomes ""
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(records))
    src, rej, _ = run_ingest(tmp_path, source=str(path))
    assert src["instruction"].to_list() == ["Say hi", "Other"]
    assert src["output"][0] == "Café" and src["input"][1] == ""
    assert rej.to_dicts() == [{"id": "a-1", "lang": "eng_Latn", "stage": "ingest", "reason": "duplicate_source",
                               "detail": "same instruction, input and output as a-0"}]


def test_bad_records_are_quarantined_with_location(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps({"instruction": "ok", "input": "", "output": "fine"}).encode(),
        b'{"instruction": "broken", "output": ',  # malformed JSON
        json.dumps({"input": "", "output": "no instruction"}).encode(),
        b'{"instruction": "bad \xff byte", "output": "x"}',  # not UTF-8
        json.dumps({"instruction": "big", "output": "x" * 1_000_001}).encode(),  # a 1 MB field
        json.dumps([1, 2]).encode(),
        json.dumps({"instruction": 5, "output": "x"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    src, rej, _ = run_ingest(tmp_path, source=str(path))
    assert src["id"].to_list() == ["mixed-0"]
    reasons = dict(zip(rej["id"], rej["reason"], strict=True))
    assert reasons == {"mixed-1": "malformed_json", "mixed-2": "missing_field", "mixed-3": "not_utf8",
                       "mixed-4": "field_too_long", "mixed-5": "not_an_object", "mixed-6": "bad_type"}
    details = dict(zip(rej["id"], rej["detail"], strict=True))
    assert details["mixed-1"].startswith(f"{path}:2:")
    assert "missing field 'instruction'" in details["mixed-2"]


def test_truncated_last_line_of_real_jsonl_does_not_stop_the_run(tmp_path: Path, shared_data: Path) -> None:
    # Like HPLT's test_hi.jsonl: a real file whose last line is cut off.
    text = (shared_data / "hplt-test" / "test_fr.jsonl").read_text(encoding="utf-8")
    path = tmp_path / "test_fr.jsonl"
    path.write_text(text.rstrip("\n")[:-40], encoding="utf-8")
    src, rej, _ = run_ingest(tmp_path, source=str(path), column_map={"instruction": "prompt", "output": "prompt"})
    n_lines = len(text.rstrip("\n").split("\n"))
    assert src.height == n_lines - 1 and rej["reason"].to_list() == ["malformed_json"]
    assert rej["detail"][0].startswith(f"{path}:{n_lines}:")


def test_array_with_non_object_element(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([{"instruction": "a", "output": "b"}, "oops", 3]))
    src, rej, _ = run_ingest(tmp_path, source=str(path))
    assert src.height == 1 and rej["reason"].to_list() == ["not_an_object", "not_an_object"]
    assert "element 1" in rej["detail"][0]


def test_dolly_layout_and_limit_and_sample(tmp_path: Path) -> None:
    path = tmp_path / "dolly.jsonl"
    rows = [{"instruction": f"q{i}", "context": f"c{i}", "response": f"r{i}", "category": "qa"} for i in range(20)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    src, _, _ = run_ingest(tmp_path, source=str(path), limit=5)
    assert src["input"].to_list() == [f"c{i}" for i in range(5)] and src["output"][0] == "r0"
    first, _, _ = run_ingest(tmp_path, source=str(path), sample=7, seed=3)
    again, _, _ = run_ingest(tmp_path, source=str(path), sample=7, seed=3)
    assert first.height == 7 and first["id"].to_list() == again["id"].to_list()


def test_csv_and_parquet_with_column_mapping(tmp_path: Path) -> None:
    frame = pl.DataFrame({"prompt": ["a", "b"], "answer": ["x", "y"]})
    frame.write_csv(tmp_path / "d.csv")
    frame.write_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        src, rej, _ = run_ingest(tmp_path, source=str(tmp_path / name),
                                 column_map={"instruction": "prompt", "output": "answer"})
        assert src["output"].to_list() == ["x", "y"] and rej.height == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "file not found"), (b"", "file is empty"), (b'[{"instruction": "\xff"}]', "is not UTF-8"),
     (b'[{"instruction": "a",]', "not valid JSON"), (b'{"records": []}\n{"a": ', "")],
)
def test_whole_file_errors_are_one_line(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "in.json"
    if content is not None:
        path.write_bytes(content)
    if message == "":  # JSON lines: bad lines are quarantined; with none left, nothing is handed on
        with pytest.raises(PolyinstructError, match="all 2 input rows were rejected"):
            run_ingest(tmp_path, source=str(path))
        assert pl.read_parquet(tmp_path / "rejects.parquet")["reason"].to_list() == ["missing_field", "malformed_json"]
        assert not (tmp_path / "source.parquet").exists()
        return
    with pytest.raises(PolyinstructError, match=message) as err:
        run_ingest(tmp_path, source=str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_hub_source_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # The libraries read those variables once, when first imported. If an earlier test in this process imported
    # them, the load would try the network and fail only after ~20 s of timeouts: tell them directly too.
    for name in ("huggingface_hub.constants.HF_HUB_OFFLINE", "datasets.config.HF_HUB_OFFLINE",
                 "datasets.config.HF_DATASETS_OFFLINE"):
        monkeypatch.setattr(name, True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path / "hf" / "datasets")
    with pytest.raises(PolyinstructError, match=r"hf:tatsu-lab/alpaca: cannot load from the Hugging Face Hub"):
        run_ingest(tmp_path, source="hf:tatsu-lab/alpaca")


def test_cli_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dataset_builder.cli", "ingest", "--in", str(tmp_path / "nope.json"),
         "--out", str(tmp_path / "o.parquet")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope.json'}: file not found; check data.source in" \
                                  " params.yaml or --in"
    bad_params = tmp_path / "params.yaml"
    bad_params.write_text("data:\n  sourse: x\n")
    proc = subprocess.run([sys.executable, "-m", "dataset_builder.cli", "ingest"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2 and "unknown key 'data.sourse'" in proc.stderr and "Traceback" not in proc.stderr
