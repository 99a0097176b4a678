"""CLI command of the round-trip audit: `round-trip` (back-translation of a sample for the quality stage).
No `from __future__ import annotations` here: typer reads the option annotations at runtime."""

from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.cli.options import ParamsOption, get_params, target_language
from dataset_builder.models.nllb import resolve_translation_model
from dataset_builder.round_trip import round_trip_file


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("round-trip")
    def round_trip(
        lang: Annotated[str, typer.Option("--lang", help="the translated language: FLORES-200 or ISO")] = "",
        source: Annotated[Path, typer.Option("--source", help="source records")] = Path("data/source.parquet"),
        translated: Annotated[Path | None, typer.Option(
            help="that language's translations; default data/translated/{lang}.parquet")] = None,
        model: Annotated[str | None, typer.Option(help="default models.translation (the same model)")] = None,
        out: Annotated[Path | None, typer.Option(help="default {quality.round_trip.dir}/{lang}.parquet")] = None,
        metrics: Annotated[Path | None, typer.Option(help="default metrics/round_trip/{lang}.json")] = None,
        cache: Annotated[Path | None, typer.Option(help="translation memory; default translate.cache")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Back-translate a sample of one language into the source language, for the round-trip audit."""
        target = target_language(lang)
        params = get_params(params_path)
        model_dir = resolve_translation_model(model or params.models.translation, params)
        result = round_trip_file(
            source, translated or Path(f"data/translated/{target}.parquet"), model_dir,
            out or Path(params.quality.round_trip.dir) / f"{target}.parquet",
            metrics or Path(f"metrics/round_trip/{target}.json"), params, cache=cache)
        smoke = " [SMOKE MODEL: back-translations are gibberish; the audit tests mechanics only]" \
            if result["smoke"] else ""
        typer.echo(f"round-trip {target} -> {result['back_to']}: {result['back_translated']} of {result['records']}"
                   f" records back-translated ({result['units_translated']} units sent, {result['cache_hits']} from"
                   f" memory){smoke}")
