"""`polyinstruct push`: HfApi mocked at the network boundary. The calls and their arguments, the card merge,
the dry run without network, the refusals before any upload, and a planted token that must never show."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import DatasetCard, HfApi
from huggingface_hub.errors import EntryNotFoundError

from dataset_builder import hub
from dataset_builder.export.build import export_dataset
from dataset_builder.hub import merge_card, push_export, scrub
from dataset_builder.lineage import LINEAGE_NAME
from schemas.errors import PolyinstructError
from schemas.export_layout import CARD_NAME
from tests.conftest import run_cli
from tests.dataset_builder.test_export import demo_params, make_filtered, tree_digest, write_metrics

pytestmark = pytest.mark.usefixtures("no_network")  # tests/conftest.py: the Hub is mocked

PLANTED = "hf_PLANTEDsecret123"
REPO = "my-org/polyinstruct-demo"
REMOTE_CARD = """---
license: mit
language:
- de
pretty_name: old name
paperswithcode_id: polyinstruct-demo
tags:
- curated-by-me
custom_field: keep-me
configs:
- config_name: old
  data_files: old/*.parquet
---

# A body written on the Hub
"""


@dataclass
class FakeHub:
    """Records what reached the Hub API; `upload_folder` snapshots the staged folder before it vanishes."""

    calls: list[tuple[str, dict[str, Any]]]
    remote_card: str | None = None
    upload_error: Exception | None = None
    uploaded: dict[str, bytes] | None = None

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def kwargs(self, name: str) -> dict[str, Any]:
        return next(kw for n, kw in self.calls if n == name)


@pytest.fixture()
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    fake = FakeHub(calls=[])

    def create_repo(self: HfApi, repo_id: str, **kwargs: Any) -> str:
        fake.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/datasets/{repo_id}"

    def create_branch(self: HfApi, repo_id: str, **kwargs: Any) -> None:
        fake.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def hf_hub_download(self: HfApi, repo_id: str, filename: str, **kwargs: Any) -> str:
        fake.calls.append(("hf_hub_download", {"repo_id": repo_id, "filename": filename, **kwargs}))
        if fake.remote_card is None:
            raise EntryNotFoundError(f"{filename} not found in {repo_id}")
        path = tmp_path / "remote" / filename
        path.parent.mkdir(exist_ok=True)
        path.write_text(fake.remote_card)
        return str(path)

    def upload(name: str) -> Any:
        def _upload(self: HfApi, **kwargs: Any) -> Any:
            fake.calls.append((name, kwargs))
            assert self.token == PLANTED  # the token reached the client, and only the client
            folder = Path(kwargs["folder_path"])
            fake.uploaded = {p.relative_to(folder).as_posix(): p.read_bytes()
                             for p in sorted(folder.rglob("*")) if p.is_file()}
            if fake.upload_error is not None:
                raise fake.upload_error
            return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/datasets/{kwargs['repo_id']}"
                                                         "/commit/abc", "pr_url": None, "oid": "abc"})()
        return _upload

    def create_tag(self: HfApi, repo_id: str, **kwargs: Any) -> None:
        fake.calls.append(("create_tag", {"repo_id": repo_id, **kwargs}))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_tag", create_tag)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    monkeypatch.setattr(HfApi, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(HfApi, "upload_folder", upload("upload_folder"))
    monkeypatch.setattr(HfApi, "upload_large_folder", upload("upload_large_folder"), raising=False)
    return fake


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    filtered = make_filtered(root, n_ids=40, langs=("eng_Latn", "fra_Latn"))
    validation, quality = write_metrics(root)
    out = root / "export"
    export_dataset(filtered, out, demo_params(), validation_path=validation, quality_path=quality)
    return out


def assert_token_absent(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    out, err = capsys.readouterr()
    for text in (out, err, caplog.text):
        assert PLANTED not in text
        assert "PLANTEDsecret" not in text
    return out + err


def test_push_creates_repo_then_uploads_the_verified_folder(
        export_dir: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    caplog.set_level(logging.DEBUG)
    before = tree_digest(export_dir)
    assert run_cli(monkeypatch, "push", str(export_dir), "--repo-id", REPO, "--private") == 0
    output = assert_token_absent(capsys, caplog)
    assert "push: uploaded 8 files" in output and "/commit/abc" in output

    assert fake_hub.names() == ["create_repo", "hf_hub_download", "upload_folder"]
    assert fake_hub.kwargs("create_repo") == {"repo_id": REPO, "repo_type": "dataset", "private": True,
                                              "exist_ok": True}
    assert fake_hub.kwargs("hf_hub_download")["revision"] is None
    upload = fake_hub.kwargs("upload_folder")
    assert upload["repo_id"] == REPO and upload["repo_type"] == "dataset"
    assert upload["revision"] is None and upload["create_pr"] is False
    assert upload["delete_patterns"] == ["en/*.parquet", "fr/*.parquet"]
    assert "2 configs" in upload["commit_message"]
    # The uploaded folder is the export, byte for byte, with the repo id in the card's usage snippet.
    assert fake_hub.uploaded is not None
    assert sorted(fake_hub.uploaded) == sorted(before)
    for rel, digest in before.items():
        if rel != CARD_NAME:
            assert hashlib.md5(fake_hub.uploaded[rel]).hexdigest() == digest
    assert f'load_dataset("{REPO}", "en"' in fake_hub.uploaded[CARD_NAME].decode()
    assert tree_digest(export_dir) == before  # the DVC-tracked folder is never touched


def test_branch_pr_and_large_folder_arguments(export_dir: Path, fake_hub: FakeHub,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    push_export(export_dir, REPO, revision="dev")
    assert fake_hub.names() == ["create_repo", "create_branch", "hf_hub_download", "upload_folder"]
    assert fake_hub.kwargs("create_branch") == {"repo_id": REPO, "branch": "dev", "repo_type": "dataset",
                                                "exist_ok": True}
    assert fake_hub.kwargs("hf_hub_download")["revision"] == "dev"
    assert fake_hub.kwargs("upload_folder")["revision"] == "dev"

    fake_hub.calls.clear()
    result = push_export(export_dir, REPO, create_pr=True)
    assert fake_hub.names() == ["create_repo", "hf_hub_download", "upload_folder"]
    assert fake_hub.kwargs("upload_folder")["create_pr"] is True
    assert fake_hub.kwargs("upload_folder")["revision"] is None
    assert result.method == "upload_folder"

    with pytest.raises(PolyinstructError, match="--create-pr opens a pull request against the default branch"):
        push_export(export_dir, REPO, create_pr=True, revision="dev")

    # Big exports: upload_large_folder where the installed huggingface_hub has it (and no PR is wanted).
    monkeypatch.setattr(hub, "LARGE_FOLDER_BYTES", 0)
    fake_hub.calls.clear()
    assert push_export(export_dir, REPO, private=True).method == "upload_large_folder"
    large = fake_hub.kwargs("upload_large_folder")
    assert large["repo_type"] == "dataset" and large["private"] is True and large["revision"] is None
    fake_hub.calls.clear()
    assert push_export(export_dir, REPO, create_pr=True).method == "upload_folder"


def test_updating_a_repo_keeps_the_card_fields_we_do_not_own(export_dir: Path, fake_hub: FakeHub,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    fake_hub.remote_card = REMOTE_CARD
    push_export(export_dir, REPO)
    assert fake_hub.uploaded is not None
    merged = DatasetCard(fake_hub.uploaded[CARD_NAME].decode())
    meta = merged.data.to_dict()
    ours = DatasetCard((export_dir / CARD_NAME).read_text()).data.to_dict()
    for key in ("configs", "language", "license", "pretty_name", "dataset_info", "size_categories",
                "task_categories", "annotations_creators", "source_datasets"):
        assert meta[key] == ours[key], key  # ours win
    assert [c["config_name"] for c in meta["configs"]] == ["en", "fr"]  # the Hub's stale config is gone
    assert meta["paperswithcode_id"] == "polyinstruct-demo"  # theirs kept
    assert meta["custom_field"] == "keep-me"
    assert meta["tags"][0] == "curated-by-me" and "smoke-model-output" in meta["tags"]
    assert merged.text.lstrip().startswith("> **WARNING: smoke-model output.**")


def test_merge_card_without_a_remote_card_is_ours() -> None:
    ours = "---\nlicense: cc-by-nc-4.0\n---\n\nbody\n"
    assert merge_card(None, ours) == ours
    assert merge_card("   ", ours) == ours


def test_a_hub_error_never_shows_the_token(export_dir: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str],
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    caplog.set_level(logging.DEBUG)
    fake_hub.upload_error = RuntimeError(
        f"401 Client Error: Unauthorized for url https://huggingface.co/api/datasets/{REPO}/commit/main"
        f" (headers: Authorization: Bearer {PLANTED}; token={PLANTED})")
    assert run_cli(monkeypatch, "push", str(export_dir), "--repo-id", REPO) == 2
    output = assert_token_absent(capsys, caplog)
    assert f"error: push to {REPO} failed: RuntimeError: 401 Client Error" in output
    assert "Bearer ***" in output
    assert "Traceback" not in output

    # The raised error carries no chained exception that could still hold the token.
    with pytest.raises(PolyinstructError) as info:
        push_export(export_dir, REPO)
    assert PLANTED not in str(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert scrub(f"x {PLANTED} hf_otherLookingToken9 y", PLANTED) == "x *** hf_*** y"


def test_dry_run_is_offline_and_lists_files_and_card(export_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    caplog.set_level(logging.DEBUG)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a dry run must not construct any Hub call")

    monkeypatch.setattr(HfApi, "__init__", forbidden)
    monkeypatch.setattr("huggingface_hub.get_token", forbidden)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", forbidden)
    assert run_cli(monkeypatch, "push", str(export_dir), "--repo-id", REPO, "--dry-run") == 0
    output = assert_token_absent(capsys, caplog)
    assert "push (dry run, nothing sent): 8 files" in output
    for shard in export_dir.glob("*/*.parquet"):
        rel = shard.relative_to(export_dir).as_posix()
        assert f"{shard.stat().st_size:,d}  {rel}" in output
    assert "token: found in HF_TOKEN (the value is never shown)" in output
    assert "- config_name: fr" in output and "> **WARNING: smoke-model output.**" in output
    assert f'load_dataset("{REPO}", "en", split="train")' in output


def test_refusals_come_before_any_hub_call(export_dir: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    with pytest.raises(PolyinstructError, match=r"^no Hugging Face token: set HF_TOKEN or run `hf auth login`"):
        push_export(export_dir, REPO)
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    with pytest.raises(PolyinstructError, match=r"--repo-id 'polyinstruct-demo': expected ORG/NAME"):
        push_export(export_dir, "polyinstruct-demo")
    with pytest.raises(PolyinstructError, match=r"--repo-id 'my-org/bad name!': not a valid Hub repo id"):
        push_export(export_dir, "my-org/bad name!", dry_run=True)
    broken = tmp_path / "broken"
    shutil.copytree(export_dir, broken)
    (broken / "fr" / "test-00000-of-00001.parquet").unlink()
    with pytest.raises(PolyinstructError, match=r"lists fr/test-00000-of-00001\.parquet but the file is missing"):
        push_export(broken, REPO)
    with pytest.raises(PolyinstructError, match="not a folder"):
        push_export(tmp_path / "nowhere", REPO)
    assert fake_hub.calls == []


COMMIT = "0123456789abcdef0123456789abcdef01234567"


def with_lineage(export_dir: Path, tmp_path: Path, commit: str | None, dirty: bool = False) -> Path:
    """A copy of the export whose lineage.json names `commit` (the fixture's names whatever checkout ran it)."""
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    lineage = json.loads((copy / LINEAGE_NAME).read_text())
    lineage["git"] = {"commit": commit, "dirty": dirty if commit else None, "dirty_paths": ["params.yaml"] if dirty
                      else []}
    lineage["dvc_lock"] = {"path": "dvc.lock", "upstream_stages": ["filter"], "upstream_sha256": "f" * 64,
                           "outs": {}}
    (copy / LINEAGE_NAME).write_text(json.dumps(lineage))
    return copy


def test_the_hub_commit_names_the_git_commit_and_tag_tags_the_upload(
        export_dir: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    export = with_lineage(export_dir, tmp_path, COMMIT)
    assert run_cli(monkeypatch, "push", str(export), "--repo-id", REPO, "--tag") == 0
    assert fake_hub.names() == ["create_repo", "hf_hub_download", "upload_folder", "create_tag"]
    upload = fake_hub.kwargs("upload_folder")
    rows = push_export(export, REPO, dry_run=True).plan.verified["rows"]
    assert upload["commit_message"] == f"polyinstruct export of git {COMMIT}: 2 configs, {rows} rows"
    assert f"dvc.lock upstream sha256: {'f' * 64}" in upload["commit_description"]
    assert fake_hub.uploaded is not None and LINEAGE_NAME in fake_hub.uploaded  # the record travels with the data
    assert fake_hub.kwargs("create_tag") == {"repo_id": REPO, "tag": f"polyinstruct-{COMMIT[:12]}",
                                             "tag_message": upload["commit_message"], "revision": "abc",
                                             "repo_type": "dataset"}
    assert f"tagged the Hub revision polyinstruct-{COMMIT[:12]}" in capsys.readouterr().out

    fake_hub.calls.clear()  # dirty: said in the message and the tag; no --tag: no tag
    result = push_export(with_lineage(export_dir, tmp_path / "dirty", COMMIT, dirty=True), REPO)
    assert fake_hub.names() == ["create_repo", "hf_hub_download", "upload_folder"] and result.tag is None
    assert fake_hub.kwargs("upload_folder")["commit_message"].startswith(f"polyinstruct export of git {COMMIT}"
                                                                         " (dirty): ")
    assert result.plan.tag_name() == f"polyinstruct-{COMMIT[:12]}-dirty"


def test_tag_refusals_come_before_any_hub_call(export_dir: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    with pytest.raises(PolyinstructError, match="no git commit recorded, so --tag has nothing to name"):
        push_export(with_lineage(export_dir, tmp_path, None), REPO, tag=True)
    with pytest.raises(PolyinstructError, match="--tag tags a pushed revision"):
        push_export(export_dir, REPO, tag=True, create_pr=True)
    assert fake_hub.calls == []
    dry = push_export(with_lineage(export_dir, tmp_path / "dry", COMMIT), REPO, tag=True, dry_run=True)
    assert dry.calls[-1].startswith(f"create_tag('{REPO}', tag='polyinstruct-{COMMIT[:12]}'")
    assert fake_hub.calls == []
