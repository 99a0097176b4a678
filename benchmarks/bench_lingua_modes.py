"""lingua's two modes on real short text of known language, asked as the filter stage asks it.

Why: lingua's low-accuracy mode at every length (`lang_id.low_accuracy_min_chars: 0`) would cut the filter stage's
language-ID CPU by a fifth at 3.4M rows, and the real sets' verdicts barely move (`bench_lid_options`), but only
because fastText settles nearly all real texts itself: lingua sees the doubtful ones. This measures lingua on those
terms. Real texts (hplt-test's human translations and the German DeepL set, as bench_langid reads them) are cut to
the prose lengths fastText leaves to lingua and judged by `quality.lid_lingua.detect` among the expected language's
candidates (`langid.candidates_for`), with the stage's acceptance and threshold:
- `false_rejections`: text in L, expected L, rejected (a good row lost);
- `catches`: text in L', expected L of the same family (Spanish as French, Russian as Bulgarian), rejected.
Per mode: the default (high accuracy below 120 characters) and low accuracy everywhere.
quick=True: lengths 20 and 50 only."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.bench_langid import real_texts
from quality import langid, lid_lingua, lid_sql

LENGTHS = (20, 35, 50, 80, 120)
# (text's language, expected language): the right language, then the likely confusions lingua is asked about
PAIRS = (("eng_Latn", "eng_Latn"), ("bul_Cyrl", "bul_Cyrl"), ("spa_Latn", "spa_Latn"), ("fra_Latn", "fra_Latn"),
         ("rus_Cyrl", "rus_Cyrl"), ("deu_Latn", "deu_Latn"), ("zho_Hans", "zho_Hans"),
         ("fra_Latn", "spa_Latn"), ("spa_Latn", "fra_Latn"), ("rus_Cyrl", "bul_Cyrl"), ("bul_Cyrl", "rus_Cyrl"),
         ("deu_Latn", "eng_Latn"), ("eng_Latn", "deu_Latn"))
MODES = {"default": langid.JudgeConfig.of().low_accuracy_min_chars, "low_accuracy_everywhere": 0}
GERMAN_TEXTS = 600  # of the DeepL set: the hplt languages have 50 each


def _prose_by_language() -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = {}
    for corpus, lang, text in real_texts():
        if corpus == "hplt-test" or (lang == "deu_Latn" and len(by_lang.get(lang, [])) < GERMAN_TEXTS):
            by_lang.setdefault(lang, []).append(text)
    return {lang: [p for p in lid_sql.prose_and_scripts(texts, [], langid.JudgeConfig.of().max_chars)[0] if p]
            for lang, texts in by_lang.items()}


def _rejected_share(texts: list[str], expected: str, low_accuracy_min_chars: int | None) -> tuple[float, float]:
    """Share of `texts` lingua rejects as not `expected`, and share it accepts (the rest: not judged)."""
    candidates = langid.candidates_for(expected)
    found = lid_lingua.detect(texts, tuple(lid_lingua.prefix(c) for c in candidates), low_accuracy_min_chars)
    accepted, threshold = langid.accepted_prefixes(expected), langid.JudgeConfig.of().threshold(expected)
    right = sum(code is not None and lid_lingua.prefix(code) in accepted for code, _ in found)
    wrong = sum(code is not None and lid_lingua.prefix(code) not in accepted and confidence >= threshold
                for code, confidence in found)
    return round(wrong / len(texts), 3), round(right / len(texts), 3)


def run(quick: bool = False) -> dict[str, Any]:
    prose = _prose_by_language()
    lengths = (20, 50) if quick else LENGTHS
    table: dict[str, dict[str, Any]] = {}
    cpu: dict[str, float] = {}
    for mode, low_min in MODES.items():
        lid_lingua.release_models()
        started = time.process_time()
        for length in lengths:
            for text_lang, expected in PAIRS:
                texts = [p[:length].strip() for p in prose[text_lang] if len(p) >= length]
                rejected, accepted = _rejected_share(texts, expected, low_min)
                row = table.setdefault(f"{text_lang} as {expected}, {length} chars", {"texts": len(texts)})
                row[mode] = {"rejected": rejected, "accepted": accepted}
        cpu[mode] = round(time.process_time() - started, 2)
    lid_lingua.release_models()
    same = [k for k in table if k.split(" as ")[0] == k.split(" as ")[1].split(",")[0]]
    other = [k for k in table if k not in same]
    summary: dict[str, Any] = {}
    for mode in MODES:
        summary[f"{mode}_worst_false_rejection"] = max(table[k][mode]["rejected"] for k in same)
        summary[f"{mode}_mean_false_rejection"] = round(sum(table[k][mode]["rejected"] for k in same) / len(same), 4)
        summary[f"{mode}_mean_catch"] = round(sum(table[k][mode]["rejected"] for k in other) / len(other), 4)
        summary[f"{mode}_cpu_s"] = cpu[mode]
    return {"summary": summary, "by_case": table, "lengths": list(lengths),
            "note": "lingua as the filter stage asks it (among the expected language's candidates), on real text "
                    "cut to short prose; false rejections are good rows lost, catches are confusions rejected."}
