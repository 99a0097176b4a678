"""The protected-span contract: which stretches of a text a translation must carry through, and of what kind.

One definition shared by translate (which keeps these spans away from the model, `dataset_builder.segment`)
and quality (which checks that a third-party translation kept them, `quality.spans_check`):

- code: fenced blocks, unfenced code (Alpaca stores most code without fences: `def`/`class` lines,
  `{`/`}`/`;` lines, SQL, HTML/XML, indented bodies), inline code, function-call strings;
- URLs and e-mails; placeholders (`{name}`, `${x}`, `%s`, `[Your Name]`, `<name>`); arithmetic (`48/2 = 24`,
  GSM8K's calculator annotations `<<48/2=24>>`); numbers with units and money; hashtags and file names.

`inline_spans(line)` gives (start, end, kind) of the inline spans of one line; `code_lines(lines)` marks the
lines of code blocks. Kinds are the named groups of `_INLINE` (plus "block" for a code block).
"""

from __future__ import annotations

import re

# --- protected inline spans -------------------------------------------------------------------------

_UNITS = (
    r"km/h|m/s|mph|kph|mm|cm|km|mi|ft|yd|mg|kg|lbs?|oz|ml|mL|gal|ms|min|hrs?|Hz|kHz|MHz|GHz|KB|kB|MB|GB|TB|"
    r"Kbps|Mbps|Gbps|kWh|kW|MW|mAh|mA|mV|kcal|cal|kJ|kPa|psi|px|pt|em|rem|dpi|°[CF]|K|m|g|L|l|W|V|h|s"
)
# Order matters: at one position the first alternative wins (inline code before placeholders, ...).
_CALL_ARG = r"""(?:'[^'\n]*'|"[^"\n]*"|[\w.\[\]]+(?:\([^()\n]*\))?|\([^()\n]*\))"""
_NUMBER = r"[$€£¥₹]?\d(?:[\d,.]*\d)?%?"
_INLINE = re.compile(
    r"(?P<code>``[^`\n]+?``|`[^`\n]+`)"
    r"|(?P<url>\b(?:https?|ftp)://[^\s<>\"'`]+|\bwww\.[^\s<>\"'`]+)"
    r"|(?P<email>\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    # Arithmetic: a calculator annotation, or an equation (`48/2 = 24`, `3 x 4 = 12`): numbers joined by operators.
    rf"|(?P<math><<[^<>\n]{{1,120}}>>|(?<![\w.])[-+]?{_NUMBER}(?:\s*[-+*/×÷x^]\s*[-+]?{_NUMBER})+\s*=\s*[-+]?{_NUMBER})"
    r"|(?P<placeholder>\{\{[^{}\n]{1,80}\}\}|\$\{[^{}\n]{1,80}\}|\{[^{}\n]{0,80}\}|\[[^\[\]\n]{1,80}\]"
    r"|</?[A-Za-z!?][^<>\n]{0,200}>|%\(\w+\)[sdf]|%[sdif]\b)"
    # A call's arguments are quoted strings, identifiers/numbers or nested parentheses joined by commas or
    # operators; bare words separated by spaces are prose in parentheses ("gates(be biased ...)"), not code.
    rf"|(?P<call>(?<![\w.])[A-Za-z_][\w.]*\(\s*(?:{_CALL_ARG}(?:\s*[,=+\-*/:]\s*{_CALL_ARG})*)?\s*,?\s*\))"
    r"|(?P<money>[$€£¥₹]\s?\d[\d,]*(?:\.\d+)?)"
    rf"|(?P<quantity>(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:\s?(?:%|°[CF]?)|\s?(?:{_UNITS})(?![\w/])))"
    r"|(?P<tag>(?<![\w#@&])[#@][A-Za-z_]\w*)"
    r"|(?P<file>\b[\w-]+\.(?:py|js|ts|html?|css|csv|tsv|txt|json|xml|ya?ml|sh|md|java|cpp|hpp|c|h|rb|go|rs|"
    r"sql|pdf|docx?|xlsx?|pptx?|png|jpe?g|gif|svg|zip|tar|gz|exe)\b)"
)
_URL_TRAILING = ".,;:!?'\""


def _trim_url(url: str) -> str:
    """Trailing sentence punctuation and an unbalanced closing bracket are not part of a URL."""
    while url and (url[-1] in _URL_TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def inline_spans(line: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every protected inline span of `line`, in order, never overlapping."""
    spans = []
    for match in _INLINE.finditer(line):
        start, end = match.span()
        if match.lastgroup == "url":
            end = start + len(_trim_url(match.group()))
        if end > start:
            spans.append((start, end, match.lastgroup or "placeholder"))
    return spans


# --- unfenced code detection --------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(```|~~~)")
# Lines that are code by their shape alone: no prose line starts like `def f(`, `x = 1`, `<div>`.
_CODE_SHAPE = re.compile(
    r"""^\s*(?:
      (?:async\s+)?def\s+\w+\s*\( | class\s+\w+\s*[(:{] | class\s+\w+\s*(?:extends|implements)\b
    | import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+)*\s*;?\s*$ | from\s+[\w.]+\s+import\s
    | (?:int|float|double|char|bool|boolean|long|short|string|String|auto)\s+\*?\w+\s*(?:[=;(\[,]|$)
    | (?:val|var|let|const|my|local|dim|Dim|final)\s+[\w$]+\s*[:=]
    | (?:console|System|Math|document|window|std)(?:\.|::)\w | \#(?:include|define|ifn?def|endif|pragma)\b
    | \#! | @\w+(?:\(.*\))?\s*$ | (?:\"\"\"|\'\'\') | >>>\s | \$\s+\w
    | </?[A-Za-z!?][^<>]*>.*$
    | [\]\)\}]+[\]\)\};,]*\s*$ | [\[{(]\s*$ | [\[{]\s*["'\[{]
    | \"[^\"\n]*\"\s*:\s*\S
    | [\w.\[\]'\"]+\s*(?:[-+*/%|&^]|//|\*\*|<<|>>)?=(?!=)\s*\S
    | [\w.]+(?:\[[^\]]*\])?\(.*\)\s*;?\s*(?:\#.*|//.*)?$
    )""",
    re.VERBOSE,
)
# Lines that start with a keyword prose may also start with (`return to ...`, `find the ...`):
# code only when the rest does not read as a run of words.
_CODE_KEYWORD = re.compile(
    r"""^\s*(?:
      for\s+[\w, ()\[\]]+\s+in\s+.+:\s*(?:\#.*)?$
    | (?:if|elif|while)\s+(?:.*[=<>!()\[\]%+*/-].*|\S+(?:\s+\S+){0,2}|.*\b(?:not|and|or|in|is)\b.*):\s*(?:\#.*)?$
    | (?:else|try|finally)\s*:\s*(?:\#.*)?$ | except\b[^:]*:\s*$ | with\s+.+(?:\)|\bas\s+\w+)\s*:\s*$
    | return(?:\s|;|$) | (?:raise|yield|assert|await|lambda)\s | (?:pass|break|continue)\s*;?\s*$
    | (?:public|private|protected|static|void|function|func|fn|package|using|namespace
       |struct|enum|interface|impl|typedef|template|unsigned)\s+[\w<>\[\]*&:$]
    | (?:switch|catch)\s*\( | (?:case\s+.*|default)\s*: | (?:echo|printf|println|puts|print)\b\s*[(\"']
    | (?:sudo\s+)?(?:find|ls|cd|cp|mv|rm|mkdir|git|pip3?|npm|npx|yarn|python3?|node|bash|sh|curl|wget|grep|sed
       |awk|cat|chmod|chown|tar|docker|kubectl|ssh|make|apt(?:-get)?|brew|conda|wc|xargs|head|tail|touch)
       \s+(?=.*(?:\s-{1,2}[A-Za-z]|\S[./~]\S|[|>*$]))
    | (?:SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE\s+(?:TABLE|INDEX|VIEW|DATABASE)|DROP\s+TABLE|ALTER\s+TABLE
       |FROM|WHERE|GROUP\s+BY|ORDER\s+BY|(?:INNER\s+|LEFT\s+|RIGHT\s+|OUTER\s+)?JOIN|ON|AND|OR|LIMIT|VALUES
       |HAVING|UNION|SET)\b(?!\s*[a-z]+\s+[a-z]+\s+[a-z]+)
    )""",
    re.VERBOSE,
)
_CODE_END = re.compile(r"(?:[{;]|\)\s*:|\b(?:do|then)|=>|->)\s*(?://.*|\#.*)?$")
_BULLET = re.compile(r"^\s*[*-]\s")
_CODE_COMMENT = re.compile(r"^\s*(?:\#|//|/\*|\*|--\s|<!--)")
_PROSE_WORDS = re.compile(r"[A-Za-z][a-z']+(?:\s+[A-Za-z][a-z']+){5,}")
_SYMBOLS = re.compile(r"[{}\[\]();=<>+*/%&|^~\\$;]")

# The same notion for DuckDB's regexp_replace (RE2), coarser: what language ID strips before judging a text
# (quality/langid.py): fenced/inline code, URLs, e-mails, then whole lines that look like code (Alpaca stores
# code without fences). The segmenter's line-by-line rules above decide what translation leaves verbatim.
CODE_SPANS_SQL = r"```[\s\S]*?(?:```|$)|`[^`\n]*`|https?://\S+|www\.\S+|\S+@\S+\.\S+"
CODE_LINES_SQL = (
    r"(?m)^.*(?:[{};]\s*$|==|!=|<=|>=|=>|->|::|</?[A-Za-z][^>]*>|\w\([^()]*\)\s*[;:{]?\s*$).*$"
    r"|^(?:\s{4,}|\t)\S.*$"
    r"|^\s*(?:def|class|import|from|#include|public|private|static|void|function|var|let|const)\s+[\w.<>]+.*$"
    r"|^\s*(?:SELECT|INSERT|UPDATE|CREATE|DELETE)\s.*$"
)


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def _looks_like_code(line: str) -> bool:
    """A line that starts or is a code statement. Prose with a trailing `;` or a colon is not."""
    stripped = line.strip()
    if not stripped:
        return False
    if _CODE_SHAPE.match(stripped):
        return True
    if _CODE_KEYWORD.match(stripped):
        # Long runs of words with few symbols are prose even when they start like code.
        return not (_PROSE_WORDS.search(stripped) and len(_SYMBOLS.findall(stripped)) < 2)
    if stripped.endswith("{"):  # `html, body {`, `} else {`: prose never ends with a brace
        return True
    return bool(_CODE_END.search(stripped) and len(_SYMBOLS.findall(stripped)) >= 2
                and not _PROSE_WORDS.search(stripped))


def code_lines(lines: list[str]) -> list[bool]:
    """Mark every line that belongs to a code block: fenced, or unfenced by the heuristics above.
    A block continues through indented, comment and blank lines while code follows."""
    n = len(lines)
    code = [False] * n
    i = 0
    while i < n:  # fenced blocks first; an unclosed fence runs to the end of the field
        fence = _FENCE.match(lines[i])
        if fence:
            j = i + 1
            while j < n and not lines[j].lstrip().startswith(fence.group(1)):
                j += 1
            for k in range(i, min(j, n - 1) + 1):
                code[k] = True
            i = j + 1
        else:
            i += 1
    in_block = False
    block_indent = 0
    in_docstring: str | None = None
    for i, line in enumerate(lines):
        if code[i] and _FENCE.match(line):
            in_block = False
            continue
        if code[i]:
            continue
        stripped = line.strip()
        if in_docstring:
            code[i] = True
            if in_docstring in stripped:
                in_docstring = None
            continue
        if not stripped:
            continue
        quote = next((q for q in ('"""', "'''") if q in stripped), None)
        if quote and stripped.count(quote) == 1 and (in_block or stripped.startswith(quote)):
            code[i] = True
            in_block, in_docstring = True, quote
            continue
        if _looks_like_code(line):
            if not in_block:
                block_indent = _indent(line)
            code[i] = in_block = True
        elif in_block and (_indent(line) > block_indent or _CODE_COMMENT.match(line)):
            code[i] = True
        else:
            in_block = False
    # A comment line directly above code (`// prints Hello`, `# helper`) belongs to that block.
    for i in range(n - 2, -1, -1):
        if not code[i] and code[i + 1] and _CODE_COMMENT.match(lines[i]) and not _BULLET.match(lines[i]):
            code[i] = True
    return code


def code_block_end(lines: list[str], code: list[bool], start: int) -> int:
    """The last code line of the block that starts at code line `start`: a block runs on through code
    lines and the blank lines between them."""
    last = j = start
    while j + 1 < len(lines) and (code[j + 1] or not lines[j + 1].strip()):
        j += 1
        if code[j]:
            last = j
    return last


def typed_spans(text: str) -> list[tuple[str, str]]:
    """(kind, span) of every protected span of `text`, in order: a code block (kind "block": its lines
    from the first to the last code line, inner blank lines included) or an inline span of a prose line.
    The same spans `dataset_builder.segment` keeps away from the model."""
    lines = text.split("\n")
    code = code_lines(lines)
    spans: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        if code[i]:
            last = code_block_end(lines, code, i)
            spans.append(("block", "\n".join(lines[i:last + 1])))
            i = last + 1
            continue
        spans.extend((kind, lines[i][start:end]) for start, end, kind in inline_spans(lines[i]))
        i += 1
    return spans
