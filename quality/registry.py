"""The filter registry: every filter of the `filter` stage, declared once, in the order its reasons win.

An entry names its params (`quality.filters.<switch>`, whose model in schemas.params is its params model and
whose `enabled` switches it), the reject reasons it gives, and how it judges: SQL checks over the compared
features (`checks`, built after the side table its module makes, if any), or a later step of the stage
(exact and near dedup, language ID, parallel alignment). Counting, reject-writing, "disabled in params"
notes and the reason order are shared and derived from here, as datatrove's BaseFilter does for its
filters. Adding a filter means adding one entry (and its params field).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from quality import confidence, filters, language_bound, llm_failures, response_checks, round_trip
from quality.filters import Check
from schemas.params import FiltersParams, QualityParams


@dataclass
class FilterContext:
    """What a filter's checks may read: the connection (tables rows, cmp, lr, lrb ...), the params, whether any
    translated file carries truncated_fields, and where notes on skipped work go."""

    con: duckdb.DuckDBPyConnection
    quality: QualityParams
    has_truncated: bool
    skipped: dict[str, str]
    round_trip_audit: dict[str, Any] = field(default_factory=dict)
    generated_rows: int = 0  # rows with a generated (not translated) output

    @property
    def filters(self) -> FiltersParams:
        return self.quality.filters


@dataclass(frozen=True)
class Filter:
    switch: str | None  # field of FiltersParams (None: no switch of its own)
    reasons: tuple[str, ...]  # the reject reasons it gives, in order
    checks: Callable[[FilterContext], list[Check]] | None = None  # None: a later step of the stage
    prepare: Callable[[FilterContext], None] | None = None  # makes the side table its checks read (always run)
    source_rows: bool = False  # also judges the English source rows
    # On by default and for any translated set (not only generated outputs): the default reasons (REASONS).
    default: bool = True
    on: Callable[[QualityParams], bool] | None = None  # when not its switch's `enabled`

    def enabled(self, quality: QualityParams) -> bool:
        if self.on is not None:
            return self.on(quality)
        return self.switch is None or getattr(quality.filters, self.switch).enabled


def _response_flags(ctx: FilterContext) -> None:
    """Table response_flags: generated outputs only (none when every output was translated)."""
    ctx.con.execute(f"CREATE OR REPLACE TABLE response_flags AS {response_checks.flags_sql('rows', ctx.filters)}")
    ctx.generated_rows = ctx.con.execute("SELECT count(*) FROM response_flags").fetchall()[0][0]


def _response(name: str) -> Callable[[FilterContext], list[Check]]:
    return lambda ctx: [c for c in response_checks.checks(ctx.filters) if c.name == name] if ctx.generated_rows \
        else []


def _round_trip(ctx: FilterContext) -> list[Check]:
    """The audit (for the metrics) is read whether or not the filter is on; its check only when on."""
    ctx.round_trip_audit, found = round_trip.checks(ctx.con, ctx.quality, ctx.skipped)
    return found


FILTERS: tuple[Filter, ...] = (
    Filter(None, ("no_source",), lambda ctx: [filters.no_source_check()]),
    Filter("empty", ("empty",), lambda ctx: [filters.empty_check()], source_rows=True),
    Filter("bad_chars", ("bad_chars",), lambda ctx: [filters.bad_chars_check()], source_rows=True),
    Filter("truncated", ("truncated",), lambda ctx: [filters.truncated_check()] if ctx.has_truncated else []),
    Filter("placeholder", filters.SPAN_REASONS, lambda ctx: filters.span_checks()),  # table spans: a feature
    Filter("repetition", ("repetition",), lambda ctx: [filters.repetition_check(ctx.filters.repetition)],
           source_rows=True),
    Filter("untranslated", ("untranslated",), lambda ctx: [filters.untranslated_check(ctx.filters.untranslated)]),
    Filter("llm_failures", filters.LLM_REASONS, lambda ctx: filters.llm_checks(),
           prepare=lambda ctx: llm_failures.create_table(ctx.con, ctx.filters.llm_failures)),
    Filter("language_bound", ("language_bound",),
           lambda ctx: [filters.language_bound_check()] if ctx.filters.language_bound.reject else [],
           prepare=lambda ctx: language_bound.create_table(ctx.con, ctx.filters.language_bound)),
    Filter("length_ratio", ("length_ratio",), lambda ctx: [filters.length_ratio_check(ctx.filters.length_ratio)]),
    Filter("refusal", ("refusal",), _response("refusal"), prepare=_response_flags, default=False),
    Filter("assistant_chatter", ("assistant_chatter",), _response("assistant_chatter"), default=False),
    Filter("low_confidence", ("low_confidence",),
           lambda ctx: confidence.checks(ctx.con, ctx.quality, ctx.skipped), default=False),
    Filter("round_trip", ("round_trip",), _round_trip, default=False, on=lambda q: True),
    Filter(None, ("duplicate",), source_rows=True, on=lambda q: q.dedup.exact),
    Filter(None, ("near_duplicate",), source_rows=True, on=lambda q: q.dedup.near),
    Filter("lang_id", ("lang_id",)),
    Filter(None, ("parallel_alignment",), source_rows=True, default=False, on=lambda q: q.alignment == "parallel"),
)
# Every reason, in the order a row's first failure wins (documented in the README).
ALL_REASONS: tuple[str, ...] = tuple(r for f in FILTERS for r in f.reasons)
# The reasons of the default filter set on a translated set: what the metrics list with default params.
REASONS: tuple[str, ...] = tuple(r for f in FILTERS if f.default for r in f.reasons)
SOURCE_REASONS: frozenset[str] = frozenset(r for f in FILTERS if f.source_rows for r in f.reasons)
SWITCHES: tuple[str, ...] = tuple(f.switch for f in FILTERS if f.switch)


def sql_checks(ctx: FilterContext) -> list[Check]:
    """The enabled SQL checks, in reason order, after every filter's side table is made."""
    for entry in FILTERS:
        if entry.prepare is not None:
            entry.prepare(ctx)
    return [check for entry in FILTERS if entry.checks is not None and entry.enabled(ctx.quality)
            for check in entry.checks(ctx)]


def later_reasons(quality: QualityParams) -> list[str]:
    """The enabled reasons given after the SQL checks (dedup, language ID, alignment), in order."""
    return [r for f in FILTERS if f.checks is None and f.enabled(quality) for r in f.reasons]


def note_disabled(quality: QualityParams, skipped: dict[str, str]) -> None:
    """A filter switched off in params says so in the skipped checks."""
    for switch in SWITCHES:
        if not getattr(quality.filters, switch).enabled:
            skipped[switch] = f"disabled in params (quality.filters.{switch}.enabled: false)"
