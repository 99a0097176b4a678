"""CLI commands of this area: `export` (Hub-layout folder + dataset card) and `push` (upload to the Hub).
See dataset_builder/cli/commands/__init__.py for the conventions."""

# No `from __future__ import annotations`: typer evaluates the option annotations at registration.
from pathlib import Path
from typing import Annotated

import typer
from rich.filesize import decimal

from dataset_builder.cli.commands.push_model import push_model
from dataset_builder.cli.options import ParamsOption, get_params
from dataset_builder.export.build import export_dataset
from dataset_builder.hub import push_export
from dataset_builder.lineage import check_lineage
from schemas.errors import PolyinstructError
from schemas.outputs import ensure_writable
from schemas.params import parse_params

DEFAULT_QUALITY = Path("metrics/quality.json")



def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("export")
    def export(
        in_dir: Annotated[Path, typer.Option("--in", help="filtered data: {flores}.parquet per language")] = Path(
            "data/filtered"),
        out: Annotated[Path, typer.Option("--out", help="export folder (rebuilt from scratch)")] = Path("data/export"),
        validation: Annotated[Path | None, typer.Option(
            "--validation", help="validation result JSON; the export refuses data that failed it")] = None,
        quality: Annotated[Path | None, typer.Option(
            "--quality", help="quality metrics JSON for the card's reject counts (default: metrics/quality.json"
                              " when present)")] = None,
        seed: Annotated[int | None, typer.Option(help="split seed (overrides export.seed)")] = None,
        max_shard_mb: Annotated[float | None, typer.Option(
            "--max-shard-mb", help="shard size limit (overrides export.max_shard_mb)")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Write the Hugging Face dataset layout: one config per language, train/validation/test, README card."""
        params = get_params(params_path)
        overrides = {k: v for k, v in {"seed": seed, "max_shard_mb": max_shard_mb}.items() if v is not None}
        if overrides:
            merged = params.model_dump() | {"export": params.export.model_dump() | overrides}
            params = parse_params(merged, "command line")
        quality_path = quality if quality is not None else (DEFAULT_QUALITY if DEFAULT_QUALITY.exists() else None)
        ensure_writable(folders=(out.parent,))  # the export is built beside `out`, then swapped in
        result = export_dataset(in_dir, out, params, validation_path=validation, quality_path=quality_path)
        for c in result.configs:
            splits = ", ".join(f"{s} {n}" for s, n in c.counts.items())
            typer.echo(f"export: {c.config} ({c.language.flores}): {splits}")
        total = sum(c.total for c in result.configs)
        license_text = result.license if isinstance(result.license, str) else " + ".join(result.license)
        typer.echo(f"export: {len(result.configs)} configs, {total} rows, default config {result.default_config},"
                   f" license {license_text} -> {out}")
        for lang in result.empty_languages:
            typer.echo(f"export: WARNING: no record of {lang.flores} survived the filters; it has no config", err=True)
        if result.smoke:
            typer.echo("export: WARNING: smoke-model output (random weights); the card says so at the top", err=True)

    @app.command("push")
    def push(
        export_dir: Annotated[Path, typer.Argument(help="export folder written by `polyinstruct export`")],
        repo_id: Annotated[str, typer.Option("--repo-id", help="ORG/NAME of the Hub dataset repo")],
        private: Annotated[bool, typer.Option(
            "--private", help="create the repo private (an existing repo keeps its visibility)")] = False,
        revision: Annotated[str | None, typer.Option(help="branch to push to (created if missing)")] = None,
        create_pr: Annotated[bool, typer.Option("--create-pr", help="open a pull request instead")] = False,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="list files and sizes and print the card; no network access")] = False,
        tag: Annotated[bool, typer.Option(
            "--tag", help="tag the uploaded Hub revision polyinstruct-<git commit> (from lineage.json)")] = False,
        params_path: ParamsOption = None,
        kind: Annotated[str, typer.Option(
            "--kind", help="dataset (an export folder) | model (an adapter folder, models/adapters/NAME)")] = "dataset",
        data_card: Annotated[Path | None, typer.Option(
            help="--kind model: the training data's card (default: the export's README.md)")] = None,
        eval_table: Annotated[Path | None, typer.Option(
            help="--kind model: evaluation table (default metrics/eval/NAME.md when present)")] = None,
        base_license: Annotated[str | None, typer.Option(
            help="--kind model: the base model's license id when its README.md has none")] = None,
    ) -> None:
        """Upload an export folder (or, with --kind model, a LoRA adapter) to the Hugging Face Hub (token:
        HF_TOKEN or `hf auth login`)."""
        get_params(params_path)  # a broken params.yaml fails here, as for every command
        if kind != "dataset":

            push_model(export_dir, repo_id, kind=kind, private=private, dry_run=dry_run, data_card=data_card,
                       eval_table=eval_table, base_license=base_license)
            return
        result = push_export(export_dir, repo_id, private=private, revision=revision, create_pr=create_pr,
                             dry_run=dry_run, tag=tag)
        plan = result.plan
        verified = plan.verified
        typer.echo(f"push: {export_dir} passed the round trip: {len(verified['configs'])} configs,"
                   f" {verified['rows']} rows (default config {verified['default']})")
        if dry_run:
            typer.echo(f"push (dry run, nothing sent): {len(plan.files)} files, {decimal(plan.total_bytes)}")
            for rel, size in plan.files:
                typer.echo(f"  {size:>14,d}  {rel}")
            typer.echo("push (dry run): would call, in order:")
            for call in result.calls:
                typer.echo(f"  {call}")
            typer.echo(f"push (dry run): token: found in {result.token_source} (the value is never shown)"
                       if result.token_source else
                       "push (dry run): token: none found; set HF_TOKEN or run `hf auth login` before a real push")
            typer.echo("push (dry run): card (the Hub card's fields we do not own would be kept):")
            typer.echo(plan.card)
            return
        typer.echo(f"push: uploaded {len(plan.files)} files ({decimal(plan.total_bytes)}) with {result.method}"
                   f" -> {result.url}")
        typer.echo(f"push: commit message: {plan.commit_message()}")
        if result.tag:
            typer.echo(f"push: tagged the Hub revision {result.tag}")

    @app.command("lineage")
    def lineage(
        export_dir: Annotated[Path, typer.Argument(help="export folder written by `polyinstruct export`")] = Path(
            "data/export"),
    ) -> None:
        """Show what made an export (lineage.json) and check it against this checkout's dvc.lock."""
        matches, recorded, now = check_lineage(export_dir, Path.cwd())
        git = recorded["git"]
        state = "unknown" if git["commit"] is None else ("dirty" if git["dirty"] else "clean")
        typer.echo(f"lineage: git commit {git['commit'] or '-'} ({state}); polyinstruct"
                   f" {recorded.get('polyinstruct_version') or '-'}; params sha256 {recorded['params_sha256']}")
        lock = recorded["dvc_lock"]
        if lock is None:
            typer.echo("lineage: the export ran outside a DVC pipeline; no dvc.lock entries were recorded")
            return
        typer.echo(f"lineage: dvc.lock upstream sha256 {lock['upstream_sha256']}"
                   f" ({', '.join(lock['upstream_stages'])})")
        if not matches:
            raise PolyinstructError(f"dvc.lock here hashes those stages to {now['upstream_sha256'] if now else '-'}:"
                                    f" not the run that made {export_dir}; check out the git commit whose dvc.lock"
                                    " matches (git log -- dvc.lock) and run `dvc pull`")
        typer.echo("lineage: dvc.lock here holds exactly those entries: `dvc pull` restores the run's data")
