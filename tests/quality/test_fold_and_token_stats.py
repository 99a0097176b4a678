"""The tokeniser's fold and token statistics are the ones the stage always computed: `pi_fold_text` equals
NFKC + casefold for every code point and for tricky sequences while sending plain text to DuckDB's lower, and
the Polars/numpy statistics equal DuckDB's `list_unique` and the longest-run macro on random lists."""

from __future__ import annotations

import sys
import unicodedata

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from quality import filters, fold, token_stats
from schemas.params import parse_params


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    filters.install_macros(connection, parse_params({}, "test").quality)
    return connection


def python_fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def folded(con: duckdb.DuckDBPyConnection, texts: list[str]) -> list[str]:
    con.register("texts", pa.table({"i": list(range(len(texts))), "x": texts}))
    return [r[0] for r in con.execute("SELECT pi_fold_text(x) FROM texts ORDER BY i").fetchall()]


def test_fold_equals_nfkc_casefold_for_every_code_point(con: duckdb.DuckDBPyConnection) -> None:
    chars = [chr(cp) for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF]
    got = folded(con, chars)
    wrong = [(hex(ord(c)), g, python_fold(c)) for c, g in zip(chars, got, strict=True) if g != python_fold(c)]
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("text", [
    "Straße", "ΣΟΦΟΣ σοφός", "ﬁnd ＡＢＣ　１２３", "e\u0301 cafe\u0301", "\u1100\u1161\u11a8 한국어",
    "İstanbul", "\u13a0\u13f8 Cherokee", "µ Å K", "a\u0328\u0301 a\u0301\u0328", "ǅ ǈ", "x\u0345\u0313",
    "Ünïcödé plain", "日本語のテキスト", "नमस्ते दुनिया", "مَرْحَبًا", "\u0b47\u0b3e", "ﷺ ㍿",
])
def test_fold_equals_nfkc_casefold_on_sequences(con: duckdb.DuckDBPyConnection, text: str) -> None:
    assert folded(con, [text]) == [python_fold(text)]


def test_plain_text_takes_duckdb_and_the_rest_python(con: duckdb.DuckDBPyConnection) -> None:
    python_only = fold.char_class(fold.nfkc_unstable() | fold.lower_differs(con))
    routed = dict(con.execute(
        f"SELECT x, regexp_matches(x, '{python_only}') FROM (VALUES ('Une journée à Paris'), ('Привет, мир'), "
        "('Straße'), ('σοφός'), ('ＡＢＣ'), ('cafe\u0301')) t(x)").fetchall())
    assert routed == {"Une journée à Paris": False, "Привет, мир": False, "Straße": True, "σοφός": True,
                      "ＡＢＣ": True, "cafe\u0301": True}


def test_token_stats_equal_duckdb_list_functions(con: duckdb.DuckDBPyConnection) -> None:
    # Random hash lists with repeats and runs, some fields empty; batches of a few rows so offsets start
    # mid-buffer.
    rng = np.random.default_rng(0)
    rows = []
    for rid in range(400):
        fields = []
        for _ in range(3):
            n = int(rng.choice([0, 1, 2, 5, 30, 120]))
            values = rng.integers(0, int(rng.choice([2, 5, 1000])), n)
            values = np.repeat(values, rng.integers(1, 12, n))[:n] if n and rid % 3 == 0 else values
            fields.append([int(v) * 0x9E3779B97F4A7C15 % 2**64 for v in values])
        rows.append({"rid": rid, "hi": fields[0], "hn": fields[1], "ho": fields[2]})
    con.register("lists", pa.Table.from_pylist(rows, schema=pa.schema(
        [("rid", pa.int64()), *((c, pa.list_(pa.uint64())) for c in ("hi", "hn", "ho"))])))
    con.execute("CREATE OR REPLACE TABLE feat AS SELECT rid, list_concat(hi, hn, ho) AS token_hashes, "
                "len(hi) AS n_instruction, len(hn) AS n_input FROM lists")
    saved = token_stats.BATCH_ROWS
    token_stats.BATCH_ROWS = 7
    try:
        token_stats.create_table(con)
    finally:
        token_stats.BATCH_ROWS = saved
    differ = con.execute("""
        SELECT count(*) FROM lists l JOIN token_stats t USING (rid)
        WHERE t.uniq_all <> list_unique(list_concat(l.hi, l.hn, l.ho)) OR t.uniq_instruction <> list_unique(l.hi)
          OR t.uniq_input <> list_unique(l.hn) OR t.uniq_output <> list_unique(l.ho)
          OR t.token_run <> greatest(pi_longest_run(l.hi), pi_longest_run(l.hn), pi_longest_run(l.ho))
    """).fetchall()[0][0]
    assert con.execute("SELECT count(*), max(token_run) FROM token_stats").fetchall()[0][0] == 400
    assert con.execute("SELECT max(token_run) > 5 FROM token_stats").fetchall()[0][0]
    assert differ == 0


def test_longest_runs_by_segment() -> None:
    values = np.array([1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 4], np.uint64)
    # segments: [1 1 2] [2 2] [] [3 3 4 4] [4 4]: a run split by a segment boundary counts per segment
    offsets = np.array([0, 3, 5, 5, 9, 11])
    assert token_stats.longest_runs(values, offsets).tolist() == [2, 2, 0, 2, 2]


def test_duckdb_lower_is_code_point_by_code_point(con: duckdb.DuckDBPyConnection) -> None:
    # pi_fold_text leaves a text as it is when none of its characters changes under lower: true only if
    # lower maps each code point alone (no context, no expansion), which every cased one is checked for here.
    lowered = fold.duckdb_lowered(con)
    chars = "".join(chr(cp) for cp in sorted(lowered))
    whole = con.execute("SELECT lower(?)", ["x" + chars + "Σ"]).fetchall()[0][0]
    assert whole == "x" + "".join(lowered[cp] for cp in sorted(lowered)) + lowered[ord("Σ")]
    assert all(len(low) == 1 for low in lowered.values())


@pytest.mark.parametrize("text", ["日本語のテキスト", "مرحبا بالعالم", "नमस्ते दुनिया", "plain lowercase 123", ""])
def test_text_without_cased_characters_is_left_as_it_is(con: duckdb.DuckDBPyConnection, text: str) -> None:
    cased = fold.char_class(frozenset(fold.duckdb_lowered(con)))
    assert con.execute(f"SELECT regexp_matches(?, '{cased}')", [text]).fetchall()[0][0] is False
    assert folded(con, [text]) == [python_fold(text)] == [text]


@pytest.mark.parametrize("text", [
    "ABC straße", "Abc ΣΟΦΟΣ", "plain text then ＡＢＣ", "日本語 then Straße", "x" * 500 + "ß", "ß" + "x" * 500,
    "lower only then Upper", "no cased 123 然后 ﬁ", "İ", "\u0301", "A", "a",
])
def test_fold_finds_a_later_python_only_character(con: duckdb.DuckDBPyConnection, text: str) -> None:
    # pi_fold_text's first test stops at the first character that would change, cased or not: a character
    # only Python folds right, later in the text, must still send the text to the UDF.
    assert folded(con, [text]) == [python_fold(text)]


@pytest.mark.parametrize("tokens", [
    [], ["a" * 40], ["b" * 31, "c"], ["x" * 29, "y" * 29], ["ab" * 20, "q" * 35, "r" * 50], ["", "t" * 30],
    ["u" + "v" * 33 + "u"], ["w" * 29 + "é" * 30], ["é" * 31],
])
def test_char_run_is_the_longest_run_in_long_tokens(con: duckdb.DuckDBPyConnection, tokens: list[str]) -> None:
    got = con.execute("SELECT pi_char_run(?::VARCHAR[])", [tokens]).fetchall()[0][0]
    assert got == max((_longest_char_run(t) for t in tokens if len(t) >= 30), default=0)


def _longest_char_run(token: str) -> int:
    best = run = 0
    for k, char in enumerate(token):
        run = run + 1 if k and token[k - 1] == char else 1
        best = max(best, run)
    return best
