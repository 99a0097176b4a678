"""Options and helpers every command module shares: `--params` and the params it names, `--lang`.

The command modules import this module, never the app (dataset_builder/cli/app.py), so there is no cycle."""

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
