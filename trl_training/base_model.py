"""Which base model to train or evaluate: a spec (a directory, `smoke`, a Hub id) becomes a directory
through a ResolveBase. Building `smoke` and downloading Hub ids is dataset_builder's job (models/lm.py);
the CLI passes its resolve_base_lm in, so this stage imports no other."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from schemas.errors import PolyinstructError
from schemas.params import Params

# A base-model spec (a directory, `smoke`, a Hub id) -> the directory to load; the CLI passes
# dataset_builder.models.lm.resolve_base_lm.
ResolveBase = Callable[[str | Path, Params], Path]


def model_directory(base_model: str | Path, params: Params) -> Path:
    """The default ResolveBase: `base_model` must already be a model directory. The CLI passes
    dataset_builder.models.lm.resolve_base_lm instead, which also builds `smoke` and downloads Hub ids."""
    path = Path(base_model)
    if not path.is_dir():
        raise PolyinstructError(f"{path}: not a model directory; pass one (or run `polyinstruct train`, which also"
                                " takes `smoke` and Hub ids)")
    return path
