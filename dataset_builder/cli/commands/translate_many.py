"""CLI command `translate-many`: several target languages in one process (dataset_builder.translate_many).
See dataset_builder/cli/commands/__init__.py for the conventions. No `from __future__ import annotations`
here: typer reads the option annotations at runtime."""

from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.cli.options import ParamsOption, get_params
from dataset_builder.models.nllb import resolve_translation_model
from dataset_builder.translate_many import language_paths, target_languages, translate_languages
from schemas.errors import PolyinstructError
from schemas.outputs import ensure_writable
from schemas.params import Params, parse_params


def _languages(langs: str, group: str, params: Params) -> list[str]:
    if bool(langs) == bool(group):
        raise PolyinstructError("give --langs deu_Latn,fra_Latn or --group NAME (a key of translate.one_process)")
    if group:
        if group not in params.translate.one_process:
            raise PolyinstructError(f"--group {group}: not a key of translate.one_process"
                                    f" ({', '.join(params.translate.one_process) or 'empty'}) in params.yaml")
        return list(params.translate.one_process[group])
    return [lang.strip() for lang in langs.split(",") if lang.strip()]


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    @app.command("translate-many")
    def translate_many(
        source: Annotated[Path, typer.Option("--in", help="source records (data/source.parquet)")] = Path(
            "data/source.parquet"),
        langs: Annotated[str, typer.Option(help="target languages, comma-separated: deu_Latn,fra_Latn")] = "",
        group: Annotated[str, typer.Option(help="or: the languages of translate.one_process.GROUP")] = "",
        model: Annotated[str | None, typer.Option(
            help="smoke | CTranslate2 dir | Hugging Face dir | Hub id; default models.translation")] = None,
        out_dir: Annotated[Path, typer.Option(help="writes {lang}.parquet here")] = Path("data/translated"),
        metrics_dir: Annotated[Path, typer.Option(help="writes {lang}.json here")] = Path("metrics/translate"),
        rejects_dir: Annotated[Path, typer.Option(help="writes {lang}.parquet here")] = Path(
            "data/rejects/translate"),
        cache: Annotated[Path | None, typer.Option(
            help="translation memories, one folder per language; default translate.cache")] = None,
        device: Annotated[str | None, typer.Option(help="auto|cpu|cuda")] = None,
        compute_type: Annotated[str | None, typer.Option(help="auto|int8|int8_float16|float16|float32|...")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Translate every record into several languages in one process: the model, tokenizer and
        segmentation loaded once; per language the same outputs, memory and resume as `translate`."""
        params = get_params(params_path)
        if device or compute_type:
            merged = params.model_dump()
            merged["translate"] |= {k: v for k, v in {"device": device, "compute_type": compute_type}.items() if v}
            params = parse_params(merged, "command line")
        codes = target_languages(_languages(langs, group, params), params.languages.source)
        cache_root = cache or Path(params.translate.cache)
        for lang in codes:
            paths = language_paths(lang, out_dir, metrics_dir, rejects_dir, cache_root)
            ensure_writable(paths.out, paths.metrics, paths.rejects, folders=(paths.memory,))
        model_dir = resolve_translation_model(model or params.models.translation, params)
        done = translate_languages(source, codes, model_dir, out_dir, metrics_dir, rejects_dir, params, cache_root)
        smoke = " [SMOKE MODEL: output is gibberish]" if any(r.metrics["smoke"] for r in done.results) else ""
        for r in done.results:
            m = r.metrics
            typer.echo(f"translate {r.lang}: {r.translated} translated, {r.kept_verbatim} kept verbatim,"
                       f" {r.rejected} rejected; {m['units_translated']} units sent, {m['cache_hits']} from memory")
        loaded = done.loaded
        typer.echo(f"translate-many: {len(codes)} languages in {done.seconds:.1f} s; model loaded"
                   f" {loaded.model_loads} time(s), tokenizer {loaded.tokenizer_loads}, source segmented"
                   f" {len(loaded.plans)} time(s){smoke}")
