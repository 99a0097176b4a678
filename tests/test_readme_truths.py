"""Issue 11, point 10: the README and the help text say what the code does."""

from __future__ import annotations

import re
import typing

import pytest

from schemas.params import DataParams
from tests.conftest import REPO_ROOT, run_cli

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_params_reference_documents_every_data_key_and_format() -> None:
    table = README[README.index("## Params reference"):README.index("## Real run")]
    for key in DataParams.model_fields:
        assert f"`data.{key}`" in table, key
    formats_row = next(line for line in table.splitlines() if line.startswith("| `data.format`"))
    for fmt in typing.get_args(DataParams.model_fields["format"].annotation):
        assert f"`{fmt}`" in formats_row, fmt


def test_dvc_repro_instructions_put_the_venv_on_path() -> None:
    assert "make venv && dvc repro" not in README
    assert re.search(r"source \.venv/bin/activate`? and `dvc repro`", README)


def test_translate_help_shows_the_ray_extra(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert run_cli(monkeypatch, "translate", "--help") == 0
    assert "pip install 'polyinstruct[ray]'" in capsys.readouterr().out
