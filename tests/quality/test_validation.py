"""The Great Expectations suite over data/filtered: a good dataset passes; datasets broken in one way each
fail naming the expectation that guards that invariant; Data Docs and the result JSON are written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from quality.validation.run import validate_dataset
from quality.validation.suites import (
    BAD_CHARS_REGEX,
    ID_REGEX,
    LANGUAGES_SUITE,
    NOT_BLANK_REGEX,
    ROWS_SUITE,
    SOURCE_SUITE,
)
from schemas.artifacts import write_parquet
from schemas.errors import PolyinstructError
from schemas.params import Params, parse_params
from schemas.records import SOURCE_SCHEMA, TRANSLATED_SCHEMA

N_RECORDS = 40
TARGETS = ("fra_Latn", "rus_Cyrl")
Rows = dict[str, list[dict[str, Any]]]  # file stem -> rows


def _source_rows() -> list[dict[str, Any]]:
    return [{"id": f"demo-{i}", "source": "demo",
             "instruction": f"Explain topic number {i} in two sentences.",
             "input": f"Context {i}: tabs\tand newlines\nare fine." if i % 3 == 0 else "",
             "output": f"Topic {i} is about item {i * 7}. It matters because of reason {i % 5}."}
            for i in range(N_RECORDS)]


def _translated(source: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    def tr(text: str) -> str:  # a stand-in translation: different text, empty stays empty
        return f"[{lang}] " + " ".join(reversed(text.split(" "))) if text else ""

    return [{"id": r["id"], "lang": lang, "instruction": tr(r["instruction"]), "input": tr(r["input"]),
             "output": tr(r["output"]), "model": "smoke:nllb-test", "smoke": True, "truncated_fields": [],
             "protected_spans_ok": True, "kept_verbatim": False} for r in source]


def _english(source: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": r["id"], "lang": "eng_Latn", "instruction": r["instruction"], "input": r["input"],
             "output": r["output"], "model": "source", "smoke": False, "truncated_fields": [],
             "protected_spans_ok": True, "kept_verbatim": False} for r in source]


def build_dataset(root: Path, mutate: Callable[[Rows, list[dict[str, Any]]], None] | None = None) -> Path:
    """root/source.parquet and root/filtered/{flores}.parquet, as the filter stage writes them."""
    source = _source_rows()
    files: Rows = {"eng_Latn": _english(source), **{lang: _translated(source, lang) for lang in TARGETS}}
    if mutate is not None:
        mutate(files, source)
    write_parquet(pa.Table.from_pylist(source, schema=SOURCE_SCHEMA), root / "source.parquet")
    for stem, rows in files.items():
        write_parquet(pa.Table.from_pylist(rows, schema=TRANSLATED_SCHEMA), root / "filtered" / f"{stem}.parquet")
    return root


def _text(html: str) -> str:
    """The visible text of a Data Docs page, whitespace collapsed."""
    html = re.sub(r"<(script|style).*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def params() -> Params:
    return parse_params({"languages": {"source": "eng_Latn", "targets": list(TARGETS)}})


def run(root: Path, params: Params) -> dict[str, Any]:
    return validate_dataset(root / "filtered", root / "source.parquet", root / "docs", params).summary


def failed(summary: dict[str, Any]) -> set[tuple[str, str, str | None, str | None]]:
    return {(f["suite"], f["expectation"], f["column"], f["lang"]) for f in summary["failures"]}


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, params: Params) -> tuple[Path, dict[str, Any]]:
    root = build_dataset(tmp_path_factory.mktemp("good"))
    return root, run(root, params)


def test_good_dataset_passes(good: tuple[Path, dict[str, Any]]) -> None:
    _, summary = good
    assert summary["failures"] == []
    assert summary["success"] is True
    assert summary["evaluated_expectations"] == summary["successful_expectations"] >= 45
    assert set(summary["suites"]) == {SOURCE_SUITE, LANGUAGES_SUITE, ROWS_SUITE}
    assert summary["rows"] == N_RECORDS * (1 + len(TARGETS))
    checks = {e["check"] for e in summary["expectations"]}
    assert {"(id, lang) unique", "configured language", "length", "not blank", "bad characters", "retention",
            "identical to source", "every language present", "ids in source", "one model", "smoke flag",
            "file holds its language", "file schema", "type", "not null"} <= checks


def test_data_docs_name_the_suites_and_results(good: tuple[Path, dict[str, Any]]) -> None:
    root, summary = good
    index = root / "docs" / "index.html"
    assert index.exists() and summary["data_docs"] == str(index)
    html = index.read_text(encoding="utf-8")
    for suite in (ROWS_SUITE, LANGUAGES_SUITE, SOURCE_SUITE):
        assert suite in html
    assert "'Success'" in html and "'Failed'" not in html  # one status per validation result
    pages = {p.stem: p.read_text(encoding="utf-8") for p in (root / "docs" / "validations").rglob("*.html")}
    assert set(pages) == {"polyinstruct-rows", "polyinstruct-languages", "polyinstruct-source"}
    assert all("Status: Succeeded" in _text(page) for page in pages.values())
    assert "Evaluated Expectations" in pages["polyinstruct-rows"] and "polyinstruct-validate" in html


def test_result_is_deterministic(good: tuple[Path, dict[str, Any]], params: Params) -> None:
    root, summary = good
    again = run(root, params)
    assert json.dumps(again, sort_keys=True) == json.dumps(summary, sort_keys=True)
    assert not re.search(r"20\d\d-?\d\d-?\d\dT", json.dumps(summary))  # no run times in the result


def _duplicate_pair(files: Rows, source: list[dict[str, Any]]) -> None:
    files["fra_Latn"].append(dict(files["fra_Latn"][3]))


def _unknown_language(files: Rows, source: list[dict[str, Any]]) -> None:
    files["deu_Latn"] = _translated(source, "deu_Latn")


def _empty_output(files: Rows, source: list[dict[str, Any]]) -> None:
    files["rus_Cyrl"][5]["output"] = ""


def _missing_language(files: Rows, source: list[dict[str, Any]]) -> None:
    del files["rus_Cyrl"]


def _low_retention(files: Rows, source: list[dict[str, Any]]) -> None:
    files["fra_Latn"] = files["fra_Latn"][:10]  # 10 of 40 = 0.25 < min_retention 0.5


BROKEN: dict[str, tuple[Callable[[Rows, list[dict[str, Any]]], None], tuple[str, str, str | None, str | None]]] = {
    "duplicate (id, lang)": (_duplicate_pair,
                             (ROWS_SUITE, "expect_compound_columns_to_be_unique", "id+lang", "fra_Latn")),
    "unknown language": (_unknown_language, (ROWS_SUITE, "expect_column_values_to_be_in_set", "lang", "deu_Latn")),
    "empty output": (_empty_output, (ROWS_SUITE, "expect_column_value_lengths_to_be_between", "output", "rus_Cyrl")),
    "missing language": (_missing_language,
                         (LANGUAGES_SUITE, "expect_column_distinct_values_to_contain_set", "lang", "rus_Cyrl")),
    "retention under minimum": (_low_retention,
                                (LANGUAGES_SUITE, "expect_column_values_to_be_between", "retention", "fra_Latn")),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_dataset_fails_naming_the_expectation(case: str, tmp_path: Path, params: Params) -> None:
    mutate, expected = BROKEN[case]
    summary = run(build_dataset(tmp_path, mutate), params)
    assert summary["success"] is False
    assert expected in failed(summary), summary["failures"]
    assert summary["unsuccessful_expectations"] >= 1
    assert all(f["observed"] is not None for f in summary["failures"])
    if case == "retention under minimum":
        retention = next(f for f in summary["failures"] if f["column"] == "retention")
        assert retention["observed"] == pytest.approx(0.25) and retention["kwargs"]["min_value"] == 0.5
    if case == "missing language":
        absent = [f for f in summary["failures"] if f["expectation"].endswith("contain_set")]
        assert [f["lang"] for f in absent] == ["rus_Cyrl"]
        assert absent[0]["observed"] == {"missing_count": 1, "partial_missing_list": ["rus_Cyrl"]}
    if case == "empty output":  # the same row also fails the blank check; nothing else fails
        assert {f["check"] for f in summary["failures"]} == {"length", "not blank"}
        assert summary["failures"][0]["observed"]["examples"] == [
            {"lang": "rus_Cyrl", "id": "demo-5", "output": ""}]
        # Data Docs show the failed validation: the index marks it, its page names the column.
        index = (tmp_path / "docs" / "index.html").read_text(encoding="utf-8")
        assert "'Failed'" in index and "'Success'" in index
        page = next((tmp_path / "docs" / "validations").rglob("polyinstruct-rows.html")).read_text(encoding="utf-8")
        assert "Status: Failed" in _text(page) and "Unsuccessful Expectations 2" in _text(page)


def _several_independent_defects(files: Rows, source: list[dict[str, Any]]) -> None:
    english = {r["id"]: r for r in files["eng_Latn"]}
    for row in files["fra_Latn"][:20]:  # half of French copied from English: share 0.5 > 0.2
        row.update({k: english[row["id"]][k] for k in ("instruction", "input", "output")})
    files["fra_Latn"][30]["instruction"] += "\ufffd"
    files["fra_Latn"][25]["smoke"] = False  # a smoke model's row not flagged as smoke
    files["rus_Cyrl"][0]["id"] = "demo-999"  # not a source id
    for row in files["rus_Cyrl"][10:15]:
        row["model"] = "smoke:other-model"


def test_careful_checks_each_name_their_defect(tmp_path: Path, params: Params) -> None:
    """Defects a careful engineer asserts against, planted in different rows, each caught by its own
    expectation and attributed to its language."""
    summary = run(build_dataset(tmp_path, _several_independent_defects), params)
    between = "expect_column_values_to_be_between"
    assert failed(summary) == {
        (LANGUAGES_SUITE, between, "identical_share", "fra_Latn"),
        (ROWS_SUITE, "expect_column_values_to_not_match_regex", "instruction", "fra_Latn"),
        (LANGUAGES_SUITE, between, "smoke_mismatch_rows", "fra_Latn"),
        (LANGUAGES_SUITE, between, "orphan_rows", "rus_Cyrl"),
        (LANGUAGES_SUITE, between, "models", "rus_Cyrl"),
    }
    share = next(f for f in summary["failures"] if f["column"] == "identical_share")
    assert share["observed"] == pytest.approx(0.5)


def test_wrong_file_schema_is_reported_not_crashed(tmp_path: Path, params: Params) -> None:
    root = build_dataset(tmp_path)
    table = pa.Table.from_pylist(_translated(_source_rows(), "rus_Cyrl"), schema=TRANSLATED_SCHEMA)
    write_parquet(table.drop_columns(["smoke"]), root / "filtered" / "rus_Cyrl.parquet")
    summary = run(root, params)
    assert (LANGUAGES_SUITE, "expect_column_values_to_be_in_set", "file_schema", "rus_Cyrl") in failed(summary)
    assert (ROWS_SUITE, "expect_column_values_to_not_be_null", "smoke", "rus_Cyrl") in failed(summary)


def test_cli_writes_result_and_exits_non_zero(tmp_path: Path) -> None:
    from dataset_builder.cli.app import app

    root = build_dataset(tmp_path, _empty_output)
    params_file = tmp_path / "params.yaml"
    params_file.write_text("languages: {source: eng_Latn, targets: [fra_Latn, rus_Cyrl]}\n", encoding="utf-8")
    result_path = tmp_path / "metrics" / "validation.json"
    outcome = CliRunner().invoke(app, [
        "validate", "--in", str(root / "filtered"), "--source", str(root / "source.parquet"),
        "--docs", str(tmp_path / "docs"), "--result", str(result_path), "--params", str(params_file)])
    assert outcome.exit_code != 0
    assert isinstance(outcome.exception, PolyinstructError)
    message = str(outcome.exception)
    assert "\n" not in message and message.startswith("validation failed: ") and "index.html" in message
    written = json.loads(result_path.read_text(encoding="utf-8"))
    assert written["success"] is False
    assert written["failures"][0]["expectation"] and "observed" in written["failures"][0]
    assert (tmp_path / "docs" / "index.html").exists()


@pytest.mark.parametrize(("text", "bad", "blank"), [
    ("plain text", False, False), ("tab\tnewline\n", False, False), ("cr\r", True, False), ("", False, True),
    ("  \u3000\n\u00a0", False, True), ("nul\x00", True, False), ("esc\x1b[0m", True, False),
    ("c1\x85", True, False), ("lost \ufffd char", True, False), ("emoji 🙂 ok", False, False),
])
def test_character_regexes_on_arrow_backed_strings(text: str, bad: bool, blank: bool) -> None:
    """The suite's regexes run in Arrow (RE2) on arrow-backed pandas, never in per-row Python `re`;
    "blank" means exactly what Python's str.isspace() means."""
    series = pd.Series([text], dtype="str")
    assert bool(series.str.contains(BAD_CHARS_REGEX).iloc[0]) is bad
    assert (not series.str.contains(NOT_BLANK_REGEX).iloc[0]) is blank is (not text.strip())
    assert bool(re.search(NOT_BLANK_REGEX, text)) is not blank
    assert not series.array._needs_python_regex(BAD_CHARS_REGEX)  # stays on the fast path
    assert not series.array._needs_python_regex(NOT_BLANK_REGEX)


def test_id_regex() -> None:
    series = pd.Series(["alpaca-12", "my-set-3", "alpaca-", "alpaca-1\n", "x"], dtype="str")
    assert series.str.contains(ID_REGEX).tolist() == [True, True, False, False, False]
