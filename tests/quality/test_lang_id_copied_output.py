"""Language ID judges what was translated: an output copied verbatim from the source (code, or the answer to
"translate into Russian") is no evidence of the wrong language, while the same text written by the translator is."""

from __future__ import annotations

from pathlib import Path

from tests.quality.test_filters import base_rows, run_small, write_set

RUSSIAN = "Объясните, почему небо голубое днём и красное на закате солнца, в нескольких предложениях."


def test_a_copied_output_is_not_judged_but_a_translated_one_is(tmp_path: Path) -> None:
    source, target = base_rows(20)
    for i in (0, 1):
        source[i]["instruction"] = f"Translate this sentence into Russian, please. Case {i}."
        source[i]["output"] = f"{RUSSIAN} {i}"
        target[i]["instruction"] = f"Traduisez cette phrase en russe, s'il vous plaît. Cas {i}."
    target[0]["output"] = source[0]["output"]  # the answer kept as the source has it
    target[1]["output"] = f"{RUSSIAN} Спасибо. {1}"  # Russian that the translator wrote into a French record
    write_set(tmp_path, source, {"fra_Latn": target})
    _, rejects = run_small(tmp_path, {"dedup": {"near": False}})
    assert ("fra_Latn", "t-000") not in rejects
    assert rejects[("fra_Latn", "t-001")]["reason"] == "lang_id"
