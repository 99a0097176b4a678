"""Prompt files for generation and judging: `{id, prompt}` JSON lines, the HPLT test-set format of
Chen et al. 2024 (`test_fr.jsonl`), one language per file.

The language is the file name's suffix, any code the registry resolves: `test_{iso}.jsonl` (ISO 639-1),
`prompts_{flores}.jsonl` (FLORES-200, e.g. `prompts_fra_Latn.jsonl`) or an mBART-50 code. A malformed
line (not JSON, no string `prompt`, a line cut short) is quarantined with its number and reason, and
reading goes on: the real HPLT `test_hi.jsonl` ends with a cut line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from schemas.errors import PolyinstructError
from schemas.languages import language_from_file_stem


@dataclass(frozen=True)
class QuarantinedLine:
    file: str
    line: int
    reason: str


@dataclass(frozen=True)
class PromptSet:
    lang: str  # FLORES-200
    source: str  # a file path, or "export test split"
    ids: list[str]
    instructions: list[str]
    inputs: list[str]
    quarantined: list[QuarantinedLine] = field(default_factory=list)


def language_of(path: Path) -> str:
    """FLORES-200 code from the name's suffix: the last `_` part, or the last two (`fra_Latn`)."""
    language = language_from_file_stem(path.stem)
    if language is None:
        raise PolyinstructError(f"{path}: cannot tell the prompts' language from the name; name the file like"
                                " test_fr.jsonl or prompts_fra_Latn.jsonl (suffix = a language code)")
    return language.flores


def _parse(line: str) -> tuple[dict[str, object] | None, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg} at column {err.colno}; a cut line?)"
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
        return None, "expected an object with a string `prompt` (and an `id`)"
    if not record["prompt"].strip():
        return None, "empty `prompt`"
    return record, ""


def read_prompt_file(path: Path) -> PromptSet:
    """Read one prompt file; malformed lines go to `quarantined`, never into the prompts."""
    path = Path(path)
    if not path.is_file():
        raise PolyinstructError(f"{path}: prompt file not found")
    lang = language_of(path)
    ids: list[str] = []
    prompts: list[str] = []
    quarantined: list[QuarantinedLine] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record, reason = _parse(line)
        if record is None:
            quarantined.append(QuarantinedLine(str(path), lineno, reason))
            continue
        ids.append(str(record.get("id", lineno)))
        prompts.append(str(record["prompt"]))
    if not prompts:
        raise PolyinstructError(f"{path}: no usable prompts ({len(quarantined)} malformed line(s)); each line is"
                                " {\"id\": ..., \"prompt\": ...}")
    return PromptSet(lang=lang, source=str(path), ids=ids, instructions=prompts, inputs=[""] * len(prompts),
                     quarantined=quarantined)
