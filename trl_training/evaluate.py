"""Evaluate a LoRA adapter against its base model.

- Held-out loss and perplexity per language on the export's test split (never trained on), scored
  exactly as SFTTrainer scores training: the response (and its EOS) given the templated prompt.
- Greedy generations for `{id, prompt}` prompt files (the HPLT test-set format; the language is the
  file name's suffix, test_fr.jsonl -> fra_Latn), or, without files, for the test split's
  instructions; language fidelity = the share of judged responses in the prompt's language, judged by
  the quality stage's language ID (Chen et al. 2024 gate their judge on it).

Base numbers come from the same loaded model with the adapter disabled, so both sides share every
setting. A smoke base model is flagged in the JSON and the markdown."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from schemas.artifacts import write_json
from schemas.errors import PolyinstructError
from schemas.languages import resolve
from schemas.models import TOKENIZER_FILES, is_smoke
from schemas.params import JudgeParams, Params
from schemas.progress import progress_bar
from trl_training.base_model import ResolveBase, model_directory
from trl_training.judge import ChatBackend, identity, judge_pairwise, judge_pointwise, template_hash
from trl_training.mixtures import read_export_split
from trl_training.prompt_files import PromptSet, read_prompt_file
from trl_training.sft import quiet_libraries
from trl_training.templates import encode_examples, encode_prompts

SMOKE_NOTE = ("SMOKE: the base model has random weights (a smoke model); these numbers test the pipeline, not"
              " the method.")
SMOKE_DATA_NOTE = "SMOKE: the adapter was trained on output of a smoke (random-weight) translation model."

# texts, FLORES-200 code, min_chars -> per text: in that language, not, or None (too short to judge).
LanguageCheck = Callable[[Sequence[str], str, int], Iterable[bool | None]]


def _load(base_model: str | Path, adapter: Path, params: Params,
          resolve_base: ResolveBase) -> tuple[Any, Any, Path, dict[str, Any]]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_libraries()
    if not (adapter / "adapter_config.json").exists():
        raise PolyinstructError(f"{adapter}: no adapter_config.json; train it first (polyinstruct train ... --out"
                                f" {adapter})")
    config_path = adapter / "training_config.json"
    training_config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    base_path = resolve_base(base_model, params)
    # The adapter directory holds the tokenizer training used (pad token and all); prefer it.
    tokenizer_dir = adapter if any((adapter / f).exists() for f in TOKENIZER_FILES) else base_path
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=dtype)
    model = PeftModel.from_pretrained(model, str(adapter)).to("cuda" if cuda else "cpu").eval()
    return model, tokenizer, base_path, training_config


def _batches(order: Sequence[int], size: int) -> list[list[int]]:
    return [list(order[i:i + size]) for i in range(0, len(order), size)]


def completion_nll(model: Any, encoded: list[tuple[list[int], int]], pad_id: int, batch_size: int,
                   max_length: int | None) -> tuple[list[float], list[int]]:
    """Summed NLL and token count of each example's completion (prompt and padding masked -100)."""
    import torch

    sums, counts = [0.0] * len(encoded), [0] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # similar lengths, less padding
    device = next(model.parameters()).device
    for batch in _batches(order, batch_size):
        seqs = [encoded[i][0][:max_length] if max_length else encoded[i][0] for i in batch]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (i, seq) in enumerate(zip(batch, seqs, strict=True)):
            prompt_len = min(encoded[i][1], len(seq))
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
            labels[row, prompt_len: len(seq)] = torch.tensor(seq[prompt_len:], dtype=torch.long)
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        # Position t predicts token t+1, as in the causal LM loss.
        shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(device)
        nll = torch.nn.functional.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=-100,
                                                reduction="none")
        per_row = nll.sum(dim=1).tolist()
        per_count = (shift_labels != -100).sum(dim=1).tolist()
        for row, i in enumerate(batch):
            sums[i], counts[i] = float(per_row[row]), int(per_count[row])
    return sums, counts


def generate(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int,
             batch_size: int) -> list[str]:
    """Greedy continuations of token-id prompts (left-padded batches), decoded without special tokens."""
    import torch

    device = next(model.parameters()).device
    texts = [""] * len(prompts)
    for batch in _batches(range(len(prompts)), batch_size):
        width = max(len(prompts[i]) for i in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, width - len(prompts[i]):] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]):] = 1
        with torch.no_grad():
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        for row, i in enumerate(batch):
            texts[i] = tokenizer.decode(out[row, width:], skip_special_tokens=True).strip()
    return texts


def fidelity(texts: list[str], lang: str, min_chars: int,
             language_check: LanguageCheck) -> tuple[float | None, int, list[bool | None]]:
    """Share of judged texts in `lang`; texts too short to judge are left out (None). `language_check`
    is quality.langid.matches_language, which the CLI passes in (a stage package imports no other)."""
    verdicts = list(language_check(texts, lang, min_chars))
    judged = [v for v in verdicts if v is not None]
    return (sum(judged) / len(judged) if judged else None), len(judged), verdicts


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def markdown_report(result: dict[str, Any]) -> str:
    lines = [f"# Evaluation: {result['adapter']}", ""]
    if result["smoke"]:
        lines += [f"> **{result['note']}**", ""]
    lines += [f"Base model `{result['base_model']}`, template `{result['template']}`, held-out split "
              f"`{result['held_out']['split']}` (up to {result['held_out']['max_examples_per_language']} examples"
              " per language). Fidelity = share of judged responses in the prompt's language.", "",
              "| language | test examples | base loss | base ppl | adapter loss | adapter ppl | Δ loss | prompts "
              "| judged (base/adapter) | fidelity base | fidelity adapter |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for lang, row in result["languages"].items():
        lines.append("| " + " | ".join([
            lang, _fmt(row["test_examples"]), _fmt(row["base_loss"]), _fmt(row["base_perplexity"], 1),
            _fmt(row["adapter_loss"]), _fmt(row["adapter_perplexity"], 1), _fmt(row["loss_delta"]),
            _fmt(row["prompts"]), f"{row['judged_base']}/{row['judged_adapter']}", _fmt(row["fidelity_base"]),
            _fmt(row["fidelity_adapter"]),
        ]) + " |")
    if result.get("judge"):
        lines += _judge_table(result)
    if result.get("quarantined"):
        lines += ["", f"Quarantined prompt lines ({len(result['quarantined'])}): " + "; ".join(
            f"{q['file']}:{q['line']} {q['reason']}" for q in result["quarantined"])]
    return "\n".join(lines) + "\n"


def _judge_table(result: dict[str, Any]) -> list[str]:
    judge = result["judge"]
    lines = ["", "## Judged generations", "",
             f"Judge `{judge['model']}`, rubric sha256 `{judge['template_sha256']}`, scale {judge['scale'][0]}–"
             f"{judge['scale'][1]}. Wrong-language answers (language ID) get the floor score unjudged;"
             " unparseable verdicts are left out of the mean. Win-rate: adapter vs base, each pair judged in both"
             " orders (ties and disagreeing orders count half).", "", f"> {judge['note']}", "",
             "| language | prompts | fidelity | judge score base | judge score adapter | wrong language (base/adapter)"
             " | unparseable (base/adapter) | win-rate adapter vs base |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for lang, row in result["languages"].items():
        if "judge_model" not in row:
            continue
        lines.append("| " + " | ".join([
            lang, _fmt(row["prompts"]), _fmt(row["fidelity_adapter"]), _fmt(row["judge_mean_score_base"], 2),
            _fmt(row["judge_mean_score_adapter"], 2),
            f"{row['judge_wrong_language_base']}/{row['judge_wrong_language_adapter']}",
            f"{row['judge_unparseable_base']}/{row['judge_unparseable_adapter']}",
            _fmt(row.get("win_rate_adapter_vs_base")),
        ]) + " |")
    return lines


def _judge_language(judge: ChatBackend, settings: JudgeParams, lang: str, prompts: list[str], base: list[str],
                    adapter: list[str], in_lang_base: list[bool | None], in_lang_adapter: list[bool | None],
                    items: list[dict[str, Any]]) -> dict[str, Any]:
    """Judge one language's generations: pointwise for each side, then adapter vs base in both orders."""
    name = resolve(lang).name
    row: dict[str, Any] = {"judge_model": judge.fingerprint, "judge_template_sha256": template_hash(settings.template)}
    for side, texts, gate in (("base", base, in_lang_base), ("adapter", adapter, in_lang_adapter)):
        graded = judge_pointwise(judge, settings, name, prompts, texts, gate)
        row |= {f"judge_{key}_{side}": value for key, value in graded.summary.items()}
        for item, score, verdict in zip(items, graded.scores, graded.verdicts, strict=False):
            item[f"{side}_judge_score"], item[f"{side}_judge_verdict"] = score, verdict
    if settings.pairwise:
        pair = judge_pairwise(judge, settings, name, prompts, adapter, base, in_lang_adapter, in_lang_base)
        row |= {"win_rate_adapter_vs_base": pair["win_rate"], "pairwise": pair}
    return row


def _held_out(export_dir: Path, cap: int) -> pl.DataFrame:
    # The first `cap` ids of each language in id order: the same ids across languages where present.
    return read_export_split(export_dir, "test", required=False).group_by("lang", maintain_order=True).head(cap)


def evaluate(base_model: str | Path, adapter: Path, export_dir: Path, out: Path, params: Params,
             prompt_files: Sequence[Path] = (), judge: ChatBackend | None = None, *,
             language_check: LanguageCheck, resolve_base: ResolveBase = model_directory) -> dict[str, Any]:
    """Write `out` (JSON) and `out` with .md (a table per language); return the JSON object. With a
    `judge`, the generations are also judged (trl_training.judge): pointwise, and adapter vs base."""
    adapter, export_dir, out = Path(adapter), Path(export_dir), Path(out)
    settings = params.evaluate
    prompt_sets = [read_prompt_file(p) for p in (prompt_files or [Path(p) for p in settings.prompts])]
    model, tokenizer, base_path, training_config = _load(base_model, adapter, params, resolve_base)
    template = training_config.get("template", params.training.template)
    max_length = training_config.get("sft_config", {}).get("max_length") or params.training.sft.get("max_length")
    held_out = _held_out(export_dir, settings.max_eval_examples)
    if not prompt_sets:  # no prompt files: the test split's instructions of each language
        gen = held_out.group_by("lang", maintain_order=True).head(settings.max_generation_prompts)
        prompt_sets = [PromptSet(lang=lang, source="export test split", ids=part["id"].to_list(),
                                 instructions=part["instruction"].to_list(), inputs=part["input"].to_list())
                       for (lang,), part in gen.group_by("lang", maintain_order=True)]
    if held_out.is_empty() and not prompt_sets:
        raise PolyinstructError(f"{export_dir}: no test split to evaluate on (export.test_fraction is 0?); pass"
                                " --prompts FILE.jsonl or re-export with a test split")
    min_chars = params.quality.filters.lang_id.min_chars
    langs = sorted(set(held_out["lang"].unique().to_list()) | {p.lang for p in prompt_sets})
    rows: dict[str, dict[str, Any]] = {lang: {"test_examples": 0, "test_tokens": 0, "base_loss": None,
                                              "base_perplexity": None, "adapter_loss": None,
                                              "adapter_perplexity": None, "loss_delta": None, "prompts": 0,
                                              "prompt_source": None, "judged_base": 0, "judged_adapter": 0,
                                              "fidelity_base": None, "fidelity_adapter": None,
                                              "quarantined_lines": 0} for lang in langs}
    generations: dict[str, list[dict[str, Any]]] = {}

    with progress_bar() as progress:
        steps = held_out["lang"].n_unique() + len(prompt_sets)
        task = progress.add_task("evaluate", total=steps, unit="langs")
        for (lang,), part in held_out.group_by("lang", maintain_order=True):
            encoded = encode_examples(tokenizer, template, part)
            scores = {}
            for side in ("base", "adapter"):
                with model.disable_adapter() if side == "base" else contextlib.nullcontext():
                    sums, counts = completion_nll(model, encoded, tokenizer.pad_token_id, settings.batch_size,
                                                  max_length)
                loss = sum(sums) / max(sum(counts), 1)
                scores[side] = loss
                rows[lang] |= {f"{side}_loss": loss, f"{side}_perplexity": math.exp(min(loss, 700.0))}
            rows[lang] |= {"test_examples": len(part), "test_tokens": sum(counts),
                           "loss_delta": scores["adapter"] - scores["base"]}
            progress.advance(task)
        for prompts in prompt_sets:
            ids = encode_prompts(tokenizer, template, prompts.instructions[: settings.max_generation_prompts],
                                 prompts.inputs[: settings.max_generation_prompts])
            with model.disable_adapter():
                base_texts = generate(model, tokenizer, ids, settings.max_new_tokens, settings.batch_size)
            adapter_texts = generate(model, tokenizer, ids, settings.max_new_tokens, settings.batch_size)
            fid_base, judged_base, base_verdicts = fidelity(base_texts, prompts.lang, min_chars, language_check)
            fid_adapter, judged_adapter, verdicts = fidelity(adapter_texts, prompts.lang, min_chars, language_check)
            rows[prompts.lang] |= {"prompts": len(ids), "prompt_source": prompts.source,
                                   "judged_base": judged_base, "judged_adapter": judged_adapter,
                                   "fidelity_base": fid_base, "fidelity_adapter": fid_adapter,
                                   "quarantined_lines": len(prompts.quarantined)}
            generations[prompts.lang] = [
                {"id": pid, "prompt": prompt, "base": b, "adapter": a, "adapter_in_language": v}
                for pid, prompt, b, a, v in zip(prompts.ids, prompts.instructions, base_texts, adapter_texts,
                                                verdicts, strict=False)
            ]
            if judge is not None:
                asked = prompts.instructions[: len(ids)]
                rows[prompts.lang] |= _judge_language(judge, settings.judge, prompts.lang, asked, base_texts,
                                                      adapter_texts, base_verdicts, verdicts,
                                                      generations[prompts.lang])
            progress.advance(task)

    scored = [r for r in rows.values() if r["test_tokens"]]
    total_tokens = sum(r["test_tokens"] for r in scored)
    overall = {side: sum(r[f"{side}_loss"] * r["test_tokens"] for r in scored) / total_tokens
               if total_tokens else None for side in ("base", "adapter")}
    smoke_base = is_smoke(base_path)
    smoke_data = bool(training_config.get("mixture", {}).get("smoke_data"))
    notes = [SMOKE_NOTE] if smoke_base else []
    notes += [SMOKE_DATA_NOTE] if smoke_data else []
    smoke_judge = bool(judge is not None and judge.smoke)
    result: dict[str, Any] = {
        "smoke": smoke_base or smoke_data or smoke_judge,
        "smoke_judge": smoke_judge,
        "smoke_base_model": smoke_base,
        "smoke_training_data": smoke_data,
        "note": " ".join(notes),
        "base_model": str(base_model),
        "adapter": str(adapter),
        "mixture": training_config.get("mixture", {}).get("name"),
        "template": template,
        "held_out": {"split": "test", "max_examples_per_language": settings.max_eval_examples},
        "generation": {"max_new_tokens": settings.max_new_tokens, "decoding": "greedy",
                       "max_prompts_per_language": settings.max_generation_prompts,
                       "langid_min_chars": min_chars},
        "overall": {"base_loss": overall["base"], "adapter_loss": overall["adapter"],
                    "test_tokens": total_tokens},
        "languages": rows,
        "quarantined": [vars(q) for p in prompt_sets for q in p.quarantined],
        "judge": identity(judge, settings.judge) if judge is not None else None,
        "generations": generations,
    }
    write_json(result, out)
    out.with_suffix(".md").write_text(markdown_report(result), encoding="utf-8")
    return result
