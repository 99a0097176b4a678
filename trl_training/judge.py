"""An LLM judge, as Chen et al. 2024 and Bactrian-X judged their models' answers.

- Pointwise: each answer is graded with the rubric template (params `evaluate.judge.template`) on a
  fixed numeric scale. Language ID gates it first: an answer detected in another language than the
  prompt's gets the floor score without being judged, and is counted as `wrong_language`.
- Pairwise: two models' answers to the same prompt, judged in both orders (A/B, then B/A) to cancel
  position bias; the win-rate counts a tie, or two orders that disagree, as half a win each.
- Verdicts are parsed robustly (`[[7]]`, `Rating: 7`, `7/10`, a lone number; `[[A]]`/`[[B]]`/`[[C]]`).
  An unparseable verdict is counted and reported, never guessed, and left out of the mean.
- Identity: the judge's model fingerprint and the sha256 of each template go with every score, and a
  smoke judge (random weights) says so. A small local judge is not the API judge the papers used.

The model behind the judge is a `ChatBackend` (dataset_builder.judge_backend wraps the generate engine
of the respond stage, local CTranslate2 or an OpenAI-compatible server, with its response memory)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.params import JudgeParams

Messages = list[dict[str, str]]
NOT_THE_PAPERS_JUDGE = ("A local judge model is not the API judge the papers used (GPT-3.5/GPT-4); its scores"
                        " rank models against each other here and are not comparable with published numbers.")
SMOKE_JUDGE_NOTE = "SMOKE JUDGE: the judge model has random weights; its verdicts are noise."


class ChatBackend(Protocol):
    fingerprint: str
    smoke: bool

    def complete(self, conversations: Sequence[Messages]) -> list[str | None]:
        """One reply per conversation, in order; None where the backend could not answer (too long)."""
        ...


def template_hash(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]


_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SCORE_PATTERNS = (
    re.compile(r"\[\[\s*" + _NUMBER + r"\s*\]\]"),  # MT-Bench's [[rating]]
    re.compile(r"\b(?:rating|score|note|punteggio|puntuación|оценка|评分|分数)\s*[:：=]?\s*" + _NUMBER, re.I),
    re.compile(_NUMBER + r"\s*/\s*\d+"),  # 7/10
    re.compile(r"^\s*" + _NUMBER + r"\s*\.?\s*$"),  # the whole verdict is a number
)
_PREFERENCE = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def parse_score(verdict: str | None, low: int, high: int) -> float | None:
    """The first score-shaped number in the verdict, if it lies on the scale; else None."""
    if not verdict:
        return None
    for pattern in _SCORE_PATTERNS:
        match = pattern.search(verdict)
        if match:
            value = float(match.group(1))
            return value if low <= value <= high else None
    return None


def parse_preference(verdict: str | None) -> str | None:
    """'A', 'B' or 'tie' from `[[A]]`, `[[B]]`, `[[C]]`; None when absent or contradictory."""
    found = set(_PREFERENCE.findall(verdict or ""))
    if len(found) != 1:
        return None
    choice = found.pop()
    return "tie" if choice == "C" else choice


def identity(backend: ChatBackend, settings: JudgeParams) -> dict[str, Any]:
    return {"model": backend.fingerprint, "smoke": backend.smoke,
            "template_sha256": template_hash(settings.template),
            "pairwise_template_sha256": template_hash(settings.pairwise_template),
            "scale": [settings.scale_min, settings.scale_max],
            "note": (SMOKE_JUDGE_NOTE + " " if backend.smoke else "") + NOT_THE_PAPERS_JUDGE}


def _ask(template: str, **fields: str) -> Messages:
    return [{"role": "user", "content": template.format(**fields)}]


@dataclass
class PointwiseResult:
    scores: list[float | None]  # None: unparseable
    verdicts: list[str | None]  # the judge's raw reply; None when gated or unanswered
    wrong_language: int = 0
    unparseable: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


def judge_pointwise(backend: ChatBackend, settings: JudgeParams, language: str, prompts: Sequence[str],
                    answers: Sequence[str], in_language: Sequence[bool | None]) -> PointwiseResult:
    """Grade each answer; `in_language[i] is False` (language ID says another language) scores the floor."""
    asked = [i for i, ok in enumerate(in_language) if ok is not False]
    replies = backend.complete([_ask(settings.template, question=prompts[i], answer=answers[i], language=language,
                                     low=str(settings.scale_min), high=str(settings.scale_max)) for i in asked])
    scores: list[float | None] = [float(settings.scale_min)] * len(answers)
    verdicts: list[str | None] = [None] * len(answers)
    for i, reply in zip(asked, replies, strict=True):
        verdicts[i] = reply
        scores[i] = parse_score(reply, settings.scale_min, settings.scale_max)
    result = PointwiseResult(scores, verdicts, wrong_language=len(answers) - len(asked),
                             unparseable=sum(scores[i] is None for i in asked))
    valid = [s for s in scores if s is not None]
    result.summary = {"judged": len(asked), "wrong_language": result.wrong_language,
                      "unparseable": result.unparseable,
                      "mean_score": sum(valid) / len(valid) if valid else None}
    return result


def judge_pairwise(backend: ChatBackend, settings: JudgeParams, language: str, prompts: Sequence[str],
                   answers_a: Sequence[str], answers_b: Sequence[str], in_language_a: Sequence[bool | None],
                   in_language_b: Sequence[bool | None]) -> dict[str, Any]:
    """Win-rate of A over B. Each pair is judged as (A, B) and as (B, A); language ID decides first:
    an answer in the wrong language loses to one in the right language (both wrong: a tie)."""
    outcomes: list[float] = []  # per judged order: 1 A wins, 0 B wins, 0.5 tie
    gated = 0
    asked: list[int] = []
    for i in range(len(prompts)):
        a_ok, b_ok = in_language_a[i] is not False, in_language_b[i] is not False
        if a_ok and b_ok:
            asked.append(i)
        else:
            gated += 1
            outcomes += [1.0 if a_ok else 0.0 if b_ok else 0.5] * 2
    conversations = []
    for i in asked:
        conversations.append(_ask(settings.pairwise_template, question=prompts[i], answer_a=answers_a[i],
                                  answer_b=answers_b[i], language=language))
        conversations.append(_ask(settings.pairwise_template, question=prompts[i], answer_a=answers_b[i],
                                  answer_b=answers_a[i], language=language))
    replies = backend.complete(conversations)
    unparseable = consistent = 0
    for k in range(len(asked)):
        first, swapped = parse_preference(replies[2 * k]), parse_preference(replies[2 * k + 1])
        # Map the swapped order back to A's point of view.
        second = {"A": "B", "B": "A", "tie": "tie"}.get(swapped) if swapped else None
        for verdict in (first, second):
            if verdict is None:
                unparseable += 1
            else:
                outcomes.append({"A": 1.0, "B": 0.0, "tie": 0.5}[verdict])
        consistent += first is not None and first == second
    return {"pairs": len(prompts), "judged_pairs": len(asked), "language_gated_pairs": gated,
            "unparseable_verdicts": unparseable, "consistent_pairs": consistent,
            "win_rate": sum(outcomes) / len(outcomes) if outcomes else None}
