"""`polyinstruct push --kind model`: the adapter half of the push command (dataset_builder/cli/commands/export.py
holds the command itself)."""

from __future__ import annotations

from pathlib import Path

import typer

from dataset_builder.hub_model import push_adapter
from schemas.errors import PolyinstructError


def push_model(adapter_dir: Path, repo_id: str, *, kind: str, private: bool, dry_run: bool,
               data_card: Path | None, eval_table: Path | None, base_license: str | None) -> None:
    if kind != "model":
        raise PolyinstructError(f"--kind {kind}: choose dataset or model")
    if eval_table is None and Path("metrics/eval").is_dir():
        default = Path("metrics/eval") / f"{adapter_dir.name}.md"
        eval_table = default if default.is_file() else None
    plan, token_where, url = push_adapter(adapter_dir, repo_id, private=private, dry_run=dry_run,
                                          data_card=data_card, eval_table=eval_table, base_license=base_license)
    license_text = plan.license if isinstance(plan.license, str) else " + ".join(plan.license)
    typer.echo(f"push: adapter {adapter_dir}: {len(plan.files)} files, {plan.total_bytes:,} bytes,"
               f" license {license_text}")
    if not dry_run:
        typer.echo(f"push: uploaded {adapter_dir} -> {url}")
        return
    for rel, size in plan.files:
        typer.echo(f"  {size:>14,d}  {rel}")
    typer.echo("push (dry run, nothing sent): would call, in order:")
    for call in plan.calls:
        typer.echo(f"  {call}")
    typer.echo(f"push (dry run): token: found in {token_where} (the value is never shown)" if token_where else
               "push (dry run): token: none found; set HF_TOKEN or run `hf auth login` before a real push")
    typer.echo("push (dry run): model card:")
    typer.echo(plan.card)
