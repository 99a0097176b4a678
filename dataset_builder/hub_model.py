"""Push a trained LoRA adapter (models/adapters/NAME, written by `polyinstruct train`) to the Hugging Face
Hub as a model repo with a model card: the base model, the training params, the mixture manifest, the
evaluation table when there is one, and the combined license of the training data and the base model.

Token handling is the dataset push's (dataset_builder/hub.py): HF_TOKEN or the login cache, never shown,
Hub errors re-raised as one scrubbed line; `dry_run` plans and prints without constructing a Hub call."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataset_builder.export.licenses import combine_licenses
from dataset_builder.hub import check_repo_id, resolve_token, scrub, token_source
from schemas.errors import PolyinstructError
from schemas.languages import resolve

REPO_TYPE = "model"
CARD_NAME = "README.md"
REQUIRED = ("adapter_config.json", "training_config.json", "manifest.json")
SKIP_DIRS = ("checkpoints",)  # resumable training state, not part of the adapter
SMOKE_BASE_LICENSE = "apache-2.0"  # the smoke base LM is built by this project (random weights)


@dataclass
class ModelPushPlan:
    adapter_dir: Path
    repo_id: str
    files: list[tuple[str, int]]
    card: str
    license: str | list[str]
    calls: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PolyinstructError(f"{path}: cannot read it ({type(err).__name__}); retrain the adapter") from None


def card_license(card_path: Path) -> str | list[str] | None:
    """The `license` of a Hub card's YAML front matter (a dataset or model README.md), or None."""
    if not card_path.is_file():
        return None
    text = card_path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    return meta.get("license") if isinstance(meta, dict) else None


def _adapter_files(adapter_dir: Path) -> list[tuple[str, int]]:
    files = []
    for path in sorted(adapter_dir.rglob("*")):
        rel = path.relative_to(adapter_dir)
        if path.is_file() and rel.parts[0] not in SKIP_DIRS and not rel.parts[0].startswith(".") \
                and rel.as_posix() != CARD_NAME:
            files.append((rel.as_posix(), path.stat().st_size))
    return files


def _base_license(config: dict[str, Any], override: str | None) -> str:
    if override:
        return override
    manifest = config.get("base_model_manifest") or {}
    if manifest.get("smoke"):
        return SMOKE_BASE_LICENSE
    found = card_license(Path(str(config.get("base_model_path", ""))) / CARD_NAME)
    if isinstance(found, str) and found:
        return found
    raise PolyinstructError(f"base model {base_model_name(config)}: no license found in its README.md; pass"
                            " --base-license ID (e.g. llama2, apache-2.0; see the model's Hub page)")


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    return ["| setting | value |", "|---|---|", *[f"| {k} | `{v}` |" for k, v in rows]]


def base_model_name(config: dict[str, Any]) -> str:
    """The base model as the user named it (DVC passes the local copy models/base_lm; its manifest knows)."""
    return str((config.get("base_model_manifest") or {}).get("spec") or config.get("base_model"))


def model_card(repo_id: str, config: dict[str, Any], mixture: dict[str, Any], license_id: str | list[str],
               components: list[tuple[str, str, str]], eval_table: str | None, smoke: bool) -> str:
    langs = sorted(mixture.get("languages") or mixture.get("counts") or {})
    iso = sorted({resolve(code).iso639_1 or code for code in langs})
    base = base_model_name(config)
    meta = {"base_model": base, "library_name": "peft", "license": license_id,
            "language": iso, "pipeline_tag": "text-generation",
            "tags": ["polyinstruct", "lora", "peft", "trl", "sft", *(["smoke-model-output"] if smoke else [])]}
    sft, lora = config.get("sft_config", {}), config.get("lora", {})
    budget = config.get("budget", {})
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip(), "---", "",
             f"# {repo_id.split('/')[-1]}", ""]
    if smoke:
        lines += ["> **SMOKE MODEL.** Trained from a random-weight base model and/or smoke-model translations:"
                  " it tests the pipeline, not the method. Do not use it.", ""]
    lines += [f"A LoRA adapter for `{base}`, trained by polyinstruct (TRL SFTTrainer + PEFT)"
              f" on the mixture `{mixture.get('name')}` ({mixture.get('recipe')}).", "",
              "## Training", ""]
    lines += _table([("template", config.get("template")), ("budget", budget.get("budget")),
                     ("steps", config.get("max_steps")), ("planned epochs", budget.get("planned_epochs")),
                     ("lora r / alpha / dropout", f"{lora.get('r')} / {lora.get('alpha')} / {lora.get('dropout')}"),
                     ("target modules", lora.get("target_modules")), ("learning rate", sft.get("learning_rate")),
                     ("batch per device x accumulation", f"{sft.get('per_device_train_batch_size')} x"
                                                         f" {sft.get('gradient_accumulation_steps')}"),
                     ("max length", sft.get("max_length")), ("precision", config.get("precision")),
                     ("versions", config.get("versions"))])
    lines += ["", "## Mixture", "", f"{mixture.get('total_examples')} examples, {mixture.get('total_tokens')}"
              f" tokens ({mixture.get('token_counter')}), content sha256 `{mixture.get('content_sha256')}`.", "",
              "| language | train examples |", "|---|---|"]
    lines += [f"| {lang} | {n} |" for lang, n in sorted((mixture.get("counts") or {}).items())]
    if eval_table:
        lines += ["", "## Evaluation", "", eval_table.strip()]
    license_text = license_id if isinstance(license_id, str) else " + ".join(license_id)
    lines += ["", "## License", "", f"`{license_text}`: the most restrictive combination of:", ""]
    lines += [f"- {kind} `{name}`: `{lic}`" for kind, name, lic in components]
    return "\n".join(lines) + "\n"


def plan_model_push(adapter_dir: Path | str, repo_id: str, *, data_card: Path | None = None,
                    eval_table: Path | None = None, base_license: str | None = None) -> ModelPushPlan:
    """Every local check of an adapter push, and its card. No network."""
    adapter_dir = Path(adapter_dir)
    check_repo_id(repo_id)
    missing = [n for n in REQUIRED if not (adapter_dir / n).is_file()]
    if not adapter_dir.is_dir() or missing:
        raise PolyinstructError(f"{adapter_dir}: not a trained adapter (missing {', '.join(missing) or 'folder'});"
                                " train it with `polyinstruct train` first")
    config = _read_json(adapter_dir / "training_config.json")
    manifest = _read_json(adapter_dir / "manifest.json")
    mix_path = adapter_dir / "mixture.json"
    mixture = _read_json(mix_path) if mix_path.is_file() else dict(config.get("mixture") or {})
    card_path = data_card or (Path(str(mixture.get("source", "data/export"))) / CARD_NAME)
    data_license = card_license(card_path)
    if not data_license:
        raise PolyinstructError(f"{card_path}: no dataset card with a license (the export's README.md); pass"
                                " --data-card PATH to the card of the data the adapter was trained on")
    data_licenses = [data_license] if isinstance(data_license, str) else list(data_license)
    base = _base_license(config, base_license)
    license_id = combine_licenses([*data_licenses, base])
    components = [("training data", str(card_path), lic) for lic in data_licenses]
    components.append(("base model", base_model_name(config), base))
    table = eval_table.read_text(encoding="utf-8") if eval_table and eval_table.is_file() else None
    card = model_card(repo_id, config, mixture, license_id, components, table, bool(manifest.get("smoke")))
    return ModelPushPlan(adapter_dir, repo_id, _adapter_files(adapter_dir), card, license_id)


def push_adapter(adapter_dir: Path | str, repo_id: str, *, private: bool = False, dry_run: bool = False,
                 data_card: Path | None = None, eval_table: Path | None = None,
                 base_license: str | None = None) -> tuple[ModelPushPlan, str | None, str | None]:
    """Upload the adapter (create_repo, upload_folder). Returns the plan, where the token was found (never
    the token) and the commit URL (None on a dry run)."""
    from huggingface_hub import HfApi  # the class only: nothing is constructed or called on a dry run

    check_repo_id(repo_id)
    token = None if dry_run else resolve_token()
    plan = plan_model_push(adapter_dir, repo_id, data_card=data_card, eval_table=eval_table,
                           base_license=base_license)
    plan.calls = [f"create_repo({repo_id!r}, repo_type='model', private={private}, exist_ok=True)",
                  f"upload_folder({repo_id!r}, repo_type='model', {len(plan.files) + 1} files with the card)"]
    if token is None:
        return plan, token_source(), None
    failure: str | None = None
    url: str | None = None
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".polyinstruct-push-") as tmp:
            stage = Path(tmp)
            for rel, _ in plan.files:
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(plan.adapter_dir / rel, stage / rel)
                except OSError:
                    shutil.copy2(plan.adapter_dir / rel, stage / rel)
            (stage / CARD_NAME).write_text(plan.card, encoding="utf-8")
            info = api.upload_folder(repo_id=repo_id, folder_path=stage, repo_type=REPO_TYPE,
                                     commit_message=f"polyinstruct adapter {plan.adapter_dir.name}")
        url = str(getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}")
    except Exception as err:  # noqa: BLE001 - any Hub failure becomes one scrubbed line
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        failure = scrub(f"push to {repo_id} failed: {type(err).__name__}: {text}; fix the cause and rerun", token)
    if failure is not None:  # raised outside the except block: the original error (maybe holding the token) is dropped
        raise PolyinstructError(failure)
    return plan, token_source(), url
