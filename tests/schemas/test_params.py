from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import PolyinstructError
from schemas.params import Params, load_params, parse_params

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_repo_params_yaml_is_valid_and_is_the_demo() -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.data.source == "dataset_builder/data/sample_alpaca.json"  # the embedded sample, as a DVC dep
    assert params.data.source_name == "sample"  # so ids are those of `embedded`: sample-0, sample-1, ...
    assert params.models.translation == "smoke" and params.models.base_lm == "smoke"
    assert params.all_languages[0] == "eng_Latn" and len(params.languages.targets) == 3
    assert params.mixtures, "the demo trains at least one mixture"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"translate": {"beem_size": 2}}, r"unknown key 'translate.beem_size'; allowed keys here: .*beam_size"),
        ({"bogus": {}}, r"unknown key 'bogus'; allowed keys here: data, languages"),
        ({"translate": {"device": "tpu"}}, r"bad value for 'translate.device': Input should be 'auto', 'cpu' or"),
        ({"languages": {"targets": ["xx_Yyyy"]}}, r"bad value for 'languages.targets': unknown language code"),
        ({"quality": {"filters": {"lang_id": {"min_chars": -1}}}}, r"'quality.filters.lang_id.min_chars'"),
        ({"mixtures": [{"name": "m", "recipe": "monolingual"}]}, r"recipe monolingual needs `lang`"),
        ({"mixtures": [{"name": "m", "recipe": "multilingual", "x": 1}]}, r"unknown key 'mixtures.0.x'"),
        ({"export": {"validation_fraction": 0.6, "test_fraction": 0.5}}, r"must be below 1"),
    ],
)
def test_bad_params_fail_with_one_line_naming_the_key(raw: dict, message: str) -> None:
    with pytest.raises(PolyinstructError, match=message) as err:
        parse_params(raw)
    assert "\n" not in str(err.value)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("data:\n  source: [unclosed\n")
    with pytest.raises(PolyinstructError, match=r"params.yaml:\d+: not valid YAML"):
        load_params(bad)
    with pytest.raises(PolyinstructError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")


def test_defaults_are_valid() -> None:
    assert Params().translate.code_policy in ("keep", "skip", "translate")
