"""The SQL half of language ID (quality.langid): a text's prose (code, URLs, digits and punctuation stripped) and
the share of its letters in a script, as DuckDB expressions, so no per-row Python touches the full texts."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from schemas.languages import SCRIPT_LETTER_WEIGHT
from schemas.spans import CODE_LINES_SQL as _CODE_LINES
from schemas.spans import CODE_SPANS_SQL as _CODE_SPANS

# One of these is in every match of CODE_SPANS_SQL (a backtick, a URL, an e-mail address).
_CODE_SPAN_MARKS = ("`", "://", "www.", "@")

# ISO 15924 script -> RE2 character-class body of its letters (used inside `[...]` in DuckDB regexps).
SCRIPT_CLASSES: dict[str, str] = {
    "Latn": r"\p{Latin}", "Cyrl": r"\p{Cyrillic}", "Arab": r"\p{Arabic}", "Deva": r"\p{Devanagari}",
    "Beng": r"\p{Bengali}", "Gujr": r"\p{Gujarati}", "Guru": r"\p{Gurmukhi}", "Orya": r"\p{Oriya}",
    "Taml": r"\p{Tamil}", "Telu": r"\p{Telugu}", "Knda": r"\p{Kannada}", "Mlym": r"\p{Malayalam}",
    "Sinh": r"\p{Sinhala}", "Thai": r"\p{Thai}", "Laoo": r"\p{Lao}", "Khmr": r"\p{Khmer}",
    "Mymr": r"\p{Myanmar}", "Tibt": r"\p{Tibetan}", "Geor": r"\p{Georgian}", "Armn": r"\p{Armenian}",
    "Grek": r"\p{Greek}", "Hebr": r"\p{Hebrew}", "Ethi": r"\p{Ethiopic}", "Hang": r"\p{Hangul}",
    "Kore": r"\p{Hangul}\p{Han}", "Hans": r"\p{Han}", "Hant": r"\p{Han}",
    "Jpan": r"\p{Han}\p{Hiragana}\p{Katakana}", "Tfng": r"\p{Tifinagh}", "Olck": r"\p{Ol_Chiki}",
    "Thaa": r"\p{Thaana}",
}


def prose_sql(expr: str, max_chars: int) -> str:
    """SQL expression: the prose of `expr` (letters, marks and single spaces), at most `max_chars`."""
    clip = max(4 * max_chars, 400)  # code stripping may remove a lot; look a little further than needed
    clipped = f"left({expr}, {clip})"
    # Every code span needs one of these characters: a text without them skips that regexp (most do).
    spans = f"regexp_replace({clipped}, '{_CODE_SPANS}', ' ', 'g')"
    stripped = f"CASE WHEN {' OR '.join(f'contains({clipped}, {s!r})' for s in _CODE_SPAN_MARKS)} THEN {spans} " \
               f"ELSE {clipped} END"
    stripped = f"regexp_replace({stripped}, '{_CODE_LINES}', ' ', 'g')"
    # Every run of characters that are not letters or marks (whitespace included) becomes one space: in two passes,
    # the runs without a space first, then the runs of spaces, because RE2 pays per match and most runs are one
    # space between two words (the same result: a run of spaces comes out of each run, and only of one).
    others = f"regexp_replace({stripped}, '[^\\p{{L}}\\p{{M}} ]+', ' ', 'g')"
    letters = f"regexp_replace({others}, '  +', ' ', 'g')"
    return f"left(trim({letters}), {max_chars})"


def script_fraction_sql(prose: str, script: str) -> str:
    """SQL expression: the fraction of letters of `prose` in `script`, a dense script's characters
    weighing SCRIPT_LETTER_WEIGHT times (so Chinese with a few English names stays Chinese); NULL when it has
    no letters or the script is unknown here."""
    cls = SCRIPT_CLASSES.get(script)
    if cls is None:
        return "NULL::DOUBLE"
    weight = SCRIPT_LETTER_WEIGHT.get(script, 1)
    # The prose's only non-letters are single spaces and marks: without its spaces (a plain replace), the regexps
    # below match only marks and letters of other scripts, rarely, and RE2 pays per match.
    words = f"replace({prose}, ' ', '')"
    letters = f"length(regexp_replace({words}, '[^\\p{{L}}]+', '', 'g'))"
    in_script = f"length(regexp_replace({words}, '[^{cls}]+', '', 'g'))"
    return (f"CASE WHEN {letters} = 0 THEN NULL "
            f"ELSE {weight} * {in_script} / ({letters} + {weight - 1} * {in_script}) END")


def min_prose_chars(script: str, min_chars: int) -> int:
    """`min_chars` in characters of this script (a Chinese character counts as about three letters)."""
    return max(1, min_chars // SCRIPT_LETTER_WEIGHT.get(script, 1))


def prose_and_scripts(texts: Sequence[str], scripts: Sequence[str], max_chars: int) \
        -> tuple[list[str | None], dict[str, list[float | None]]]:
    """Run the SQL prose extraction and script fractions on in-memory texts."""
    con = duckdb.connect()
    try:
        con.register("texts", pa.table({"text": pa.array(list(texts), pa.string())}))
        prose = prose_sql("coalesce(text, '')", max_chars)
        columns = "".join(f", {script_fraction_sql('prose', s)} AS \"{s}\"" for s in scripts)
        table = con.sql(f"SELECT prose{columns} FROM (SELECT {prose} AS prose FROM texts)").to_arrow_table()
    finally:
        con.close()
    return table.column("prose").to_pylist(), {s: table.column(s).to_pylist() for s in scripts}
