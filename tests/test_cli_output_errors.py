"""Issue 11, point 5: the user's mistakes give one line, never a traceback, and an output that cannot be
written fails before any work (the inputs below do not even exist: the output is checked first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_builder.models import lm
from dataset_builder.models.lm import resolve_base_lm
from schemas.errors import PolyinstructError
from schemas.params import parse_params
from tests.conftest import run_cli
from trl_training.sft import sft_config_kwargs


def _one_line_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = run_cli(monkeypatch, *args)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, captured.out[-2000:] + err[-2000:]
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def _commands(blocked: Path, missing: Path) -> dict[str, list[str]]:
    """Each command with its output under `blocked` and every input missing."""
    return {
        "ingest": ["ingest", "--in", str(missing / "in.json"), "--out", str(blocked / "s.parquet"),
                   "--rejects", str(blocked / "r.parquet"), "--metrics", str(blocked / "m.json")],
        "translate": ["translate", "--in", str(missing / "s.parquet"), "--lang", "fr", "--model", str(missing),
                      "--out", str(blocked / "t.parquet")],
        "translate-many": ["translate-many", "--in", str(missing / "s.parquet"), "--langs", "fr,de", "--model",
                           str(missing), "--out-dir", str(blocked / "translated")],
        "filter": ["filter", "--source", str(missing / "s.parquet"), "--translated", str(missing),
                   "--out", str(blocked / "filtered")],
        "validate": ["validate", "--in", str(missing), "--source", str(missing / "s.parquet"),
                     "--docs", str(blocked / "docs"), "--result", str(blocked / "v.json")],
        "mix": ["mix", "--in", str(missing), "--recipe", "multilingual", "--out", str(blocked / "mix")],
        "export": ["export", "--in", str(missing), "--out", str(blocked / "export")],
    }


@pytest.mark.parametrize("command", ["ingest", "translate", "translate-many", "filter", "validate", "mix",
                                     "export"])
def test_output_under_a_file_fails_first_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], command: str) -> None:
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    err = _one_line_error(monkeypatch, capsys, *_commands(blocker / "sub", tmp_path / "missing")[command])
    assert f"because {blocker} is a file" in err


@pytest.mark.parametrize("command", ["ingest", "filter", "validate"])
def test_output_under_proc_fails_first_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], command: str) -> None:
    if not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    monkeypatch.chdir(tmp_path)
    err = _one_line_error(monkeypatch, capsys, *_commands(Path("/proc/polyinstruct"), tmp_path / "missing")[command])
    assert "/proc/polyinstruct" in err and "cannot write" in err


def test_mix_with_a_missing_tokenizer_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(monkeypatch, capsys, "mix", "--in", str(tmp_path), "--recipe", "multilingual",
                          "--out", str(tmp_path / "mix"), "--tokenizer", "/nonexistent")
    assert "/nonexistent: not a tokenizer folder" in err


def test_sft_values_are_type_checked(tmp_path: Path) -> None:
    bad = parse_params({"training": {"sft": {"learning_rate": "fast"}}}, "test")
    with pytest.raises(PolyinstructError, match=r"params.training.sft.learning_rate: 'fast' is not a valid value"):
        sft_config_kwargs(bad, tmp_path, bad.training.budget, False, False)
    yaml_text = parse_params({"training": {"sft": {"learning_rate": "2e-4"}}}, "test")  # YAML reads 2e-4 as text
    assert sft_config_kwargs(yaml_text, tmp_path, yaml_text.training.budget, False, False)["learning_rate"] == 2e-4


def test_missing_default_base_model_says_how_to_make_it_and_never_tries_the_hub(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # as in a fresh clone: models/ is in git, models/base_lm is not

    def no_hub(*_: object) -> None:
        raise AssertionError("tried the Hub")

    monkeypatch.setattr(lm, "_download", no_hub)
    with pytest.raises(PolyinstructError, match=r"models/base_lm: base model folder not found; make it with "
                                                r"`polyinstruct model prepare`"):
        resolve_base_lm("models/base_lm", parse_params({}, "test"))
