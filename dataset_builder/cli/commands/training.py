"""CLI commands of this area; see dataset_builder/cli/commands/__init__.py for the conventions.

`mix` builds a training mixture from the export, `train` a LoRA adapter on it (TRL SFTTrainer),
`evaluate` compares adapter and base model; `model smoke-lm` builds the tiny random base LM."""

# No `from __future__ import annotations`: typer evaluates the option annotations at registration.
from pathlib import Path
from typing import Annotated

import typer

from dataset_builder.cli.options import ParamsOption, get_params
from dataset_builder.judge_backend import open_judge
from dataset_builder.models.lm import resolve_base_lm
from dataset_builder.models.smoke import build_smoke_lm
from quality.langid import matches_language
from schemas.errors import PolyinstructError
from schemas.models import read_manifest
from schemas.outputs import ensure_writable
from schemas.params import parse_params
from trl_training.evaluate import evaluate as run_evaluate
from trl_training.mixtures import build_mixture, find_mixture
from trl_training.sft import train as run_train


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""

    @app.command("mix")
    def mix(
        out: Annotated[Path, typer.Option(help="output directory: train.parquet, validation.parquet, manifest")],
        export_dir: Annotated[Path, typer.Option("--in", help="the export directory (polyinstruct export)")] = Path(
            "data/export"),
        mixture: Annotated[str | None, typer.Option(help="a mixture named under `mixtures` in params.yaml")] = None,
        recipe: Annotated[str | None, typer.Option(
            help="monolingual|multilingual|downsampled|temperature|english-only (instead of --mixture)")] = None,
        lang: Annotated[str | None, typer.Option(help="monolingual: the language; downsampled: match its size")] = (
            None),
        budget: Annotated[int | None, typer.Option(help="downsampled/temperature: total examples")] = None,
        budget_tokens: Annotated[int | None, typer.Option(help="downsampled: total tokens")] = None,
        temperature: Annotated[float | None, typer.Option(help="temperature: p(lang) ∝ n^(1/T)")] = None,
        disjoint_ids: Annotated[bool, typer.Option(
            "--disjoint-ids", help="downsampled: no id in two languages (more distinct instructions)")] = False,
        seed: Annotated[int | None, typer.Option(help="sampling seed (default: the mixture's, else 0)")] = None,
        tokenizer: Annotated[Path | None, typer.Option(
            help="count tokens with this tokenizer/model dir (default: a byte proxy, see manifest)")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Build a training mixture (train + validation from the export's splits; test is never used)."""
        params = get_params(params_path)
        if (mixture is None) == (recipe is None):
            raise PolyinstructError("give --mixture NAME (from params.yaml) or --recipe RECIPE, exactly one")
        if mixture is not None:
            adhoc = {"lang": lang, "budget": budget, "budget_tokens": budget_tokens, "temperature": temperature}
            given = [f"--{k.replace('_', '-')}" for k, v in adhoc.items() if v is not None]
            given += ["--disjoint-ids"] if disjoint_ids else []
            if given:
                raise PolyinstructError(f"--mixture takes its settings from params.yaml; drop {', '.join(given)}"
                                        " or use --recipe")
            spec = find_mixture(params.mixtures, mixture)
        else:
            raw = {"name": out.name, "recipe": recipe, "lang": lang, "budget": budget, "budget_tokens": budget_tokens,
                   "temperature": temperature, "disjoint_ids": disjoint_ids}
            spec = parse_params({"mixtures": [{k: v for k, v in raw.items() if v is not None}]},
                                "command line").mixtures[0]
        ensure_writable(folders=(out,))
        result = build_mixture(export_dir, spec, out, seed=seed, tokenizer_dir=tokenizer)
        m = result.manifest
        counts = ", ".join(f"{lang}={n}" for lang, n in m["counts"].items())
        typer.echo(f"mix {m['name']} ({m['recipe']}, seed {m['seed']}): {m['total_examples']} examples, "
                   f"{m['total_tokens']} tokens ({counts}); validation {m['validation_examples']} -> {out}")

    @app.command("train")
    def train(
        mix_dir: Annotated[Path, typer.Option("--mix", help="a mixture directory (polyinstruct mix)")],
        out: Annotated[Path, typer.Option(help="adapter output directory")],
        base_model: Annotated[str, typer.Option(help="`smoke`, a Hub id, or a model directory")] = "models/base_lm",
        max_steps: Annotated[int | None, typer.Option(help="optimisation steps (default: training.budget)")] = (
            None),
        template: Annotated[str | None, typer.Option(help="alpaca|bactrian|chat (default training.template)")] = (
            None),
        packing: Annotated[bool | None, typer.Option("--packing/--no-packing", help="default training.packing")] = (
            None),
        metrics: Annotated[Path | None, typer.Option(help="directory for train_metrics.json and loss.csv")] = None,
        resume: Annotated[bool, typer.Option("--resume", help="continue from the last checkpoint of the same run")] = (
            False),
        checkpoints: Annotated[Path | None, typer.Option(
            help="checkpoint folder (default OUT/checkpoints); outside OUT it survives dvc repro and is removed"
                 " after a successful run")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Train a LoRA adapter on a mixture with TRL's SFTTrainer (loss on responses only)."""
        ensure_writable(folders=(out, metrics))
        result = run_train(mix_dir, base_model, out, get_params(params_path), metrics_dir=metrics,
                           max_steps=max_steps, template=template, packing=packing, resume=resume,
                           checkpoints=checkpoints, resolve_base=resolve_base_lm)
        from accelerate import PartialState

        if not PartialState().is_main_process:  # under accelerate launch / torchrun: one line, not one per rank
            return
        smoke = f" [{result['note']}]" if result["smoke"] else ""
        resumed = f" (resumed from step {result['resumed_from_step']})" if result["resumed_from_step"] else ""
        typer.echo(f"train {result['mixture']}: {result['steps']} steps{resumed}, {result['tokens_seen']:,} tokens,"
                   f" {result['epochs']:g} epochs, loss {result['first_loss']:.4f} -> "
                   f"{result['last_loss']:.4f}, {result['tokens_per_s'] or 0:,.0f} tokens/s -> {out}{smoke}")

    @app.command("evaluate")
    def evaluate(
        adapter: Annotated[Path, typer.Option(help="the adapter directory (polyinstruct train)")],
        out: Annotated[Path, typer.Option(help="metrics JSON; a markdown table is written next to it (.md)")],
        base_model: Annotated[str, typer.Option(help="`smoke`, a Hub id, or a model directory")] = "models/base_lm",
        data: Annotated[Path, typer.Option(help="the export directory (its test split is held out)")] = Path(
            "data/export"),
        prompts: Annotated[list[Path] | None, typer.Option(
            help="{id, prompt} JSONL file(s), language from the name (test_fr.jsonl); repeatable")] = None,
        more_prompts: Annotated[list[Path] | None, typer.Argument(
            metavar="[PROMPT_FILES]...", help="more prompt files (so `--prompts test_*.jsonl` works unquoted)",
            show_default=False)] = None,
        judge: Annotated[str | None, typer.Option(
            help="judge the generations with this LM: `smoke`, a Hub id, an HF or CTranslate2 dir (default"
                 " evaluate.judge.model)")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Held-out loss/perplexity per language (base vs adapter), language fidelity of generations, and
        with a judge their judged scores and the adapter's win-rate over the base."""
        ensure_writable(out)
        params = get_params(params_path)
        judge_model = judge or params.evaluate.judge.model
        backend = open_judge(judge_model, params) if judge_model else None
        files = [*(prompts or []), *(more_prompts or [])]
        result = run_evaluate(base_model, adapter, data, out, params, prompt_files=files, judge=backend,
                              language_check=matches_language, resolve_base=resolve_base_lm)
        for q in result["quarantined"]:
            typer.echo(f"warning: {q['file']}:{q['line']}: quarantined ({q['reason']})", err=True)
        overall = result["overall"]
        smoke = f" [{result['note']}]" if result["smoke"] else ""
        loss = (f"held-out loss base {overall['base_loss']:.4f} -> adapter {overall['adapter_loss']:.4f}"
                if overall["base_loss"] is not None else "no held-out test rows")
        judged = (f"; judge {backend.fingerprint} ({backend.stats()['generated']} generated,"
                  f" {backend.stats()['cache_hits']} from memory)" if backend else "")
        typer.echo(f"evaluate {adapter}: {loss}; {len(result['languages'])} language(s){judged} -> {out}{smoke}")

    @model_app.command("smoke-lm")
    def smoke_lm(
        out: Annotated[Path, typer.Option(help="output model directory")] = Path("models/smoke-lm"),
        seed: Annotated[int | None, typer.Option(help="weight seed (default models.smoke_seed)")] = None,
        params_path: ParamsOption = None,
    ) -> None:
        """Build the tiny random-weight Llama base LM with a byte-level BPE tokenizer (for demos/tests)."""
        params = get_params(params_path)
        path = build_smoke_lm(out, params.models.smoke_seed if seed is None else seed)
        manifest = read_manifest(path)
        typer.echo(f"smoke base LM ({manifest['parameters']:,} parameters, vocab {manifest['vocab_size']},"
                   f" seed {manifest['seed']}) -> {path} [SMOKE: random weights]")
