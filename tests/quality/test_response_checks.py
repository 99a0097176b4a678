"""Refusal and assistant-chatter checks on generated outputs: the phrases in several languages, and
the filter stage rejecting generated rows (and only generated rows) with their own reasons."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset_builder.ingest import embedded_sample_path
from quality import response_checks
from quality.stage import run_filter
from schemas.artifacts import write_parquet
from schemas.params import FiltersParams, parse_params
from schemas.records import RESPONDED_SCHEMA, SOURCE_SCHEMA, TRANSLATED_SCHEMA

REFUSALS = ["I'm sorry, but I can't help with that request.", "I cannot provide medical advice.",
            "Je suis désolé, mais je ne peux pas vous aider avec cela.", "Lo siento, pero no puedo ayudarte.",
            "Es tut mir leid, aber das kann ich nicht beantworten.", "Извините, но я не могу помочь с этим.",
            "抱歉，我无法回答这个问题。", "申し訳ありませんが、その質問にはお答えできません。"]
CHATTER = ["As an AI language model, I think the best answer is to rest.", "En tant qu'IA, je pense que oui.",
           "Als KI-Sprachmodell habe ich keine persönliche Meinung, aber hier ist eine Liste.",
           "Как языковая модель, я считаю, что это полезно.", "作为一个人工智能语言模型，我认为这很重要。",
           "Como modelo de lenguaje, te recomiendo descansar."]
CLEAN = ["Mangez des fruits, dormez huit heures et marchez chaque jour.", "The capital of France is Paris.",
         "Here are three tips. First, I cannot stress enough how much sleep matters. " * 8,
         "Voici une recette: mélangez la farine et les œufs.", "Die Antwort ist 42.", "答案是四十二。"]


def _flags(texts: list[str]) -> list[tuple[str | None, str | None]]:
    con = duckdb.connect()
    con.register("rows", pa.table({"rid": list(range(len(texts))), "output": texts,
                                   "output_model": ["m"] * len(texts)}))
    return [(r, c) for _, r, c in con.sql(response_checks.flags_sql("rows", FiltersParams())).fetchall()]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals(text: str) -> None:
    refusal, _ = _flags([text])[0]
    assert refusal, text


@pytest.mark.parametrize("text", CHATTER)
def test_chatter(text: str) -> None:
    refusal, chatter = _flags([text])[0]
    assert chatter and not refusal, text


def test_clean_answers_pass() -> None:
    assert _flags(CLEAN) == [(None, None)] * len(CLEAN)


def test_filter_rejects_generated_refusals_and_chatter_only(tmp_path: Path) -> None:
    records = json.loads(embedded_sample_path().read_text(encoding="utf-8"))[:30]
    ids = [f"sample-{i:05d}" for i in range(len(records))]
    source = [{"id": i, "source": "sample", **{f: r.get(f, "") for f in ("instruction", "input", "output")}}
              for i, r in zip(ids, records, strict=True)]
    write_parquet(pa.Table.from_pylist(source, schema=SOURCE_SCHEMA), tmp_path / "source.parquet", SOURCE_SCHEMA)
    base = {"model": "smoke:nllb", "smoke": True, "truncated_fields": [], "protected_spans_ok": True,
            "kept_verbatim": False}
    outputs = {ids[0]: REFUSALS[2], ids[1]: CHATTER[1]}
    responded = [{**s, **base, "lang": "fra_Latn", "instruction": f"[fr] {s['instruction']}",
                  "output": outputs.get(s["id"], f"Réponse numéro {k} : {CLEAN[0]}"), "output_model": "smoke:llama"}
                 for k, s in enumerate(source)]
    translated = [{**s, **base, "lang": "deu_Latn", "instruction": f"[de] {s['instruction']}",
                   "output": CHATTER[2] if s["id"] == ids[1] else f"Antwort {k}: {s['output']} (de)"}
                  for k, s in enumerate(source)]
    (tmp_path / "in").mkdir()
    write_parquet(pa.Table.from_pylist(responded, schema=RESPONDED_SCHEMA), tmp_path / "in/fra_Latn.parquet",
                  RESPONDED_SCHEMA)
    write_parquet(pa.Table.from_pylist(translated, schema=TRANSLATED_SCHEMA), tmp_path / "in/deu_Latn.parquet",
                  TRANSLATED_SCHEMA)
    params = parse_params({"languages": {"targets": ["fra_Latn", "deu_Latn"]}, "quality": {
        "dedup": {"near": False}, "filters": {"lang_id": {"enabled": False}, "length_ratio": {"enabled": False},
                                              "untranslated": {"enabled": False},
                                              # the German fixtures are English text in a German file: the
                                              # translator checks would rightly reject them; not what this tests
                                              "llm_failures": {"enabled": False}}}})
    result = run_filter(tmp_path / "source.parquet", tmp_path / "in", tmp_path / "out", tmp_path / "rejects.parquet",
                        tmp_path / "quality.json", None, params)
    rejects = {(r["lang"], r["id"]): r for r in pq.read_table(tmp_path / "rejects.parquet").to_pylist()}
    assert rejects[("fra_Latn", ids[0])]["reason"] == "refusal"
    assert "je ne peux" in rejects[("fra_Latn", ids[0])]["detail"]
    assert rejects[("fra_Latn", ids[1])]["reason"] == "assistant_chatter"
    assert ("deu_Latn", ids[1]) not in rejects  # a translated output is not an assistant's answer
    assert result.rejected_by_reason["fra_Latn"] == {"refusal": 1, "assistant_chatter": 1}
    assert result.kept["fra_Latn"] == 28 and result.kept["deu_Latn"] == 30
    metrics = json.loads((tmp_path / "quality.json").read_text())["languages"]["fra_Latn"]
    assert metrics["rejected_by_reason"]["refusal"] == 1 and metrics["kept"] + metrics["rejected"] == metrics["in"]
