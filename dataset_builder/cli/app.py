"""The one CLI, `polyinstruct`: the app, its small commands, and the command modules of each area
(dataset_builder/cli/commands/). DVC stages are thin calls of these commands."""

from __future__ import annotations

import multiprocessing.util
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dataset_builder.cli.commands import (
    doctor,
    evaluation,
    export,
    quality,
    recipes,
    report,
    respond,
    round_trip,
    score,
    training,
    translate,
    translate_many,
    validation,
)
from dataset_builder.cli.options import ParamsOption, get_params
from dataset_builder.ingest import ingest as run_ingest
from dataset_builder.models.lm import prepare_base_lm
from dataset_builder.models.nllb import prepare_translation_model
from dataset_builder.models.responder import prepare_responder
from dataset_builder.sources import ingest_sources
from schemas.errors import PolyinstructError
from schemas.languages import language_set
from schemas.outputs import ensure_writable
from schemas.params import parse_params

app = typer.Typer(
    name="polyinstruct",
    help="Turn English instruction data into a clean multilingual parallel dataset and train LoRA adapters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
model_app = typer.Typer(help="Build, convert and inspect models.", no_args_is_help=True)
app.add_typer(model_app, name="model")

@app.command()
def languages(
    set_name: Annotated[str, typer.Option("--set", help="bactrian-x, chen2024 or demo")] = "bactrian-x",
) -> None:
    """Print a language set as a table of codes."""
    langs = language_set(set_name)
    table = Table(title=f"{set_name}: {len(langs)} languages")
    for col in ("FLORES-200", "ISO 639-1", "mBART-50", "name", "script"):
        table.add_column(col)
    for lang in langs:
        table.add_row(lang.flores, lang.iso639_1 or "-", lang.mbart50 or "-", lang.name, lang.script)
    Console().print(table)


@app.command()
def ingest(
    source: Annotated[str | None, typer.Option("--in", help="file, `embedded`, or hf:ORG/NAME")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="auto|alpaca|dolly|json|jsonl|csv|parquet")] = None,
    out: Annotated[Path, typer.Option(help="output Parquet")] = Path("data/source.parquet"),
    rejects: Annotated[Path, typer.Option(help="rejects Parquet")] = Path("data/rejects/ingest.parquet"),
    metrics: Annotated[Path | None, typer.Option(help="metrics JSON")] = Path("metrics/ingest.json"),
    limit: Annotated[int | None, typer.Option(help="keep the first N records")] = None,
    sample: Annotated[int | None, typer.Option(help="keep a random sample of N records")] = None,
    seed: Annotated[int | None, typer.Option(help="seed for --sample")] = None,
    column: Annotated[list[str] | None, typer.Option("--map", help="FIELD=COLUMN, e.g. output=response")] = None,
    params_path: ParamsOption = None,
) -> None:
    """Read English instruction data into data/source.parquet; bad records go to the rejects table."""
    params = get_params(params_path)
    data = params.data
    overrides: dict[str, object] = {"source": source, "format": fmt, "limit": limit, "sample": sample, "seed": seed}
    if column:
        bad = [c for c in column if "=" not in c]
        if bad:
            raise PolyinstructError(f"--map {bad[0]}: expected FIELD=COLUMN, e.g. --map output=response")
        overrides["column_map"] = dict(c.split("=", 1) for c in column)
    merged = data.model_dump(exclude_unset=True) | {k: v for k, v in overrides.items() if v is not None}
    if source is not None:  # --in replaces data.sources too
        merged.pop("sources", None)
    data = parse_params({"data": merged}, "command line").data
    ensure_writable(out, rejects, metrics)
    result = (ingest_sources if data.sources else run_ingest)(data, out, rejects, metrics,
                                                             source_lang=params.languages.source)
    reasons = ", ".join(f"{k}={v}" for k, v in result.by_reason.items()) or "none"
    typer.echo(f"ingest: kept {result.kept}, rejected {result.rejected} ({reasons}) -> {out}")


@model_app.command("prepare")
def model_prepare(
    translation_out: Annotated[Path, typer.Option(help="CTranslate2 translation model dir")] = Path(
        "models/translation"),
    base_lm_out: Annotated[Path, typer.Option(help="base LM dir for SFT")] = Path("models/base_lm"),
    responder_out: Annotated[Path | None, typer.Option(
        help="also prepare models.responder (CTranslate2 Generator) here")] = None,
    params_path: ParamsOption = None,
) -> None:
    """Make the models params.yaml names ready: smoke models are built, Hub models downloaded and converted."""
    params = get_params(params_path)
    for kind, spec, out, prepare in (
        ("translation", params.models.translation, translation_out, prepare_translation_model),
        ("base LM", params.models.base_lm, base_lm_out, prepare_base_lm),
        *((("responder", params.models.responder, responder_out, prepare_responder),) if responder_out else ()),
    ):
        prepare(spec, out, params)
        note = " (SMOKE MODEL: random weights, output is not a real translation/answer)" if spec == "smoke" else ""
        typer.echo(f"model prepare: {kind} '{spec}' -> {out}{note}")


AREAS = (translate, translate_many, round_trip, score, respond, quality, validation, export, training, evaluation,
         report, doctor, recipes)
for area in AREAS:
    area.register(app, model_app)


class Terminated(BaseException):
    """SIGTERM (`timeout`, a scheduler, a pod's shutdown) raised in the main thread, so that `with` blocks and
    `finally` clauses run as for Ctrl-C: the filter stage's spill folder (GBs at 10M rows) and its worker pools
    are removed instead of being left in the temporary directory. A BaseException, so no `except Exception`
    swallows it."""


_MAIN_PID = os.getpid()
# The signals that stopped this run: a library may turn the exception raised for one into its own (DuckDB
# interrupts its query and raises RuntimeError("Query interrupted")), so `main` reads the signal from here.
_SIGNALLED: list[int] = []


def _on_signal(signum: int, frame: object) -> None:
    if os.getpid() != _MAIN_PID:  # a forked child that inherited the handler dies as it would have
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _SIGNALLED.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    try:
        app()
    except PolyinstructError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, Terminated, SystemExit, Exception) as err:
        # typer turns Ctrl-C's KeyboardInterrupt into exit 130, DuckDB either signal's exception into its own.
        stopped_by = _SIGNALLED[0] if _SIGNALLED else signal.SIGINT if isinstance(err, KeyboardInterrupt) else None
        if stopped_by is None:
            raise
        print("error: terminated by SIGTERM; outputs already finished are kept, a rerun resumes or redoes the rest"
              if stopped_by == signal.SIGTERM else "error: interrupted", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # The stage's `with` blocks have run (temporary folders removed, worker pools killed). multiprocessing's own
        # clean-up runs (its temporary folder, semaphores); the rest of atexit does not: it joins the thread of any
        # process pool whose workers the signal killed while they wrote a result, which waits forever.
        getattr(multiprocessing.util, "_exit_function", lambda: None)()
        os._exit(143 if stopped_by == signal.SIGTERM else 130)


if __name__ == "__main__":
    main()
