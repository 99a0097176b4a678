"""Issue 11, points 2 and 7 (translate): the conservation check counts the rows written, so a row lost
between translation and the file fails the run; a run that would hand on no rows stops instead."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from dataset_builder import translate
from dataset_builder.translate import translate_file
from dataset_builder.translation_memory import UnitResult
from schemas.errors import ConservationError, PolyinstructError
from schemas.params import Params
from tests.dataset_builder.test_translate import source_file


def _identity(units: Sequence[str]) -> list[UnitResult]:
    return [UnitResult(u, 1, 1, False) for u in units]


def _translate(source: Path, model: Path, work: Path) -> None:
    translate_file(source, "fra_Latn", model, work / "out.parquet", work / "m.json", work / "rej.parquet", Params(),
                   cache=work / "memory", translator=_identity)


def test_a_row_lost_on_write_fails_the_conservation_check(embedded_source: Path, smoke_nllb: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    real = translate.write_parquet
    monkeypatch.setattr(translate, "write_parquet", lambda table, path, schema=None: real(table.slice(1), path, schema))
    with pytest.raises(ConservationError, match="conservation broken for fra_Latn: in=100 but kept=99"):
        _translate(embedded_source, smoke_nllb, tmp_path)


def test_nothing_left_to_translate_stops_the_stage(smoke_nllb: Path, tmp_path: Path) -> None:
    source = source_file(tmp_path / "source.parquet", [{"instruction": " ", "output": ""}] * 3)
    with pytest.raises(PolyinstructError, match=r"all 3 input rows were rejected \(empty_source=3\)"):
        _translate(source, smoke_nllb, tmp_path)
    assert not (tmp_path / "out.parquet").exists()
