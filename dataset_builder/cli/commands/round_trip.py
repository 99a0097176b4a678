"""CLI command of the round-trip audit: `round-trip` (back-translation of a sample for the quality stage)."""


from dataset_builder.cli.options import TranslationsRun, translations_command
from dataset_builder.models.nllb import resolve_translation_model
from dataset_builder.round_trip import round_trip_file


def _round_trip(run: TranslationsRun) -> str:
    model_dir = resolve_translation_model(run.model, run.params)
    result = round_trip_file(run.source, run.translated, model_dir, run.out, run.metrics, run.params, cache=run.cache)
    smoke = " [SMOKE MODEL: back-translations are gibberish; the audit tests mechanics only]" \
        if result["smoke"] else ""
    return (f"round-trip {run.target} -> {result['back_to']}: {result['back_translated']} of {result['records']}"
            f" records back-translated ({result['units_translated']} units sent, {result['cache_hits']} from"
            f" memory){smoke}")


# The CLI adds the command through this (see dataset_builder/cli/app.py).
register = translations_command(
    "round-trip", "Back-translate a sample of one language into the source language, for the round-trip audit.",
    "quality.round_trip.dir", "metrics/round_trip", _round_trip)
