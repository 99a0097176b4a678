"""Checkpoints that survive `dvc repro` and are resumed only by the run they belong to.

DVC deletes a stage's outputs before running it, so the `train` stage keeps its checkpoints in a folder
outside its outs (`--checkpoints models/checkpoints/NAME`). A run fingerprint (mixture content, base
model, template, LoRA and SFT settings; not the budget, which may grow) is stored next to them: a
rerun after a kill resumes from the last checkpoint; a changed run starts fresh instead of mixing states."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from schemas.params import Params

RUN_FILE = "run.json"


def run_fingerprint(params: Params, mix_manifest: dict[str, Any], base_model: Any, template: str) -> dict[str, Any]:
    training = params.training.model_dump(exclude={"budget", "max_steps", "max_eval_examples"})
    identity = {"mixture_sha256": mix_manifest.get("content_sha256"), "base_model": base_model,
                "template": template, "training": training}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return {**identity, "sha256": digest}


def complete_checkpoint(checkpoints: Path) -> str | None:
    """The highest `checkpoint-N` whose trainer state was written (a kill during a save leaves a partial one)."""
    steps = [int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*")
             if p.name.split("-")[1].isdigit() and _readable_state(p / "trainer_state.json")]
    return str(checkpoints / f"checkpoint-{max(steps)}") if steps else None


def _readable_state(path: Path) -> bool:
    """The Trainer writes trainer_state.json last; a kill while writing it leaves it unreadable."""
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")).get("global_step"), int)
    except (OSError, ValueError, AttributeError):
        return False


def last_checkpoint_for(checkpoints: Path, fingerprint: dict[str, Any], resume: bool) -> str | None:
    """The checkpoint to resume from, or None. Clears `checkpoints` when the run starts fresh (call on the
    main process only)."""
    stored_path = checkpoints / RUN_FILE
    if resume and checkpoints.is_dir():
        stored = json.loads(stored_path.read_text(encoding="utf-8")) if stored_path.exists() else {}
        if stored.get("sha256") == fingerprint["sha256"]:
            last = complete_checkpoint(checkpoints)
            if last:
                return last
        elif any(checkpoints.glob("checkpoint-*")):
            changed = sorted(k for k in fingerprint if k != "sha256" and stored.get(k) != fingerprint[k])
            print(f"train: {checkpoints} holds checkpoints of a different run (changed: {', '.join(changed)});"
                  " starting fresh", file=sys.stderr)
    if checkpoints.exists():
        shutil.rmtree(checkpoints)  # a fresh run must not pick up another run's state
    checkpoints.mkdir(parents=True, exist_ok=True)
    stored_path.write_text(json.dumps(fingerprint, sort_keys=True, indent=2, default=str) + "\n", encoding="utf-8")
    return None
