"""CLI commands of this area; see dataset_builder/cli/commands/__init__.py for the conventions.

`compare` puts every mixture's evaluation side by side (and DVC plot CSVs); `benchmark` runs
lm-evaluation-harness tasks on the base model and on base + adapter."""

# No `from __future__ import annotations`: typer evaluates the option annotations.
from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.cli.options import ParamsOption, get_params
from dataset_builder.models.lm import resolve_base_lm
from schemas.artifacts import write_json
from schemas.models import is_smoke
from trl_training.benchmark import benchmark as run_benchmark
from trl_training.compare import compare as run_compare


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("compare")
    def compare(
        eval_dir: Annotated[Path, typer.Option("--eval", help="directory of `polyinstruct evaluate` JSONs")] = Path(
            "metrics/eval"),
        out: Annotated[Path, typer.Option(help="the markdown report")] = Path("reports/comparison.md"),
        plots: Annotated[Path | None, typer.Option(help="directory for one DVC plot CSV per metric")] = None,
        mixes: Annotated[Path | None, typer.Option(help="mixture directories (their manifest.json: budget)")] = (
            Path("data/mixes")),
        benchmarks: Annotated[Path | None, typer.Option(
            help="directory of `polyinstruct benchmark` JSONs named by mixture (optional)")] = None,
    ) -> None:
        """One table per language of every mixture and the base: loss, fidelity, judge, benchmarks, budget."""
        data = run_compare(eval_dir, out, plots, mixes, benchmarks)
        typer.echo(f"compare: {len(data['mixtures'])} mixture(s), {len({r['lang'] for r in data['rows']})}"
                   f" language(s) -> {out}")

    @app.command("benchmark")
    def benchmark(
        adapter: Annotated[Path, typer.Option(help="the adapter directory (polyinstruct train)")],
        out: Annotated[Path, typer.Option(help="results JSON")],
        base_model: Annotated[str, typer.Option(help="`smoke`, a Hub id, or a model directory")] = "models/base_lm",
        tasks: Annotated[str | None, typer.Option(
            help="comma-separated lm-eval tasks or groups (default evaluate.benchmarks, else belebele)")] = None,
        limit: Annotated[int | None, typer.Option(
            help="examples per task (results are then not comparable with published ones)")] = None,
        num_fewshot: Annotated[int | None, typer.Option(help="default evaluate.benchmark_num_fewshot")] = None,
        include_path: Annotated[Path | None, typer.Option(help="a directory of local lm-eval task YAMLs")] = None,
        apply_chat_template: Annotated[bool, typer.Option("--apply-chat-template")] = False,
        batch_size: Annotated[int | None, typer.Option(help="default evaluate.batch_size")] = None,
        from_params: Annotated[bool, typer.Option(
            "--from-params", help="the DVC stage: tasks from evaluate.benchmarks; [] writes a skip record")] = False,
        params_path: ParamsOption = None,
    ) -> None:
        """Zero-shot benchmarks through lm-evaluation-harness: accuracy per task and language, base vs adapter."""
        params = get_params(params_path)
        settings = params.evaluate
        if from_params and not settings.benchmarks:  # opt-in: their data comes from the Hub
            write_json({"adapter": str(adapter), "results": [], "skipped": "evaluate.benchmarks is []"}, out)
            typer.echo(f"benchmark: evaluate.benchmarks is [] (opt-in); nothing run -> {out}")
            return
        names = [t.strip() for t in (tasks.split(",") if tasks else settings.benchmarks or ["belebele"]) if t.strip()]
        include = include_path or (Path(settings.benchmark_include_path) if settings.benchmark_include_path else None)
        base_path = resolve_base_lm(base_model, params)
        result = run_benchmark(base_path, adapter, names, out, limit=limit or settings.benchmark_limit,
                               num_fewshot=settings.benchmark_num_fewshot if num_fewshot is None else num_fewshot,
                               batch_size=batch_size or settings.batch_size, include_path=include,
                               apply_chat_template=apply_chat_template, smoke=is_smoke(base_path))
        for row in result["results"]:
            typer.echo(f"benchmark {row['task']} ({row['lang'] or '-'}): base {row['base']:.3f} -> adapter"
                       f" {row.get('adapter', float('nan')):.3f}")
        typer.echo(f"benchmark: {len(result['results'])} task(s) -> {out}" + (f" [{result['note']}]"
                                                                             if result["note"] else ""))
