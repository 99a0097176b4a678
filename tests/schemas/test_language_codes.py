"""Issue 11, points 8 and 9: every ISO 639-1 or 639-3 code that maps to one of NLLB's 202 codes is
accepted; a macrolanguage with several names its choice; prompt files are named either way."""

from __future__ import annotations

from pathlib import Path

import pytest
from iso639 import iter_langs

from schemas.languages import (
    BACTRIAN_X,
    MACRO_CHOICE,
    language_from_file_stem,
    nllb_codes,
    resolution_note,
    resolve,
)
from tests.conftest import run_cli
from trl_training.evaluate import read_prompt_file


@pytest.mark.parametrize(("code", "flores"), [
    ("no", "nob_Latn"), ("nor", "nob_Latn"), ("nb", "nob_Latn"), ("nn", "nno_Latn"), ("ca", "cat_Latn"),
    ("cat", "cat_Latn"), ("ms", "zsm_Latn"), ("uz", "uzn_Latn"), ("sq", "als_Latn"), ("yi", "ydd_Hebr"),
    ("ar", "arb_Arab"), ("ara", "arb_Arab"), ("zh", "zho_Hans"), ("zho", "zho_Hans"), ("yue", "yue_Hant"),
])
def test_iso_639_1_and_639_3_codes_resolve(code: str, flores: str) -> None:
    assert resolve(code).flores == flores


def test_macrolanguage_choice_is_named() -> None:
    note = resolution_note("no")
    assert note is not None and "nob_Latn" in note and "nno_Latn" in note
    assert resolution_note("ca") is None and resolution_note("fra_Latn") is None


def test_every_iso_code_of_an_nllb_language_is_accepted() -> None:
    """From the ISO tables: each 639-1/639-3 code whose language (or macrolanguage members) NLLB has."""
    by_639_3: dict[str, set[str]] = {}
    for code in nllb_codes():
        by_639_3.setdefault(code.split("_")[0], set()).add(code)
    checked = 0
    ambiguous = set()
    for lang in iter_langs():
        options = by_639_3.get(lang.pt3, set()) or {c for m in lang.individuals() for c in by_639_3.get(m.pt3, ())}
        if not lang.pt3 or not options:
            continue
        if len(options) > 1:
            ambiguous.add(lang.pt3)
        for key in (lang.pt1, lang.pt3):
            if key:
                assert resolve(key).flores in options, key
                checked += 1
    assert checked > 250
    assert set(MACRO_CHOICE) == ambiguous  # a choice for each ambiguous code, and only for those
    assert set(MACRO_CHOICE.values()) <= set(nllb_codes())


def test_translate_names_the_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(monkeypatch, "translate", "--in", str(tmp_path / "missing.parquet"), "--lang", "no",
                   "--out", str(tmp_path / "t.parquet"), "--metrics", str(tmp_path / "m.json"),
                   "--rejects", str(tmp_path / "r.parquet"), "--cache", str(tmp_path / "memory"),
                   "--model", str(tmp_path / "no-model"))
    err = capsys.readouterr().err
    assert code == 2 and "using nob_Latn (others: nno_Latn)" in err


@pytest.mark.parametrize("name", ["prompts_fra_Latn.jsonl", "test_no.jsonl", "my_prompts_fr.jsonl",
                                  "test_ca.jsonl", "eval_zho_Hant.jsonl"])
def test_prompt_file_names(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text('{"id": 1, "prompt": "Bonjour"}\n', encoding="utf-8")
    assert read_prompt_file(path).lang == resolve(Path(name).stem.split("_", 1)[1].removeprefix("prompts_")).flores


def test_both_prompt_file_patterns_for_every_supported_language() -> None:
    for lang in BACTRIAN_X:
        assert language_from_file_stem(f"test_{lang.iso639_1}") == lang
        assert language_from_file_stem(f"prompts_{lang.flores}") == lang
    for code in nllb_codes():
        assert language_from_file_stem(f"prompts_{code}").flores == code


def test_the_copied_nllb_codes_are_transformers_own() -> None:
    """schemas.languages.NLLB_CODES is a copy (resolving a code must not import transformers): it must stay the NLLB
    tokenizer's list, in its order."""
    tokenization = pytest.importorskip("transformers.models.nllb.tokenization_nllb")
    assert nllb_codes() == tuple(tokenization.FAIRSEQ_LANGUAGE_CODES)
    assert len(set(nllb_codes())) == 202
