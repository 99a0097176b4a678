from __future__ import annotations

import pytest

from schemas.errors import PolyinstructError
from schemas.languages import BACTRIAN_X, LANGUAGE_SETS, UnknownLanguageError, language_set, nllb_codes, resolve

# The 52 Bactrian-X languages, as its paper lists them.
BACTRIAN_X_ISO = [
    "af", "ar", "az", "bn", "cs", "de", "en", "es", "et", "fa", "fi", "fr", "gl",
    "gu", "he", "hi", "hr", "id", "it", "ja", "ka", "kk", "km", "ko", "lt", "lv",
    "mk", "ml", "mn", "mr", "my", "ne", "nl", "pl", "ps", "pt", "ro", "ru", "si",
    "sl", "sv", "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi", "xh", "zh",
]


def test_bactrian_x_has_the_52_languages_with_nllb_codes() -> None:
    assert [lang.iso639_1 for lang in BACTRIAN_X] == BACTRIAN_X_ISO
    codes = set(nllb_codes())
    assert len(codes) == 202
    for lang in BACTRIAN_X:
        assert lang.flores in codes, lang
        assert lang.script == lang.flores.split("_")[1]
        assert lang.mbart50 and lang.name


@pytest.mark.parametrize(("code", "flores"), [("fr", "fra_Latn"), ("fra_Latn", "fra_Latn"), ("zh_CN", "zho_Hans"),
                                               ("mn", "khk_Cyrl"), ("yue_Hant", "yue_Hant")])
def test_resolve_accepts_iso_flores_mbart_and_any_nllb_code(code: str, flores: str) -> None:
    assert resolve(code).flores == flores


def test_non_bactrian_nllb_code_uses_flores_as_config_name() -> None:
    lang = resolve("yue_Hant")
    assert lang.iso639_1 is None and lang.config_name == "yue_Hant"
    assert resolve("fr").config_name == "fr"


def test_unknown_code_suggests_close_codes() -> None:
    with pytest.raises(UnknownLanguageError, match=r"unknown language code 'fra_Latm': did you mean fra_Latn"):
        resolve("fra_Latm")


def test_named_sets() -> None:
    assert len(language_set("bactrian-x")) == 52
    chen = {lang.iso639_1 for lang in language_set("chen2024")}
    assert chen == {"bg", "cs", "de", "es", "fi", "fr", "pt", "ru", "zh", "en"}
    assert "eng_Latn" in LANGUAGE_SETS["demo"]
    with pytest.raises(PolyinstructError, match="choose one of"):
        language_set("nope")
