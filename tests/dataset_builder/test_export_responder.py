"""The responder in the dataset card (issue 15, provenance): generated outputs name their model in the
card's models and licence sections, a smoke responder is marked smoke, and a responder whose licence
is unknown is refused as an unknown translation model is."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset_builder.export.build import export_dataset
from schemas.errors import PolyinstructError
from schemas.export_layout import CARD_NAME
from tests.dataset_builder.test_export import card_meta, demo_params, make_filtered

NLLB = "facebook/nllb-200-distilled-600M"


def with_responder(filtered: Path, lang: str, responder: str) -> Path:
    """The filter stage's file in generate mode: every output written by `responder`."""
    path = filtered / f"{lang}.parquet"
    table = pq.read_table(path)
    pq.write_table(table.append_column("output_model", pa.array([responder] * table.num_rows, pa.string())), path)
    return filtered


def test_smoke_responder_is_in_the_card_and_marked_smoke(tmp_path: Path) -> None:
    responder = "smoke:smoke-llama-seed0@seed-0:int8:0123456789abcdef"
    filtered = with_responder(make_filtered(tmp_path, n_ids=10, langs=("eng_Latn", "fra_Latn"), model=NLLB),
                              "fra_Latn", responder)
    result = export_dataset(filtered, tmp_path / "export", demo_params())
    assert result.responders.rows == {"fra_Latn": {responder: 8}}  # 10 ids, 2 dropped in fra_Latn
    assert [(c.kind, c.name, c.license) for c in result.components if c.kind == "responder"] == \
        [("responder", responder, None)]
    card = (tmp_path / "export" / CARD_NAME).read_text()
    assert "## Response model" in card and f"| fra_Latn | `{responder}` | 8 | yes |" in card
    assert "smoke responder" in card and f"| responder | `{responder}` | none |" in card
    assert card_meta(tmp_path / "export")["license"] == "cc-by-nc-4.0"  # Alpaca + NLLB; the smoke weights: none


def test_real_responder_licence_joins_the_mix_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    llama = "meta-llama/Llama-3.1-8B-Instruct@0e9e39f:int8:0123456789abcdef"
    filtered = with_responder(make_filtered(tmp_path / "a", n_ids=6, langs=("fra_Latn",), model=NLLB),
                              "fra_Latn", llama)
    result = export_dataset(filtered, tmp_path / "a-export", demo_params())
    assert ("responder", llama, "llama3.1") in [(c.kind, c.name, c.license) for c in result.components]
    assert result.license == "other"  # cc-by-nc-4.0 with the Llama 3.1 licence: no single Hub id says both
    assert "| no |" in (tmp_path / "a-export" / CARD_NAME).read_text()

    qwen = "Qwen/Qwen2.5-3B-Instruct@aa8e725:int8:0123456789abcdef"  # Qwen's licence depends on the size
    filtered = with_responder(make_filtered(tmp_path / "b", n_ids=6, langs=("fra_Latn",), model=NLLB),
                              "fra_Latn", qwen)
    with pytest.raises(PolyinstructError, match=r"no license known for response model 'Qwen/.*export\.licenses"):
        export_dataset(filtered, tmp_path / "b-export", demo_params())
    assert not (tmp_path / "b-export").exists()
    result = export_dataset(filtered, tmp_path / "b-export", demo_params(licenses={"Qwen2.5-3B": "other"}))
    assert ("responder", qwen, "other") in [(c.kind, c.name, c.license) for c in result.components]


def test_translated_outputs_add_no_responder(tmp_path: Path) -> None:
    filtered = with_responder(make_filtered(tmp_path, n_ids=6, langs=("fra_Latn",)), "fra_Latn", "translated")
    result = export_dataset(filtered, tmp_path / "export", demo_params())
    assert result.responders.rows == {} and "## Response model" not in (tmp_path / "export" / CARD_NAME).read_text()
    assert not [c for c in result.components if c.kind == "responder"]
