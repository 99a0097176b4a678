"""Issue 11, point 1: without ../shared, the training fixtures build as many records as with it
(a fresh clone must not quietly test less)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trl_training import conftest as fixtures


def test_export_rows_are_complete_without_shared_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixtures, "SHARED_DATA", tmp_path / "missing")
    rows = fixtures.export_rows()
    assert set(rows) == set(fixtures.LANGS)
    for lang, lang_rows in rows.items():
        assert len(lang_rows) == fixtures.N_IDS, lang
        assert len({(r["instruction"], r["input"], r["output"]) for r in lang_rows}) == fixtures.N_IDS, lang
    again = fixtures.export_rows()
    assert again == rows  # deterministic
