"""The model directory contract: every prepared model directory holds a `manifest.json`; a smoke model's
manifest has `smoke: true`, its fingerprints start with SMOKE_MODEL_PREFIX, and everything produced from
it records that. dataset_builder/models writes these directories; every stage reads them through here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from schemas.errors import PolyinstructError

# `org/name` as a Hub model id, as opposed to a local directory.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
# Every model fingerprint from a smoke model starts with this, so smoke output can never pass for real.
SMOKE_MODEL_PREFIX = "smoke:"
SMOKE = "smoke"  # the model spec that asks for a locally built smoke model
MANIFEST = "manifest.json"
# Files that make a directory a usable tokenizer (fast tokenizer, sentencepiece, or BPE vocab+merges).
TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


def read_manifest(model_dir: Path | str) -> dict[str, Any]:
    """The model directory's manifest.json, or {} when it has none (a plain HF directory)."""
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as err:
        raise PolyinstructError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); rebuild the model directory") \
            from None


def is_smoke(model_dir: Path | str) -> bool:
    return bool(read_manifest(model_dir).get("smoke", False))
