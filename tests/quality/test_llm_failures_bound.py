"""The cheap bound on English words left in a translation (quality.llm_failures.english_bound_sql) never
undercounts the exact count it stands for, equals it where nothing is dropped, and steps aside (NULL) where
lowering or dropping a quotation could make a word; the flags are the exact count's."""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa
import pytest

from quality import llm_failures
from schemas.params import parse_params

TRICKY = [
    "The cat and the dog", "THE CAT AND THE DOG", "tHe AnD wItH tHaT tHiS", "theand the_and the1 and",
    "x = the(and)\nthe and with that this\n    the and which", "th\"q\"e and with that this your", "“the” and this",
    "«the and with that this»", "the İs thİs Kelvin \u212aey", "thoſe theſe the", "the\r\nand\rwith\r\nthat",
    "le chat et le chien", "そして the と and と with と that と this", "aboutabout from-into, been, have!has?",
    "about; been", "„the and with that this“ the", "「the and」 with that this these", "", "\n\n",
    "the\u00a0and\u2009with",
]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.register("texts", pa.table({"i": list(range(len(TRICKY))), "x": TRICKY}))
    return connection


def counts(con: duckdb.DuckDBPyConnection) -> list[tuple[int, int | None]]:
    return con.execute(f"SELECT {llm_failures.english_words_sql('x')}, {llm_failures.english_bound_sql(con, 'x')} "
                       "FROM texts ORDER BY i").fetchall()


def test_bound_never_undercounts_and_is_exact_without_code_lines(con: duckdb.DuckDBPyConnection) -> None:
    for text, (exact, bound) in zip(TRICKY, counts(con), strict=True):
        assert bound is None or bound >= exact, text
        if bound is not None and not re.search(r"[{}();=<>]|^ {4}", text, re.M):  # no code line dropped
            assert bound == exact, text
    assert counts(con)[0] == (3, 3) and counts(con)[13] == (5, 5) and counts(con)[14] == (0, 2)


def test_bound_steps_aside_where_a_word_can_appear(con: duckdb.DuckDBPyConnection) -> None:
    bounds = dict(zip(TRICKY, (b for _, b in counts(con)), strict=True))
    for text in ("th\"q\"e and with that this your", "“the” and this", "the İs thİs Kelvin \u212aey",
                 "„the and with that this“ the", "「the and」 with that this these"):
        assert bounds[text] is None, text
    assert bounds["thoſe theſe the"] == 2  # long s is no s (to lower nor the bound): "the|ſe", "the"


def test_flags_are_the_exact_counts() -> None:
    # One source row per translation, each translation a tricky text in the output: english_left exactly
    # where the exact count reaches min_english_words.
    params = parse_params({}, "test").quality.filters.llm_failures
    texts = TRICKY + [t + " " + t for t in TRICKY]
    con = duckdb.connect()
    rows = [{"rid": 2 * i + k, "id": str(i), "is_source": k == 0, "instruction": "Write a short note about it.",
             "input": "", "output": "A note." if k == 0 else text} for i, text in enumerate(texts) for k in (0, 1)]
    con.register("rows_in", pa.Table.from_pylist(rows))
    con.execute("CREATE TABLE rows AS SELECT *, CASE WHEN is_source THEN 'eng_Latn' ELSE 'fra_Latn' END AS lang "
                "FROM rows_in")
    llm_failures.create_table(con, params)
    got = dict(con.execute("SELECT rid, llm_detail FROM llm_flags WHERE llm_reason = 'english_left'").fetchall())
    record = "instruction || chr(10) || input || chr(10) || output"
    want = {rid: f"{n} English function words left in the translation" for rid, n in con.execute(
        f"SELECT rid, {llm_failures.english_words_sql(record)} AS n FROM rows WHERE NOT is_source "
        f"AND n >= {params.min_english_words}").fetchall()}
    assert got == want and len(want) >= 5
