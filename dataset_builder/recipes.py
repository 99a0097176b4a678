"""The two papers' recipes as complete params files (`recipes/*.yaml` at the project root), and their
shrunken smoke versions: the same pipeline shape (several sources, mixtures, a budget, LoRA targets) on a
few records, one or two languages, smoke models and two training steps, to check a preset end to end on
a CPU before renting a GPU for the real run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from schemas.errors import PolyinstructError
from schemas.params import PACKAGED_SAMPLE, parse_params

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
SMOKE_LORA_TARGETS = ["q_proj", "v_proj"]  # the smoke base LM is a Llama: the presets' module names exist


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name: str) -> Path:
    path = RECIPES_DIR / f"{name}.yaml"
    if not path.exists():
        have = ", ".join(recipe_names()) or f"none in {RECIPES_DIR}"
        raise PolyinstructError(f"recipe '{name}': no such preset (have: {have})")
    return path


def load_recipe(name: str) -> dict[str, Any]:
    """The preset as a raw mapping, validated as params."""
    path = recipe_path(name)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    parse_params(raw, path)
    return raw


def shrink(raw: dict[str, Any], *, limit: int = 20, languages: int = 1, mixtures: int = 2, steps: int = 2,
           sources: dict[str, str] | None = None) -> dict[str, Any]:
    """A smoke version of a preset: `limit` records per source (`sources` maps a source name to a local
    file replacing it; sources not in it are dropped, none given: the embedded sample), the first
    `languages` targets, the first monolingual mixture of a kept language plus the multilingual and
    downsampled ones (at most `mixtures`), smoke models and a `steps`-step budget."""
    out = copy.deepcopy(raw)
    data = out["data"]
    if sources is None:
        data.pop("sources", None)
        data.update(source=PACKAGED_SAMPLE, source_name="sample")
    else:
        data["sources"] = [{**s, "source": sources[s["name"]], "revision": None, "config": None}
                           for s in data.get("sources", []) if s["name"] in sources]
        # DVC hashes `data.source`: the folder of the local files, so an edited one reruns ingest.
        folders = {str(Path(path).parent) for path in sources.values()}
        data["source"] = folders.pop() if len(folders) == 1 else PACKAGED_SAMPLE
    data["limit"] = limit
    targets = out["languages"]["targets"][:languages]
    out["languages"]["targets"] = targets
    kept = {out["languages"]["source"], *targets}
    usable = [m for m in out.get("mixtures", []) if m["recipe"] != "monolingual" or m.get("lang") in kept]
    mono = [m for m in usable if m["recipe"] == "monolingual"][:1]
    others = [m for m in usable if m["recipe"] != "monolingual"]
    chosen = (others + mono)[:mixtures]
    for m in chosen:  # a budget-matched downsample of a dropped language matches a kept one instead
        if m.get("lang") and m["lang"] not in kept:
            m["lang"] = out["languages"]["source"]
    out["mixtures"] = chosen
    out["models"].update(translation="smoke", base_lm="smoke", responder="smoke")
    if out.get("responses", {}).get("mode") == "generate":
        out["responses"].update(languages=targets, records="data/responded",
                                decoding={"max_new_tokens": 32, "temperature": 1.0, "seed": 0})
        # The smoke responder's answers are noise, often cut at max_new_tokens and rightly rejected as
        # truncated: on a few records the retention bound of a real run would stop the smoke check.
        out["validation"]["min_retention"] = min(out["validation"].get("min_retention", 0.5), 0.2)
    out["translate"].update(device="auto", device_index=[0], beam_size=1, backend="local", ray_gpus_per_worker=0.0)
    one_process = out["translate"].get("one_process") or {}
    out["translate"].update(per_language=[] if one_process else targets,
                            one_process={name: targets for name in one_process})
    out["export"].update(validation_fraction=0.1, test_fraction=0.2)  # a few records still leave a test split
    training = out["training"]
    training.update(budget={"steps": steps}, max_eval_examples=2)
    training["lora"]["target_modules"] = SMOKE_LORA_TARGETS
    training["sft"].update(per_device_train_batch_size=4, gradient_accumulation_steps=1, max_length=96,
                           warmup_steps=0, logging_steps=1, save_steps=steps)
    out["evaluate"].update(max_new_tokens=4, max_eval_examples=2, max_generation_prompts=1,
                           benchmarks=[])  # lm-eval tasks read their data from the Hub
    if out["evaluate"].get("judge", {}).get("model"):
        out["evaluate"]["judge"].update(model="smoke", decoding={"max_new_tokens": 8, "temperature": 0.0})
    parse_params(out, "shrunken recipe")
    return out


def write_recipe(name: str, out: Path, *, force: bool = False, smoke: bool = False, limit: int = 20) -> Path:
    """Write the preset (its comments kept), or its smoke version, as a params file."""
    if out.exists() and not force:
        raise PolyinstructError(f"{out}: exists; pass --force to replace it (keep a copy of your params)")
    if smoke:
        text = (f"# Smoke version of the '{name}' preset (polyinstruct recipe {name} --smoke): smoke models,"
                " a few records; it checks the pipeline, not the method.\n")
        text += yaml.safe_dump(shrink(load_recipe(name), limit=limit), sort_keys=False, width=110)
    else:
        load_recipe(name)
        text = recipe_path(name).read_text(encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
