from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from dataset_builder.segment import (
    fit_to_budget,
    is_mostly_code,
    normalise_unit,
    protected_spans,
    reassemble,
    segment,
    spans_preserved,
)
from schemas.records import TEXT_FIELDS


def pieces(text: str) -> list[tuple[str, str]]:
    return [(p.kind, p.text) for p in segment(text).pieces]


def test_identity_reassembly_is_byte_exact_on_real_alpaca(alpaca_records: list[dict[str, str]]) -> None:
    units = spans = 0
    for record in alpaca_records:
        for field in TEXT_FIELDS:
            text = record[field]
            seg = segment(text)
            assert reassemble(seg, seg.units) == text, (field, text[:80])
            assert seg.spans == protected_spans(text)  # the quality filter sees exactly what we protect
            assert all("\n" not in u and u == u.strip() for u in seg.units)
            units += len(seg.units)
            spans += len(seg.spans)
    assert units > 20_000 and spans > 500  # real work happened: sentences and protected spans


def test_sentences_split_with_pysbd_abbreviations_kept() -> None:
    seg = segment("Dr. Smith lives in the U.S. and works at 9 a.m. daily. He is happy! Is she?")
    assert seg.units == ["Dr. Smith lives in the U.S. and works at 9 a.m. daily.", "He is happy!", "Is she?"]


def test_layout_stays_outside_units() -> None:
    text = "Steps:\n\n1. Boil water.\n   - Use a kettle.\n2) Pour it.\n\n* Enjoy.  \n# Title here"
    seg = segment(text)
    assert seg.units == ["Steps:", "Boil water.", "Use a kettle.", "Pour it.", "Enjoy.", "Title here"]
    translated = reassemble(seg, [u.upper() for u in seg.units])
    assert translated == "STEPS:\n\n1. BOIL WATER.\n   - USE A KETTLE.\n2) POUR IT.\n\n* ENJOY.  \n# TITLE HERE"


@pytest.mark.parametrize("span", [
    "`len(x)`", "https://example.org/a/b?x=1&y=2", "help@example.com", "5 km", "$19.99", "37.5%", "180°C",
    "{name}", "[Your Name]", "<noinput>", "wikipedia('French Revolution')", "#StayCool", "backup.sh",
])
def test_inline_spans_are_protected(span: str) -> None:
    text = f"Please look at {span} before you go."
    seg = segment(text)
    assert span in seg.spans
    assert all(span not in u for u in seg.units)  # the model never sees it
    assert reassemble(seg, ["X"] * len(seg.units)).count(span) == 1


def test_url_keeps_sentence_punctuation_outside() -> None:
    seg = segment("Visit https://example.org/docs. Then email us (docs@example.com).")
    assert seg.spans == ["https://example.org/docs", "docs@example.com"]
    assert seg.units == ["Visit", "Then email us"]


def test_fenced_and_unfenced_code_blocks_are_one_span_each() -> None:
    python = "def add(a, b):\n    total = a + b\n\n    return total"
    js = "function f(x) {\n  return x * 2;\n}"
    sql = "SELECT name, age\nFROM people\nWHERE age > 30;"
    html = '<ul>\n  <li>One</li>\n  <li>Two</li>\n</ul>'
    fenced = "```python\nprint('hi')  # say hi. Really.\n```"
    for code in (python, js, sql, html, fenced):
        text = f"Here is the code:\n{code}\nIt works well."
        seg = segment(text)
        assert seg.spans == [code], code
        assert seg.units == ["Here is the code:", "It works well."]


def test_prose_that_looks_a_bit_like_code_is_translated() -> None:
    text = ("Panel 1: A person looking at their phone in frustration;\nfor example, the cat sat on the mat.\n"
            "If you want to learn more, return to the first page and read it again.")
    assert segment(text).spans == []


def test_spans_preserved_detects_drops_and_duplicates() -> None:
    source = "Write to [Your Name] at help@example.com, not {name}."
    assert spans_preserved(source, "Ecrivez à [Your Name] à help@example.com, pas {name}.")
    assert not spans_preserved(source, "Ecrivez à help@example.com, pas {name}.")
    assert not spans_preserved(source, "[Your Name] [Your Name] help@example.com {name}")


def test_mostly_code_records() -> None:
    code = {"instruction": "Write a function.", "input": "",
            "output": "def square(x):\n    result = x * x\n    return result"}
    prose = {"instruction": "Explain recursion.", "input": "",
             "output": "Recursion is when a function calls itself, like `f(n - 1)` inside `f`. It needs a base case."}
    assert is_mostly_code(code)
    assert not is_mostly_code(prose)


def _whitespace_tokens(texts: Sequence[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def test_long_units_are_split_never_cut(smoke_tokenizer: Any) -> None:
    def count(texts: Sequence[str]) -> list[int]:
        return [len(ids) - 2 for ids in smoke_tokenizer(list(texts))["input_ids"]]

    sentence = "the quick brown fox, which was hungry, jumped over the lazy dog and then it ran away"
    prose = " ".join([sentence] * 250)  # ~20,000 characters, no sentence boundary at all
    blob = "x" * 20_000  # one unbroken "word"
    for text in (prose, blob):
        assert len(text) >= 20_000
        seg = fit_to_budget(segment(text), 60, count)
        assert reassemble(seg, seg.units) == text  # nothing lost
        assert len(seg.units) > 10
        assert max(count(seg.units)) <= 60


def test_fit_to_budget_keeps_short_units_and_uses_known_counts() -> None:
    seg = segment("A short one. Another short one.")
    assert fit_to_budget(seg, 50, _whitespace_tokens, known={"A short one.": 3}) is seg
    with pytest.raises(ValueError):
        fit_to_budget(seg, 0, _whitespace_tokens)


def test_normalise_unit() -> None:
    assert normalise_unit("  Cafe\u0301   au \t lait ") == "Café au lait"
