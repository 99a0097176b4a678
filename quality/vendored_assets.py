"""The browser assets (CSS, JS, fonts) the HTML reports need, vendored from npm into quality/report_assets/.

`manifest.json` there is the one list: package, version, licence, and the sha256 of every vendored file.
`python -m quality.vendored_assets` (`make report-assets`) refreshes the files from the npm registry with
`npm pack` after a version is changed in the manifest. Reports copy what they use next to themselves
(`copy_assets`), so a reports/ folder opens anywhere, with no network and no installed package.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import PolyinstructError

ASSETS_DIR = Path(__file__).resolve().parent / "report_assets"
MANIFEST = ASSETS_DIR / "manifest.json"
_LICENSE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "license", "license.txt")


@dataclass(frozen=True)
class VendoredPackage:
    name: str  # npm name
    version: str
    license: str
    dir: str  # folder under report_assets/ (and under any copy of it)
    files: dict[str, str]  # path inside the package -> sha256
    license_file: str


def read_manifest(path: Path = MANIFEST) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def packages(path: Path = MANIFEST) -> list[VendoredPackage]:
    """The vendored packages as the manifest lists them; a package never refreshed is an error."""
    out = []
    for entry in read_manifest(path)["packages"]:
        if "files" not in entry:
            raise PolyinstructError(f"{path}: {entry['name']} has no vendored files; run `make report-assets`")
        out.append(VendoredPackage(entry["name"], entry["version"], entry["license"], entry["dir"],
                                   entry["files"], entry["license_file"]))
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify() -> list[str]:
    """Problems with the vendored files: missing, or not the bytes the manifest lists."""
    problems = []
    for pkg in packages():
        for rel, digest in pkg.files.items():
            path = ASSETS_DIR / pkg.dir / rel
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif _sha256(path) != digest:
                problems.append(f"{path}: sha256 differs from {MANIFEST.name}")
        if not (ASSETS_DIR / pkg.dir / pkg.license_file).is_file():
            problems.append(f"{ASSETS_DIR / pkg.dir / pkg.license_file}: licence file missing")
    return problems


def copy_assets(dest: Path) -> Path:
    """Copy every vendored file, its licence and the manifest into `dest` (replaced); returns `dest`."""
    if dest.exists():
        shutil.rmtree(dest)
    for pkg in packages():
        for rel in [*pkg.files, pkg.license_file]:
            target = dest / pkg.dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ASSETS_DIR / pkg.dir / rel, target)
    shutil.copyfile(MANIFEST, dest / MANIFEST.name)
    return dest


# --------------------------------------------------------------------------------------------- refresh


def _npm_pack(name: str, version: str, into: Path) -> Path:
    try:
        done = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", str(into)],
                              capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise PolyinstructError("npm not found: install Node.js (apt-get install -y npm) to refresh the assets") \
            from None
    except subprocess.CalledProcessError as err:
        raise PolyinstructError(f"npm pack {name}@{version} failed: {err.stderr.strip()[-300:]}") from None
    return into / done.stdout.strip().splitlines()[-1]


def _declared_license_note(entry: dict, meta: dict) -> str:
    repo = meta.get("repository")
    repo_url = repo.get("url", "") if isinstance(repo, dict) else str(repo or "")
    if repo_url and "://" not in repo_url:  # npm shorthand `owner/name` means GitHub
        repo_url = f"https://github.com/{repo_url}"
    return (f"{entry['name']}@{entry['version']} declares the licence `{meta.get('license')}` in its package.json"
            f" but ships no licence file in its npm package.\nThe licence text is in its source repository:"
            f" {repo_url or meta.get('homepage', 'see npm')}\n(note written by quality/vendored_assets.py)\n")


def refresh(manifest_path: Path = MANIFEST) -> dict:
    """Fetch each package at its pinned version from the npm registry; extract the wanted files and the
    licence into report_assets/; write their hashes and the package's declared licence into the manifest."""
    manifest = read_manifest(manifest_path)
    with tempfile.TemporaryDirectory() as tmp:
        for entry in manifest["packages"]:
            tarball = _npm_pack(entry["name"], entry["version"], Path(tmp))
            target = ASSETS_DIR / entry["dir"]
            if target.exists():
                shutil.rmtree(target)
            with tarfile.open(tarball) as tar:
                members = {m.name.removeprefix("package/"): m for m in tar.getmembers() if m.isfile()}
                meta = json.load(tar.extractfile(members["package.json"]))  # type: ignore[arg-type]
                chosen = sorted({p for pattern in entry["want"] for p in members if fnmatch.fnmatch(p, pattern)})
                missing = [w for w in entry["want"] if not any(fnmatch.fnmatch(p, w) for p in chosen)]
                if missing:
                    raise PolyinstructError(f"{entry['name']}@{entry['version']} has no file {missing[0]}")
                for rel in chosen:
                    out = target / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(tar.extractfile(members[rel]).read())  # type: ignore[union-attr]
                license_file = next((n for n in _LICENSE_NAMES if n in members), None)
                if license_file is not None:
                    (target / license_file).write_bytes(tar.extractfile(members[license_file]).read())  # type: ignore[union-attr]
                else:  # e.g. vega: the licence is declared in package.json, its text lives in the repository
                    license_file = "LICENSE.polyinstruct.txt"
                    (target / license_file).write_text(_declared_license_note(entry, meta), encoding="utf-8")
            entry["license"] = meta.get("license") or "see licence file"
            entry["license_file"] = license_file
            entry["files"] = {rel: _sha256(target / rel) for rel in chosen}
    manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    try:
        manifest = refresh()
    except PolyinstructError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    total = sum((ASSETS_DIR / p["dir"] / f).stat().st_size for p in manifest["packages"] for f in p["files"])
    for p in manifest["packages"]:
        print(f"{p['name']}@{p['version']} ({p['license']}): {len(p['files'])} file(s)")
    print(f"report assets: {total / 1e6:.2f} MB in {ASSETS_DIR}")


if __name__ == "__main__":
    main()
