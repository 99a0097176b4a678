"""Make HTML pages render with no network: point their CDN scripts and stylesheets at vendored copies.

Great Expectations writes Data Docs that load jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega
from public CDNs. After GE writes its site, `localize_site` copies the vendored assets
(quality/report_assets, see quality/vendored_assets.py) into the site and rewrites every page to load
them by relative path, so the site opens from file:// on an air-gapped machine. A CDN file with no
vendored copy is an error naming the page and the URL, so a GE upgrade that adds one is caught at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from quality.vendored_assets import copy_assets
from schemas.errors import PolyinstructError

# (URL pattern, vendored file under the assets folder). None drops the tag: its code ships in another
# file (Bootstrap's bundle includes Popper).
CDN_COPIES: tuple[tuple[re.Pattern[str], str | None], ...] = tuple((re.compile(p), f) for p, f in (
    (r"/vega@[^/]*(/build/vega(\.min)?\.js)?$", "vega/build/vega.min.js"),
    (r"/vega-lite@[^/]*(/build/vega-lite(\.min)?\.js)?$", "vega-lite/build/vega-lite.min.js"),
    (r"/vega-embed@[^/]*(/build/vega-embed(\.min)?\.js)?$", "vega-embed/build/vega-embed.min.js"),
    (r"/font-?awesome.*/css/all(\.min)?\.css$", "fontawesome-free/css/all.min.css"),
    (r"/jquery-3[.\d]*(\.slim)?(\.min)?\.js$|/jquery@3[^/]*/dist/jquery(\.min)?\.js$", "jquery/dist/jquery.min.js"),
    (r"/popper(\.min)?\.js$", None),
    (r"/bootstrap(\.bundle)?(\.min)?\.js$", "bootstrap/dist/js/bootstrap.bundle.min.js"),
    (r"/bootstrap(\.min)?\.css$", "bootstrap/dist/css/bootstrap.min.css"),
    (r"/bootstrap-table(\.min)?\.js$", "bootstrap-table/dist/bootstrap-table.min.js"),
    (r"/bootstrap-table(\.min)?\.css$", "bootstrap-table/dist/bootstrap-table.min.css"),
    (r"/bootstrap-table-filter-control(\.min)?\.js$",
     "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"),
    (r"/bootstrap-table-filter-control(\.min)?\.css$",
     "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    (r"/bootstrap-datepicker(\.min)?\.js$", "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js"),
    (r"/bootstrap-datepicker(\.min)?\.css$", "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css"),
    (r"/bootstrap-prefers-dark(\.min)?\.css$", "bootstrap-dark/dist/css/bootstrap-prefers-dark.min.css"),
))
# GE's navbar draws its logo from S3 (an <img> and an inline CSS background); its site ships the logo too.
GE_REMOTE_IMAGE = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/"
                             r"""([\w-]+)\.png(\?[^"')\s]*)?""")
GE_FALLBACK_IMAGE = "static/images/logo-long-vector.svg"
VENDOR_SUBDIR = Path("static") / "vendor"

_TAG = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""\s(src|href|integrity|crossorigin|rel)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*['"]?(https?://[^'")\s]+)['"]?\s*\)""", re.IGNORECASE)
_REMOTE = re.compile(r"^(https?:)?//", re.IGNORECASE)


def _attrs(tag: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2).strip("\"'") for m in _ATTR.finditer(tag)}


def _loads_code(kind: str, attrs: dict[str, str]) -> str | None:
    """The URL a <script src> or a stylesheet/preload <link href> makes the browser fetch."""
    if kind == "script":
        return attrs.get("src")
    rel = attrs.get("rel", "").lower()
    return attrs.get("href") if ("stylesheet" in rel or "preload" in rel or "modulepreload" in rel) else None


def remote_assets(html: str) -> list[str]:
    """The http(s) scripts, stylesheets and CSS url()s a page loads (links to documentation are fine)."""
    found = []
    for match in _TAG.finditer(html):
        url = _loads_code(match.group(1).lower(), _attrs(match.group(0)))
        if url and _REMOTE.match(url):
            found.append(url)
    return found + _CSS_URL.findall(html)


def vendored_copy(url: str) -> str | None:
    """The vendored file that replaces a CDN URL (None: drop the tag); an unknown URL is an error."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    for pattern, copy in CDN_COPIES:
        if pattern.search(path):
            return copy
    raise KeyError(url)


def localize_html(html: str, vendor_rel: str, images: Callable[[re.Match[str]], str] | None = None) -> str:
    """Rewrite a page's CDN scripts and stylesheets to `vendor_rel`/FILE; SRI and CORS attributes go
    (a file:// page has no origin to check them against)."""
    def rewrite(match: re.Match[str]) -> str:
        tag, kind = match.group(0), match.group(1).lower()
        url = _loads_code(kind, _attrs(tag))
        if not url or not _REMOTE.match(url):
            return tag
        copy = vendored_copy(url)
        if copy is None:
            return "<!-- removed by polyinstruct: included in another vendored file -->" + (
                "<script>" if kind == "script" else "")  # keep the </script> that follows balanced
        tag = re.sub(r"""\s(integrity|crossorigin)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", "", tag, flags=re.I)
        return tag.replace(url, f"{vendor_rel}/{copy}")

    html = _TAG.sub(rewrite, html)
    return GE_REMOTE_IMAGE.sub(images, html) if images else html


def _relative(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


def localize_site(site_dir: Path | str) -> list[Path]:
    """Copy the vendored assets into `site_dir`/static/vendor and rewrite every page of the site to use
    them; returns the pages rewritten. Fails, naming the page and URL, on a CDN file with no copy."""
    site_dir = Path(site_dir)
    vendor_dir = copy_assets(site_dir / VENDOR_SUBDIR)
    pages = sorted(site_dir.rglob("*.html"))
    for page in pages:
        html = page.read_text(encoding="utf-8")
        def images(match: re.Match[str], page: Path = page) -> str:
            local = site_dir / "static" / "images" / f"{match.group(1)}.png"
            return _relative(local if local.exists() else site_dir / GE_FALLBACK_IMAGE, page)

        try:
            fixed = localize_html(html, _relative(vendor_dir, page), images)
        except KeyError as err:
            raise PolyinstructError(
                f"{page}: loads {err.args[0]}, which has no vendored copy; add its npm package to"
                " quality/report_assets/manifest.json and a pattern to quality/offline_html.py CDN_COPIES,"
                " then run `make report-assets`") from None
        left = remote_assets(fixed)
        if left:
            raise PolyinstructError(f"{page}: still loads {left[0]} from the network after rewriting; add a"
                                    " vendored copy (quality/offline_html.py)")
        if fixed != html:
            page.write_text(fixed, encoding="utf-8")
    return pages
