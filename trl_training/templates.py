"""Prompt templates, and the prompt-completion records TRL trains on.

Data goes to TRL as {"prompt", "completion"} (strings for alpaca/bactrian, message lists for chat),
so SFTTrainer masks the prompt (labels -100) and trains only the completion, to which it appends
EOS (text templates) or whose assistant turn the chat template closes with EOS (chat)."""

from __future__ import annotations

from typing import Any

import polars as pl

from schemas.errors import PolyinstructError

TEMPLATES: tuple[str, ...] = ("alpaca", "bactrian", "chat")

# Stanford Alpaca (tatsu-lab/stanford_alpaca, train.py PROMPT_DICT), verbatim.
ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)
# Bactrian-X (MBZUAI/bactrian-x): instruction and input together under `### Input:`.
BACTRIAN_WITH_INPUT = "### Input:\n{instruction}\n\n{input}\n\n### Output:\n"
BACTRIAN_NO_INPUT = "### Input:\n{instruction}\n\n### Output:\n"

_TEXT_TEMPLATES: dict[str, tuple[str, str]] = {
    "alpaca": (ALPACA_WITH_INPUT, ALPACA_NO_INPUT),
    "bactrian": (BACTRIAN_WITH_INPUT, BACTRIAN_NO_INPUT),
}


def check_template(name: str) -> str:
    if name not in TEMPLATES:
        raise PolyinstructError(f"unknown template '{name}'; choose one of: {', '.join(TEMPLATES)}")
    return name


def format_prompt(template: str, instruction: str, input_text: str = "") -> str:
    """One text prompt (alpaca/bactrian); the response follows it directly."""
    if check_template(template) == "chat":
        raise PolyinstructError("template chat has no text form; use chat_prompt_messages")
    with_input, no_input = _TEXT_TEMPLATES[template]
    return (with_input if input_text else no_input).format(instruction=instruction, input=input_text)


def _user_message(instruction: pl.Expr, input_text: pl.Expr) -> pl.Expr:
    # The chat user turn is the instruction, then the input after a blank line when there is one.
    return pl.when(input_text == "").then(instruction).otherwise(pl.concat_str([instruction, input_text],
                                                                               separator="\n\n"))


def chat_prompt_messages(instruction: str, input_text: str = "") -> list[dict[str, str]]:
    content = f"{instruction}\n\n{input_text}" if input_text else instruction
    return [{"role": "user", "content": content}]


def _text_prompts(frame: pl.DataFrame, template: str) -> pl.Expr:
    with_input, no_input = _TEXT_TEMPLATES[template]

    def fill(fmt: str) -> pl.Expr:
        # str.format placeholders -> a vectorised concat of literals and columns
        parts: list[pl.Expr] = []
        rest = fmt
        while rest:
            start = min((i for i in (rest.find("{instruction}"), rest.find("{input}")) if i >= 0), default=-1)
            if start < 0:
                parts.append(pl.lit(rest))
                break
            parts.append(pl.lit(rest[:start]))
            name = "instruction" if rest.startswith("{instruction}", start) else "input"
            parts.append(pl.col(name))
            rest = rest[start + len(name) + 2:]
        return pl.concat_str(parts)

    return pl.when(pl.col("input") == "").then(fill(no_input)).otherwise(fill(with_input))


def to_prompt_completion(frame: pl.DataFrame, template: str) -> list[dict[str, Any]]:
    """Rows with instruction/input/output -> TRL prompt-completion records.

    Text templates: {"prompt": str, "completion": str} (TRL appends EOS to the completion).
    Chat: {"prompt": [user message], "completion": [assistant message]} (the chat template ends the
    assistant turn with EOS)."""
    check_template(template)
    if template == "chat":
        built = frame.select(
            pl.struct(role=pl.lit("user"), content=_user_message(pl.col("instruction"), pl.col("input")))
            .alias("prompt"),
            pl.struct(role=pl.lit("assistant"), content=pl.col("output")).alias("completion"),
        )
        return [{"prompt": [row["prompt"]], "completion": [row["completion"]]} for row in built.iter_rows(named=True)]
    built = frame.select(_text_prompts(frame, template).alias("prompt"), pl.col("output").alias("completion"))
    return built.to_dicts()


def _require_chat_template(tokenizer: Any) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise PolyinstructError("template chat: the base model's tokenizer has no chat template; use --template"
                                " alpaca or bactrian, or a base model whose tokenizer has one")


def encode_prompts(tokenizer: Any, template: str, instructions: list[str], inputs: list[str]) -> list[list[int]]:
    """Token ids of generation prompts, encoded exactly as SFTTrainer encodes training prompts
    (text: tokenizer(text) with its special tokens; chat: the template with the generation prompt)."""
    check_template(template)
    if template == "chat":
        _require_chat_template(tokenizer)
        return [list(tokenizer.apply_chat_template(chat_prompt_messages(i, x), tokenize=True, return_dict=True,
                                                   add_generation_prompt=True)["input_ids"])
                for i, x in zip(instructions, inputs, strict=True)]
    texts = [format_prompt(template, i, x) for i, x in zip(instructions, inputs, strict=True)]
    return [list(ids) for ids in tokenizer(texts)["input_ids"]]


def encode_examples(tokenizer: Any, template: str, frame: pl.DataFrame) -> list[tuple[list[int], int]]:
    """(input_ids, prompt_length) per row, as SFTTrainer builds them: prompt + completion (+ EOS for text
    templates); the completion starts where prompt and prompt+completion tokens diverge."""
    records = to_prompt_completion(frame, template)
    if template == "chat":
        _require_chat_template(tokenizer)
        prompts = [tokenizer.apply_chat_template(r["prompt"], tokenize=True, return_dict=True,
                                                 add_generation_prompt=True)["input_ids"] for r in records]
        fulls = [tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=True,
                                               return_dict=True)["input_ids"] for r in records]
    else:
        eos = tokenizer.eos_token or ""
        prompts = tokenizer([r["prompt"] for r in records])["input_ids"]
        fulls = tokenizer([r["prompt"] + r["completion"] + eos for r in records])["input_ids"]
    encoded = []
    for prompt_ids, full_ids in zip(prompts, fulls, strict=True):
        shared = next((i for i, (a, b) in enumerate(zip(prompt_ids, full_ids, strict=False)) if a != b),
                      min(len(prompt_ids), len(full_ids)))
        encoded.append((list(full_ids), shared))
    return encoded
