"""lingua, the second language-ID model (quality.langid step 4): its languages mapped to FLORES-200 codes,
its detectors (built per candidate set and mode; released per family, but for the next family's languages) and
its batched confidence values."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING

from schemas.languages import UnknownLanguageError, nllb_codes, resolve

if TYPE_CHECKING:
    import lingua

# lingua's ISO 639-3 macro-language codes whose FLORES-200 code is not the only one with that prefix.
_LINGUA_FLORES_ALIASES: dict[str, str | None] = {"msa": "zsm_Latn", "sqi": "als_Latn", "lat": None}


@cache
def flores_by_lingua() -> dict[lingua.Language, str]:
    """Every lingua language that has a FLORES-200 code, mapped to it."""
    from lingua import Language as LinguaLanguage

    by_prefix: dict[str, list[str]] = {}
    for code in nllb_codes():
        by_prefix.setdefault(prefix(code), []).append(code)
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
def lingua_by_prefix() -> dict[str, lingua.Language]:
    return {prefix(flores): lang for lang, flores in flores_by_lingua().items()}


def lingua_knows(flores: str) -> bool:
    return prefix(flores) in lingua_by_prefix()


_DETECTORS: dict[tuple[tuple[str, ...], bool], lingua.LanguageDetector] = {}
_HELD: set[str] = set()  # prefixes of the languages whose models a detector may have loaded since their last unload


def _detector(prefixes: tuple[str, ...], low_accuracy: bool) -> lingua.LanguageDetector:
    """Built once per candidate set and mode until `release_models`: construction and model loading are slow."""
    key = (prefixes, low_accuracy)
    if key not in _DETECTORS:
        from lingua import LanguageDetectorBuilder

        by_prefix = lingua_by_prefix()
        builder = LanguageDetectorBuilder.from_languages(*[by_prefix[p] for p in prefixes])
        _DETECTORS[key] = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()
        _HELD.update(prefixes)
    return _DETECTORS[key]


def release_models(keep: Iterable[str] = ()) -> None:
    """Drop the detectors and unload lingua's language models, except those of `keep` (ISO 639-3 prefixes: the
    next family's candidates). The filter stage calls it when the language family changes, so lingua's memory does
    not grow with the number of languages, and English, a candidate of every Latin-script family, is not reloaded
    for each (about 0.6 CPU-s a load in high-accuracy mode)."""
    _DETECTORS.clear()
    drop = sorted(_HELD - set(keep))
    _HELD.intersection_update(keep)
    if not drop:
        return
    from lingua import LanguageDetectorBuilder

    # lingua unloads per detector, its models being shared by all: a detector of the languages to drop, in each
    # mode (unloading a model that is not loaded does nothing), releases just those.
    by_prefix = lingua_by_prefix()
    builder = LanguageDetectorBuilder.from_languages(*[by_prefix[p] for p in drop])
    builder.build().unload_language_models()
    builder.with_low_accuracy_mode().build().unload_language_models()


def detect(texts: Sequence[str], prefixes: tuple[str, ...], low_accuracy_min_chars: int | None) \
        -> list[tuple[str | None, float]]:
    """lingua's most likely language (FLORES code, None when undecided) and its confidence among
    `prefixes`, per text; long texts in low-accuracy mode. One parallel batch per mode."""
    flores_of = flores_by_lingua()
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


def prefix(flores: str) -> str:
    return flores.split("_", 1)[0]
