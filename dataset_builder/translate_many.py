"""Several target languages in one process: the model, tokenizer and source plan loaded once (issue 14).

A DVC foreach runs `polyinstruct translate` once per language, and each process loads the tokenizer and
the CTranslate2 model and segments the source again: on a GPU, NLLB-3.3B alone is a multi-GB load, 52
times for Bactrian-X's languages. `translate_languages` runs the same per-language `translate_file` for
each language in turn, handing each the `LoadedOnce` of the languages before it. Each language keeps
its own output, rejects, metrics and translation memory (`<cache>/<lang>`, the per-language stage's
layout), so the two ways write the same bytes, share their memories, and resume alike: a SIGKILL loses
at most the shard in flight of the language in flight, and the rerun serves every finished shard from
the memory.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from dataset_builder.shard_work import RayOptions
from dataset_builder.translate import TranslateResult, translate_file
from dataset_builder.translate_engine import LoadedOnce
from dataset_builder.translate_ray import ray_session
from schemas.errors import PolyinstructError
from schemas.languages import nllb_codes, resolve
from schemas.params import Params


@dataclass(frozen=True)
class LanguagePaths:
    """Where one language's run writes: the per-language stage's layout."""

    out: Path
    metrics: Path
    rejects: Path
    memory: Path


@dataclass
class ManyResult:
    results: list[TranslateResult]
    loaded: LoadedOnce
    seconds: float


def language_paths(lang: str, out_dir: Path, metrics_dir: Path, rejects_dir: Path, cache_root: Path
                   ) -> LanguagePaths:
    return LanguagePaths(out_dir / f"{lang}.parquet", metrics_dir / f"{lang}.json", rejects_dir / f"{lang}.parquet",
                         cache_root / lang)


def target_languages(langs: list[str], source_lang: str) -> list[str]:
    """FLORES-200 codes of `langs`, checked before any work: a bad tenth language stops the run at once."""
    codes = [resolve(lang).flores for lang in langs]
    if not codes:
        raise PolyinstructError("--langs: no language given, e.g. --langs deu_Latn,fra_Latn")
    for given, code in zip(langs, codes, strict=True):
        if code not in nllb_codes():
            raise PolyinstructError(f"--langs {given}: NLLB-200 does not translate into {code}")
        if code == source_lang:
            raise PolyinstructError(f"--langs {given}: that is the source language; list target languages only")
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        raise PolyinstructError(f"--langs lists {', '.join(twice)} more than once; list each language once")
    return codes


def translate_languages(source: Path, langs: list[str], model_dir: Path, out_dir: Path, metrics_dir: Path,
                        rejects_dir: Path, params: Params, cache_root: Path, plan_cache: Path | None = None
                        ) -> ManyResult:
    """Translate `source` into every language of `langs` in this process, one language after the other.
    `plan_cache`: its `segments/` keeps the segmentation plan between runs (default: `cache_root`)."""
    started = time.perf_counter()
    codes = target_languages(langs, params.languages.source)
    loaded = LoadedOnce(Path(model_dir))
    results: list[TranslateResult] = []
    # backend ray: one Ray instance for every language (ray_session reuses it); each language still
    # starts its own actor pool, as each loads the model for its target prefix.
    ray_options = RayOptions.of("translate", params.translate)
    with ray_session(ray_options) if params.translate.backend == "ray" else nullcontext():
        for i, lang in enumerate(codes, 1):
            paths = language_paths(lang, out_dir, metrics_dir, rejects_dir, cache_root)
            print(f"translate-many: {lang} ({i}/{len(codes)})", file=sys.stderr)
            results.append(translate_file(source, lang, model_dir, paths.out, paths.metrics, paths.rejects,
                                          params, cache=paths.memory, loaded=loaded,
                                          plan_cache=plan_cache or cache_root))
    return ManyResult(results, loaded, time.perf_counter() - started)
