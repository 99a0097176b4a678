"""Language registry: the 52 Bactrian-X languages, named sets, and every NLLB-200 code.

The canonical code inside polyinstruct is the FLORES-200 code (what NLLB uses, e.g. `fra_Latn`).
`resolve` also accepts mBART-50 codes (`fr_XX`) and every ISO 639-1 (`ca`) or ISO 639-3 (`cat`) code
that maps to one of NLLB's 202 codes. A macrolanguage with several (`no`: Bokmål and Nynorsk) maps to
the choice in MACRO_CHOICE, and `resolution_note` says so.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache

from schemas.errors import PolyinstructError


@dataclass(frozen=True)
class Language:
    flores: str  # FLORES-200 / NLLB code, canonical inside polyinstruct
    iso639_1: str | None  # what a Hub dataset card uses
    mbart50: str | None
    name: str
    script: str  # ISO 15924

    @property
    def config_name(self) -> str:
        """Hub config name: ISO 639-1 where one exists, FLORES-200 otherwise."""
        return self.iso639_1 or self.flores


# (iso639_1, flores, mbart50, English name). Script is the FLORES suffix.
_BACTRIAN_X: tuple[tuple[str, str, str, str], ...] = (
    ("af", "afr_Latn", "af_ZA", "Afrikaans"),
    ("ar", "arb_Arab", "ar_AR", "Arabic"),
    ("az", "azj_Latn", "az_AZ", "Azerbaijani"),
    ("bn", "ben_Beng", "bn_IN", "Bengali"),
    ("cs", "ces_Latn", "cs_CZ", "Czech"),
    ("de", "deu_Latn", "de_DE", "German"),
    ("en", "eng_Latn", "en_XX", "English"),
    ("es", "spa_Latn", "es_XX", "Spanish"),
    ("et", "est_Latn", "et_EE", "Estonian"),
    ("fa", "pes_Arab", "fa_IR", "Persian"),
    ("fi", "fin_Latn", "fi_FI", "Finnish"),
    ("fr", "fra_Latn", "fr_XX", "French"),
    ("gl", "glg_Latn", "gl_ES", "Galician"),
    ("gu", "guj_Gujr", "gu_IN", "Gujarati"),
    ("he", "heb_Hebr", "he_IL", "Hebrew"),
    ("hi", "hin_Deva", "hi_IN", "Hindi"),
    ("hr", "hrv_Latn", "hr_HR", "Croatian"),
    ("id", "ind_Latn", "id_ID", "Indonesian"),
    ("it", "ita_Latn", "it_IT", "Italian"),
    ("ja", "jpn_Jpan", "ja_XX", "Japanese"),
    ("ka", "kat_Geor", "ka_GE", "Georgian"),
    ("kk", "kaz_Cyrl", "kk_KZ", "Kazakh"),
    ("km", "khm_Khmr", "km_KH", "Khmer"),
    ("ko", "kor_Hang", "ko_KR", "Korean"),
    ("lt", "lit_Latn", "lt_LT", "Lithuanian"),
    ("lv", "lvs_Latn", "lv_LV", "Latvian"),
    ("mk", "mkd_Cyrl", "mk_MK", "Macedonian"),
    ("ml", "mal_Mlym", "ml_IN", "Malayalam"),
    ("mn", "khk_Cyrl", "mn_MN", "Mongolian"),
    ("mr", "mar_Deva", "mr_IN", "Marathi"),
    ("my", "mya_Mymr", "my_MM", "Burmese"),
    ("ne", "npi_Deva", "ne_NP", "Nepali"),
    ("nl", "nld_Latn", "nl_XX", "Dutch"),
    ("pl", "pol_Latn", "pl_PL", "Polish"),
    ("ps", "pbt_Arab", "ps_AF", "Pashto"),
    ("pt", "por_Latn", "pt_XX", "Portuguese"),
    ("ro", "ron_Latn", "ro_RO", "Romanian"),
    ("ru", "rus_Cyrl", "ru_RU", "Russian"),
    ("si", "sin_Sinh", "si_LK", "Sinhala"),
    ("sl", "slv_Latn", "sl_SI", "Slovenian"),
    ("sv", "swe_Latn", "sv_SE", "Swedish"),
    ("sw", "swh_Latn", "sw_KE", "Swahili"),
    ("ta", "tam_Taml", "ta_IN", "Tamil"),
    ("te", "tel_Telu", "te_IN", "Telugu"),
    ("th", "tha_Thai", "th_TH", "Thai"),
    ("tl", "tgl_Latn", "tl_XX", "Tagalog"),
    ("tr", "tur_Latn", "tr_TR", "Turkish"),
    ("uk", "ukr_Cyrl", "uk_UA", "Ukrainian"),
    ("ur", "urd_Arab", "ur_PK", "Urdu"),
    ("vi", "vie_Latn", "vi_VN", "Vietnamese"),
    ("xh", "xho_Latn", "xh_ZA", "Xhosa"),
    ("zh", "zho_Hans", "zh_CN", "Chinese"),
)

BACTRIAN_X: tuple[Language, ...] = tuple(
    Language(flores=f, iso639_1=i, mbart50=m, name=n, script=f.split("_", 1)[1]) for i, f, m, n in _BACTRIAN_X
)
# Languages of the named sets that Bactrian-X lacks (Chen et al. 2024 adds Bulgarian).
EXTRA_LANGUAGES: tuple[Language, ...] = (
    Language(flores="bul_Cyrl", iso639_1="bg", mbart50=None, name="Bulgarian", script="Cyrl"),
)
ENGLISH: Language = next(lang for lang in BACTRIAN_X if lang.flores == "eng_Latn")

LANGUAGE_SETS: dict[str, tuple[str, ...]] = {
    "bactrian-x": tuple(lang.flores for lang in BACTRIAN_X),
    "chen2024": ("eng_Latn", "bul_Cyrl", "ces_Latn", "deu_Latn", "spa_Latn", "fin_Latn", "fra_Latn", "por_Latn",
                 "rus_Cyrl", "zho_Hans"),
    # Three scripts (Latin, Cyrillic, Han), all present in the HPLT human-translated test set.
    "demo": ("eng_Latn", "fra_Latn", "rus_Cyrl", "zho_Hans"),
}

# Scripts written without spaces between words (ISO 15924): each of their characters is a word-like token.
SCRIPTS_WITHOUT_SPACES: tuple[str, ...] = ("Hans", "Hant", "Jpan", "Thai", "Khmr", "Mymr", "Laoo")
# Scripts where one character carries about a word: how many letters one of their characters weighs in
# length and script-fraction checks (so Chinese with a few English names stays Chinese).
SCRIPT_LETTER_WEIGHT: dict[str, int] = {"Hans": 3, "Hant": 3, "Jpan": 3, "Kore": 2, "Hang": 2}


# NLLB-200's 202 FLORES-200 codes, in the order of transformers' FAIRSEQ_LANGUAGE_CODES (the NLLB tokenizer's):
# copied so that resolving a code does not import transformers (several CPU-seconds per process);
# tests/schemas/test_language_codes.py checks the copy against transformers.
NLLB_CODES: tuple[str, ...] = (
    "ace_Arab", "ace_Latn", "acm_Arab", "acq_Arab", "aeb_Arab", "afr_Latn", "ajp_Arab", "aka_Latn", "amh_Ethi",
    "apc_Arab", "arb_Arab", "ars_Arab", "ary_Arab", "arz_Arab", "asm_Beng", "ast_Latn", "awa_Deva", "ayr_Latn",
    "azb_Arab", "azj_Latn", "bak_Cyrl", "bam_Latn", "ban_Latn", "bel_Cyrl", "bem_Latn", "ben_Beng", "bho_Deva",
    "bjn_Arab", "bjn_Latn", "bod_Tibt", "bos_Latn", "bug_Latn", "bul_Cyrl", "cat_Latn", "ceb_Latn", "ces_Latn",
    "cjk_Latn", "ckb_Arab", "crh_Latn", "cym_Latn", "dan_Latn", "deu_Latn", "dik_Latn", "dyu_Latn", "dzo_Tibt",
    "ell_Grek", "eng_Latn", "epo_Latn", "est_Latn", "eus_Latn", "ewe_Latn", "fao_Latn", "pes_Arab", "fij_Latn",
    "fin_Latn", "fon_Latn", "fra_Latn", "fur_Latn", "fuv_Latn", "gla_Latn", "gle_Latn", "glg_Latn", "grn_Latn",
    "guj_Gujr", "hat_Latn", "hau_Latn", "heb_Hebr", "hin_Deva", "hne_Deva", "hrv_Latn", "hun_Latn", "hye_Armn",
    "ibo_Latn", "ilo_Latn", "ind_Latn", "isl_Latn", "ita_Latn", "jav_Latn", "jpn_Jpan", "kab_Latn", "kac_Latn",
    "kam_Latn", "kan_Knda", "kas_Arab", "kas_Deva", "kat_Geor", "knc_Arab", "knc_Latn", "kaz_Cyrl", "kbp_Latn",
    "kea_Latn", "khm_Khmr", "kik_Latn", "kin_Latn", "kir_Cyrl", "kmb_Latn", "kon_Latn", "kor_Hang", "kmr_Latn",
    "lao_Laoo", "lvs_Latn", "lij_Latn", "lim_Latn", "lin_Latn", "lit_Latn", "lmo_Latn", "ltg_Latn", "ltz_Latn",
    "lua_Latn", "lug_Latn", "luo_Latn", "lus_Latn", "mag_Deva", "mai_Deva", "mal_Mlym", "mar_Deva", "min_Latn",
    "mkd_Cyrl", "plt_Latn", "mlt_Latn", "mni_Beng", "khk_Cyrl", "mos_Latn", "mri_Latn", "zsm_Latn", "mya_Mymr",
    "nld_Latn", "nno_Latn", "nob_Latn", "npi_Deva", "nso_Latn", "nus_Latn", "nya_Latn", "oci_Latn", "gaz_Latn",
    "ory_Orya", "pag_Latn", "pan_Guru", "pap_Latn", "pol_Latn", "por_Latn", "prs_Arab", "pbt_Arab", "quy_Latn",
    "ron_Latn", "run_Latn", "rus_Cyrl", "sag_Latn", "san_Deva", "sat_Beng", "scn_Latn", "shn_Mymr", "sin_Sinh",
    "slk_Latn", "slv_Latn", "smo_Latn", "sna_Latn", "snd_Arab", "som_Latn", "sot_Latn", "spa_Latn", "als_Latn",
    "srd_Latn", "srp_Cyrl", "ssw_Latn", "sun_Latn", "swe_Latn", "swh_Latn", "szl_Latn", "tam_Taml", "tat_Cyrl",
    "tel_Telu", "tgk_Cyrl", "tgl_Latn", "tha_Thai", "tir_Ethi", "taq_Latn", "taq_Tfng", "tpi_Latn", "tsn_Latn",
    "tso_Latn", "tuk_Latn", "tum_Latn", "tur_Latn", "twi_Latn", "tzm_Tfng", "uig_Arab", "ukr_Cyrl", "umb_Latn",
    "urd_Arab", "uzn_Latn", "vec_Latn", "vie_Latn", "war_Latn", "wol_Latn", "xho_Latn", "ydd_Hebr", "yor_Latn",
    "yue_Hant", "zho_Hans", "zho_Hant", "zul_Latn",
)


def nllb_codes() -> tuple[str, ...]:
    """The 202 FLORES-200 codes NLLB-200 knows (NLLB_CODES)."""
    return NLLB_CODES


@cache
def _registry_index() -> dict[str, Language]:
    index: dict[str, Language] = {}
    for lang in (*BACTRIAN_X, *EXTRA_LANGUAGES):
        index[lang.flores] = lang
        index[lang.iso639_1 or lang.flores] = lang
        if lang.mbart50:
            index[lang.mbart50] = lang
    return index


@cache
def _index() -> dict[str, Language]:
    index = {code: Language(flores=code, iso639_1=None, mbart50=None, name=code, script=code.split("_", 1)[1])
             for code in nllb_codes()}
    return index | _registry_index()  # richer records win over the bare NLLB entries


# ISO 639 codes that match several NLLB codes (a macrolanguage's members, or one language in two scripts):
# the written standard or most-spoken variety, as Bactrian-X and FLORES-200 pick it.
MACRO_CHOICE: dict[str, str] = {
    "ace": "ace_Latn", "ara": "arb_Arab", "aze": "azj_Latn", "bjn": "bjn_Latn", "fas": "pes_Arab",
    "hbs": "hrv_Latn", "kas": "kas_Arab", "kau": "knc_Latn", "knc": "knc_Latn", "kur": "kmr_Latn",
    "lav": "lvs_Latn", "msa": "zsm_Latn", "nor": "nob_Latn", "taq": "taq_Latn", "tmh": "taq_Latn",
    "zho": "zho_Hans",
}


@cache
def _iso_index() -> dict[str, tuple[str, tuple[str, ...]]]:
    """ISO 639-1 and 639-3 code -> (the NLLB code chosen, every NLLB code it could mean), from the
    iso639-lang tables (639-1 -> 639-3, macrolanguage members)."""
    from iso639 import iter_langs

    by_639_3: dict[str, list[str]] = {}
    for code in nllb_codes():
        by_639_3.setdefault(code.split("_", 1)[0], []).append(code)
    index: dict[str, tuple[str, tuple[str, ...]]] = {}
    for lang in iter_langs():
        if not lang.pt3:
            continue
        options = by_639_3.get(lang.pt3, [])
        if not options:  # a macrolanguage: its members that NLLB has
            options = sorted(c for member in lang.individuals() for c in by_639_3.get(member.pt3, []))
        if not options:
            continue
        chosen = options[0] if len(options) == 1 else MACRO_CHOICE.get(lang.pt3)
        if chosen is None:
            continue  # ambiguous and unchosen: tests/schemas/test_languages.py keeps MACRO_CHOICE complete
        for key in (lang.pt1, lang.pt3):
            if key:
                index[key] = (chosen, tuple(options))
    return index


def resolution_note(code: str) -> str | None:
    """For an ISO code that could mean several NLLB codes, the sentence naming the one chosen."""
    chosen, options = _iso_index().get(code.strip(), ("", ()))
    if len(options) < 2:
        return None
    others = ", ".join(o for o in options if o != chosen)
    return f"'{code}' can mean {len(options)} NLLB languages; using {chosen} (others: {others}); pass a FLORES-200" \
           " code to choose another"


class UnknownLanguageError(PolyinstructError, ValueError):  # ValueError: pydantic names the params key
    pass


def resolve(code: str) -> Language:
    """Look a language up by FLORES-200, ISO 639-1 or mBART-50 code; suggest close codes when unknown."""
    # The registry answers most look-ups without importing transformers (seconds at CLI start).
    lang = _registry_index().get(code.strip())
    if lang is not None:
        return lang
    index = _index()
    lang = index.get(code.strip())
    if lang is not None:
        return lang
    iso = _iso_index().get(code.strip())
    if iso is not None:
        return index[iso[0]]
    close = difflib.get_close_matches(code, list(index), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "see `polyinstruct languages --set bactrian-x`"
    raise UnknownLanguageError(f"unknown language code '{code}': {hint}")


def language_from_file_stem(stem: str) -> Language | None:
    """The language a file name ends with: `prompts_fra_Latn` (FLORES-200) or `test_no` (ISO)."""
    parts = stem.split("_")
    for suffix in ("_".join(parts[-2:]), parts[-1]) if len(parts) > 2 else (parts[-1],):
        try:
            return resolve(suffix)
        except UnknownLanguageError:
            continue
    return None


def language_set(name: str) -> tuple[Language, ...]:
    if name not in LANGUAGE_SETS:
        raise PolyinstructError(f"unknown language set '{name}'; choose one of: {', '.join(LANGUAGE_SETS)}")
    return tuple(resolve(code) for code in LANGUAGE_SETS[name])
