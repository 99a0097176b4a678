"""Tasks that do not survive translation (language_bound) and LLM-translator failures (llm_chatter,
llm_answered, english_left): each planted row is rejected for its own reason, clean rows stay, and the
language_bound families can be rejected or only counted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from schemas import language_bound
from schemas.errors import PolyinstructError
from schemas.params import parse_params
from tests.quality.test_filters import base_rows, run_small, write_set

ANSWERED = ("1. Buvez beaucoup d'eau tous les jours et mangez des fruits et des légumes de saison.\n"
            "2. Dormez au moins huit heures par nuit et évitez les écrans avant de vous coucher.\n"
            "3. Faites de l'exercice régulièrement, par exemple une marche rapide de trente minutes.")
PLANTS = {
    # id: (English instruction, French instruction, French output or None, expected reason)
    "p-spell": ("Correct the spelling of the word 'recieve'.", "Corrigez l'orthographe du mot 'recevoir'.", None,
                "language_bound"),
    "p-rhyme": ("Write two lines of a poem that rhyme about the sea.", "Écrivez deux vers sur la mer.", None,
                "language_bound"),
    "p-chat": ("Describe a sunset over the ocean.", "Décrivez un coucher de soleil sur l'océan.",
               "Voici la traduction demandée : le soleil descend lentement sur l'eau.", "llm_chatter"),
    "p-pre": ("Describe a quiet morning in the mountains.",
              "Bien sûr ! Décrivez une matinée calme à la montagne.", None, "llm_chatter"),
    "p-answer": ("Give three health tips.", ANSWERED, None, "llm_answered"),
    "p-english": ("Explain why leaves change colour in autumn.", "Expliquez pourquoi les feuilles changent.",
                  "The leaves change colour because the trees stop making chlorophyll, and the other pigments that "
                  "were there all along become visible with the shorter days.", "english_left"),
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    root = tmp_path_factory.mktemp("tasks")
    source, target = base_rows(30)
    for ident, (en, fr, fr_out, _) in PLANTS.items():
        source.append({"id": ident, "instruction": en, "input": "", "output": "A plain answer of a few words."})
        target.append({"id": ident, "instruction": fr, "input": "",
                       "output": fr_out or "Une réponse simple en quelques mots."})
    # A synonym task: a flagged family by default, kept and counted.
    source.append({"id": "p-syn", "instruction": "Give a synonym for the word happy.", "input": "",
                   "output": "Joyful."})
    target.append({"id": "p-syn", "instruction": "Donnez un synonyme du mot heureux.", "input": "",
                   "output": "Joyeux."})
    write_set(root, source, {"fra_Latn": target})
    result, rejects = run_small(root, {"dedup": {"near": False}})
    return result, rejects, root


@pytest.mark.parametrize("ident", list(PLANTS))
def test_each_failure_has_its_own_reason(planted: tuple, ident: str) -> None:
    _, rejects, _ = planted
    assert rejects[("fra_Latn", ident)]["reason"] == PLANTS[ident][3], rejects[("fra_Latn", ident)]


def test_clean_rows_and_flagged_families_are_kept(planted: tuple) -> None:
    result, rejects, root = planted
    assert not [k for k in rejects if k[1].startswith("t-")]
    assert ("fra_Latn", "p-syn") not in rejects
    metrics = json.loads((root / "quality.json").read_text())
    assert metrics["language_bound_flagged"] == {"fra_Latn": 1}
    assert "(spelling): spelling" in rejects[("fra_Latn", "p-spell")]["detail"]


def test_language_bound_families_can_be_rejected_or_only_counted(tmp_path: Path) -> None:
    source, target = base_rows(25)
    source[0]["instruction"] = "Give a synonym for the word happy."
    source[1]["instruction"] = "Correct the spelling of this sentence."
    write_set(tmp_path, source, {"fra_Latn": target})
    _, rejects = run_small(tmp_path, {"dedup": {"near": False}, "filters": {"language_bound": {
        "reject": ["word_sense"], "flag": ["spelling"]}}})
    assert rejects[("fra_Latn", "t-000")]["reason"] == "language_bound"
    assert ("fra_Latn", "t-001") not in rejects
    _, rejects = run_small(tmp_path, {"dedup": {"near": False}, "filters": {"language_bound": {"enabled": False}}})
    assert not rejects


def test_a_generated_output_makes_the_task_regenerable(tmp_path: Path) -> None:
    """A rejected family is only flagged where the output was written in the language, not translated."""
    source, target = base_rows(25)
    for row in (0, 1):
        source[row]["instruction"] = "Write two lines of a poem that rhyme about the sea."
    for row in target:
        row["output_model"] = "translated"
    target[1]["output_model"] = "responder-7b"
    write_set(tmp_path, source, {"fra_Latn": target})
    _, rejects = run_small(tmp_path, {"dedup": {"near": False}})
    assert rejects[("fra_Latn", "t-000")]["reason"] == "language_bound"
    assert ("fra_Latn", "t-001") not in rejects
    metrics = json.loads((tmp_path / "quality.json").read_text())
    assert metrics["language_bound_flagged"] == {"fra_Latn": 1}


def test_unknown_family_is_a_params_error() -> None:
    with pytest.raises(PolyinstructError, match="unknown language_bound families"):
        parse_params({"quality": {"filters": {"language_bound": {"reject": ["speling"]}}}}, "test")


@pytest.mark.parametrize(("instruction", "family"), [
    ("Rewrite the following string with proper capitalization.", "capitalization"),
    ("Come up with a pun about cats.", "sound_play"),
    ("Find three words that rhyme with 'cat'.", "sound_play"),
    ("Rewrite this sentence using formal English.", "english"),
    ("List five words starting with the letter B.", "letters"),
    ("Identify the parts of speech in this sentence.", "grammar_form"),
    ("What are three antonyms of 'large'?", "word_sense"),
    ("Explain the causes of capitalism's success.", None),
    ("Write a haiku about spring.", None),
    ("Describe the water cycle.", None),
])
def test_rule_families(instruction: str, family: str | None) -> None:
    found = [f for f, p in language_bound.RULES.items() if re.search(p, instruction, re.IGNORECASE)]
    assert found[:1] == ([family] if family else [])
    # Arrow's RE2 (translate's skip) agrees with the combined pattern.
    matched = pc.match_substring_regex(pa.array([instruction]), language_bound.pattern(list(language_bound.RULES)))
    assert matched.to_pylist() == [family is not None]
