"""Prompt templates: exact text, prompt-completion records, and encoding as SFTTrainer does it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from schemas.errors import PolyinstructError
from trl_training.templates import encode_examples, encode_prompts, format_prompt, to_prompt_completion

ROWS = pl.DataFrame({
    "instruction": ["Translate to French.", "Name a colour."],
    "input": ["Good morning", ""],
    "output": ["Bonjour", "Blue"],
})


def test_alpaca_is_the_stanford_template() -> None:
    assert format_prompt("alpaca", "Translate to French.", "Good morning") == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nTranslate to French.\n\n### Input:\nGood morning\n\n### Response:\n"
    )
    assert format_prompt("alpaca", "Name a colour.") == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nName a colour.\n\n### Response:\n"
    )


def test_bactrian_template() -> None:
    assert format_prompt("bactrian", "Translate to French.", "Good morning") == (
        "### Input:\nTranslate to French.\n\nGood morning\n\n### Output:\n")
    assert format_prompt("bactrian", "Name a colour.") == "### Input:\nName a colour.\n\n### Output:\n"


@pytest.mark.parametrize("template", ["alpaca", "bactrian"])
def test_vectorised_records_match_the_template(template: str) -> None:
    records = to_prompt_completion(ROWS, template)
    assert records == [
        {"prompt": format_prompt(template, i, x), "completion": o}
        for i, x, o in ROWS.select("instruction", "input", "output").iter_rows()
    ]


def test_chat_records_are_conversational() -> None:
    records = to_prompt_completion(ROWS, "chat")
    assert records[0] == {"prompt": [{"role": "user", "content": "Translate to French.\n\nGood morning"}],
                          "completion": [{"role": "assistant", "content": "Bonjour"}]}
    assert records[1]["prompt"][0]["content"] == "Name a colour."
    with pytest.raises(PolyinstructError, match="unknown template 'vicuna'"):
        to_prompt_completion(ROWS, "vicuna")


@pytest.mark.parametrize("template", ["alpaca", "bactrian", "chat"])
def test_encoding_ends_in_eos_and_prompt_is_a_prefix(smoke_lm: Path, template: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smoke_lm)
    encoded = encode_examples(tokenizer, template, ROWS)
    prompts = encode_prompts(tokenizer, template, ROWS["instruction"].to_list(), ROWS["input"].to_list())
    for (ids, prompt_len), prompt_ids in zip(encoded, prompts, strict=True):
        assert ids[-1] == tokenizer.eos_token_id  # EOS is part of the completion, so it is trained
        assert prompt_len == len(prompt_ids) and ids[:prompt_len] == prompt_ids
        assert prompt_len < len(ids) - 1
    assert tokenizer.decode(encoded[0][0][encoded[0][1]:], skip_special_tokens=True) == "Bonjour"
