"""CLI command of the quality-estimation step: `score` (NLLB's forced-decoding score of imported translations,
read by quality.filters.low_confidence). No `from __future__ import annotations` here: typer reads the option
annotations at runtime."""

from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.cli.options import ParamsOption, get_params, target_language
from dataset_builder.models.nllb import resolve_translation_model
from dataset_builder.qe_score import score_file


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("score")
    def score(
        lang: Annotated[str, typer.Option("--lang", help="the translated language: FLORES-200 or ISO")] = "",
        source: Annotated[Path, typer.Option("--source", help="source records")] = Path("data/source.parquet"),
        translated: Annotated[Path | None, typer.Option(
            help="that language's translations (any translator); default data/translated/{lang}.parquet")] = None,
        model: Annotated[str | None, typer.Option(help="default models.translation")] = None,
        out: Annotated[Path | None, typer.Option(help="default {quality.qe.dir}/{lang}.parquet")] = None,
        metrics: Annotated[Path | None, typer.Option(help="default metrics/qe/{lang}.json")] = None,
        cache: Annotated[Path | None, typer.Option(help="translation memory; default translate.cache")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Score one language's translations with the translation model (forced decoding), for low_confidence."""
        target = target_language(lang)
        params = get_params(params_path)
        translated = translated or Path(f"data/translated/{target}.parquet")
        out = out or Path(params.quality.qe.dir) / f"{target}.parquet"
        metrics = metrics or Path(f"metrics/qe/{target}.json")
        if not params.quality.qe.enabled:
            result = score_file(source, translated, Path(), out, metrics, params)
            typer.echo(f"score {target}: quality.qe.enabled is false, nothing scored (empty {out}); set it to true "
                       "in params.yaml to score")
            return
        model_dir = resolve_translation_model(model or params.models.translation, params)
        result = score_file(source, translated, model_dir, out, metrics, params, cache=cache)
        smoke = " [SMOKE MODEL: random weights; the scores test the mechanics only]" if result["smoke"] else ""
        typer.echo(f"score {target}: {result['scored']} of {result['records']} records scored by forced decoding "
                   f"({result['already_scored']} already had the translate stage's log_prob, "
                   f"{result['not_scorable']} not scorable; {result['pairs_scored']} pairs sent, "
                   f"{result['cache_hits']} from memory){smoke}")
