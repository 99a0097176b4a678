"""Push an export folder (see dataset_builder/export/) to the Hugging Face Hub, safely.

Everything that can fail locally fails before the first network call: the repo id is checked, the folder
passes the `verify_export` round trip, and a token must exist. The token comes from HF_TOKEN or the login
cache and never reaches stdout, stderr or a log, not even inside an error: Hub errors are re-raised as one
scrubbed line. Updating an existing repo keeps the Hub card's metadata keys that the export does not own.
`dry_run` plans and prints without constructing a single Hub call.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder.export.card import OWNED_CARD_KEYS, REPO_ID_PLACEHOLDER
from dataset_builder.export.verify import verify_export
from dataset_builder.lineage import LINEAGE_NAME
from schemas.errors import PolyinstructError
from schemas.export_layout import CARD_NAME

REPO_TYPE = "dataset"
# Above this, older huggingface_hub versions upload with upload_large_folder (resumable, many commits).
# From huggingface_hub 1.x on, upload_folder itself streams large folders in several commits.
LARGE_FOLDER_BYTES = 1_000_000_000
# Anything shaped like a Hub user token is masked in error text, on top of the token we hold.
_TOKEN_SHAPE = re.compile(r"hf_[A-Za-z0-9]{8,}")


@dataclass
class PushPlan:
    """What a push would upload: checked locally, before any network access."""

    export_dir: Path
    repo_id: str
    files: list[tuple[str, int]]  # path relative to the export folder, bytes
    card: str  # the local card with the repo id filled in (before merging with the Hub's card)
    verified: dict[str, Any]  # verify_export's result
    lineage: dict[str, Any] | None = None  # the export's lineage.json (None for an export made before it existed)

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)

    @property
    def configs(self) -> list[str]:
        return list(self.verified["configs"])

    @property
    def commit(self) -> str | None:
        """The git commit that made the export (from lineage.json), or None."""
        return ((self.lineage or {}).get("git") or {}).get("commit")

    @property
    def dirty(self) -> bool:
        return bool(((self.lineage or {}).get("git") or {}).get("dirty"))

    def commit_message(self) -> str:
        """The Hub commit message: the git commit that made the data first, then what is uploaded."""
        what = f"{len(self.configs)} configs, {self.verified['rows']} rows"
        if self.commit is None:
            return f"polyinstruct export: {what}"
        return f"polyinstruct export of git {self.commit}{' (dirty)' if self.dirty else ''}: {what}"

    def commit_description(self) -> str | None:
        if not self.lineage:
            return None
        lock = self.lineage.get("dvc_lock") or {}
        return "\n".join([f"git commit: {self.commit or 'unknown'}{' (dirty)' if self.dirty else ''}",
                          f"dvc.lock upstream sha256: {lock.get('upstream_sha256', 'none')}",
                          f"params sha256: {self.lineage.get('params_sha256')}",
                          f"polyinstruct: {self.lineage.get('polyinstruct_version')}",
                          f"full record: {LINEAGE_NAME}"])

    def tag_name(self) -> str:
        """The Hub tag of a `--tag` push: polyinstruct-<12 hex of the commit>[-dirty]."""
        if self.commit is None:
            raise PolyinstructError(f"{self.export_dir / LINEAGE_NAME}: no git commit recorded, so --tag has"
                                    " nothing to name; rerun `polyinstruct export` (dvc repro) in a git checkout,"
                                    " or push without --tag")
        return f"polyinstruct-{self.commit[:12]}{'-dirty' if self.dirty else ''}"


@dataclass
class PushResult:
    plan: PushPlan
    dry_run: bool
    token_source: str | None  # where the token was found (never the token itself)
    method: str | None = None  # upload_folder | upload_large_folder
    url: str | None = None
    tag: str | None = None  # the Hub tag made (or, on a dry run, that would be made)
    calls: list[str] = field(default_factory=list)  # what was (or, on a dry run, would be) done


def scrub(text: str, token: str | None) -> str:
    """`text` without the token (or anything shaped like one)."""
    if token:
        text = text.replace(token, "***")
    return _TOKEN_SHAPE.sub("hf_***", text)


def check_repo_id(repo_id: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id.count("/") != 1:
        raise PolyinstructError(f"--repo-id '{repo_id}': expected ORG/NAME, e.g. my-org/polyinstruct-demo")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        reason = str(err).strip().splitlines()[0]
        raise PolyinstructError(f"--repo-id '{repo_id}': not a valid Hub repo id ({reason})") from None
    return repo_id


def token_source() -> str | None:
    """Where a token would come from, without reading it, refreshing it or touching the network."""
    from huggingface_hub import constants

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(var, "").strip():
            return var
    if Path(constants.HF_TOKEN_PATH).is_file():
        return "login cache"
    return None


def resolve_token() -> str:
    """The token from HF_TOKEN or the login cache; a clear error when there is none."""
    from huggingface_hub import get_token

    try:
        token = get_token()
    except Exception as err:  # noqa: BLE001 - e.g. a failed OIDC exchange; never echo what it held
        failure = scrub(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, None)
    else:
        failure = None
    if failure is not None:
        raise PolyinstructError(f"cannot get a Hugging Face token ({failure}); nothing was uploaded")
    if not token:
        raise PolyinstructError("no Hugging Face token: set HF_TOKEN or run `hf auth login`; nothing was uploaded")
    return token


def _export_files(export_dir: Path) -> list[tuple[str, int]]:
    files = []
    for path in sorted(export_dir.rglob("*")):
        rel = path.relative_to(export_dir)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files.append((rel.as_posix(), path.stat().st_size))
    return files


def plan_push(export_dir: Path | str, repo_id: str) -> PushPlan:
    """Every local check of a push: repo id, folder, round trip. No network."""
    export_dir = Path(export_dir)
    check_repo_id(repo_id)
    if not export_dir.is_dir():
        raise PolyinstructError(f"{export_dir}: not a folder; build it with `polyinstruct export` first")
    verified = verify_export(export_dir)
    card = (export_dir / CARD_NAME).read_text(encoding="utf-8").replace(REPO_ID_PLACEHOLDER, repo_id)
    return PushPlan(export_dir, repo_id, _export_files(export_dir), card, verified, _read_lineage(export_dir))


def _read_lineage(export_dir: Path) -> dict[str, Any] | None:
    path = export_dir / LINEAGE_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise PolyinstructError(f"{path}: not valid JSON ({err}); rerun `polyinstruct export`") from None


def merge_card(remote_text: str | None, ours_text: str) -> str:
    """Our card, with the Hub card's metadata kept where we do not own the key.

    Keys in OWNED_CARD_KEYS (configs, language, license, ...) are ours. Any other key the Hub card has stays
    as it is there; for list values we also add our items it lacks (e.g. tags). Keys only we have are added.
    The body is ours: it states the counts of the data being uploaded."""
    from huggingface_hub import DatasetCard, DatasetCardData

    ours = DatasetCard(ours_text)
    if not remote_text or not remote_text.strip():
        return ours_text
    remote_meta = DatasetCard(remote_text, ignore_metadata_errors=True).data.to_dict()
    our_meta = ours.data.to_dict()
    merged: dict[str, Any] = {}
    for key, value in our_meta.items():
        theirs = remote_meta.get(key)
        if key in OWNED_CARD_KEYS or theirs is None:
            merged[key] = value
        elif isinstance(theirs, list) and isinstance(value, list):
            merged[key] = theirs + [v for v in value if v not in theirs]
        else:
            merged[key] = theirs
    for key, value in remote_meta.items():
        if key not in merged and key not in OWNED_CARD_KEYS:
            merged[key] = value
    return f"---\n{DatasetCardData(**merged).to_yaml()}\n---\n\n{ours.text.lstrip(chr(10))}"


@contextmanager
def _staged(plan: PushPlan, card_text: str) -> Iterator[Path]:
    """A copy of the export (hard links where possible) with the merged card: the DVC-tracked folder
    itself is never modified."""
    with tempfile.TemporaryDirectory(prefix=".polyinstruct-push-", dir=plan.export_dir.parent) as tmp:
        stage = Path(tmp) / plan.export_dir.name
        for rel, _ in plan.files:
            if rel == CARD_NAME:
                continue
            src, dst = plan.export_dir / rel, stage / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        (stage / CARD_NAME).write_text(card_text, encoding="utf-8")
        yield stage


def _remote_card(api: Any, repo_id: str, revision: str | None) -> str | None:
    """The Hub's README.md at `revision`, or None when the repo (or branch) has none yet."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        path = api.hf_hub_download(repo_id=repo_id, filename=CARD_NAME, repo_type=REPO_TYPE, revision=revision)
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return None
    return Path(path).read_text(encoding="utf-8")


def push_export(export_dir: Path | str, repo_id: str, *, private: bool = False, revision: str | None = None,
                create_pr: bool = False, dry_run: bool = False, tag: bool = False) -> PushResult:
    """Upload an export folder as a Hub dataset repo (create_repo, then upload_folder).

    `dry_run` returns the plan (files, sizes, card) without constructing any Hub call. `tag` tags the uploaded
    Hub revision with the git commit that made the export (see PushPlan.tag_name)."""
    from huggingface_hub import HfApi  # the class only: nothing is constructed or called on a dry run

    if create_pr and revision not in (None, "main"):
        raise PolyinstructError("--create-pr opens a pull request against the default branch; drop --revision"
                                " (or push to the branch with --revision and no --create-pr)")
    if create_pr and tag:
        raise PolyinstructError("--tag tags a pushed revision, and a pull request is not one yet; drop --tag"
                                " (tag after merging) or drop --create-pr")
    check_repo_id(repo_id)
    token = None if dry_run else resolve_token()  # a dry run never reads the token
    plan = plan_push(export_dir, repo_id)
    tag_name = plan.tag_name() if tag else None  # no commit recorded: fails here, before any network call
    branch = revision if revision not in (None, "main") and not create_pr and not str(revision).startswith(
        "refs/") else None
    # huggingface_hub < 1.0 needs upload_large_folder for big folders; it cannot open a PR or delete files.
    method = ("upload_large_folder" if plan.total_bytes > LARGE_FOLDER_BYTES and not create_pr
              and hasattr(HfApi, "upload_large_folder") else "upload_folder")
    delete_patterns = [f"{cfg}/*.parquet" for cfg in plan.configs]  # stale shards of re-pushed configs
    calls = [f"create_repo({repo_id!r}, repo_type='dataset', private={private}, exist_ok=True)"]
    if branch:
        calls.append(f"create_branch({repo_id!r}, branch={branch!r}, exist_ok=True)")
    calls.append(f"hf_hub_download({repo_id!r}, {CARD_NAME!r}) to keep the Hub card's fields we do not own")
    calls.append(f"upload_folder({repo_id!r}, revision={revision!r}, create_pr={create_pr},"
                 f" delete_patterns={delete_patterns})" if method == "upload_folder" else
                 f"upload_large_folder({repo_id!r}, revision={revision!r}, private={private})")
    if tag_name:
        calls.append(f"create_tag({repo_id!r}, tag={tag_name!r}, revision=<the uploaded commit>)")
    if token is None:
        return PushResult(plan, dry_run=True, token_source=token_source(), method=method, tag=tag_name,
                          calls=calls)

    failure: str | None = None
    result = PushResult(plan, dry_run=False, token_source=token_source(), method=method, tag=tag_name, calls=calls)
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, repo_type=REPO_TYPE, exist_ok=True)
        card = merge_card(_remote_card(api, repo_id, None if create_pr else revision), plan.card)
        result.url, hub_commit = _upload(api, plan, card, method, private=private, revision=revision,
                                         create_pr=create_pr, delete_patterns=delete_patterns)
        if tag_name:
            api.create_tag(repo_id, tag=tag_name, tag_message=plan.commit_message(), revision=hub_commit,
                           repo_type=REPO_TYPE)
    except Exception as err:  # noqa: BLE001 - any Hub failure becomes one scrubbed line
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        failure = scrub(f"push to {repo_id} failed: {type(err).__name__}: {text}; fix the cause and rerun"
                        " `polyinstruct push` (it resumes: committed files are kept)", token)
    # Raised outside the except block, so the original exception (which may hold the token) is not
    # chained to the error a user sees.
    if failure is not None:
        raise PolyinstructError(failure)
    return result


def _upload(api: Any, plan: PushPlan, card: str, method: str, *, private: bool, revision: str | None,
            create_pr: bool, delete_patterns: list[str]) -> tuple[str, str | None]:
    """Upload a staged copy of the export carrying the merged card; returns the commit or PR URL and the
    Hub revision that holds the upload (its commit id where known, else the branch)."""
    repo_url = f"https://huggingface.co/datasets/{plan.repo_id}"
    with _staged(plan, card) as folder:
        if method == "upload_large_folder":
            api.upload_large_folder(repo_id=plan.repo_id, folder_path=folder, repo_type=REPO_TYPE,
                                    revision=revision, private=private)
            return repo_url, revision
        info = api.upload_folder(repo_id=plan.repo_id, folder_path=folder, repo_type=REPO_TYPE, revision=revision,
                                 create_pr=create_pr, commit_message=plan.commit_message(),
                                 commit_description=plan.commit_description(), delete_patterns=delete_patterns)
    url = getattr(info, "pr_url", None) or getattr(info, "commit_url", None)
    return (str(url) if url else repo_url), getattr(info, "oid", None) or revision
