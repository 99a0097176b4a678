"""CLI command of the generate recipe: `respond` (Bactrian-X: outputs generated in each language).
See dataset_builder/cli/commands/__init__.py for the conventions."""

# No `from __future__ import annotations`: typer evaluates the option annotations at registration.
from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.cli.options import ParamsOption, get_params, target_language
from dataset_builder.respond import open_engine, respond_file
from schemas.params import parse_params


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("respond")
    def respond(
        source: Annotated[Path | None, typer.Option("--in", help="translated records; default"
                                                     " data/translated/{lang}.parquet")] = None,
        lang: Annotated[str, typer.Option("--lang", help="language: FLORES-200 (fra_Latn) or ISO (fr)")] = "",
        model: Annotated[str | None, typer.Option(
            help="smoke | CTranslate2 dir | Hugging Face dir | Hub id; default models.responder")] = None,
        out: Annotated[Path | None, typer.Option(help="default data/responded/{lang}.parquet")] = None,
        metrics: Annotated[Path | None, typer.Option(help="default metrics/respond/{lang}.json")] = None,
        rejects: Annotated[Path | None, typer.Option(help="default data/rejects/respond/{lang}.parquet")] = None,
        cache: Annotated[Path | None, typer.Option(help="response memory; default responses.cache")] = None,
        backend: Annotated[str | None, typer.Option(help="local | ray | openai (responses.endpoint)")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Generate each record's output in its language with a local LLM (CTranslate2), resumably."""
        target = target_language(lang)
        params = get_params(params_path)
        if backend is not None:
            merged = params.model_dump()
            merged["responses"]["backend"] = backend
            params = parse_params(merged, "command line")
        engine, compute_type = open_engine(params, model)
        result = respond_file(
            source or Path(f"data/translated/{target}.parquet"), target, engine,
            out or Path(f"data/responded/{target}.parquet"), metrics or Path(f"metrics/respond/{target}.json"),
            rejects or Path(f"data/rejects/respond/{target}.parquet"), params, compute_type, cache=cache)
        m = result.metrics
        smoke = " [SMOKE MODEL: answers are noise]" if m["smoke"] else ""
        typer.echo(f"respond {target}: {result.responded} responded, {result.rejected} rejected;"
                   f" {m['prompts_generated']} generated, {m['cache_hits']} from memory ({m['cache_hit_rate']:.0%}),"
                   f" {m['truncated_outputs']} cut at max_new_tokens; {m['device']}/{m['compute_type']}{smoke}")
