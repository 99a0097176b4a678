"""Near dedup runs in a thread beside language ID (quality.stage): when language ID fails or is interrupted
(Ctrl-C, SIGTERM), near dedup stops at its next language instead of finishing every one first."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import quality.stage as stage
from tests.quality.test_filters import base_rows, run_small, write_set

LANGS = ("deu_Latn", "fra_Latn", "ita_Latn", "nld_Latn", "por_Latn", "spa_Latn", "swe_Latn", "pol_Latn")


def test_near_dedup_stops_when_language_id_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = base_rows(20)
    write_set(tmp_path, source, {lang: target for lang in LANGS})
    languages_done: list[str] = []
    first_done, failing = threading.Event(), threading.Event()
    real_near = stage.dedup.near_duplicates

    def near_duplicates(*args: Any, on_language: Any, **kwargs: Any) -> Any:
        def counted(lang: str, n: int) -> None:
            languages_done.append(lang)
            first_done.set()
            failing.wait(30)
            time.sleep(1)  # language ID's handler sets the stop flag meanwhile
            on_language(lang, n)
        return real_near(*args, on_language=counted, **kwargs)

    def language_ids(run: Any) -> Any:
        assert first_done.wait(30)
        failing.set()
        raise RuntimeError("language ID failed")

    monkeypatch.setattr(stage.dedup, "near_duplicates", near_duplicates)
    monkeypatch.setattr(stage, "_language_ids", language_ids)
    with pytest.raises(RuntimeError, match="language ID failed"):
        run_small(tmp_path)
    assert len(languages_done) == 1  # of the 9 languages (8 and English)
    assert not (tmp_path / "rejects.parquet").exists()
