"""The frame of polyinstruct's own HTML report pages: vendored Bootstrap, bootstrap-table and Vega loaded by
relative path (no network), escaping, tables and vega-lite charts. One look for every report page."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier; never fetched
_STYLE = """
body { padding: 1.5rem 0 3rem; }
.pi-chart { min-height: 60px; margin: .5rem 0 1rem; }
.pi-text { white-space: pre-wrap; word-break: break-word; font-size: .85rem; }
.pi-field { font-size: .7rem; text-transform: uppercase; color: #6c757d; display: block; margin-top: .3rem; }
.pi-examples td { vertical-align: top; width: 40%; }
.pi-examples td.pi-id { width: 8%; font-size: .8rem; }
.pi-examples td.pi-why { width: 12%; font-size: .8rem; }
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def page(title: str, body: str, assets: str, *, tables: bool = False, charts: bool = False) -> str:
    """A complete page; `assets` is the relative path from the page to the copied vendored assets."""
    head = [f'<link rel="stylesheet" href="{assets}/bootstrap/dist/css/bootstrap.min.css">']
    scripts = []
    if tables:
        head.append(f'<link rel="stylesheet" href="{assets}/bootstrap-table/dist/bootstrap-table.min.css">')
        scripts += [f'<script src="{assets}/jquery/dist/jquery.min.js"></script>',
                    f'<script src="{assets}/bootstrap/dist/js/bootstrap.bundle.min.js"></script>',
                    f'<script src="{assets}/bootstrap-table/dist/bootstrap-table.min.js"></script>']
    if charts:  # before the body: the chart scripts inline in the body call vegaEmbed at once
        head += [f'<script src="{assets}/vega/build/vega.min.js"></script>',
                 f'<script src="{assets}/vega-lite/build/vega-lite.min.js"></script>',
                 f'<script src="{assets}/vega-embed/build/vega-embed.min.js"></script>']
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{esc(title)}</title>",
        *head, f"<style>{_STYLE}</style>", "</head>", "<body>", '<main class="container">',
        f"<h1>{esc(title)}</h1>", body, "</main>", *scripts, "</body>", "</html>", ""])


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, table_id: str, sortable: bool = True,
          raw_html: bool = False) -> str:
    """A Bootstrap table; sortable ones are drawn by bootstrap-table (data-toggle)."""
    attrs = ' data-toggle="table" data-sortable="true"' if sortable else ""
    sort_attr = ' data-sortable="true"' if sortable else ""
    head = "".join(f'<th data-field="c{i}"{sort_attr}>{esc(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td>{c if raw_html else esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<table id="{esc(table_id)}" class="table table-sm table-striped"{attrs}>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def chart(chart_id: str, spec: dict[str, Any]) -> str:
    """A vega-lite chart drawn as SVG by the vendored vega-embed."""
    spec = {"$schema": VEGA_LITE_SCHEMA, **spec}
    payload = json.dumps(spec, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    return (f'<div id="{esc(chart_id)}" class="pi-chart"></div>'
            f"<script>vegaEmbed('#{chart_id}', {payload}, {{actions: false, renderer: 'svg'}})"
            f".catch(function (e) {{ document.getElementById('{chart_id}').textContent = 'chart failed: ' + e; }});"
            "</script>")


def bar_chart(values: list[dict[str, Any]], *, x: str, y: str, color: str | None = None, title: str = "",
              x_title: str | None = None, x_format: str | None = None) -> dict[str, Any]:
    """A horizontal bar chart spec: one bar per `y`, stacked by `color` when given."""
    x_axis: dict[str, Any] = {"title": x_title or x}
    if x_format:
        x_axis["format"] = x_format
    encoding: dict[str, Any] = {"x": {"field": x, "type": "quantitative", "axis": x_axis},
                                "y": {"field": y, "type": "nominal", "sort": None, "title": y},
                                "tooltip": [{"field": k} for k in values[0]] if values else []}
    if color:
        encoding["color"] = {"field": color, "type": "nominal"}
    return {"title": title, "data": {"values": values}, "mark": "bar", "encoding": encoding, "width": 560}


def alert(text_html: str, kind: str) -> str:
    return f'<div class="alert alert-{kind}" role="alert">{text_html}</div>'
