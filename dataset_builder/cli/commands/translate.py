"""CLI commands of the translation area: `translate`, `model convert`, `model smoke-nllb`.
See dataset_builder/cli/commands/__init__.py for the conventions. No `from __future__ import annotations`
here: typer reads the option annotations at runtime."""

from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.cli.options import ParamsOption, get_params, target_language
from dataset_builder.models.nllb import convert_model, resolve_translation_model
from dataset_builder.models.smoke import build_smoke_nllb
from dataset_builder.translate import translate_file
from schemas.languages import resolution_note
from schemas.models import read_manifest
from schemas.outputs import ensure_writable
from schemas.params import parse_params


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("translate")
    def translate(
        source: Annotated[Path, typer.Option("--in", help="source records (data/source.parquet)")] = Path(
            "data/source.parquet"),
        lang: Annotated[str, typer.Option("--lang", help="target language: FLORES-200 (fra_Latn) or ISO (fr)")] = "",
        model: Annotated[str | None, typer.Option(
            help="smoke | CTranslate2 dir | Hugging Face dir | Hub id; default models.translation")] = None,
        out: Annotated[Path | None, typer.Option(help="default data/translated/{lang}.parquet")] = None,
        metrics: Annotated[Path | None, typer.Option(help="default metrics/translate/{lang}.json")] = None,
        rejects: Annotated[Path | None, typer.Option(help="default data/rejects/translate/{lang}.parquet")] = None,
        cache: Annotated[Path | None, typer.Option(help="translation memory; default translate.cache")] = None,
        plan_cache: Annotated[Path | None, typer.Option(
            help="its segments/ holds the segmentation plans, shared by every language; default: the memory")] = None,
        device: Annotated[str | None, typer.Option(help="auto|cpu|cuda")] = None,
        compute_type: Annotated[str | None, typer.Option(help="auto|int8|int8_float16|float16|float32|...")] = None,
        beam_size: Annotated[int | None, typer.Option(help="1 = greedy")] = None,
        max_batch_tokens: Annotated[int | None, typer.Option(help="tokens per engine batch")] = None,
        backend: Annotated[str | None, typer.Option(help="local | ray (Ray Data; pip install 'polyinstruct\\[ray]')")
                           ] = None,
        address: Annotated[str | None, typer.Option(
            help="ray: cluster address (HOST:6379 or auto); default: a local Ray instance")] = None,
        num_workers: Annotated[int | None, typer.Option(help="ray: translator actors (one model each)")] = None,
        gpus_per_worker: Annotated[float | None, typer.Option(help="ray: GPUs per actor; 0 = CPU workers")] = None,
        cpus_per_worker: Annotated[int | None, typer.Option(help="ray: threads per CPU actor")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Translate every record into one language (NLLB-200 on CTranslate2), resumably."""
        target = target_language(lang)
        note = resolution_note(lang)
        if note:
            typer.echo(f"translate: note: {note}", err=True)
        params = get_params(params_path)
        overrides = {"device": device, "compute_type": compute_type, "beam_size": beam_size,
                     "max_batch_tokens": max_batch_tokens, "backend": backend, "ray_address": address,
                     "ray_num_workers": num_workers, "ray_gpus_per_worker": gpus_per_worker,
                     "ray_cpus_per_worker": cpus_per_worker}
        merged = params.model_dump()
        merged["translate"] |= {k: v for k, v in overrides.items() if v is not None}
        params = parse_params(merged, "command line")
        out = out or Path(f"data/translated/{target}.parquet")
        metrics = metrics or Path(f"metrics/translate/{target}.json")
        rejects = rejects or Path(f"data/rejects/translate/{target}.parquet")
        ensure_writable(out, metrics, rejects, folders=(cache or Path(params.translate.cache),))
        model_dir = resolve_translation_model(model or params.models.translation, params)
        result = translate_file(source, target, model_dir, out, metrics, rejects, params, cache=cache,
                                plan_cache=plan_cache)
        m = result.metrics
        smoke = " [SMOKE MODEL: output is gibberish]" if m["smoke"] else ""
        typer.echo(
            f"translate {target}: {result.translated} translated, {result.kept_verbatim} kept verbatim,"
            f" {result.rejected} rejected; {m['units_translated']} units sent, {m['cache_hits']} from memory"
            f" ({m['cache_hit_rate']:.0%}), {m['truncated_units']} truncated; {m['device']}/{m['compute_type']}"
            f"{smoke}"
        )

    @model_app.command("convert")
    def convert(
        id_or_dir: Annotated[str, typer.Argument(help="Hugging Face model directory or Hub id")],
        out: Annotated[Path, typer.Option(help="CTranslate2 model directory to write")],
        quantization: Annotated[str, typer.Option(
            help="int8|int8_float16|int8_float32|int8_bfloat16|int16|float16|bfloat16|float32")] = "int8",
    ) -> None:
        """Convert an NLLB model to CTranslate2, keeping its tokenizer, with a manifest."""
        convert_model(id_or_dir, out, quantization)
        typer.echo(f"converted {id_or_dir} -> {out} ({quantization}); fingerprint {read_manifest(out)['fingerprint']}")

    @model_app.command("smoke-nllb")
    def smoke_nllb(
        out: Annotated[Path, typer.Option(help="model directory to write")] = Path("models/translation"),
        seed: Annotated[int, typer.Option(help="random seed; same seed, same files")] = 0,
    ) -> None:
        """Build the tiny random-weight NLLB smoke model (CTranslate2 + tokenizer + HF copy in hf/)."""
        build_smoke_nllb(out, seed)
        typer.echo(f"smoke NLLB model -> {out}; fingerprint {read_manifest(out)['fingerprint']}"
                   " (random weights: its translations are gibberish)")
