"""translate.skip_language_bound: records whose task quality would reject as language_bound are rejected
before translation (no model time), with the same rules; off by default."""

from __future__ import annotations

from pathlib import Path

from schemas.params import parse_params
from tests.dataset_builder.test_translate import run, source_file

RECORDS = [
    {"instruction": "Correct the spelling of the word 'recieve'.", "output": "The correct spelling is 'receive'."},
    {"instruction": "Say hello politely.", "output": "Hello, it is nice to meet you."},
    {"instruction": "Give a synonym for the word happy.", "output": "Joyful."},  # a flagged family: translated
]


def test_language_bound_records_are_skipped_when_asked(smoke_nllb: Path, tmp_path: Path) -> None:
    src = source_file(tmp_path / "source.parquet", RECORDS)
    skipped = run(src, smoke_nllb, tmp_path / "skip", params=parse_params({"translate": {"skip_language_bound": True}}))
    assert [(r["id"], r["reason"]) for r in skipped.rejects] == [("t-0", "language_bound")]
    assert sorted(r["id"] for r in skipped.rows) == ["t-1", "t-2"]
    assert skipped.result.metrics["rejected_by_reason"] == {"language_bound": 1}
    default = run(src, smoke_nllb, tmp_path / "default")
    assert not default.rejects and len(default.rows) == 3


def test_generate_mode_translates_language_bound_records(smoke_nllb: Path, tmp_path: Path) -> None:
    """Generate mode writes the response in the language, so the task is whole again and quality only flags
    it: translate must not skip the record, whatever skip_language_bound says."""
    src = source_file(tmp_path / "source.parquet", RECORDS)
    params = parse_params({
        "translate": {"skip_language_bound": True, "per_language": ["fra_Latn"]},
        "languages": {"targets": ["fra_Latn"]},
        "responses": {"mode": "generate", "languages": ["fra_Latn"], "records": "data/responded"},
    })
    generated = run(src, smoke_nllb, tmp_path / "generate", params=params)
    assert not generated.rejects and sorted(r["id"] for r in generated.rows) == ["t-0", "t-1", "t-2"]
