"""Tasks that do not survive translation, detected from the English source alone.

A task whose answer depends on the form of English (spelling, letters, capitalization, rhyme, puns, anagrams,
parts of speech and tenses of a given English sentence, synonyms and idioms, "in English") becomes wrong or
meaningless once translated: the translated answer no longer answers the translated question. The decision
needs only the English instruction, so translate can skip these records (`translate.skip_language_bound`)
and quality can reject or flag them (`quality.filters.language_bound`), with the same rules.

The rules are case-insensitive RE2 patterns (DuckDB's and Arrow's regex engine, so both stages run them
vectorised over a column), one per family, so a reject says which matched. They were chosen on half of the
zh dev set (ids with an even CRC32) by the share of their matches that GPT-4o scored 1-2 against the share
it scored 5; `benchmarks/bench_fidelity.py` reports precision and recall on the other half. Families that
matched mostly well-rated translations were left out ("haiku", "alphabetical order", "word count", "the
word '...'", sentence types, active/passive voice): they are tasks a good translator can carry over. By default
only the strongest families reject; the rest are kept and counted (params: quality.filters.language_bound).
"""

from __future__ import annotations

# family -> pattern (RE2 syntax; matched case-insensitively against the English instruction)
RULES: dict[str, str] = {
    "spelling": r"\b(?:spell|spelling|spelled|spelt|misspell\w*)\b",
    "letters": r"\b(?:letters|(?:starts?|begins?|ends?|starting|beginning|ending) with (?:the |a )?letter)\b",
    "capitalization": r"\b(?:capitali[sz](?:e|es|ed|ing|ation)|upper ?case|lower ?case|title case)\b",
    "sound_play": r"\b(?:puns?|rhym\w*|anagrams?|palindrom\w*|acrostic|syllables?|vowels?|consonants?"
                  r"|tongue[- ]twisters?)\b",
    "grammar_form": r"\b(?:parts? of speech|conjugat\w*|singular|plural form|grammatical(?:ly)?|grammar)\b",
    "word_sense": r"\b(?:synonyms?|antonyms?|idioms?|idiomatic|slang|root words?|homophones?)\b",
    "english": r"\b(?:in english|english (?:words?|sentences?|grammar|phrases?|equivalent)"
               r"|(?:formal|proper|british|american) english)\b",
}
# Families rejected by default: on the tuning half they matched at least about as many translations GPT-4o rated
# 1-2 as ones it rated 5. The others are kept and counted by default (a good translator often carries "give a
# synonym of X" or "words that start with the letter B" over into a task that works in the target language).
REJECT_DEFAULT: tuple[str, ...] = ("spelling", "sound_play", "english")
FLAG_DEFAULT: tuple[str, ...] = ("letters", "capitalization", "grammar_form", "word_sense")


def pattern(families: tuple[str, ...] | list[str]) -> str:
    """One case-insensitive RE2 pattern for the given families."""
    return "(?i)(?:" + "|".join(f"(?:{RULES[f]})" for f in families) + ")"


def sql_family(column: str, families: tuple[str, ...] | list[str]) -> str:
    """DuckDB SQL: the first family (in RULES order) whose rule matches `column`, else NULL."""
    cases = " ".join(f"WHEN regexp_matches({column}, {_quoted(pattern([f]))}) THEN '{f}'"
                     for f in RULES if f in families)
    return f"CASE {cases} END" if cases else "NULL::VARCHAR"


def sql_match(column: str, families: tuple[str, ...] | list[str]) -> str:
    """DuckDB SQL: the text (lower-cased) that the first matching family's rule matched, else NULL."""
    cases = " ".join(f"WHEN regexp_matches({column}, {_quoted(pattern([f]))}) "
                     f"THEN lower(regexp_extract({column}, {_quoted(pattern([f]))}, 0))"
                     for f in RULES if f in families)
    return f"CASE {cases} END" if cases else "NULL::VARCHAR"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
