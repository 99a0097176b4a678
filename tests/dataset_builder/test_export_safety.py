"""Issue 11 (export, and the shared writer): points 3 and 4. A killed export's leftovers are cleaned
up, written files follow the umask, and a wrong column type is one line in filter, validate and export."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset_builder.export.build import export_dataset
from quality.validation.derive import read_filtered
from schemas.artifacts import write_json, write_parquet
from schemas.errors import PolyinstructError
from tests.dataset_builder.test_export import demo_params, make_filtered


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(folder: Path) -> set[int]:
    return {stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def test_written_files_and_export_shards_follow_the_umask(tmp_path: Path, umask: None) -> None:
    table = pa.table({"a": [1]})
    assert _modes(write_parquet(table, tmp_path / "x" / "t.parquet").parent) == {0o640}
    assert stat.S_IMODE(write_json({"a": 1}, tmp_path / "m.json").stat().st_mode) == 0o640
    filtered = make_filtered(tmp_path, n_ids=6, langs=("eng_Latn", "fra_Latn"))
    export_dataset(filtered, tmp_path / "export", demo_params())
    assert _modes(tmp_path / "export") == {0o640}
    assert stat.S_IMODE((tmp_path / "export").stat().st_mode) == 0o750


def test_leftovers_of_a_killed_export_are_removed_by_the_next_run(tmp_path: Path) -> None:
    filtered = make_filtered(tmp_path, n_ids=6, langs=("eng_Latn", "fra_Latn"))
    for name in (".export.build-abc123", ".export.old-def456"):  # what a SIGKILL mid-export leaves
        (tmp_path / name / "en").mkdir(parents=True)
        (tmp_path / name / "en" / "train-00000-of-00001.parquet").write_bytes(b"partial")
    (tmp_path / ".exporter-notes").mkdir()  # not ours: another name
    export_dataset(filtered, tmp_path / "export", demo_params())
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == [".exporter-notes"]


def _int_output(filtered: Path) -> Path:
    path = filtered / "fra_Latn.parquet"
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index("output"), "output",
                                    pa.array(range(table.num_rows), pa.int64())), path)
    return path


def test_export_and_validate_name_a_wrong_column_type_in_one_line(tmp_path: Path) -> None:
    filtered = make_filtered(tmp_path, n_ids=6, langs=("eng_Latn", "fra_Latn"))
    path = _int_output(filtered)
    expected = f"{path}: column output has type int64, expected string"
    with pytest.raises(PolyinstructError) as err:
        export_dataset(filtered, tmp_path / "export", demo_params())
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)
    assert not (tmp_path / "export").exists()
    with duckdb.connect() as con, pytest.raises(PolyinstructError) as err:
        read_filtered(con, filtered)
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)
