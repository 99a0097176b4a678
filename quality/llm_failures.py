"""How LLM translators fail where a translation model does not, each with its own reason:

- `llm_chatter`: talk about the translation instead of (or around) it: "Here is the translation:",
  "Bitte geben Sie die deutsche Übersetzung...", "以下是翻译", a preamble ("Sure!", "Voici", "好的") opening
  a translated instruction; only where the English source says nothing of the kind.
- `llm_answered`: the translated instruction grew far beyond what the language's length ratio allows (it
  answers or lists examples instead of translating): `max_instruction_growth` times the language's median.
- `english_left`: English left untranslated inside a translated field: at least `min_english_words` English
  function words ("the", "which", "would", ...) outside code-looking lines and quotations.

All three are vectorised DuckDB regexes over columns (no Python per row). The patterns cover many languages;
they are written for the general case, not tuned on one dev set.
"""

from __future__ import annotations

import re

import duckdb

from quality import fold
from schemas.params import LlmFailuresParams

# Words for "translation" across languages (stems), and English meta-talk about one.
_TRANSLATION_TALK = (
    r"(?i)(?:translat|übersetz|tradu[cçz]|перевод|перекла|превод|翻译|翻譯|翻訳|번역|ترجم|अनुवाद|tłumacz|vertal|"
    r"översätt|oversett|oversæt|käänn|çevir|překl|prekl|μετάφρασ|תרגום|terjemah|fordít|as an ai|language model|"
    r"sprachmodell|modèle de langage|modelo de lenguaje|语言模型|言語モデル)"
)
_SOURCE_TALK = r"(?i)(?:translat|language|as an ai|interpret)"
# A preamble opening a translated instruction, in many languages.
_PREAMBLE = (
    r"(?i)^\s*(?:sure|certainly|of course|here is|here's|here are|gerne|natürlich|hier ist|hier sind|voici|"
    r"bien sûr|aquí (?:está|tienes)|claro[,!]|por supuesto|certo[,!]|ecco|конечно|вот перевод|好的|当然|以下是|はい|"
    r"もちろん|물론)"
)
_SOURCE_PREAMBLE = r"(?i)^\s*(?:sure|certainly|of course|here|below|the following|following|yes|ok)"
# English function words that are not words of other major Latin-script languages.
_ENGLISH_WORDS = (r"\b(?:the|and|with|that|this|your|are|were|have|has|which|what|would|should|there|their|they|"
                  r"these|those|from|into|about|been)\b")
_CODE_LINE = r"(?m)^(?:.*[{}();=<>].*| {4}.*)$"
_QUOTED = r"\"[^\"\n]*\"|“[^”\n]*”|„[^“”\n]*[“”]|«[^»\n]*»|「[^」\n]*」"
_QUOTE_OPENERS = "\"“„«「"  # the first character of each _QUOTED form
# The same words in any ASCII case (`[tT][hH][eE]`), for text that was not lowered.
ENGLISH_WORDS_ANY_CASE = re.sub(r"(?<=[:|])[a-z]+(?=[|)])",
                                lambda m: "".join(f"[{c}{c.upper()}]" for c in m.group()), _ENGLISH_WORDS)


def _sql(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def english_words_sql(text: str) -> str:
    """The number of English function words of `text` outside code lines and quotations (lowered)."""
    return (f"len(regexp_extract_all(lower(regexp_replace(regexp_replace({text}, {_sql(_CODE_LINE)}, '', 'g'), "
            f"{_sql(_QUOTED)}, '', 'g')), {_sql(_ENGLISH_WORDS)}))")


def english_bound_sql(con: duckdb.DuckDBPyConnection, text: str) -> str:
    r"""An upper bound of `english_words_sql(text)` in one regexp pass, NULL where none is cheap.

    The exact count (two regexp_replace passes and a lower over the whole record) was 70% of this step's
    CPU (7.7 of 11 CPU-s at 500K rows), and it only matters from `min_english_words` up. A match of
    `\b(word)\b` is a whole run of ASCII word characters, so: lowering changes no run where no character
    lowers to an ASCII word character but A-Z (`fold.lowers_into_ascii_word`: U+0130, U+212A), which the
    any-case pattern matches as lower would; dropping code lines drops whole lines and their runs, leaving
    the others as they were; dropping quotations can join two runs into a new one, so a text holding a
    quotation mark gets no bound."""
    careful = fold.char_class(fold.lowers_into_ascii_word(con) | {ord(c) for c in _QUOTE_OPENERS})
    return (f"CASE WHEN NOT regexp_matches({text}, {_sql(careful)}) "
            f"THEN len(regexp_extract_all({text}, {_sql(ENGLISH_WORDS_ANY_CASE)})) END")


def create_table(con: duckdb.DuckDBPyConnection, params: LlmFailuresParams) -> None:
    """Table `llm_flags` (rid, llm_reason, llm_detail) over translated rows."""
    text, source = (f"{t}.instruction || chr(10) || {t}.input || chr(10) || {t}.output" for t in ("t", "s"))
    # Below the threshold the bound stands for the count: only `>= min_english_words` reads it.
    english = (f"CASE WHEN t.english_bound < {params.min_english_words} THEN t.english_bound "
               f"ELSE {english_words_sql(text)} END")
    bound = english_bound_sql(con, "instruction || chr(10) || input || chr(10) || output")
    # Growth against the language's median *instruction* ratio: the whole-record ratio would also move with
    # the outputs, which in generate mode are written, not translated.
    growth = "ln((length(t.instruction) + 1) / (length(s.instruction) + 1)) - coalesce(ir.med, 0)"
    con.execute(f"""
CREATE OR REPLACE TABLE llm_flags AS
SELECT rid,
  CASE WHEN chatter IS NOT NULL THEN 'llm_chatter' WHEN answered THEN 'llm_answered'
       WHEN english_words >= {params.min_english_words} THEN 'english_left' END AS llm_reason,
  CASE WHEN chatter IS NOT NULL THEN chatter
       WHEN answered THEN printf('translated instruction %d chars for %d in the source (%.1fx the language''s ratio)',
                                 t_len, s_len, exp(growth))
       WHEN english_words >= {params.min_english_words}
         THEN printf('%d English function words left in the translation', english_words) END AS llm_detail
FROM (
  SELECT t.rid, length(t.instruction) AS t_len, length(s.instruction) AS s_len, {growth} AS growth,
    CASE WHEN regexp_matches({text}, {_sql(_TRANSLATION_TALK)}) AND NOT regexp_matches({source}, {_sql(_SOURCE_TALK)})
           THEN 'talks about the translation: ' || regexp_extract({text}, {_sql(_TRANSLATION_TALK)}, 0)
         WHEN regexp_matches(t.instruction, {_sql(_PREAMBLE)})
              AND NOT regexp_matches(s.instruction, {_sql(_SOURCE_PREAMBLE)})
           THEN 'instruction opens with a preamble: ' || regexp_extract(t.instruction, {_sql(_PREAMBLE)}, 0)
    END AS chatter,
    length(t.instruction) >= 40 AND {growth} > ln({params.max_instruction_growth}) AS answered,
    CASE WHEN {params.enabled} THEN {english} ELSE 0 END AS english_words
  FROM (SELECT *, {bound} AS english_bound FROM rows WHERE NOT is_source AND {params.enabled}) t
    JOIN rows s ON s.is_source AND s.id = t.id LEFT JOIN (
    SELECT t.lang, median(ln((length(t.instruction) + 1) / (length(s.instruction) + 1))) AS med
    FROM rows t JOIN rows s ON s.is_source AND s.id = t.id WHERE NOT t.is_source GROUP BY t.lang
  ) ir ON ir.lang = t.lang
  WHERE NOT t.is_source AND {params.enabled}
)
WHERE chatter IS NOT NULL OR answered OR english_words >= {params.min_english_words}
""")
