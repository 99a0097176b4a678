"""The round-trip audit (chrF++ and BLEU per language, next to Bactrian-X's 68.1) and the optional
round_trip filter, on hand-written back-translations; and the audit on the dataset card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quality.round_trip import BACTRIAN_X_CHRF_PP, score
from schemas.errors import PolyinstructError
from tests.quality.test_filters import base_rows, run_small, write_set

OFF = {"lang_id": {"enabled": False}, "length_ratio": {"enabled": False}}


def _round_trip_files(root: Path, source: list[dict[str, str]], smoke: bool) -> Path:
    """Back-translations of every record: exact for all but t-003 (another text entirely) and t-007
    (missing, so not judged)."""
    folder = root / "round_trip"
    folder.mkdir()
    rows = []
    for r in source:
        if r["id"] == "t-007":
            continue
        text = "\n".join(v for v in (r["instruction"], r["input"], r["output"]) if v)
        back = "Completely unrelated words about turnips." if r["id"] == "t-003" else text
        rows.append({"id": r["id"], "lang": "fra_Latn", "source_text": text, "back_text": back, "model": "m",
                     "smoke": smoke})
    pq.write_table(pa.Table.from_pylist(rows), folder / "fra_Latn.parquet")
    return folder


def _run(root: Path, folder: Path, enabled: bool) -> tuple[Any, dict, dict]:
    result, rejects = run_small(root, {"dedup": {"near": False}, "round_trip": {"dir": str(folder)},
                                       "filters": {**OFF, "round_trip": {"enabled": enabled, "min_chrf": 50}}})
    return result, rejects, json.loads((root / "quality.json").read_text())


def test_scores_are_sacrebleu_chrf_pp_and_bleu() -> None:
    same = score(["The cat sat on the mat."], ["The cat sat on the mat."], per_record=True)
    assert same["chrf_pp"] == pytest.approx(100) and same["bleu"] == pytest.approx(100)
    other = score(["The cat sat on the mat."], ["A dog ran in the park."], per_record=True)
    assert other["sentence_chrf_pp"][0] < 30 and other["chrf_pp"] < 30


def test_audit_in_metrics_and_filter_rejects_below_threshold(tmp_path: Path) -> None:
    source, target = base_rows(20)
    write_set(tmp_path, source, {"fra_Latn": target})
    folder = _round_trip_files(tmp_path, source, smoke=False)
    result, rejects, metrics = _run(tmp_path, folder, enabled=True)
    low = {k[1]: r for k, r in rejects.items() if r["reason"] == "round_trip"}
    assert list(low) == ["t-003"] and "round-trip chrF++" in low["t-003"]["detail"]
    audit = metrics["round_trip"]
    assert audit["reference"]["bactrian_x_chrf_pp_mean"] == BACTRIAN_X_CHRF_PP == 68.1
    fra = audit["languages"]["fra_Latn"]
    assert fra["records"] == 19 and 80 < fra["chrf_pp"] < 100 and fra["bleu"] > 0 and fra["smoke"] is False
    assert "1 translated rows have no back-translation" in result.skipped_checks["round_trip"]


def test_audit_only_and_smoke_says_mechanics_only(tmp_path: Path) -> None:
    source, target = base_rows(20)
    write_set(tmp_path, source, {"fra_Latn": target})
    folder = _round_trip_files(tmp_path, source, smoke=True)
    _, rejects, metrics = _run(tmp_path, folder, enabled=False)
    assert not any(r["reason"] == "round_trip" for r in rejects.values())  # audit only: nothing rejected
    assert "mechanics only" in metrics["round_trip"]["languages"]["fra_Latn"]["note"]


def test_filter_without_round_trip_files_is_one_line(tmp_path: Path) -> None:
    source, target = base_rows(20)
    write_set(tmp_path, source, {"fra_Latn": target})
    with pytest.raises(PolyinstructError, match="no back-translation of these rows; run the round_trip stage") as err:
        _run(tmp_path, tmp_path / "nowhere", enabled=True)
    assert "\n" not in str(err.value)
