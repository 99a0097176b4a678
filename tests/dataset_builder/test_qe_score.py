"""The score stage (quality estimation): a real CTranslate2 `score_batch` on the smoke NLLB model, scores
joined to the right ids, and `polyinstruct filter` rejecting the imported rows below the QE bound.

The smoke model has random weights: its scores mean nothing about translation quality. What it does have
(dataset_builder/models/smoke.py) is a hand-wired alignment, output token k from source token k, so it is
near-certain of its own output for a source and certain of nothing for another source's: that is enough to
test that a score belongs to the right pair, unit and record. The real test is a user's NLLB run."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dataset_builder.qe_score import QE_SCHEMA, score_file, text_sha256, unit_pairs
from dataset_builder.translate_engine import CTranslate2Engine
from schemas.params import TranslateParams, parse_params
from schemas.records import SOURCE_SCHEMA
from tests.conftest import run_cli

OTHER_FILTERS_OFF = {name: {"enabled": False} for name in (
    "lang_id", "untranslated", "length_ratio", "repetition", "placeholder", "llm_failures", "bad_chars",
    "language_bound")}


@pytest.fixture(scope="module")
def clean_units(smoke_nllb: Path, embedded_source: Path) -> list[tuple[str, str]]:
    """(English sentence, its smoke translation) for one-sentence instructions of the embedded sample whose translation
    the smoke model scores as its own (its text re-tokenizes to the tokens it generated: about a third do)."""
    engine = CTranslate2Engine(smoke_nllb, "eng_Latn", "fra_Latn", TranslateParams(), "cpu", "float32")
    units = [r["instruction"] for r in pq.read_table(embedded_source).to_pylist() if "\n" not in r["instruction"]]
    pairs = [(u, t.translation) for u, t in zip(units, engine(units), strict=True)
             if unit_pairs(u, t.translation, "en", "fr") == ([(u, t.translation)], "units")]
    own = engine.score_pairs(pairs)
    return [p for p, r in zip(pairs, own, strict=True) if r.score is not None and r.score > -0.1]


def test_score_batch_scores_a_pair_not_a_text(smoke_nllb: Path, clean_units: list[tuple[str, str]]) -> None:
    assert len(clean_units) >= 12
    engine = CTranslate2Engine(smoke_nllb, "eng_Latn", "fra_Latn", TranslateParams(), "cpu", "float32")
    own = engine.score_pairs(clean_units)
    rotated = engine.score_pairs([(clean_units[i][0], clean_units[(i + 1) % len(clean_units)][1])
                                  for i in range(len(clean_units))])
    assert all(r.score > -1.0 for r in own)  # type: ignore[operator]
    assert all(r.score < -5.0 for r in rotated)  # type: ignore[operator]  # another source's translation
    assert [r.translation for r in own] == [t for _, t in clean_units]
    assert all(r.target_tokens > 0 and r.source_tokens > 0 and not r.truncated for r in own)
    assert engine.score_pairs([]) == []


def test_unit_alignment_follows_the_segmentation() -> None:
    pairs, how = unit_pairs("First sentence here. Second one here.", "Première phrase. Deuxième phrase.", "en", "fr")
    assert how == "units" and pairs == [("First sentence here.", "Première phrase."),
                                        ("Second one here.", "Deuxième phrase.")]
    pairs, how = unit_pairs("One. Two here.\nThree.", "Un et deux.\nTrois.", "en", "fr")
    assert how == "lines" and pairs == [("One. Two here.", "Un et deux."), ("Three.", "Trois.")]
    pairs, how = unit_pairs("One. Two.\nThree.", "Un deux trois.", "en", "fr")
    assert how == "field" and pairs == [("One. Two. Three.", "Un deux trois.")]
    # Protected spans are not scored (the model never sees them); a field of spans only is not scored.
    pairs, _ = unit_pairs("Visit https://example.com today.", "Visitez https://example.com aujourd'hui.", "en", "fr")
    assert all("https://" not in s and "https://" not in t for s, t in pairs)
    assert unit_pairs("`x = 1`", "`x = 1`", "en", "fr") == ([], "none")


def _imported_set(root: Path, clean: list[tuple[str, str]]) -> tuple[set[str], set[str]]:
    """Source and an imported translation (no log_prob, no model columns) of records made of clean units;
    every third record carries the next record's translation (a misaligned, bad one). Rows are written in
    an order that is not the id order, so a join by position cannot pass."""
    n = len(clean) // 2
    source, target, bad = [], [], set()
    for i in range(n):
        ident = f"q-{i:02d}"
        source.append({"id": ident, "source": "t", "instruction": clean[2 * i][0], "input": "",
                       "output": clean[2 * i + 1][0]})
        j = (i + 1) % n if i % 3 == 0 else i
        bad |= {ident} if j != i else set()
        target.append({"id": ident, "lang": "fra_Latn", "instruction": clean[2 * j][1], "input": "",
                       "output": clean[2 * j + 1][1]})
    pq.write_table(pa.Table.from_pylist(source, schema=SOURCE_SCHEMA), root / "source.parquet")
    (root / "translated").mkdir()
    pq.write_table(pa.Table.from_pylist(target[::-1]), root / "translated" / "fra_Latn.parquet")
    return bad, {r["id"] for r in source} - bad


def test_scores_join_to_their_ids_and_filter_rejects_below_the_bound(
        smoke_nllb: Path, clean_units: list[tuple[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad, good = _imported_set(tmp_path, clean_units)
    assert len(bad) >= 2 and len(good) >= 4
    params = {"quality": {"qe": {"enabled": True, "dir": str(tmp_path / "qe")}, "dedup": {"near": False},
                          "filters": {**OTHER_FILTERS_OFF, "low_confidence": {
                              "enabled": True, "percentile": None, "min_qe_score": -3.0}}}}
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    translated = tmp_path / "translated" / "fra_Latn.parquet"
    assert run_cli(monkeypatch, "score", "--lang", "fr", "--source", str(tmp_path / "source.parquet"),
                   "--translated", str(translated), "--model", str(smoke_nllb), "--metrics", str(tmp_path / "qe.json"),
                   "--cache", str(tmp_path / "memory"), "--params", str(params_path)) == 0
    table = pq.read_table(tmp_path / "qe" / "fra_Latn.parquet")
    assert table.schema.equals(QE_SCHEMA, check_metadata=False)
    scores = {r["id"]: r for r in table.to_pylist()}
    assert set(scores) == bad | good and all(r["smoke"] and r["model"].startswith("smoke:") for r in scores.values())
    assert all(scores[i]["qe_score"] > -1.0 for i in good) and all(scores[i]["qe_score"] < -3.0 for i in bad)
    rows = {r["id"]: r for r in pq.read_table(translated).to_pylist()}
    assert all(scores[i]["text_sha256"] == text_sha256(rows[i]) for i in scores)
    metrics = json.loads((tmp_path / "qe.json").read_text())
    assert metrics["smoke"] is True and "mechanics only" in metrics["note"] and metrics["scored"] == len(scores)

    # One bad row's text changes after scoring: its score is stale and must not be used.
    stale = sorted(bad)[0]
    table = pq.read_table(translated)
    outputs = [o + " Encore." if i == stale else o for i, o in zip(table.column("id").to_pylist(),
                                                                   table.column("output").to_pylist(), strict=True)]
    pq.write_table(table.set_column(table.schema.get_field_index("output"), "output", pa.array(outputs)), translated)

    assert run_cli(monkeypatch, "filter", "--source", str(tmp_path / "source.parquet"), "--translated",
                   str(tmp_path / "translated"), "--out", str(tmp_path / "filtered"), "--rejects",
                   str(tmp_path / "rejects.parquet"), "--metrics", str(tmp_path / "quality.json"), "--plots",
                   str(tmp_path / "plots"), "--params", str(params_path)) == 0
    rejects = {r["id"]: r for r in pq.read_table(tmp_path / "rejects.parquet").to_pylist()}
    assert {i for i, r in rejects.items() if r["reason"] == "low_confidence"} == bad - {stale}
    detail = rejects[sorted(bad - {stale})[0]]["detail"]
    assert detail.startswith("QE score (forced decoding, score stage) -") and "min_qe_score" in detail
    note = json.loads((tmp_path / "quality.json").read_text())["skipped_checks"]["low_confidence"]
    assert f"{len(scores) - 1} translated rows without a log_prob judged by their QE score" in note
    assert "1 QE scores" in note and "smoke model" in note


def test_switched_off_writes_an_empty_file_without_a_model(tmp_path: Path, embedded_source: Path) -> None:
    rows = pq.read_table(embedded_source).to_pylist()[:3]
    translated = tmp_path / "fra_Latn.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": r["id"], "lang": "fra_Latn", "instruction": "a", "input": "",
                                          "output": "b"} for r in rows]), translated)
    metrics = score_file(embedded_source, translated, tmp_path / "no-model", tmp_path / "qe" / "fra_Latn.parquet",
                         None, parse_params({}, "test"))
    assert metrics["enabled"] is False and metrics["scored"] == 0
    assert pq.read_table(tmp_path / "qe" / "fra_Latn.parquet").num_rows == 0
