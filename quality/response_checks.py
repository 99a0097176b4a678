"""Checks for generated answers (Bactrian-X's recipe: the output written by an LLM, not translated).

An assistant model can answer an instruction with a refusal ("I'm sorry, but I can't ...") or wrap
it in chatter about itself ("As an AI language model, ..."). Neither is a usable training target.
Each has its own reject reason, `refusal` and `assistant_chatter`, and phrases in English and in the
languages LLMs most often answer in: a responder told to answer in French refuses in French.
The phrases are matched (RE2, case-insensitive) at the head of the output only, where assistants put
them, so a recipe that mentions "I cannot stress enough" in its fifth paragraph is not hit.

These apply only to rows whose output was generated (the `output_model` column names a responder);
translated outputs are another matter (a translation model's chatter is quality.llm_failures').
"""

from __future__ import annotations

from dataclasses import dataclass

from quality.filters import Check
from schemas.params import FiltersParams

HEAD_CHARS = 300  # only this much of the output is searched

# A refusal: the model declines the task. Checked first: "As an AI, I cannot ..." is a refusal.
REFUSAL_PATTERNS: dict[str, str] = {
    "en": r"\b(i'?m sorry|i am sorry|i apologi[sz]e|unfortunately)\b[^.!?\n]{0,40}\b(i|we)\s+(can(no|')t|cannot|am "
          r"(not able|unable)|won'?t)\b|^\s*(i|we)\s+(can(no|')t|cannot|am unable to|won'?t)\s+(help|assist|provide|"
          r"fulfil|comply|answer|do that|generate|create|write)",
    "fr": r"(je suis désolée?|désolée?|malheureusement)[^.!?\n]{0,40}\bje ne (peux|suis pas en mesure)|^\s*je ne "
          r"(peux|suis pas en mesure d)\s*'?\s*(pas )?(vous )?(aider|répondre|fournir)",
    "de": r"(es tut mir leid|leider)[^.!?\n]{0,40}\b(kann ich|ich kann)[^.!?\n]{0,30}\bnicht|^\s*ich kann "
          r"(ihnen |dir )?(dabei |hierbei )?nicht (helfen|antworten)",
    "es": r"(lo siento|lamentablemente|desafortunadamente)[^.!?\n]{0,40}\bno (puedo|es posible que)|^\s*no puedo "
          r"(ayudar|responder|proporcionar)",
    "pt": r"(desculpe|sinto muito|infelizmente)[^.!?\n]{0,40}\bnão (posso|consigo)|^\s*não posso (ajudar|responder)",
    "it": r"(mi dispiace|purtroppo|spiacente)[^.!?\n]{0,40}\bnon (posso|sono in grado)|^\s*non posso (aiutar|rispond)",
    "ru": r"(извините|к сожалению|прошу прощения)[^.!?\n]{0,40}(^|\s)я не (могу|в состоянии)|^\s*я не могу "
          r"(помочь|ответить|предоставить)",
    "zh": r"(抱歉|对不起|很遗憾|對不起)[^。！？\n]{0,20}(我|我们)(无法|不能|無法)"
          r"|^\s*我(无法|不能|無法)(提供|回答|帮助|協助|协助)",
    "ja": r"(申し訳(ありません|ございません)|すみません)[^。！？\n]{0,30}(できません|お答えできません)",
    "ko": r"(죄송|유감)[^.!?\n]{0,30}(할 수 없|드릴 수 없)",
}

# RE2's \b knows ASCII word characters only: Cyrillic phrases use explicit boundaries instead.
# Chatter about being an assistant, in front of (or instead of) the answer.
CHATTER_PATTERNS: dict[str, str] = {
    "en": r"\bas an? (ai|artificial intelligence|language model|large language model|ai language model|"
          r"ai assistant|assistant)\b|\bi am an? (ai|artificial intelligence|language model)\b|\bi'?m an? "
          r"(ai|language model)\b",
    "fr": r"en tant qu[e'’]\s*(ia|intelligence artificielle|modèle de (langage|langue)|assistant)",
    "de": r"\bals (ein |eine )?(ki|künstliche intelligenz|sprachmodell|ki-sprachmodell|ki-assistent)",
    "es": r"\bcomo (un |una )?(ia|inteligencia artificial|modelo de (lenguaje|idioma)|asistente de ia)\b",
    "pt": r"\bcomo (um |uma )?(ia|inteligência artificial|modelo de linguagem|assistente de ia)\b",
    "it": r"\bin quanto (ia|intelligenza artificiale|modello (di|del) linguaggio|assistente)",
    "ru": r"(^|\s)как (языковая модель|ии|искусственный интеллект|ai|ассистент)([^а-яё]|$)"
          r"|(^|\s)я (—|-)?\s*(языковая модель|искусственный интеллект)",
    "zh": r"作为(一个|一名)?(ai|人工智能|语言模型|AI助手|人工智能助手|人工智能语言模型)|作為(一個)?(人工智慧|語言模型)",
    "ja": r"(ai|人工知能|言語モデル)として",
    "ko": r"(ai|인공지능|언어 모델)(로서|으로서)",
}


def _union(patterns: dict[str, str]) -> str:
    return "(?i)(" + "|".join(f"(?:{p})" for p in patterns.values()) + ")"


REFUSAL_RE = _union(REFUSAL_PATTERNS)
CHATTER_RE = _union(CHATTER_PATTERNS)


@dataclass(frozen=True)
class ResponseCheck:
    name: str  # the reject reason
    pattern: str  # RE2, for DuckDB's regexp_extract


CHECKS: tuple[ResponseCheck, ...] = (ResponseCheck("refusal", REFUSAL_RE),
                                     ResponseCheck("assistant_chatter", CHATTER_RE))


def flags_sql(rows: str, filters: FiltersParams) -> str:
    """SELECT rid, <name> (the matched phrase, or NULL) per enabled check, over the generated rows of
    `rows` (those with an `output_model` that is not `translated`)."""
    head = f"left(output, {HEAD_CHARS})"
    columns = ", ".join(
        f"nullif(regexp_extract({head}, '{c.pattern.replace(chr(39), chr(39) * 2)}', 0), '') AS {c.name}"
        if getattr(filters, c.name).enabled else f"NULL::VARCHAR AS {c.name}" for c in CHECKS)
    return (f"SELECT rid, {columns} FROM {rows} "
            "WHERE output_model IS NOT NULL AND output_model <> 'translated'")


def detail(name: str, phrase_sql: str) -> str:
    """SQL for the reject detail: the phrase that matched."""
    what = "a refusal" if name == "refusal" else "assistant chatter"
    return f"'generated output opens with {what}: \"' || left({phrase_sql}, 60) || '\"'"


def checks(filters: FiltersParams) -> list[Check]:
    """The enabled response checks as filter checks over `cmp`; they read table `response_flags`
    (made from `flags_sql`), so the verdict stays one pass."""
    enabled = {c.name: getattr(filters, c.name).enabled for c in CHECKS}
    return [Check(c.name, f"rid IN (SELECT rid FROM response_flags WHERE {c.name} IS NOT NULL)",
                  detail(c.name, f"(SELECT f.{c.name} FROM response_flags f WHERE f.rid = cmp.rid)"))
            for c in CHECKS if enabled[c.name]]
