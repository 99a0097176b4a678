"""Did a translation keep the source's protected spans? A check that knows localisation.

The spans are the span contract's (`schemas.spans.typed_spans`); what counts as kept depends on the kind:

- code (blocks, inline code, calls, markup, file names, calculator annotations `<<48/2=24>>`): the same
  characters modulo whitespace and Unicode compatibility forms (NFKC: full-width `，（）` from an input method).
  A code block may also keep at least `min_code_token_recall` of its tokens (as a multiset), because a
  translator rightly translates its comments and the words inside its strings (left out). Reason `code_changed`.
- URLs and e-mails: the same characters modulo whitespace and NFKC. Reason `url_changed`.
- variables (`{name}`, `${x}`, `{{x}}`, `%s`, `%(x)s`): exact modulo whitespace. Bracketed placeholders
  (`[Your Name]`, `<name>`) may have their words translated as long as the bracket shape survives (as many
  bracketed groups, ASCII or full-width); a bracketed list (`[a, b, c]`) is not a placeholder.
  Reason `placeholder_lost`.
- numbers (in prose, money, quantities, equations): each number of the source is in the translation after
  locale normalisation (`1,000` = `1.000` = `1 000`, `3.5` = `3,5`; `1.5 million` = `150万`); the currency
  or unit around it may be translated or moved. Numbers a translator may spell out (below `min_number`,
  without decimals) are not checked. Reason `number_changed`.

This runs in Python over batches: only on rows that lack the translate stage's `protected_spans_ok` flag
(third-party translations); our own translations carry the flag (its failures are `placeholder_lost`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import duckdb
import pyarrow as pa

from schemas.params import PlaceholderParams
from schemas.records import TEXT_FIELDS
from schemas.spans import typed_spans

KIND_REASON: dict[str, str] = {
    "block": "code_changed", "code": "code_changed", "call": "code_changed", "file": "code_changed",
    "markup": "code_changed", "annotation": "code_changed",
    "url": "url_changed", "email": "url_changed",
    "variable": "placeholder_lost", "bracket": "placeholder_lost",
}
_SPACE = re.compile(r"\s+")
_VARIABLE = re.compile(r"^(?:\{\{.*\}\}|\$\{.*\}|\{[\w.\s]*\}|%\(\w+\)[sdf]|%[sdif])$", re.S)
_MARKUP = re.compile(r"^</?[a-z][\w-]*(?:\s+[\w-]+(?:=\S+)?)*\s*/?>$|^<!|^<\?")
_BRACKET = re.compile(r"\[[^\[\]\n]{1,80}\]|［[^［］\n]{1,80}］|【[^【】\n]{1,80}】")
_ANGLE = re.compile(r"<[^<>\n]{1,80}>|＜[^＜＞\n]{1,80}＞|《[^《》\n]{1,80}》")
# A "block" whose lines only give words values (`Years = 15`, `Length=4cm, Width=6 inches`, `sum = 4+3+5`,
# `Vector = (1, 2, 3)`, `City = London`): prose a translator rightly translates; its numbers are still checked.
# A declaration (`int x = 10`) stays code.
_VALUE = (r"(?:[-+]?[$€£]?\d[\d.,]*(?:\s*[A-Za-z%°]{1,12})?(?:\s*[-+*/x^]\s*[$€£]?\d[\d.,]*(?:\s*[A-Za-z%°]{1,12})?)*"
          r"|\(\s*-?\d[\d.]*(?:\s*,\s*-?\d[\d.]*)*\s*\)"
          r"|(?!(?:None|True|False|Null)\b)[A-Z][a-z]+(?: [A-Za-z][a-z]+){0,3})")  # `City = London`
_NAME = (r"(?!(?:int|float|double|char|bool|boolean|long|short|string|String|var|let|const|auto|val|my)\s)"
         r"[A-Za-z][A-Za-z0-9_ ]{0,30}?")
_PAIR = rf"{_NAME}\s*=\s*{_VALUE}"
_ASSIGNMENT = re.compile(rf"^\s*{_PAIR}(?:\s*(?:[,;]|\band\b)\s*{_PAIR})*\s*[.,;]?\s*$")
# HTML elements: `<div>` is markup; `<adjectives>`, `<image>`, `<Insert presentation>` are placeholders a
# translator may fill with words of its language, as long as the angle brackets survive.
_HTML_ELEMENTS = frozenset({
    "a", "abbr", "address", "area", "article", "aside", "audio", "b", "base", "bdi", "bdo", "blockquote", "body",
    "br", "button", "canvas", "caption", "cite", "code", "col", "colgroup", "data", "datalist", "dd", "del",
    "details", "dfn", "dialog", "div", "dl", "dt", "em", "embed", "fieldset", "figcaption", "figure", "footer",
    "form", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hr", "html", "i", "iframe", "img", "input",
    "ins", "kbd", "label", "legend", "li", "link", "main", "map", "mark", "meta", "meter", "nav", "noscript",
    "object", "ol", "optgroup", "option", "output", "p", "param", "picture", "pre", "progress", "q", "rp", "rt",
    "ruby", "s", "samp", "script", "section", "select", "slot", "small", "source", "span", "strong", "style", "sub",
    "summary", "sup", "svg", "table", "tbody", "td", "template", "textarea", "tfoot", "th", "thead", "time",
    "title", "tr", "track", "u", "ul", "var", "video", "wbr"
})
_TAG = re.compile(r"^<(/?)([A-Za-z][\w:-]*)(\s[^<>]*?)?\s*/?>$")
# `operation(s)`, `bit(s)`: a plural in prose, not a call.
_PLURAL = re.compile(r"^[A-Za-z]+\((?:s|es)\)$")
_CODE_TOKEN = re.compile(r"\w+|[^\w\s]")
_STRING = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'")
_TEXT_NODE = re.compile(r">[^<>]*<")  # the visible text of markup (`<p>text</p>`), rightly translated
_COMMENT = re.compile(r"(?m)(?:^|\s)(?:#|//|--)\s.*$|/\*.*?\*/|<!--.*?-->", re.S)
# A number: grouped by spaces (`1 000`), or digits with `.`/`,` separators.
_NUMBER = re.compile(r"(?<!\d)(?<!\d[.,])(?:\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?!\d)|\d+(?:[.,]\d+)*)")
_SCALE_WORDS: dict[str, int] = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_SCALE_AFTER = re.compile(r"\s*(thousand|million|billion|trillion)\b", re.I)
# A quantity restated in another unit in parentheses, `8,848 meters (29,029 feet)`: a translator localises by
# dropping the restatement, so the number in parentheses is not required (the first one is).
_CONVERSION = re.compile(r"\d[\d,.]*\s*(?:°\s?)?[^\W\d_]+\.?\s*\(\s*(?:about|approx\.|approximately|~|≈)?\s*"
                         r"([-+]?\d[\d,.]*\s*(?:°\s?)?[^\W\d_]+\.?)\s*\)")
# `10pm` may become `22 Uhr`.
_PM = re.compile(r"\s?(?:pm|p\.m\.)", re.I)
# Myriad-based scales of CJK scripts: `150万` is 1,500,000.
_CJK_SCALES: dict[str, int] = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8, "만": 10**4, "억": 10**8,
                               "千": 10**3, "천": 10**3}
_CJK_SCALE_AFTER = re.compile(r"\s*[多余餘几幾]?\s*([万萬亿億만억千천])")


def _squash(text: str) -> str:
    return _SPACE.sub("", text)


def _is_markup(span: str, source: str) -> bool:
    """`<...>` is markup when it is a closing tag, has attributes, names an HTML element or is closed in `source`."""
    tag = _TAG.match(span)
    if not tag or not _MARKUP.match(span):
        return False
    closing, name, attributes = tag.groups()
    return bool(closing) or "=" in (attributes or "") or name.lower() in _HTML_ELEMENTS or f"</{name}" in source


def _is_assignment_block(span: str) -> bool:
    return all(_ASSIGNMENT.match(line) for line in span.split("\n") if line.strip())


def _kind(kind: str, span: str, source: str = "") -> str:
    """Refine the contract's kinds into what is checked how."""
    if kind == "placeholder":
        if _VARIABLE.match(span):
            return "variable"
        if span.startswith("<"):
            return "markup" if _is_markup(span, source) else "bracket"
        return "bracket"
    if kind == "block" and re.fullmatch(r"<[^<>\n]{1,80}>", span.strip()) and not _is_markup(span.strip(), source):
        return "bracket"
    if kind == "call" and _PLURAL.match(span):
        return "prose"
    if kind == "math":
        return "annotation" if span.startswith("<<") else "number"
    if kind in ("money", "quantity"):
        return "number"
    return kind


def _values(number: str) -> set[str]:
    """The values a written number can mean, as normalised decimals: `1,000` -> {1000, 1}, `3,5` -> {3.5}."""
    text = re.sub(r"[ \u00a0\u202f']", "", number)
    seps = [c for c in text if c in ".,"]
    candidates: list[str] = []
    if not seps:
        candidates.append(text)
    elif len(set(seps)) == 2:  # `1,234.5` / `1.234,5`: the last separator is the decimal mark
        decimal_mark = seps[-1]
        whole, _, frac = text.rpartition(decimal_mark)
        candidates.append(re.sub(r"[.,]", "", whole) + "." + frac)
    elif len(seps) > 1:  # `1,000,000` / `1.000.000`
        candidates.append(re.sub(r"[.,]", "", text))
    else:
        whole, _, frac = text.partition(seps[0])
        candidates.append(whole + "." + frac)
        if len(frac) == 3:  # `1,000` / `1.000`: thousands in most locales
            candidates.append(whole + frac)
        elif seps[0] == ",":  # `3,5` in English is a list missing its space as often as a decimal comma
            candidates += [whole, frac]
    out = set()
    for candidate in candidates:
        try:
            value = Decimal(candidate)
        except InvalidOperation:
            continue
        out.add(format(value.normalize(), "f"))
        digits = -value.as_tuple().exponent if isinstance(value.as_tuple().exponent, int) else 0
        # `37.77777777777778` may be rounded (`37,777777777778`): any rounding to 2 or more decimals.
        out |= {format(value.quantize(Decimal(1).scaleb(-k), ROUND_HALF_UP).normalize(), "f")
                for k in range(2, digits) if digits > 4 and len(candidate) < 25}
    return out


def _scaled(values: set[str], factor: int) -> set[str]:
    return {format((Decimal(v) * factor).normalize(), "f") for v in values}


def source_numbers(text: str, min_number: int) -> list[tuple[str, set[str]]]:
    """The numbers of a source text a translation must keep: (as written, values it may take)."""
    out = []
    restated = [m.span(1) for m in _CONVERSION.finditer(text)]
    for match in _NUMBER.finditer(text):
        written = match.group()
        values = _values(written)
        if not values or (written.isdigit() and int(written) < min_number):
            continue
        if any(start <= match.start() < end for start, end in restated):
            continue
        scale = _SCALE_AFTER.match(text, match.end())
        if scale:
            values |= _scaled(values, _SCALE_WORDS[scale.group(1).lower()])
        if written.isdigit() and int(written) < 12 and _PM.match(text, match.end()):
            values.add(str(int(written) + 12))
        out.append((written, values))
    return out


def target_values(text: str) -> set[str]:
    """Every value a number in the translation can mean (with CJK myriad scales applied)."""
    text = unicodedata.normalize("NFKC", text)
    out: set[str] = set()
    for match in _NUMBER.finditer(text):
        values = _values(match.group())
        out |= values
        parts = re.split(r"[.,]", match.group())
        if len(parts) > 2:  # `22.11.63`: a date (`11/22/63` in the source) or a version, whose parts are numbers
            out |= {str(int(part)) for part in parts if part.isdigit()}
        scale = _CJK_SCALE_AFTER.match(text, match.end())
        if scale:
            out |= _scaled(values, _CJK_SCALES[scale.group(1)])
    return out


def _code_tokens(text: str) -> Counter[str]:
    return Counter(_CODE_TOKEN.findall(text))


def field_mismatch(source: str, target: str, min_number: int, min_code_token_recall: float,
                   spans: list[tuple[str, str]] | None = None) -> tuple[str, str] | None:
    """(reason, detail) for the first protected span of `source` that `target` did not keep, or None.
    `spans`: the source's `typed_spans`, when already known."""
    spans = typed_spans(source) if spans is None else spans
    if not spans and not any(c.isdigit() for c in source):
        return None
    target = unicodedata.normalize("NFKC", target)
    squashed = _squash(target)
    exact: Counter[tuple[str, str]] = Counter()
    span_of: dict[tuple[str, str], str] = {}
    brackets = angles = 0
    prose = source
    for kind, span in spans:
        refined = _kind(kind, span, source)
        if refined in KIND_REASON and refined != "bracket":
            key = (refined, _squash(unicodedata.normalize("NFKC", span)))  # compared with the NFKC target
            exact[key] += 1
            span_of[key] = unicodedata.normalize("NFKC", span)
        elif refined == "bracket" and "," not in span:
            if span.startswith("<"):
                angles += 1
            else:
                brackets += 1
        if refined != "number" and not (refined == "block" and _is_assignment_block(span)):
            prose = prose.replace(span, " ", 1)  # numbers inside code, URLs and placeholders are checked with them
    target_tokens: Counter[str] | None = None
    for (kind, body), count in exact.items():
        if squashed.count(body) >= count:
            continue
        if kind in ("block", "call"):
            target_tokens = target_tokens if target_tokens is not None else _code_tokens(target)
            literal_free = _STRING.sub(lambda m: m.group()[0] * 2, _COMMENT.sub("", span_of[(kind, body)]))
            wanted = _code_tokens(_TEXT_NODE.sub("><", literal_free))
            kept = sum((wanted & target_tokens).values())
            if kept >= min_code_token_recall * sum(wanted.values()):
                continue
            if kind == "block" and _is_assignment_block(span_of[(kind, body)]):
                continue  # `Length = 4cm` in prose: its word is translated, its number is checked with the prose
        return KIND_REASON[kind], f"{kind} {_short(body)!r} not kept"
    if len(_BRACKET.findall(target)) < brackets:
        return "placeholder_lost", f"{brackets} bracketed placeholder(s) in the source, fewer in the translation"
    if len(_ANGLE.findall(target)) < angles:
        return "placeholder_lost", f"{angles} <placeholder>(s) in the source, fewer in the translation"
    wanted_numbers = source_numbers(unicodedata.normalize("NFKC", prose), min_number)
    if wanted_numbers:
        have = target_values(target)
        for written, values in wanted_numbers:
            if not values & have:
                return "number_changed", f"number {written!r} not in the translation"
    return None


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def kept_span_chars(spans: list[tuple[str, str]], target: str) -> int:
    """Characters of the source's spans found verbatim in the translation: text the length-ratio check leaves out
    on both sides (code is as long in every language; a translated span counts as prose on both sides)."""
    return sum(len(span) for _, span in spans if span in target)


def _source_span_chars(con: duckdb.DuckDBPyConnection) -> None:
    """Table `source_span_chars` (id, span_chars): per source record (not per translation), in Python."""
    ids: list[str] = []
    chars: list[int] = []
    query = con.execute("SELECT id, instruction, input, output FROM rows WHERE is_source AND id IN "
                        "(SELECT id FROM rows WHERE protected_spans_ok)")
    while batch := query.fetchmany(10_000):
        for ident, *texts in batch:
            ids.append(ident)
            chars.append(sum(len(span) for text in texts for _, span in typed_spans(text)))
    con.register("source_span_chars_found", pa.table({"id": pa.array(ids, pa.string()),
                                                      "span_chars": pa.array(chars, pa.int64())}))
    con.execute("CREATE OR REPLACE TABLE source_span_chars AS SELECT * FROM source_span_chars_found")
    con.unregister("source_span_chars_found")


def create_span_table(con: duckdb.DuckDBPyConnection, params: PlaceholderParams, skipped: dict[str, str]) -> None:
    """Table `spans` (rid, span_reason, span_detail, kept_span_chars): the translate stage's flag where present
    (its spans are verbatim by construction), else the localisation-aware comparison above with the source row."""
    _source_span_chars(con)
    con.execute("CREATE OR REPLACE TABLE spans AS SELECT r.rid, CASE WHEN NOT r.protected_spans_ok THEN "
                "'placeholder_lost' END AS span_reason, CASE WHEN NOT r.protected_spans_ok THEN 'a protected span "
                "was not restored exactly once (translate stage flag)' END AS span_detail, "
                "CASE WHEN r.protected_spans_ok THEN coalesce(c.span_chars, 0) ELSE 0 END AS kept_span_chars "
                "FROM rows r LEFT JOIN source_span_chars c USING (id) WHERE r.protected_spans_ok IS NOT NULL")
    unflagged = con.execute("SELECT count(*) FROM rows WHERE NOT is_source AND protected_spans_ok IS NULL") \
        .fetchall()[0][0]
    if not params.enabled or not unflagged:
        return
    skipped["placeholder"] = (f"{unflagged} rows lack protected_spans_ok: their protected spans were compared "
                              "with the source by quality.spans_check (localisation-aware) instead")
    query = con.execute(
        "SELECT t.rid, t.instruction, t.input, t.output, s.instruction, s.input, s.output FROM rows t "
        "JOIN rows s ON s.is_source AND s.id = t.id WHERE NOT t.is_source AND t.protected_spans_ok IS NULL")
    rids: list[int] = []
    reasons: list[str | None] = []
    details: list[str | None] = []
    kept: list[int] = []
    while batch := query.fetchmany(10_000):  # Python must look at each text here: batched
        for rid, *texts in batch:
            found = None
            chars = 0
            for k, name in enumerate(TEXT_FIELDS):
                source, target = texts[k + 3], texts[k]
                spans = typed_spans(source)
                chars += kept_span_chars(spans, target)
                if found is None:
                    mismatch = field_mismatch(source, target, params.min_number, params.min_code_token_recall, spans)
                    found = (mismatch[0], f"{mismatch[1]} in {name}") if mismatch else None
            rids.append(rid)
            reasons.append(found[0] if found else None)
            details.append(found[1] if found else None)
            kept.append(chars)
    table = pa.table({"rid": pa.array(rids, pa.int64()), "span_reason": pa.array(reasons, pa.string()),
                      "span_detail": pa.array(details, pa.string()), "kept_span_chars": pa.array(kept, pa.int64())})
    con.register("span_checks", table)
    con.execute("INSERT INTO spans SELECT rid, span_reason, span_detail, kept_span_chars FROM span_checks")
    con.unregister("span_checks")
