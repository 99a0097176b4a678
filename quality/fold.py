"""The text fold of the tokeniser: NFKC, then Python's `str.casefold`, in DuckDB without Python where that
is provably the same.

DuckDB has no NFKC and its `lower` is not `casefold`, so the fold is a Python UDF (`pi_fold`), which holds the
GIL: DuckDB's threads wait on each other. But a text is its own NFKC form when none of its characters can
change under NFKC (`nfkc_unstable`), and then its casefold is DuckDB's `lower` wherever, character by
character, the two agree (casefold is context-free; `lower_differs` compares every code point in the
running DuckDB and Python). So `pi_fold_text` sends only the texts holding one of those characters (Greek
final sigma, German sharp s, full-width forms, combining marks ...) to the UDF; measured on the 500K-row
real-shape set, 0.5% of the fields.
"""

from __future__ import annotations

import functools
import sys
import unicodedata

import duckdb
import pyarrow as pa

# Hangul medial vowels and final consonants: they compose with a preceding syllable (algorithmically,
# so no decomposition table names them).
_HANGUL_JAMO_VT = (*range(0x1161, 0x1176), *range(0x11A8, 0x11C3))


def fold(texts: pa.Array) -> pa.Array:
    """NFKC + casefold, the one normalisation step DuckDB lacks. Python's unicodedata has a quick-check
    fast path (already-normalised text returns at once), many times faster than Arrow's utf8proc."""
    return pa.array([unicodedata.normalize("NFKC", t).casefold() if t is not None else None
                     for t in texts.to_pylist()], pa.string())


def _code_points() -> range:
    return range(sys.maxunicode + 1)


@functools.cache
def nfkc_unstable() -> frozenset[int]:
    """Code points whose presence can make NFKC change a text: those NFKC changes on their own, every
    combining mark (reordering), and every character that composes with the one before it (the second of a
    two-character canonical decomposition, and Hangul jamo). A text with none of them is its own NFKC form."""
    found: set[int] = set(_HANGUL_JAMO_VT)
    for cp in _code_points():
        if 0xD800 <= cp <= 0xDFFF:
            continue
        char = chr(cp)
        if unicodedata.combining(char) or unicodedata.normalize("NFKC", char) != char:
            found.add(cp)
        decomposition = unicodedata.decomposition(char)
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                found.add(int(parts[1], 16))
    return frozenset(found)


@functools.cache
def _casefold_changes() -> frozenset[int]:
    return frozenset(cp for cp in _code_points() if not 0xD800 <= cp <= 0xDFFF and chr(cp).casefold() != chr(cp))


def duckdb_lowered(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """Code point -> DuckDB's `lower` of it, for the code points it changes."""
    return dict(con.execute(
        "SELECT cp, lower(chr(cp::INTEGER)) AS low FROM range(?) t(cp) WHERE cp NOT BETWEEN 55296 AND 57343 "
        "AND low <> chr(cp::INTEGER)", [sys.maxunicode + 1]).fetchall())


def lower_differs(con: duckdb.DuckDBPyConnection, lowered: dict[int, str] | None = None) -> frozenset[int]:
    """Code points whose DuckDB `lower` differs from Python's casefold (either one changes the rest alike:
    they leave them as they are)."""
    lowered = duckdb_lowered(con) if lowered is None else lowered
    return frozenset(cp for cp in lowered.keys() | _casefold_changes()
                     if lowered.get(cp, chr(cp)) != chr(cp).casefold())


def lowers_into_ascii_word(con: duckdb.DuckDBPyConnection) -> frozenset[int]:
    """Code points outside ASCII whose DuckDB `lower` holds an ASCII word character (`\\w` of RE2's `\\b`)."""
    return frozenset(cp for (cp,) in con.execute(
        "SELECT cp FROM range(128, ?) t(cp) WHERE cp NOT BETWEEN 55296 AND 57343 "
        "AND regexp_matches(lower(chr(cp::INTEGER)), '[0-9A-Za-z_]')", [sys.maxunicode + 1]).fetchall())


def char_class(code_points: frozenset[int]) -> str:
    """An RE2 character class of the code points, as ranges."""
    ranges: list[list[int]] = []
    for cp in sorted(code_points):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "[" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


def install(con: duckdb.DuckDBPyConnection) -> None:
    """The UDF `pi_fold` and the macro `pi_fold_text(x)`, which calls it only where DuckDB's lower would differ,
    and skips `lower` where no character of the text has a lower case (DuckDB's `lower` maps code point by
    code point). `lower` was the tokeniser's costliest pass (about 3.5 CPU-s at 500K rows), and most fields
    of uncased scripts (Han, Arabic, Devanagari ...) hold no cased character: one regexp scan is cheaper."""
    con.create_function("pi_fold", fold, ["VARCHAR"], "VARCHAR", type="arrow", side_effects=False)
    con.execute(f"CREATE OR REPLACE MACRO pi_fold_text(x) AS {fold_sql(con, 'x')}")


def fold_sql(con: duckdb.DuckDBPyConnection, text: str) -> str:
    """SQL of `text` folded: as it is where no character would change (one scan of the text, where two tests
    in turn would scan an uncased text twice; in cased text the first cased character ends the scan), else
    through the UDF where DuckDB's lower would differ, else DuckDB's lower."""
    lowered = duckdb_lowered(con)
    python_only = nfkc_unstable() | lower_differs(con, lowered)
    return (f"CASE WHEN NOT regexp_matches({text}, '{char_class(python_only | frozenset(lowered))}') THEN {text} "
            f"WHEN regexp_matches({text}, '{char_class(python_only)}') THEN pi_fold({text}) ELSE lower({text}) END")
