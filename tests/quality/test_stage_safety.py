"""Issue 11 (filter stage): outputs never destroy inputs or foreign files (3), types are checked, not
cast (4), kept rows are counted from what was written (7), and smoke rows skip language ID (11)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quality import stage_outputs as stage  # write_parquet of the written side moved there
from quality.stage import run_filter
from schemas.errors import ConservationError, PolyinstructError
from schemas.params import parse_params
from tests.conftest import REPO_ROOT, run_cli
from tests.quality.test_filters import base_rows, run_small, write_set

RUSSIAN = "Объясните, почему небо голубое днём и красное на закате солнца, в нескольких предложениях."
NO_LANG_ID = {"filters": {"lang_id": {"enabled": False}}, "dedup": {"near": False}}


def _pairs(root: Path, langs: tuple[str, ...] = ("fra_Latn",), **extra: object) -> Path:
    source, target = base_rows(20)
    write_set(root, source, {lang: [{**r, **extra} for r in target] for lang in langs})
    return root


def test_output_folder_holding_an_input_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = _pairs(tmp_path, ("fra_Latn", "deu_Latn"))
    folder = root / "translated"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code = run_cli(monkeypatch, "filter", "--source", str(root / "source.parquet"), "--translated",
                   str(folder / "fra_Latn.parquet"), "--out", str(folder), "--rejects", str(root / "rej.parquet"),
                   "--metrics", str(root / "q.json"), "--plots", str(root / "plots"), "--no-lang-id")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "holds the input" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing deleted or overwritten


def test_output_folder_with_foreign_files_is_refused_and_own_reruns_work(tmp_path: Path) -> None:
    root = _pairs(tmp_path)
    (root / "filtered").mkdir()
    (root / "filtered" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(PolyinstructError, match="did not write, e.g. notes.txt"):
        run_small(root, NO_LANG_ID)
    (root / "filtered" / "notes.txt").unlink()
    run_small(root, NO_LANG_ID)
    first = {p.name: p.read_bytes() for p in (root / "filtered").iterdir()}
    run_small(root, NO_LANG_ID)  # its own earlier output is replaced, byte for byte
    assert {p.name: p.read_bytes() for p in (root / "filtered").iterdir()} == first
    assert {"eng_Latn.parquet", "fra_Latn.parquet"} <= set(first)


def test_wrong_column_type_is_one_line_naming_file_column_and_types(tmp_path: Path) -> None:
    root = _pairs(tmp_path)
    path = root / "translated" / "fra_Latn.parquet"
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index("output"), "output",
                                    pa.array(range(table.num_rows), pa.int64())), path)
    with pytest.raises(PolyinstructError) as err:
        run_small(root, NO_LANG_ID)
    message = str(err.value)
    assert str(path) in message and "column output has type int64, expected string" in message
    assert "\n" not in message and not (root / "filtered").exists()


def test_conservation_fails_when_a_kept_row_is_lost_on_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _pairs(tmp_path)
    real = stage.write_parquet
    monkeypatch.setattr(stage, "write_parquet", lambda table, path, schema=None: real(table.slice(1), path, schema))
    with pytest.raises(ConservationError, match="conservation broken for (eng|fra)_Latn"):
        run_small(root, NO_LANG_ID)


def test_all_translations_rejected_stops_the_stage(tmp_path: Path) -> None:
    root = _pairs(tmp_path, output="")
    with pytest.raises(PolyinstructError, match=r"all 20 input rows were rejected \(empty=20\)"):
        run_small(root, NO_LANG_ID)
    assert not (root / "filtered").exists()
    assert pq.read_table(root / "rejects.parquet").num_rows == 20


def test_lang_id_is_on_by_default_and_smoke_rows_skip_it(tmp_path: Path) -> None:
    assert parse_params({}, "test").quality.filters.lang_id.enabled
    params_yaml = (REPO_ROOT / "params.yaml").read_text(encoding="utf-8")
    assert "lang_id: {enabled: true" in params_yaml
    source, target = base_rows(20)
    # Russian in a French file, numbers kept (so only language ID can tell): "Case {i} of 20".
    wrong = [{**r, "instruction": f"{RUSSIAN} Случай {i} из 20.", "output": RUSSIAN + f" {i}"}
             for i, r in enumerate(target)]
    for model, kept in (("smoke:abc123", 20), ("facebook/nllb-200-distilled-600M", 0)):
        root = tmp_path / model.replace("/", "_").replace(":", "_")
        root.mkdir()
        write_set(root, source, {"fra_Latn": [{**r, "model": model} for r in wrong]})
        params = parse_params({"quality": {"dedup": {"near": False}}}, "test")
        if not kept:
            with pytest.raises(PolyinstructError, match=r"rejected \(lang_id=20\)"):
                run_filter(root / "source.parquet", root / "translated", root / "filtered", root / "rej.parquet",
                           root / "q.json", None, params)
            continue
        result = run_filter(root / "source.parquet", root / "translated", root / "filtered", root / "rej.parquet",
                            root / "q.json", None, params)
        assert result.kept["fra_Latn"] == kept
        assert "20 rows from a smoke model" in result.skipped_checks["lang_id"]
        assert json.loads((root / "q.json").read_text())["skipped_checks"]["lang_id"].startswith("20 rows")
