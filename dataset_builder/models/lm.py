"""Base language models for SFT: the seeded "smoke" Llama (built by smoke.py) for the demo and tests,
a local model directory, or a Hugging Face Hub id. Every prepared directory holds a manifest saying
where it came from and whether it is smoke; everything trained or evaluated on a smoke model says so."""

from __future__ import annotations

import shutil
from pathlib import Path

from dataset_builder.models.convert import hub_download, validate_model_dir
from dataset_builder.models.smoke import build_smoke_lm
from schemas.artifacts import write_json
from schemas.errors import PolyinstructError
from schemas.models import HUB_ID, MANIFEST, SMOKE, read_manifest
from schemas.params import Params


def _download(hub_id: str, cache_dir: Path) -> Path:
    return hub_download(
        hub_id, cache_dir, ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"],
        f"base model '{hub_id}' is no local directory and the Hugging Face Hub download failed",
        "; check the network and the id, log in (`hf auth login`) for gated models, unset HF_HUB_OFFLINE,"
        " or pass a local model directory or `smoke`")


def prepare_base_lm(spec: str, out: Path, params: Params) -> Path:
    """`smoke` builds the smoke model; a directory is validated and copied; a Hub id is downloaded.
    The result in `out` always holds a manifest.json saying where it came from and whether it is smoke."""
    out = Path(out)
    if spec == SMOKE:
        return build_smoke_lm(out, params.models.smoke_seed)
    source = Path(spec)
    if source.exists():
        if not source.is_dir():
            raise PolyinstructError(f"{source}: is a file; a base model is a directory, a Hub id or `smoke`")
        validate_model_dir(source)
        origin = read_manifest(source) or {"kind": "base_lm", "smoke": False, "spec": str(source)}
    elif HUB_ID.match(spec):
        source = _download(spec, Path(params.models.cache_dir))
        validate_model_dir(source)
        origin = {"kind": "base_lm", "smoke": False, "spec": spec, "source": "huggingface-hub"}
    else:
        raise PolyinstructError(f"base model '{spec}': not a directory and not a Hub id (ORG/NAME); pass a model"
                                " directory, a Hub id such as meta-llama/Llama-3.2-1B, or `smoke`")
    if source.resolve() != out.resolve():
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(source, out, symlinks=False)  # the Hub cache holds symlinks; copy real files
    write_json(origin, out / MANIFEST)
    return out


def resolve_base_lm(spec: str | Path, params: Params) -> Path:
    """The directory to load a base LM from, without copying: an existing directory as is, `smoke`
    built once into the cache (deterministic, so reuse is safe), a Hub id downloaded into the cache."""
    spec = str(spec)
    path = Path(spec)
    if path.exists():
        if not path.is_dir():
            raise PolyinstructError(f"{path}: is a file; a base model is a directory, a Hub id or `smoke`")
        validate_model_dir(path)
        return path
    if spec == SMOKE:
        cached = Path(params.models.cache_dir) / f"smoke-lm-seed{params.models.smoke_seed}"
        if read_manifest(cached).get("seed") != params.models.smoke_seed:
            build_smoke_lm(cached, params.models.smoke_seed)
        return cached
    if HUB_ID.match(spec) and not path.parent.is_dir():
        source = _download(spec, Path(params.models.cache_dir))
        validate_model_dir(source)
        return source
    if HUB_ID.match(spec):  # `models/base_lm` looks like ORG/NAME, but its parent is a local folder
        raise PolyinstructError(f"{path}: base model folder not found; make it with `polyinstruct model prepare`"
                                " (or `dvc repro models`), or pass a Hub id or `smoke`")
    raise PolyinstructError(f"base model '{spec}': no such directory and not a Hub id (ORG/NAME); run `polyinstruct"
                            " model prepare` (or dvc repro models), or pass a Hub id or `smoke`")
