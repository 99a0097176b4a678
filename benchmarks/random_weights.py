"""Random-weight models at a real model's shape, converted in memory to CTranslate2, for the engine
benchmarks (bench_translate, bench_translate_many, bench_respond): no tokenizer files and no Hub."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


class FakeVocabulary:
    """What CTranslate2's M2M100 and Qwen2 loaders read from a tokenizer, for a vocabulary of n ids:
    <s> <pad> </s> <unk>, then t4 ... t{n-1}."""

    bos_token, pad_token, eos_token, unk_token = "<s>", "<pad>", "</s>", "<unk>"
    unk_token_id = 3
    special_tokens_map: dict[str, Any] = {}

    def __init__(self, size: int) -> None:
        self.tokens = ["<s>", "<pad>", "</s>", "<unk>", *(f"t{i}" for i in range(4, size))]

    def get_vocab(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def convert_ids_to_tokens(self, index: int) -> str:
        return self.tokens[index]


def save_ct2(loader: Any, model: Any, vocab_size: int, quantization: str, out: Path) -> Path:
    """Convert `model` with a CTranslate2 `loader` (e.g. M2M100Loader()) into `out` (replaced). The loader
    takes modules apart as it converts them: pass a copy of a model you still want to run."""
    spec = loader(model, FakeVocabulary(vocab_size))
    spec.validate()
    spec.optimize(quantization=quantization)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    spec.save(str(out))
    return out
