"""The low_confidence filter on the records' log_prob column and on the score stage's QE scores: per-language
percentile, absolute floor, unscored rows not judged, smoke scores flagged as mechanics only, and log_prob carried
to the output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset_builder.qe_score import QE_SCHEMA, text_sha256
from schemas.errors import PolyinstructError
from schemas.params import parse_params
from tests.quality.test_filters import base_rows, run_small, write_set

FILTERS_OFF = {"lang_id": {"enabled": False}, "length_ratio": {"enabled": False}}


def _scored(n: int, smoke: bool = False) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    source, target = base_rows(n)
    for i, row in enumerate(target):  # t-000 is the least confident, t-{n-1} the most; t-005 unscored
        row.update(model="smoke:x" if smoke else "m", smoke=smoke, truncated_fields=[], protected_spans_ok=True,
                   kept_verbatim=False, log_prob=None if i == 5 else -3.0 + i * 0.05)
    return source, target


def test_percentile_per_language_and_absolute_floor(tmp_path: Path) -> None:
    source, target = _scored(60)
    write_set(tmp_path, source, {"fra_Latn": target})
    result, rejects = run_small(tmp_path, {"dedup": {"near": False}, "filters": {
        **FILTERS_OFF, "low_confidence": {"enabled": True, "percentile": 0.05, "min_rows": 50}}})
    low = sorted(k[1] for k, r in rejects.items() if r["reason"] == "low_confidence")
    assert low == ["t-000", "t-001", "t-002"]  # below the 5th percentile of 59 scored rows
    assert rejects[("fra_Latn", "t-000")]["detail"] == \
        "model log-prob -3.000 below -2.855 (the 0.05 quantile of fra_Latn log_prob, 59 scored rows)"
    assert "t-005" not in {k[1] for k in rejects} and "1 translated rows have no score" in \
        result.skipped_checks["low_confidence"]
    kept = {r["id"]: r["log_prob"] for r in pq.read_table(tmp_path / "filtered" / "fra_Latn.parquet").to_pylist()}
    assert kept["t-010"] == pytest.approx(-2.5) and kept["t-005"] is None

    floor = tmp_path / "floor"
    floor.mkdir()
    write_set(floor, source, {"fra_Latn": target})
    _, rejects = run_small(floor, {"dedup": {"near": False}, "filters": {
        **FILTERS_OFF, "low_confidence": {"enabled": True, "percentile": None, "min_log_prob": -2.8}}})
    low = sorted(k[1] for k, r in rejects.items() if r["reason"] == "low_confidence")
    assert low == [f"t-{i:03d}" for i in range(4)]  # -3.0 .. -2.85
    assert "min_log_prob" in rejects[("fra_Latn", "t-000")]["detail"]


def test_smoke_scores_say_mechanics_only_and_few_rows_skip_percentile(tmp_path: Path) -> None:
    source, target = _scored(20, smoke=True)
    write_set(tmp_path, source, {"fra_Latn": target})
    result, rejects = run_small(tmp_path, {"dedup": {"near": False}, "filters": {
        **FILTERS_OFF, "low_confidence": {"enabled": True}}})
    assert not any(r["reason"] == "low_confidence" for r in rejects.values())
    note = result.skipped_checks["low_confidence"]
    assert "smoke model" in note and "mechanics only" in note and "percentile not applied in: fra_Latn" in note


def test_enabled_without_a_rule_is_a_params_error() -> None:
    with pytest.raises(PolyinstructError, match="low_confidence"):
        parse_params({"quality": {"filters": {"low_confidence": {"enabled": True, "percentile": None}}}}, "test")


def test_qe_scores_judge_rows_without_log_prob_in_their_own_population(tmp_path: Path) -> None:
    """Rows 0-29 carry our translate stage's log_prob; rows 30-58 only a QE score (the score stage's file,
    QE_SCHEMA); row 59 neither. Each population has its own per-language quantile: mixed, the QE rows (all
    far below any log_prob) would take every rejection."""
    source, target = base_rows(60)
    for i, row in enumerate(target):
        row.update(log_prob=-1.0 + i * 0.01 if i < 30 else None)
    write_set(tmp_path, source, {"fra_Latn": target})
    qe_dir = tmp_path / "qe"
    qe_dir.mkdir()
    qe_rows = [{"id": r["id"], "lang": "fr", "qe_score": -10.0 + (i - 30) * 0.1, "scored_units": 2,
                "alignment": "units", "text_sha256": text_sha256(r), "model": "m", "smoke": False}
               for i, r in enumerate(target) if 30 <= i < 59]
    pq.write_table(pa.Table.from_pylist(qe_rows[::-1], schema=QE_SCHEMA), qe_dir / "fra_Latn.parquet")
    (qe_dir / "notes.parquet").write_bytes(b"not a language: ignored")
    result, rejects = run_small(tmp_path, {"dedup": {"near": False}, "qe": {"dir": str(qe_dir)}, "filters": {
        **FILTERS_OFF, "low_confidence": {"enabled": True, "percentile": 0.1, "min_rows": 20}}})
    low = sorted(k[1] for k, r in rejects.items() if r["reason"] == "low_confidence")
    assert low == ["t-000", "t-001", "t-002", "t-030", "t-031", "t-032"]
    assert rejects[("fra_Latn", "t-000")]["detail"].startswith("model log-prob -1.000 below")
    assert rejects[("fra_Latn", "t-030")]["detail"] == \
        "QE score (forced decoding, score stage) -10.000 below -9.720 (the 0.1 quantile of fra_Latn QE, 29 scored rows)"
    note = result.skipped_checks["low_confidence"]
    assert "29 translated rows without a log_prob judged by their QE score" in note
    assert "1 translated rows have no score" in note and "smoke" not in note

    # An absolute floor for QE rows only: min_log_prob does not touch them, nor min_qe_score the log_prob rows.
    _, rejects = run_small(tmp_path, {"dedup": {"near": False}, "qe": {"dir": str(qe_dir)}, "filters": {
        **FILTERS_OFF, "low_confidence": {"enabled": True, "percentile": None, "min_qe_score": -9.75,
                                          "min_log_prob": -0.985}}})
    low = sorted(k[1] for k, r in rejects.items() if r["reason"] == "low_confidence")
    assert low == ["t-000", "t-001", "t-030", "t-031", "t-032"]
    assert "min_qe_score" in rejects[("fra_Latn", "t-031")]["detail"]
    assert "min_log_prob" in rejects[("fra_Latn", "t-001")]["detail"]
