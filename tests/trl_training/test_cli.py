"""The exact CLI calls dvc.yaml makes (mix --mixture, train, evaluate), plus `model smoke-lm` and
one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli as shared_run_cli


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str,
                                                                                                          str]:
    code = shared_run_cli(monkeypatch, *args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def params_file(tmp_path: Path) -> Path:
    params = {
        "models": {"cache_dir": str(tmp_path / "cache")},
        "mixtures": [{"name": "down", "recipe": "downsampled", "budget": 8, "seed": 3},
                     {"name": "mono-ru", "recipe": "monolingual", "lang": "rus_Cyrl"}],
        "training": {"template": "bactrian", "max_steps": 2, "max_eval_examples": 2,
                     "sft": {"learning_rate": 0.01, "per_device_train_batch_size": 4, "max_length": 96}},
        "evaluate": {"max_eval_examples": 2, "max_generation_prompts": 2, "max_new_tokens": 4},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_dvc_commands_end_to_end(export_dir: Path, smoke_lm: Path, params_file: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    p = ["--params", str(params_file)]
    mix, adapter, metrics = tmp_path / "mixes" / "down", tmp_path / "adapters" / "down", tmp_path / "metrics"
    code, out, err = run_cli(["mix", "--in", str(export_dir), "--mixture", "down", "--out", str(mix), *p],
                             monkeypatch, capsys)
    assert code == 0, err
    assert "mix down (downsampled, seed 3): 8 examples" in out
    assert json.loads((mix / "manifest.json").read_text())["counts"] == {
        "eng_Latn": 2, "fra_Latn": 2, "rus_Cyrl": 2, "zho_Hans": 2}

    code, out, err = run_cli(["train", "--mix", str(mix), "--base-model", str(smoke_lm), "--out", str(adapter),
                              "--metrics", str(metrics / "train" / "down"), *p], monkeypatch, capsys)
    assert code == 0, err
    assert "train down: 2 steps" in out and "SMOKE" in out
    assert (metrics / "train" / "down" / "loss.csv").read_text().startswith("step,loss\n1,")

    eval_out = metrics / "eval" / "down.json"
    code, out, err = run_cli(["evaluate", "--base-model", str(smoke_lm), "--adapter", str(adapter), "--data",
                              str(export_dir), "--out", str(eval_out), *p], monkeypatch, capsys)
    assert code == 0, err
    result = json.loads(eval_out.read_text())
    assert result["smoke"] is True and result["template"] == "bactrian"
    # no prompt files: the test split's instructions of each language are the prompts
    assert {lang: row["prompts"] for lang, row in result["languages"].items()} == {
        "eng_Latn": 2, "fra_Latn": 2, "rus_Cyrl": 2, "zho_Hans": 2}
    assert result["languages"]["zho_Hans"]["prompt_source"] == "export test split"


def test_smoke_lm_command(tmp_path: Path, smoke_lm: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["model", "smoke-lm", "--out", str(tmp_path / "lm"), "--seed", "0"], monkeypatch,
                             capsys)
    assert code == 0, err
    assert "SMOKE" in out
    assert (tmp_path / "lm" / "model.safetensors").read_bytes() == (smoke_lm / "model.safetensors").read_bytes()


@pytest.mark.parametrize(("args", "message"), [
    (["mix", "--mixture", "nope"], "no mixture named 'nope' under `mixtures` (have: down, mono-ru)"),
    (["mix", "--mixture", "down", "--budget", "3"], "--mixture takes its settings from params.yaml; drop --budget"),
    (["mix", "--recipe", "monolingual"], "recipe monolingual needs `lang`"),
    (["mix", "--recipe", "downsampled", "--budget", "100000"], "--budget 100000 is larger than the data"),
    (["mix", "--recipe", "monolingual", "--lang", "xx_Latn"], "unknown language code 'xx_Latn'"),
    (["train", "--mix", "missing", "--out", "a"], "missing: no train.parquet"),
    (["evaluate", "--adapter", "missing", "--out", "e.json", "--base-model", "smoke"], "no adapter_config.json"),
])
def test_errors_are_one_line_and_exit_2(args: list[str], message: str, export_dir: Path, params_file: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    if args[0] == "mix":
        args = [*args, "--in", str(export_dir), "--out", str(tmp_path / "m")]
    code, _, err = run_cli([*args, "--params", str(params_file)], monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
