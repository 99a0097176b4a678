"""Language ID on real human translations (hplt-test), the script check for languages lingua lacks,
code stripping, candidate restriction, and the public API the evaluation uses."""

from __future__ import annotations

import json

import duckdb
import pytest

from quality.langid import (
    JudgeConfig,
    candidates_for,
    matches_language,
    needs_lingua,
)
from quality.lid_sql import prose_sql
from schemas.params import LangIdParams
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA
HPLT = {"en": "eng_Latn", "bg": "bul_Cyrl", "es": "spa_Latn", "fr": "fra_Latn", "ru": "rus_Cyrl", "zh": "zho_Hans"}


@pytest.fixture(scope="module")
def prompts() -> dict[str, list[str]]:
    if not (DATA / "hplt-test").exists():
        pytest.skip(f"{DATA}/hplt-test not found (shared real data)")
    return {code: [json.loads(line)["prompt"] for line in
                   (DATA / "hplt-test" / f"test_{code}.jsonl").read_text().splitlines() if line.strip()]
            for code in HPLT}


@pytest.mark.parametrize("code", list(HPLT))
def test_human_translations_match_their_language(prompts: dict, code: str) -> None:
    verdicts = matches_language(prompts[code], HPLT[code])
    judged = [v for v in verdicts if v is not None]
    assert len(judged) >= 0.8 * len(verdicts)
    assert sum(judged) >= 0.95 * len(verdicts) - verdicts.count(None)


@pytest.mark.parametrize(("text_code", "expected"), [("fr", "spa_Latn"), ("es", "fra_Latn"), ("bg", "rus_Cyrl"),
                                                    ("ru", "bul_Cyrl"), ("en", "spa_Latn"), ("zh", "rus_Cyrl")])
def test_wrong_language_is_caught(prompts: dict, text_code: str, expected: str) -> None:
    verdicts = matches_language(prompts[text_code], expected)
    judged = len(verdicts) - verdicts.count(None)  # short Chinese is below min_chars in Cyrillic letters
    assert judged >= 0.6 * len(verdicts)
    assert verdicts.count(False) >= 0.95 * judged


def test_identify_names_the_language(prompts: dict) -> None:
    found = matches_language(prompts["fr"][:10], "fra_Latn") + matches_language(prompts["ru"][:10], "rus_Cyrl")
    assert found[:10].count(True) >= 9 and found[10:].count(True) >= 9
    assert matches_language(["Hi."], "en") == [None]  # too short to judge


def test_script_decides_for_languages_lingua_lacks() -> None:
    khmer = "ប្រទេសកម្ពុជាមានប្រវត្តិសាស្ត្រដ៏យូរលង់ និងវប្បធម៌ដ៏សម្បូរបែប។"
    sinhala = "ශ්‍රී ලංකාව ඉන්දියානු සාගරයේ පිහිටි දූපත් රාජ්‍යයකි."
    assert not needs_lingua("khm_Khmr") and not needs_lingua("kat_Geor")
    assert matches_language([khmer, "This sentence is plainly written in English."], "km") == [True, False]
    assert matches_language([sinhala], "sin_Sinh") == [True]
    assert [matches_language([khmer], "khm_Khmr")[0], matches_language([sinhala], "sin_Sinh")[0]] == [True, True]
    # Galician: lingua lacks it, so only English is ruled out (its relatives are accepted).
    galician = "Galicia é unha comunidade autónoma situada no noroeste da península Ibérica."
    assert matches_language([galician, "The weather in Galicia is often rainy and mild in winter."],
                            "glg_Latn") == [True, False]


def test_candidates_are_the_likely_confusions() -> None:
    spanish = candidates_for("spa_Latn")
    assert spanish[0] == "spa_Latn" and {"fra_Latn", "por_Latn", "eng_Latn"} <= set(spanish)
    assert "deu_Latn" not in spanish and len(spanish) <= 8
    assert set(candidates_for("rus_Cyrl")) >= {"bul_Cyrl", "ukr_Cyrl"} and "eng_Latn" not in candidates_for(
        "rus_Cyrl")


def test_code_and_urls_do_not_count() -> None:
    text = ("Voici comment lire un fichier en Python :\n```python\nwith open('data.txt') as handle:\n"
            "    for line in handle:\n        print(line.strip())\n```\nVoir https://docs.python.org/3/ pour plus.")
    con = duckdb.connect()
    try:
        prose = con.execute(f"SELECT {prose_sql('$1', 200)}", [text]).fetchall()[0][0]
    finally:
        con.close()
    assert "open" not in prose and "print" not in prose and "https" not in prose
    assert prose.startswith("Voici comment lire un fichier en Python")
    assert matches_language([text], "fra_Latn") == [True]
    only_code = "def add(a, b):\n    return a + b\n\nprint(add(2, 3))"
    assert matches_language([only_code], "fra_Latn") == [None]  # nothing to judge


def test_low_accuracy_mode_and_confidence_are_configurable(prompts: dict) -> None:
    fast = JudgeConfig.of(LangIdParams(low_accuracy_min_chars=0))
    verdicts = matches_language(prompts["es"], "spa_Latn", config=fast)
    assert sum(v is True for v in verdicts) >= 0.85 * len(verdicts)
    strict = JudgeConfig.of(LangIdParams(min_confidence=0.0))
    assert matches_language(prompts["fr"], "spa_Latn", config=strict).count(False) == len(prompts["fr"])


def test_a_guess_in_another_script_does_not_overrule_the_script_check() -> None:
    """lid.176 calls some short plain Chinese Korean or Vietnamese; the script check already found Han letters."""
    chinese = ["将带下划线的单词替换为合适的形容词。椅子很结实。", "将给定的陈述分为积极或消极情绪。负面情绪。"]
    assert matches_language(chinese, "zho_Hans") == [True, True]
    # Across scripts the script check still rejects, within a script the model does.
    assert matches_language(["Объясните, почему небо голубое днём и красное на закате."], "zho_Hans") == [False]
    assert matches_language(["Explain why the sky is blue during the day and red at sunset."], "fra_Latn") == [False]
