"""The rejects report: per language and per reason, the count and a few examples shown side by side with
their English source.

Reads every rejects table the pipeline wrote (data/rejects/**/*.parquet: ingest, translate, filter, and
whatever stage adds one), the translated rows (data/translated) and the source (data/source.parquet).
Reasons are whatever the tables hold; nothing here lists them. Examples are chosen by md5 of the id, so
the page is the same on every run and the examples are spread over the data, not the first ids.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from quality.report_pages import bar_chart, chart, esc, page, table
from schemas.records import TEXT_FIELDS

CLIP_CHARS = 600  # per field on the page; the full text is in the Parquet files


@dataclass(frozen=True)
class RejectGroup:
    lang: str
    stage: str
    reason: str
    count: int
    examples: list[dict[str, str]] = field(default_factory=list)  # id, detail, src_*, tgt_*


@dataclass(frozen=True)
class RejectsSummary:
    groups: list[RejectGroup]  # sorted by lang, stage, reason
    files: list[Path]
    examples: int = 5  # asked for per group

    @property
    def total(self) -> int:
        return sum(g.count for g in self.groups)

    def by_reason(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for g in self.groups:
            out[g.reason] += g.count
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _parquet_files(path: Path | None) -> list[Path]:
    if path is None or not path.exists():
        return []
    return sorted(path.rglob("*.parquet")) if path.is_dir() else [path]


def collect_rejects(rejects: Path, translated: Path | None, source: Path | None,
                    examples: int = 5) -> RejectsSummary:
    """Counts per (lang, stage, reason) over every rejects table, with `examples` rows of each joined to
    their English source and their translation."""
    files = _parquet_files(rejects)
    if not files:
        return RejectsSummary([], [], examples)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"CREATE VIEW rej AS SELECT id, lang, stage, reason, detail FROM read_parquet("
                    f"{_sql_list(files)}, union_by_name = true)")
        blanks = ", ".join(f"NULL::VARCHAR AS {f}" for f in TEXT_FIELDS)
        for name, path in (("src", source), ("tgt", translated)):
            found = _parquet_files(path)
            extra = ", lang" if name == "tgt" else ""
            columns = f"id{extra}, {', '.join(TEXT_FIELDS)}"
            con.execute(f"CREATE VIEW {name} AS " + (
                f"SELECT {columns} FROM read_parquet({_sql_list(found)}, union_by_name = true)" if found
                else f"SELECT NULL::VARCHAR AS id{', NULL::VARCHAR AS lang' if extra else ''}, {blanks} WHERE false"))
        counts = con.execute("SELECT lang, stage, reason, count(*) FROM rej GROUP BY ALL ORDER BY ALL").fetchall()
        src_cols = ", ".join(f"s.{f} AS src_{f}" for f in TEXT_FIELDS)
        tgt_cols = ", ".join(f"t.{f} AS tgt_{f}" for f in TEXT_FIELDS)
        rows = con.execute(f"""
            WITH picked AS (
              SELECT *, row_number() OVER (PARTITION BY lang, stage, reason ORDER BY md5(id), id) AS k FROM rej
              QUALIFY k <= $n)
            SELECT p.lang, p.stage, p.reason, p.id, p.detail, {src_cols}, {tgt_cols}
            FROM picked p
            LEFT JOIN (SELECT * FROM src QUALIFY row_number() OVER (PARTITION BY id) = 1) s ON s.id = p.id
            LEFT JOIN (SELECT * FROM tgt QUALIFY row_number() OVER (PARTITION BY id, lang) = 1) t
              ON t.id = p.id AND t.lang = p.lang
            ORDER BY p.lang, p.stage, p.reason, p.k""", {"n": examples})
        names = [d[0] for d in rows.description]
        picked: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
        for row in rows.fetchall():
            record = dict(zip(names, row, strict=True))
            picked[(record.pop("lang"), record.pop("stage"), record.pop("reason"))].append(record)
    finally:
        con.close()
    groups = [RejectGroup(lang, stage, reason, n, picked[(lang, stage, reason)]) for lang, stage, reason, n in counts]
    return RejectsSummary(groups, files, examples)


def _clip(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= CLIP_CHARS else text[:CLIP_CHARS] + f"… ({len(text):,} characters)"


def _fields(example: dict[str, str], side: str, missing: str) -> str:
    present = [f for f in TEXT_FIELDS if example.get(f"{side}_{f}") is not None]
    if not present:
        return f"<em>{esc(missing)}</em>"
    return "".join(f'<span class="pi-field">{f}</span><div class="pi-text">{esc(_clip(example[f"{side}_{f}"]))}'
                   "</div>" for f in present if example[f"{side}_{f}"] or f != "input")


def _examples_table(group: RejectGroup, table_id: str, source_lang: str) -> str:
    rows = []
    for ex in group.examples:
        tgt_missing = ("the English source itself was rejected" if group.lang == source_lang
                       else "no translated row (rejected before or during translation)")
        rows.append([f'<td class="pi-id">{esc(ex["id"])}</td>',
                     f"<td>{_fields(ex, 'src', 'not in the source (rejected at ingest)')}</td>",
                     f"<td>{_fields(ex, 'tgt', tgt_missing)}</td>",
                     f'<td class="pi-why">{esc(_clip(ex["detail"]))}</td>'])
    head = "".join(f"<th>{h}</th>" for h in ("id", "English source", f"{esc(group.lang)}", "why"))
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return (f'<table id="{table_id}" class="table table-sm table-bordered pi-examples">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def anchor(lang: str, stage: str, reason: str) -> str:
    return f"{lang}-{stage}-{reason}".replace(" ", "_")


def render_rejects_page(summary: RejectsSummary, assets: str, source_lang: str = "eng_Latn") -> str:
    """The whole rejects.html page."""
    if not summary.groups:
        body = ("<p>No rejects: every record read was kept. Tables read: "
                + (", ".join(f"<code>{esc(p)}</code>" for p in summary.files) or "none found") + ".</p>")
        return page("Rejected records", body, assets)
    parts = [f"<p>{summary.total:,} rows left the pipeline, each with its reason. Below, per language and reason:"
             f" the count and up to {summary.examples} examples next to their English source (chosen by md5 of the id)."
             " Tables read: " + ", ".join(f"<code>{esc(p)}</code>" for p in summary.files) + ".</p>"]
    by_lang_reason = [{"reason": g.reason, "lang": g.lang, "rows": g.count} for g in summary.groups]
    parts.append(chart("rejects-by-reason", bar_chart(by_lang_reason, x="rows", y="reason", color="lang",
                                                      title="Rejected rows per reason", x_title="rows")))
    parts.append(table(["language", "stage", "reason", "rows"],
                       [[f'<a href="#{anchor(g.lang, g.stage, g.reason)}">{esc(g.lang)}</a>', esc(g.stage),
                         esc(g.reason), f"{g.count:,}"] for g in summary.groups],
                       table_id="rejects-summary", raw_html=True))
    current = None
    for i, group in enumerate(summary.groups):
        if group.lang != current:
            current = group.lang
            total = sum(g.count for g in summary.groups if g.lang == current)
            parts.append(f'<h2 class="mt-5" id="{esc(current)}">{esc(current)}: {total:,} rows</h2>')
        parts.append(f'<h3 class="h5 mt-4" id="{esc(anchor(group.lang, group.stage, group.reason))}">'
                     f"<code>{esc(group.reason)}</code> ({esc(group.stage)} stage): {group.count:,} rows</h3>")
        parts.append(_examples_table(group, f"examples-{i}", source_lang))
    return page("Rejected records", "\n".join(parts), assets, tables=True, charts=True)
