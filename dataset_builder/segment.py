"""Structure-aware segmentation: split a field into translation units and put it back together.

A field becomes a sequence of `Piece`s whose concatenation is byte-identical to the field. Only
pieces of kind "unit" (one sentence, or the prose between two protected spans; sentences come from
pysbd) are sent to the model; "layout" and "span" pieces are copied back verbatim:

- layout: line breaks, blank lines, indentation, list markers (`1.`, `-`, `*`, `a)`), headings,
  table pipes, whitespace between sentences;
- spans, as defined by the span contract `schemas.spans` (shared with the quality stage): code blocks,
  inline code, URLs, e-mails, arithmetic, numbers with units and money, placeholders (`{name}`,
  `[Your Name]`, `<name>`), function-call strings (`wikipedia('French Revolution')`), hashtags, file names.

`protected_spans(text)` lists the span pieces (what the quality stage checks); `spans_preserved`
checks that a translation holds each of them exactly as often as the source does.

A protected span inside a sentence splits the sentence around it, so the model never sees the span
and cannot drop, duplicate or translate it (a sentinel-token scheme would depend on the model
copying sentinels, which an NLLB checkpoint does not promise). The price is that a sentence with
inline code is translated in fragments; the gain is that every span comes back exactly once, in
place, with any model, including the random-weight smoke model.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from schemas.records import TEXT_FIELDS
from schemas.spans import code_block_end, code_lines, inline_spans

# --- pieces ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    text: str
    kind: Literal["unit", "layout", "span"]  # unit: sent to the model; layout and span: verbatim

    @property
    def translate(self) -> bool:
        return self.kind == "unit"


@dataclass(frozen=True)
class Segmented:
    """A field as pieces. `"".join(p.text for p in pieces)` is the field, byte for byte."""

    pieces: tuple[Piece, ...]

    @property
    def units(self) -> list[str]:
        return [p.text for p in self.pieces if p.translate]

    @property
    def spans(self) -> list[str]:
        """The protected spans, in order (what `protected_spans` returns for the same text)."""
        return [p.text for p in self.pieces if p.kind == "span"]

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.pieces)


_LIST_MARKER = re.compile(
    r"^(?:[-*•+▪‣◦]|\d{1,3}[.)]|\(\d{1,3}\)|[a-zA-Z][.)]|\(?[ivxIVX]{1,5}[.)]|#{1,6}|>)"
    r"[ \t]+"
)
_HAS_LETTER = re.compile(r"[^\W\d_]")
_LEADING_PUNCT = ",;:.!?)]}"
_TRAILING_PUNCT = "([{"
_BOUNDARY_HINT = re.compile(r"[.!?…。！？][\"'”’)\]]*\s+\S")


@cache
def _sentence_segmenter(lang: str) -> object:
    import pysbd

    return pysbd.Segmenter(language=lang, clean=False)


def sentence_language(iso639_1: str | None) -> str:
    """The pysbd rule set for a source language: its own where pysbd has one, English otherwise."""
    from pysbd.languages import LANGUAGE_CODES

    return iso639_1 if iso639_1 in LANGUAGE_CODES else "en"


def _sentences(text: str, lang: str) -> list[tuple[int, int]]:
    """Sentence ranges of `text` (pysbd). Located by search so the ranges tile the text exactly."""
    if not _BOUNDARY_HINT.search(text):
        return [(0, len(text))]
    ranges: list[tuple[int, int]] = []
    cursor = 0
    for sentence in _sentence_segmenter(lang).segment(text):  # type: ignore[attr-defined]
        body = sentence.strip()
        if not body:
            continue
        start = text.find(body, cursor)
        if start < 0:  # pysbd rewrote something: keep the rest as one unit rather than guess
            break
        ranges.append((cursor, start + len(body)))
        cursor = start + len(body)
    if cursor < len(text):
        if ranges and not text[cursor:].strip():
            ranges[-1] = (ranges[-1][0], len(text))
        else:
            ranges.append((cursor, len(text)))
    return ranges


def _emit(pieces: list[Piece], text: str, kind: Literal["unit", "layout", "span"]) -> None:
    if not text:
        return
    if kind == "layout" and pieces and pieces[-1].kind == "layout":
        pieces[-1] = Piece(pieces[-1].text + text, "layout")
    else:
        pieces.append(Piece(text, kind))


def _emit_prose(pieces: list[Piece], text: str) -> None:
    """A stretch with no protected span: whitespace and letterless text verbatim, the rest a unit."""
    # `, then ...` after a span and `... (` before one: that punctuation belongs to the layout.
    body = text.strip().lstrip(_LEADING_PUNCT).lstrip().rstrip(_TRAILING_PUNCT).rstrip()
    if not body or not _HAS_LETTER.search(body):
        _emit(pieces, text, "layout")
        return
    start = text.find(body)
    _emit(pieces, text[:start], "layout")
    _emit(pieces, body, "unit")
    _emit(pieces, text[start + len(body):], "layout")


def _segment_prose_line(pieces: list[Piece], line: str, lang: str | None) -> None:
    marker = _LIST_MARKER.match(line.lstrip())
    lead = len(line) - len(line.lstrip()) + (marker.end() if marker else 0)
    _emit(pieces, line[:lead], "layout")
    rest = line[lead:]
    if rest.lstrip().startswith("|") and rest.rstrip().endswith("|"):  # markdown table row: cells
        for cell in re.split(r"(\|)", rest):
            if cell == "|":
                _emit(pieces, cell, "layout")
            else:
                _segment_prose(pieces, cell, lang)
        return
    _segment_prose(pieces, rest, lang)


def _segment_prose(pieces: list[Piece], text: str, lang: str | None) -> None:
    spans = [(start, end) for start, end, _ in inline_spans(text)]
    # Sentence-split with spans masked, so a URL or `e.g.` inside code never splits a sentence.
    masked = list(text)
    for start, end in spans:
        masked[start:end] = "x" * (end - start)
    sentences = _sentences("".join(masked), lang) if lang else [(0, len(text))]
    cursor = 0
    pending = iter(spans)
    span = next(pending, None)
    for _, s_end in sentences:
        while span is not None and span[0] < s_end:  # spans are sorted and never overlap
            _emit_prose(pieces, text[cursor:span[0]])
            _emit(pieces, text[span[0]:span[1]], "span")
            cursor = span[1]
            span = next(pending, None)
        if cursor < s_end:
            _emit_prose(pieces, text[cursor:s_end])
            cursor = s_end


def segment(text: str, *, split_sentences: bool = True, lang: str = "en") -> Segmented:
    """Split a field into verbatim pieces and translation units (see module docstring). A code
    block is one span: its lines from the first to the last code line, inner blank lines included.
    `lang` (ISO 639-1) picks pysbd's sentence rules; `split_sentences=False` keeps lines whole."""
    sentence_lang = sentence_language(lang) if split_sentences else None
    pieces: list[Piece] = []
    lines = text.split("\n")
    code = code_lines(lines)
    i = 0
    while i < len(lines):
        if i:
            _emit(pieces, "\n", "layout")
        if code[i]:
            last = code_block_end(lines, code, i)
            _emit(pieces, "\n".join(lines[i:last + 1]), "span")
            i = last + 1
            continue
        if lines[i].strip():
            _segment_prose_line(pieces, lines[i], sentence_lang)
        else:
            _emit(pieces, lines[i], "layout")
        i += 1
    return Segmented(tuple(pieces))


def reassemble(segmented: Segmented, translations: Sequence[str]) -> str:
    """Put translations (one per unit, in order) back between the verbatim pieces."""
    units = sum(p.translate for p in segmented.pieces)
    if len(translations) != units:
        raise ValueError(f"reassemble: {len(translations)} translations for {units} units")
    out: list[str] = []
    it = iter(translations)
    for piece in segmented.pieces:
        out.append(next(it) if piece.translate else piece.text)
    return "".join(out)


# --- length budget ------------------------------------------------------------------------------------

_CLAUSE_BREAK = re.compile(r"(?<=[,;:)\]—–])\s+|\s+(?=[—–(]|(?:and|but|or|which|that|because|while|when)\s)")
_WORD_BREAK = re.compile(r"\s+")
TokenCounter = Callable[[Sequence[str]], list[int]]


def _pack(parts: list[str], seps: list[str], costs: list[int], budget: int) -> list[tuple[str, str]]:
    """Greedily join consecutive parts while the token sum fits; returns (chunk, separator after)."""
    chunks: list[tuple[str, str]] = []
    current, cost = "", 0
    for part, sep, part_cost in zip(parts, seps, costs, strict=True):
        if current and cost + part_cost > budget:
            chunks.append((current.rstrip(), current[len(current.rstrip()):]))
            current, cost = "", 0
        current += part + sep
        cost += part_cost
    if current:
        chunks.append((current.rstrip(), current[len(current.rstrip()):]))
    return chunks


def _split_unit(unit: str, budget: int, count: TokenCounter, level: int = 0) -> list[Piece]:
    """Split one over-long unit at clause, then word, then character boundaries until every
    piece fits `budget` tokens. Nothing is dropped: the separators come back verbatim."""
    if level >= 2:  # one unbroken run of characters: cut by characters in proportion to tokens
        total = max(count([unit])[0], 1)
        step = max(1, len(unit) * budget // (total + 1))
        out: list[Piece] = []
        for i in range(0, len(unit), step):
            out.extend(_fit(unit[i:i + step], budget, count, level))
        return out
    pattern = _CLAUSE_BREAK if level == 0 else _WORD_BREAK
    parts, seps, cursor = [], [], 0
    for match in pattern.finditer(unit):
        if match.start() > cursor:
            parts.append(unit[cursor:match.start()])
            seps.append(match.group())
            cursor = match.end()
    parts.append(unit[cursor:])
    seps.append("")
    if len(parts) == 1:
        return _split_unit(unit, budget, count, level + 1)
    out = []
    for chunk, sep in _pack(parts, seps, count(parts), budget):
        out.extend(_fit(chunk, budget, count, level + 1))
        if sep:
            out.append(Piece(sep, "layout"))
    return out


def _fit(unit: str, budget: int, count: TokenCounter, level: int) -> list[Piece]:
    if not _HAS_LETTER.search(unit):
        return [Piece(unit, "layout")]
    if count([unit])[0] <= budget:
        return [Piece(unit, "unit")]
    return _split_unit(unit, budget, count, min(level, 2))


def fit_to_budget(segmented: Segmented, budget: int, count: TokenCounter,
                  known: Mapping[str, int] | None = None) -> Segmented:
    """Split every unit longer than `budget` model tokens (never truncate). `known` holds token
    counts already computed for some units, so a whole file needs one batched tokenizer call."""
    if budget < 1:
        raise ValueError("budget must be at least one token")
    units = segmented.units
    costs = [known[u] if known and u in known else None for u in units]
    missing = [u for u, c in zip(units, costs, strict=True) if c is None]
    if missing:
        counted = iter(count(missing))
        costs = [c if c is not None else next(counted) for c in costs]
    if all(c <= budget for c in costs):  # type: ignore[operator]
        return segmented
    pieces: list[Piece] = []
    cost_iter = iter(costs)
    for piece in segmented.pieces:
        if piece.translate and next(cost_iter) > budget:  # type: ignore[operator]
            for sub in _split_unit(piece.text, budget, count):
                _emit(pieces, sub.text, sub.kind)
        else:
            _emit(pieces, piece.text, piece.kind)
    return Segmented(tuple(pieces))


# --- public checks ------------------------------------------------------------------------------------


def protected_spans(text: str) -> list[str]:
    """Every stretch of `text` that must come back byte-identical in a translation (code blocks,
    inline code, URLs, e-mails, quantities, placeholders, calls, ...), one entry per occurrence,
    in order: exactly what `segment` keeps away from the model. Layout is not included."""
    return segment(text, split_sentences=False).spans


def spans_preserved(source: str, translated: str, spans: Iterable[str] | None = None) -> bool:
    """True when each protected span of `source` occurs in `translated` exactly as often as in
    `source`: none dropped, none duplicated (e.g. by a model that echoes a URL). `spans` may pass
    the source's spans when already known (from `segment`)."""
    distinct = set(protected_spans(source) if spans is None else spans)
    return all(translated.count(span) == source.count(span) for span in distinct)


def code_fraction(fields: Mapping[str, str]) -> float:
    """Share of non-space characters of the fields that sit in code (blocks and inline code)."""
    total = code_chars = 0
    for text in fields.values():
        total += sum(not c.isspace() for c in text)
        lines = text.split("\n")
        for line, is_code in zip(lines, code_lines(lines), strict=True):
            if is_code:
                code_chars += sum(not c.isspace() for c in line)
            else:
                code_chars += sum(len(m.group()) for m in re.finditer(r"`[^`\n]+`", line))
    return code_chars / total if total else 0.0


def is_mostly_code(record: Mapping[str, str], threshold: float = 0.5) -> bool:
    """A record whose text fields are at least `threshold` code (by non-space characters)."""
    return code_fraction({f: record[f] for f in TEXT_FIELDS if f in record}) >= threshold


def normalise_unit(unit: str) -> str:
    """The translation-memory key and model input: NFC, whitespace runs collapsed, ends trimmed."""
    return " ".join(unicodedata.normalize("NFC", unit).split())
