"""CLI command of the quality-estimation step: `score` (NLLB's forced-decoding score of imported translations,
read by quality.filters.low_confidence)."""

from pathlib import Path

from dataset_builder.cli.options import TranslationsRun, translations_command
from dataset_builder.models.nllb import resolve_translation_model
from dataset_builder.qe_score import score_file


def _score(run: TranslationsRun) -> str:
    if not run.params.quality.qe.enabled:
        score_file(run.source, run.translated, Path(), run.out, run.metrics, run.params)
        return (f"score {run.target}: quality.qe.enabled is false, nothing scored (empty {run.out}); set it to true "
                "in params.yaml to score")
    model_dir = resolve_translation_model(run.model, run.params)
    result = score_file(run.source, run.translated, model_dir, run.out, run.metrics, run.params, cache=run.cache)
    smoke = " [SMOKE MODEL: random weights; the scores test the mechanics only]" if result["smoke"] else ""
    return (f"score {run.target}: {result['scored']} of {result['records']} records scored by forced decoding "
            f"({result['already_scored']} already had the translate stage's log_prob, "
            f"{result['not_scorable']} not scorable; {result['pairs_scored']} pairs sent, "
            f"{result['cache_hits']} from memory){smoke}")


# The CLI adds the command through this (see dataset_builder/cli/app.py).
register = translations_command(
    "score", "Score one language's translations with the translation model (forced decoding), for low_confidence.",
    "quality.qe.dir", "metrics/qe", _score)
