from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from dataset_builder.models import nllb
from dataset_builder.models.nllb import (
    convert_model,
    model_fingerprint,
    prepare_translation_model,
    resolve_translation_model,
)
from dataset_builder.models.smoke import build_smoke_nllb
from schemas.errors import PolyinstructError
from schemas.languages import nllb_codes
from schemas.params import Params, parse_params


def digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def params_with_cache(tmp_path: Path, **translate: Any) -> Params:
    return parse_params({"models": {"cache_dir": str(tmp_path / "cache")}, "translate": translate})


def test_smoke_model_is_deterministic_and_says_smoke(smoke_nllb: Path, tmp_path: Path) -> None:
    again = build_smoke_nllb(tmp_path / "again", seed=0)
    assert digests(again) == digests(smoke_nllb)  # same seed, same bytes (HF copy included)
    other = build_smoke_nllb(tmp_path / "other", seed=1)
    assert digests(other)["model.bin"] != digests(smoke_nllb)["model.bin"]

    manifest = json.loads((smoke_nllb / "manifest.json").read_text())
    assert manifest["smoke"] is True and manifest["fingerprint"].startswith("smoke:")
    assert {"model_id", "revision", "quantization", "converter_version"} <= manifest.keys()
    assert json.loads((smoke_nllb / "hf" / "manifest.json").read_text())["smoke"] is True
    assert model_fingerprint(smoke_nllb) == (manifest["fingerprint"], True)
    config = json.loads((smoke_nllb / "hf" / "config.json").read_text())
    assert config["architectures"] == ["M2M100ForConditionalGeneration"] and config["d_model"] == 64


def test_smoke_tokenizer_is_nllb_with_every_flores_code(smoke_tokenizer: Any) -> None:
    assert type(smoke_tokenizer).__name__ == "NllbTokenizer"
    ids = smoke_tokenizer.convert_tokens_to_ids(list(nllb_codes()))
    assert smoke_tokenizer.unk_token_id not in ids and len(set(ids)) == len(nllb_codes()) == 202
    tokens = smoke_tokenizer.convert_ids_to_tokens(smoke_tokenizer("Hello world.")["input_ids"])
    assert tokens[0] == "eng_Latn" and tokens[-1] == "</s>" and len(tokens) > 3  # NLLB source layout


def test_smoke_model_translates_to_source_length_and_stops(smoke_nllb: Path, smoke_tokenizer: Any) -> None:
    import ctranslate2

    translator = ctranslate2.Translator(str(smoke_nllb), device="cpu", compute_type="int8")
    sentences = ["Hello world.", "Explain why the sky is blue in two sentences.",
                 " ".join(["Plants need water, light and air to grow well."] * 12)]
    sources = [smoke_tokenizer.convert_ids_to_tokens(ids) for ids in smoke_tokenizer(sentences)["input_ids"]]
    results = translator.translate_batch(sources, target_prefix=[["fra_Latn"]] * 3, beam_size=1,
                                         max_decoding_length=512, return_end_token=True)
    for source, result in zip(sources, results, strict=True):
        output = result.hypotheses[0]
        assert output[0] == "fra_Latn" and output[-1] == "</s>"  # it stops by itself
        assert len(output) - 2 == len(source) - 2  # as many tokens as the source's text
        assert output[1:-1] != source[1:-1]


def test_convert_keeps_tokenizer_and_inherits_smoke(smoke_nllb: Path, tmp_path: Path) -> None:
    out = convert_model(str(smoke_nllb / "hf"), tmp_path / "ct2-int8", "int8")
    assert (out / "model.bin").exists() and (out / "tokenizer.json").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["quantization"] == "int8" and manifest["smoke"] is True
    assert manifest["fingerprint"].startswith("smoke:")
    with pytest.raises(PolyinstructError, match="--quantization"):
        convert_model(str(smoke_nllb / "hf"), tmp_path / "x", "int4")


def test_prepare_accepts_smoke_ct2_dir_and_hf_dir(smoke_nllb: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    params = params_with_cache(tmp_path)
    ct2 = prepare_translation_model(str(smoke_nllb), tmp_path / "from-ct2", params)
    assert digests(ct2)["model.bin"] == digests(smoke_nllb)["model.bin"]
    assert model_fingerprint(ct2) == model_fingerprint(smoke_nllb)

    hf_copy = shutil.copytree(smoke_nllb / "hf", tmp_path / "hf-model")
    conversions: list[Path] = []
    real_convert = nllb.convert_nllb
    monkeypatch.setattr(nllb, "convert_nllb", lambda *a: (conversions.append(a[0]), real_convert(*a))[1])
    first = prepare_translation_model(str(hf_copy), tmp_path / "from-hf", params)
    second = resolve_translation_model(str(hf_copy), params)
    assert len(conversions) == 1  # converted once into models.cache_dir, then reused
    assert second.parent == tmp_path / "cache" / "translation"
    assert json.loads((first / "manifest.json").read_text())["quantization"] == "int8"


def test_hub_id_offline_fails_with_remedies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # the network boundary
    with pytest.raises(PolyinstructError) as err:
        resolve_translation_model("facebook/nllb-200-distilled-600M", params_with_cache(tmp_path))
    message = str(err.value)
    assert "\n" not in message and "facebook/nllb-200-distilled-600M" in message
    assert "HF_HUB_OFFLINE" in message and "--model DIR" in message


@pytest.mark.parametrize("kind", ["ct2", "hf"])
def test_model_dir_without_tokenizer_is_a_clear_error(smoke_nllb: Path, tmp_path: Path, kind: str) -> None:
    source = smoke_nllb if kind == "ct2" else smoke_nllb / "hf"
    broken = shutil.copytree(source, tmp_path / "broken", ignore=shutil.ignore_patterns("tokenizer*", "hf"))
    with pytest.raises(PolyinstructError, match="no tokenizer"):
        resolve_translation_model(str(broken), params_with_cache(tmp_path))


def test_bad_model_specs(tmp_path: Path) -> None:
    params = params_with_cache(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolyinstructError, match="neither a CTranslate2 model"):
        resolve_translation_model(str(tmp_path / "empty"), params)
    with pytest.raises(PolyinstructError, match="not a Hub id"):
        resolve_translation_model("./no/such/dir", params)
