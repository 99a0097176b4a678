"""quality.lid_sql's expressions are cheaper rewrites of plain definitions (fewer RE2 matches): here they are
checked against those definitions, written out the direct way, on texts chosen to break a careless rewrite."""

from __future__ import annotations

import duckdb
import pytest

from quality.lid_sql import SCRIPT_CLASSES, prose_sql, script_fraction_sql
from schemas.languages import SCRIPT_LETTER_WEIGHT
from schemas.spans import CODE_LINES_SQL, CODE_SPANS_SQL

TEXTS = [
    "Plain words only",
    "  leading, trailing;   and\tmixed \n\n whitespace  ",
    "Punctuation... next to — dashes -- and «quotes» 123 456!",
    "Mail me at someone@example.org or see https://example.com/a?b=c and www.example.net today",
    "Inline `code()` and a fence:\n```python\nx = 1\n```\nthen prose, then an unclosed ```fence\nrest",
    "Back`tick alone, an @ alone, a :// alone, www alone",
    "def add(a, b):\n    return a + b\nprint(add(2, 3))\nAnd some prose after the code.",
    "हिन्दी में लिखा गया वाक्य, मात्राओं के साथ।",  # Devanagari: vowel signs are marks of the script
    "Ελληνικά και English μαζί, 混合 中文 文本 with かな and カナ",
    "e\u0301 combining acute, n\u0303, a\u0308\u0308 double marks, \u0363 a combining Latin letter",
    "Ⅻ Roman numeral, ª ordinal, ʰ modifier, ﬁ ligature, Ǆ titlecase",
    "\u00a0no-break\u00a0spaces\u2003em\u2003spaces\u200bzero\u200bwidth",
    "",
    "1234 5678 !!! ???",
    "x" * 900 + " tail beyond the clip",
    ("word " * 300).strip(),
]


def _plain_prose(expr: str, max_chars: int) -> str:
    """The definition: code spans and code lines out, every run of non-letters (marks are letters here) one space."""
    clip = max(4 * max_chars, 400)
    stripped = f"regexp_replace(left({expr}, {clip}), '{CODE_SPANS_SQL}', ' ', 'g')"
    stripped = f"regexp_replace({stripped}, '{CODE_LINES_SQL}', ' ', 'g')"
    return f"left(trim(regexp_replace({stripped}, '[^\\p{{L}}\\p{{M}}]+', ' ', 'g')), {max_chars})"


def _plain_fraction(prose: str, script: str) -> str:
    """The definition: letters in the script over all letters, a dense script's weighing more."""
    cls, weight = SCRIPT_CLASSES[script], SCRIPT_LETTER_WEIGHT.get(script, 1)
    letters = f"length(regexp_replace({prose}, '[^\\p{{L}}]', '', 'g'))"
    in_script = f"length(regexp_replace({prose}, '[^{cls}]', '', 'g'))"
    return (f"CASE WHEN {letters} = 0 THEN NULL "
            f"ELSE {weight} * {in_script} / ({letters} + {weight - 1} * {in_script}) END")


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT * FROM (SELECT unnest($1::VARCHAR[]) AS text)", [TEXTS])
    yield connection
    connection.close()


@pytest.mark.parametrize("max_chars", [20, 200])
def test_prose_is_the_plain_definition(con: duckdb.DuckDBPyConnection, max_chars: int) -> None:
    found = con.execute(f"SELECT text, {prose_sql('text', max_chars)}, {_plain_prose('text', max_chars)} FROM t"
                        ).fetchall()
    assert len(found) == len(TEXTS)
    for text, prose, plain in found:
        assert prose == plain, text
    # and it is prose: the code, the URL and the address are gone, one space between words
    by_text = {text: prose for text, prose, _ in found}
    mail = by_text[TEXTS[3]]
    assert "example" not in mail and "someone" not in mail and mail.startswith("Mail me at or see")
    assert "  " not in "".join(by_text.values())


@pytest.mark.parametrize("script", sorted(SCRIPT_CLASSES))
def test_script_fraction_is_the_plain_definition(con: duckdb.DuckDBPyConnection, script: str) -> None:
    found = con.execute(f"SELECT prose, {script_fraction_sql('prose', script)}, {_plain_fraction('prose', script)} "
                        f"FROM (SELECT {prose_sql('text', 200)} AS prose FROM t)").fetchall()
    for prose, fraction, plain in found:
        assert fraction == plain, (script, prose)
    if script in ("Latn", "Hans"):  # the texts mix these with others: the fraction is exercised, not just 0/1
        assert any(fraction is not None and 0 < fraction < 1 for _, fraction, _ in found)
