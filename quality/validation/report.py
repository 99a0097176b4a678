"""Reshape GE's results into the result JSON `polyinstruct validate` writes, and its one-line failure."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quality.validation.suites import LANGUAGE_INDEX, SUITES
from schemas.params import Params

if TYPE_CHECKING:
    import pandas as pd


def _plain(value: Any) -> Any:
    """JSON-safe copy of a GE value (numpy scalars, tuples, row-condition objects)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _column_of(config: Any) -> str | None:
    """The column(s) an expectation is about: `a`, `a+b` for pairs and compound keys; None for the table."""
    kwargs = config.kwargs
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}+{kwargs['column_B']}"
    if kwargs.get("column_list") and not config.type.startswith("expect_table_"):
        return "+".join(kwargs["column_list"])
    return None


_DROP_KWARGS = {"batch_id", "result_format", "catch_exceptions", "include_config", "condition_parser"}


def _clip(value: Any, limit: int = 120) -> Any:
    return value[:limit] + "…" if isinstance(value, str) and len(value) > limit else value


def _identify(frame: pd.DataFrame, positions: list[int], columns: list[str]) -> list[dict[str, Any]]:
    """(lang, id) and the checked value(s) of the rows GE listed by position."""
    keys = [c for c in ("lang", "id") if c in frame.columns]
    shown = keys + [c for c in columns if c in frame.columns and c not in keys]
    rows = frame.iloc[positions][shown].to_dict("records")
    return [{k: _clip(_plain(v)) for k, v in row.items()} for row in rows]


def _failures(result: Any, frame: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Failure entries of one failing expectation: one per language where GE's unexpected-row list
    names them all (the per-language table always; a row expectation when it failed on at most
    ROW_EXAMPLES rows), else one entry with lang null and the languages of the listed rows."""
    config = result.expectation_config
    kwargs = {k: _plain(v) for k, v in config.kwargs.items() if k not in _DROP_KWARGS and v is not None}
    base = {"suite": None, "expectation": config.type, "check": (config.meta or {}).get("check"),
            "column": _column_of(config), "kwargs": kwargs}
    info = result.exception_info or {}
    if info.get("raised_exception"):
        message = str(info.get("exception_message") or "GE raised an exception").splitlines()[0]
        return [base | {"lang": None, "observed": {"error": message}}]
    body = result.result or {}
    if "observed_value" in body:  # aggregate expectations (table columns, row count, distinct sets)
        observed = _plain(body["observed_value"] if body["observed_value"] is not None
                          else {k: v for k, v in body.items() if k != "observed_value"})
        missing = body.get("partial_missing_list")
        if missing and kwargs.get("column") == "lang":  # a configured language with no rows
            return [base | {"lang": lang, "observed": observed} for lang in sorted(_plain(missing))]
        return [base | {"lang": None, "observed": observed}]
    index_list: list[Any] = _plain(body.get("partial_unexpected_index_list") or [])
    if index_list and frame is not None and not isinstance(index_list[0], dict):  # row positions
        columns = [c for c in (base["column"] or "").split("+") if c]
        index_list = _identify(frame, index_list, columns)
    if index_list and LANGUAGE_INDEX in index_list[0]:  # the per-language table: a row is a language
        column = kwargs.get("column")
        return [base | {"lang": entry[LANGUAGE_INDEX],
                        "observed": entry[column] if column in entry
                        else {k: v for k, v in entry.items() if k != LANGUAGE_INDEX}}
                for entry in index_list]
    count = int(body.get("unexpected_count") or 0)
    by_lang: dict[str | None, list[dict[str, Any]]] = {}
    for entry in index_list:
        by_lang.setdefault(entry.get("lang"), []).append(entry)
    if index_list and count == len(index_list):  # GE listed every failing row: exact per language
        return [base | {"lang": lang, "observed": {"unexpected_count": len(entries), "examples": entries[:5]}}
                for lang, entries in sorted(by_lang.items(), key=lambda item: item[0] or "")]
    observed = {"unexpected_count": count, "unexpected_percent": _plain(body.get("unexpected_percent")),
                "examples": index_list[:5],
                "listed_rows": len(index_list),  # GE lists at most ROW_EXAMPLES failing rows
                "listed_languages": sorted(lang for lang in by_lang if lang)}  # the languages of those rows
    return [base | {"lang": None, "observed": observed}]


def summarize(results: Iterable[Any], params: Params, row_count: int, docs_index: Path,
              frames: dict[str, pd.DataFrame] | None = None) -> dict[str, Any]:
    """The result JSON: deterministic (no run times), failures sorted, counts per suite. `frames`
    (suite name -> the validated frame) turn GE's row positions into (lang, id)."""
    failures: list[dict[str, Any]] = []
    suites: dict[str, dict[str, Any]] = {}
    expectations: list[dict[str, Any]] = []
    for suite_result in results:
        stats = suite_result.statistics
        suites[suite_result.suite_name] = {
            "success": bool(suite_result.success),
            "evaluated_expectations": int(stats["evaluated_expectations"]),
            "successful_expectations": int(stats["successful_expectations"]),
        }
        for result in suite_result.results:
            config = result.expectation_config
            expectations.append({"suite": suite_result.suite_name, "expectation": config.type,
                                 "check": (config.meta or {}).get("check"), "column": _column_of(config),
                                 "success": bool(result.success)})
            if not result.success:
                failures += [f | {"suite": suite_result.suite_name}
                             for f in _failures(result, (frames or {}).get(suite_result.suite_name))]
    failures.sort(key=lambda f: (SUITES.index(f["suite"]) if f["suite"] in SUITES else 99, f["expectation"],
                                 f["column"] or "", f["lang"] or ""))
    evaluated = sum(s["evaluated_expectations"] for s in suites.values())
    successful = sum(s["successful_expectations"] for s in suites.values())
    return {
        "success": evaluated > 0 and successful == evaluated and not failures,
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "failures": failures,
        "suites": suites,
        "expectations": expectations,
        "rows": row_count,
        "languages": params.all_languages,
        "thresholds": params.validation.model_dump(),
        "data_docs": str(docs_index),
    }


def failure_message(summary: dict[str, Any], docs_index: Path | str) -> str:
    """One line for PolyinstructError: how many failed, which, and where to read more."""
    names: list[str] = []
    for f in summary["failures"]:
        name = f"{f['check'] or f['expectation']}" + (f"({f['column']})" if f["column"] else "") \
            + (f" {f['lang']}" if f["lang"] else "")
        if name not in names:
            names.append(name)
    shown = "; ".join(names[:4]) + (f"; +{len(names) - 4} more" if len(names) > 4 else "")
    return (f"validation failed: {summary['unsuccessful_expectations']} of {summary['evaluated_expectations']} "
            f"expectations ({shown}); see {docs_index}")
