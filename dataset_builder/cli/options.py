"""Options and helpers every command module shares: `--params` and the params it names, `--lang`, and the one
signature of the commands that run the translation model over one language's existing translations
(`round-trip`, `score`).

The command modules import this module, never the app (dataset_builder/cli/app.py), so there is no cycle."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Annotated

import typer

from schemas.errors import PolyinstructError
from schemas.languages import resolve
from schemas.params import Params, load_params

ParamsOption = Annotated[
    Path | None, typer.Option("--params", help="params.yaml to read; default ./params.yaml if present")
]


def get_params(path: Path | None) -> Params:
    """Params from --params, else ./params.yaml when present, else the built-in defaults."""
    if path is None:
        return load_params("params.yaml") if Path("params.yaml").exists() else Params()
    return load_params(path)


def target_language(lang: str) -> str:
    """The FLORES-200 code of a required `--lang` (FLORES-200 or ISO)."""
    if not lang:
        raise PolyinstructError("--lang is required, e.g. --lang fra_Latn")
    return resolve(lang).flores


@dataclass(frozen=True)
class TranslationsRun:
    """What a command over one language's existing translations was asked, defaults filled in."""

    target: str
    params: Params
    source: Path
    translated: Path
    model: str  # models.translation unless --model
    out: Path
    metrics: Path
    cache: Path | None


def translations_command(name: str, doc: str, out_key: str, metrics_dir: str, run: Callable[[TranslationsRun], str]
                         ) -> Callable[[typer.Typer, typer.Typer], None]:
    """A command module's `register` that adds command `name`: the translation model over one language's
    translations (source records beside them), writing {params at out_key}/{lang}.parquet and
    {metrics_dir}/{lang}.json; `run` does the work and returns the line to print."""
    translated_option = Annotated[Path | None, typer.Option(
        help="that language's translations (any translator); default data/translated/{lang}.parquet")]
    out_option = Annotated[Path | None, typer.Option(help=f"default {{{out_key}}}/{{lang}}.parquet")]
    metrics_option = Annotated[Path | None, typer.Option(help=f"default {metrics_dir}/{{lang}}.json")]
    model_option = Annotated[str | None, typer.Option(help="default models.translation")]
    cache_option = Annotated[Path | None, typer.Option(help="translation memory; default translate.cache")]
    lang_option = Annotated[str, typer.Option("--lang", help="the translated language: FLORES-200 or ISO")]

    def command(lang: lang_option = "",
                source: Annotated[Path, typer.Option("--source", help="source records")] = Path("data/source.parquet"),
                translated: translated_option = None, model: model_option = None, out: out_option = None,
                metrics: metrics_option = None, cache: cache_option = None, params_path: ParamsOption = None) -> None:
        target = target_language(lang)
        params = get_params(params_path)
        out_dir = Path(reduce(getattr, out_key.split("."), params))
        typer.echo(run(TranslationsRun(
            target, params, source, translated or Path(f"data/translated/{target}.parquet"),
            model or params.models.translation, out or out_dir / f"{target}.parquet",
            metrics or Path(metrics_dir) / f"{target}.json", cache)))

    command.__doc__ = doc

    def register(app: typer.Typer, model_app: typer.Typer) -> None:
        app.command(name)(command)

    return register
