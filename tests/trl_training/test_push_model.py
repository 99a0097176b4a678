"""`polyinstruct push --kind model`: the adapter's model card (base model, training params, mixture, eval
table, combined license), the dry run offline, and a push with HfApi mocked at the network boundary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from dataset_builder.hub_model import plan_model_push
from schemas.errors import PolyinstructError
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("no_network")  # tests/conftest.py: the Hub is mocked

PLANTED = "hf_PLANTEDsecret123"
REPO = "my-org/polyinstruct-adapter"


@pytest.fixture()
def cards(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "export_card.md"
    data.write_text("---\nlicense: cc-by-nc-4.0\n---\n# data\n", encoding="utf-8")
    table = tmp_path / "eval.md"
    table.write_text("| lang | base loss | adapter loss |\n|---|---|---|\n| fr | 9.1 | 7.2 |\n", encoding="utf-8")
    return {"data": data, "eval": table}


@pytest.mark.slow
def test_dry_run_prints_the_card_offline(trained: dict[str, Any], cards: dict[str, Path],
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    adapter = trained["adapter"]
    code = run_cli(monkeypatch, "push", "--kind", "model", str(adapter), "--repo-id", REPO, "--dry-run",
                   "--data-card", str(cards["data"]), "--eval-table", str(cards["eval"]))
    out = capsys.readouterr().out
    assert code == 0, out
    card = out.split("model card:\n", 1)[1]
    assert card.startswith("---\nbase_model: ") and "library_name: peft" in card
    assert "license: cc-by-nc-4.0" in card  # data (cc-by-nc-4.0) with the smoke base LM (apache-2.0)
    assert "SMOKE MODEL" in card and "smoke-model-output" in card
    assert "| lora r / alpha / dropout | `8 / 16 / 0.05` |" in card
    assert "| fr | 9.1 | 7.2 |" in card  # the eval table
    assert "| eng_Latn | 4 |" in card  # the mixture manifest: 4 examples per language
    assert "adapter_model.safetensors" in out and "checkpoints/" not in out
    assert "token: none found" in out


def test_push_uploads_the_adapter_with_its_card(trained: dict[str, Any], cards: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    uploaded: dict[str, str] = {}

    def create_repo(self: HfApi, repo_id: str, **kwargs: Any) -> str:
        calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return repo_id

    def upload_folder(self: HfApi, **kwargs: Any) -> Any:
        calls.append(("upload_folder", kwargs))
        folder = Path(kwargs["folder_path"])
        uploaded.update({p.relative_to(folder).as_posix(): "" for p in folder.rglob("*") if p.is_file()})
        uploaded["README.md"] = (folder / "README.md").read_text(encoding="utf-8")
        if kwargs.get("commit_message") == "fail":
            raise RuntimeError(f"401 bad token {PLANTED}")
        return type("Info", (), {"commit_url": f"https://huggingface.co/{REPO}/commit/abc"})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    code = run_cli(monkeypatch, "push", "--kind", "model", str(trained["adapter"]), "--repo-id", REPO,
                   "--data-card", str(cards["data"]))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [name for name, _ in calls] == ["create_repo", "upload_folder"]
    assert calls[0][1]["repo_type"] == "model" and calls[1][1]["repo_type"] == "model"
    assert "adapter_model.safetensors" in uploaded and "adapter_config.json" in uploaded
    assert not any(name.startswith("checkpoints/") for name in uploaded)
    assert "base_model:" in uploaded["README.md"] and f"/{REPO}/commit/abc" in captured.out
    assert PLANTED not in captured.out + captured.err


def test_push_errors_are_scrubbed_and_local_checks_come_first(trained: dict[str, Any], cards: dict[str, Path],
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PolyinstructError, match="not a trained adapter"):
        plan_model_push(tmp_path, REPO, data_card=cards["data"])
    with pytest.raises(PolyinstructError, match="no dataset card with a license"):
        plan_model_push(trained["adapter"], REPO, data_card=tmp_path / "missing.md")
    with pytest.raises(PolyinstructError, match="expected ORG/NAME"):
        plan_model_push(trained["adapter"], "no-slash", data_card=cards["data"])

    def create_repo(self: HfApi, repo_id: str, **kwargs: Any) -> str:
        raise RuntimeError(f"401 Unauthorized for token {PLANTED}")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    from dataset_builder.hub_model import push_adapter

    with pytest.raises(PolyinstructError) as err:
        push_adapter(trained["adapter"], REPO, data_card=cards["data"])
    assert PLANTED not in str(err.value) and "\n" not in str(err.value) and err.value.__cause__ is None
