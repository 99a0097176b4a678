"""The quality filters: small named checks, each with one job, each saying why it dropped a row.

Every check is a DuckDB SQL boolean over per-row features (`FEATURES_SQL`) plus a SQL string saying
why; the stage materialises all of them at once. A row failing several checks is rejected once, for
the FIRST reason in `REASONS` (a fixed order: cheap, certain defects first), and the other failed
checks are listed in its `detail`. Dedup and language ID run after these checks, on the rows that
passed them, so they appear later in the order and are never evaluated for rows already rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from quality import fold
from schemas.languages import SCRIPTS_WITHOUT_SPACES
from schemas.params import LengthRatioParams, QualityParams, RepetitionParams, UntranslatedParams

# Reasons of the localisation-aware span check (quality.spans_check), one per kind of span that failed.
SPAN_REASONS: tuple[str, ...] = ("code_changed", "url_changed", "placeholder_lost", "number_changed")
# Reasons of the LLM-translator checks (quality.llm_failures).
LLM_REASONS: tuple[str, ...] = ("llm_chatter", "llm_answered", "english_left")

# Scripts without spaces between words: each of their characters is a token.
DENSE_TOKEN = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Khmer}\p{Myanmar}\p{Lao}"
DENSE_TOKEN_RE = f"[{DENSE_TOKEN}]|[^\\s\\p{{P}}{DENSE_TOKEN}]+"
BAD_CHARS_RE = r"[\x{FFFD}\x00-\x08\x0B-\x1F\x7F-\x9F]"


def install_macros(con: duckdb.DuckDBPyConnection, params: QualityParams) -> None:
    """SQL helpers every check uses."""
    rep = params.filters.repetition
    n = rep.ngram
    field = "all_h[start + 1:start + len_h]"  # the field's hashes: a slice of the record's
    grams = ", ".join([field] + [f"{field}[{k + 1}:]" for k in range(1, n)])
    fold.install(con)  # pi_fold_text(x): NFKC + casefold
    for macro in (
        # Tokens of the folded text: punctuation, tabs and line breaks become spaces, split on spaces (several
        # times faster than a tokenising regexp), empty tokens dropped; scripts written without spaces take
        # the regexp, one token per character.
        r"pi_tokens(x, dense) AS CASE WHEN dense"
        f" THEN regexp_extract_all(pi_fold_text(x), '{DENSE_TOKEN_RE}')"
        r" ELSE list_filter(string_split(regexp_replace(pi_fold_text(x), '[\p{P}\t\n\r]+', ' ', 'g'), ' '),"
        r" lambda s: s <> '') END",
        "pi_token_hashes(x, dense) AS list_transform(pi_tokens(x, dense), lambda s: hash(s))",
        # Fraction of n-gram occurrences that repeat an earlier one, where it can exceed the threshold (else 0,
        # as when too few to judge), for the field of `len_h` hashes at `start` of the record's hashes `all`,
        # with `uniq` distinct ones (quality.token_stats). Each distinct token but the last n - 1 starts a
        # distinct n-gram, so distinct n-grams >= distinct tokens - (n - 1): a cheap bound that spares most rows
        # the n-gram set. (Lengths are unsigned in DuckDB: cast before subtracting, or a 1-token field overflows.)
        f"pi_repeat_frac(all_h, start, len_h, uniq) AS CASE WHEN len_h::BIGINT - {n - 1} >= {rep.min_ngrams} AND 1 - ("
        f"uniq::BIGINT - {n - 1}) / (len_h::BIGINT - {n - 1}) > {rep.max_repeated_ngram_fraction}"
        f" THEN 1 - list_unique(list_transform(list_zip({grams}, true), lambda g: hash(g)))"
        f" / (len_h::BIGINT - {n - 1}) ELSE 0 END",
        # Longest run of one element: equal neighbours as a '1'/'0' string, longest block of '1's + 1.
        "pi_longest_run(xs) AS CASE WHEN len(xs) = 0 THEN 0 ELSE coalesce(list_max(list_transform("
        "regexp_extract_all(array_to_string(list_transform(list_zip(xs, xs[2:], true),"
        " lambda p: CASE WHEN p[1] = p[2] THEN '1' ELSE '0' END), ''), '1+'), lambda r: length(r))), 0) + 1 END",
        # Runs of one character, within tokens (punctuation is not part of tokens, so markdown rules and
        # table borders are not loops; in scripts without spaces a character is a token: token runs).
        f"pi_char_run(t) AS coalesce(list_max(list_transform(list_filter(t, lambda s: length(s) >= "
        f"{rep.max_char_run}), lambda s: pi_longest_run(string_split(s, '')))), 0)",
    ):
        con.execute(f"CREATE OR REPLACE MACRO {macro}")


FEATURES_SQL = f"""
WITH w AS (
  SELECT *, pi_tokens(instruction, dense) AS wi, pi_tokens(input, dense) AS wn, pi_tokens(output, dense) AS wo
  FROM (SELECT *, lang[-4:] IN ({", ".join(f"'{s}'" for s in SCRIPTS_WITHOUT_SPACES)}) AS dense FROM rows)
), t AS (
  SELECT *, list_transform(wi, lambda s: hash(s)) AS hi, list_transform(wn, lambda s: hash(s)) AS hn,
         list_transform(wo, lambda s: hash(s)) AS ho
  FROM w
)
SELECT rid, lang, id, is_source, kept_verbatim, truncated_fields, protected_spans_ok,
  length(trim(instruction)) = 0 AS empty_instruction, length(trim(output)) = 0 AS empty_output,
  concat_ws(', ', CASE WHEN regexp_matches(instruction, '{BAD_CHARS_RE}') THEN 'instruction' END,
                  CASE WHEN regexp_matches(input, '{BAD_CHARS_RE}') THEN 'input' END,
                  CASE WHEN regexp_matches(output, '{BAD_CHARS_RE}') THEN 'output' END) AS bad_fields,
  len(hi) AS n_instruction, len(hn) AS n_input, len(ho) AS n_output,
  greatest(pi_char_run(wi), pi_char_run(wn), pi_char_run(wo)) AS char_run,
  length(instruction) + length(input) + length(output) AS rec_len,
  hash(hi, hn, ho) AS dedup_key,
  list_concat(hi, hn, ho) AS token_hashes
FROM t
"""

# Per-row comparison with the English source row of the same id, and the row's span check (table spans).
COMPARE_SQL = """
SELECT f.* EXCLUDE (token_hashes, n_instruction, n_input, n_output),
  pi_repeat_frac(f.token_hashes, 0, f.n_instruction, ts.uniq_instruction) AS rep_instruction,
  pi_repeat_frac(f.token_hashes, f.n_instruction, f.n_input, ts.uniq_input) AS rep_input,
  pi_repeat_frac(f.token_hashes, f.n_instruction + f.n_input, f.n_output, ts.uniq_output) AS rep_output,
  ts.token_run,
  s.rid IS NULL AND NOT f.is_source AS no_source,
  -- Token-set Jaccard with the source where it can be high (table overlap_pairs): |A & B| = |A| + |B| - |A | B|.
  CASE WHEN o.rid IS NOT NULL THEN CASE WHEN o.uniq_union = 0 THEN 0
                                        ELSE (ts.uniq_all + o.source_uniq - o.uniq_union) / o.uniq_union END
       WHEN NOT f.is_source AND s.rid IS NOT NULL THEN 0 END AS source_similarity,
  -- Length ratio of the prose: the source's spans kept verbatim in the translation are left out on both sides,
  -- bucketed by the source's prose length (short fields vary more).
  CASE WHEN NOT f.is_source AND s.rec_len - coalesce(k.kept_span_chars, 0) >= {min_source_chars}
        AND NOT coalesce(f.kept_verbatim, false)
       THEN ln((greatest(f.rec_len - coalesce(k.kept_span_chars, 0), 0) + 1)
               / (s.rec_len - coalesce(k.kept_span_chars, 0) + 1)) END AS log_length_ratio,
  CASE WHEN NOT f.is_source AND s.rid IS NOT NULL THEN least({buckets} - 1, greatest(0, floor(log2(
    greatest(s.rec_len - coalesce(k.kept_span_chars, 0), 1) / greatest({min_source_chars}, 1)))))::INT
  END AS length_bucket,
  k.span_reason, k.span_detail
FROM feat f LEFT JOIN (SELECT rid, id, token_hashes, rec_len FROM feat WHERE is_source) s
  ON s.id = f.id AND NOT f.is_source
  LEFT JOIN spans k ON k.rid = f.rid
  JOIN token_stats ts ON ts.rid = f.rid
  LEFT JOIN overlap_pairs o ON o.rid = f.rid
"""

# Translated rows whose token-set Jaccard with their source can be high: similar length and a shared token
# among the first few (cheap tests that skip nearly every real translation); with both token lists and the
# source's distinct count, for quality.token_stats.create_overlap_table.
OVERLAP_CANDIDATES_SQL = """
SELECT f.rid, f.token_hashes AS tokens, s.token_hashes AS source_tokens, s.uniq_all AS source_uniq
FROM feat f JOIN (SELECT rid, id, token_hashes, rec_len, uniq_all FROM feat JOIN token_stats USING (rid)
                  WHERE is_source) s ON s.id = f.id
WHERE NOT f.is_source AND NOT coalesce(f.kept_verbatim, false)
  AND abs(ln((f.rec_len + 1) / (s.rec_len + 1))) < 0.5
  AND list_has_any(f.token_hashes[:8], s.token_hashes)
"""


@dataclass(frozen=True)
class Check:
    """One filter: a SQL boolean over the compared features, and a SQL string saying why it failed."""

    name: str
    fails: str
    detail: str


def no_source_check() -> Check:
    return Check("no_source", "no_source", "'no source row with this id'")


def empty_check() -> Check:
    return Check("empty", "empty_instruction OR empty_output",
                 "'empty ' || concat_ws(' and ', CASE WHEN empty_instruction THEN 'instruction' END,"
                 " CASE WHEN empty_output THEN 'output' END)")


def bad_chars_check() -> Check:
    return Check("bad_chars", "bad_fields <> ''", "'U+FFFD or control character in ' || bad_fields")


def truncated_check() -> Check:
    return Check("truncated", "coalesce(len(truncated_fields), 0) > 0",
                 "'engine hit max length in ' || array_to_string(truncated_fields, ', ')")


def span_checks() -> list[Check]:
    """Table `spans` (span_reason, span_detail) joined into `cmp`."""
    return [Check(reason, f"span_reason = '{reason}'", "span_detail") for reason in SPAN_REASONS]


def repetition_check(rep: RepetitionParams) -> Check:
    worst_rep = "greatest(rep_instruction, rep_input, rep_output)"
    return Check(
        "repetition",
        f"{worst_rep} > {rep.max_repeated_ngram_fraction} OR token_run >= {rep.max_token_run}"
        f" OR char_run >= {rep.max_char_run}",
        f"CASE WHEN {worst_rep} > {rep.max_repeated_ngram_fraction} THEN printf('%.0f%% of {rep.ngram}-grams "
        f"repeated in %s', 100 * {worst_rep}, CASE {worst_rep} WHEN rep_output THEN 'output' "
        "WHEN rep_instruction THEN 'instruction' ELSE 'input' END) "
        f"WHEN token_run >= {rep.max_token_run} THEN printf('one token %d times in a row', token_run) "
        "ELSE printf('one character %d times in a row', char_run) END")


def untranslated_check(params: UntranslatedParams) -> Check:
    threshold = params.max_similarity
    return Check("untranslated", f"coalesce(source_similarity >= {threshold}, false)",
                 "printf('token overlap with the source %.2f >= " + f"{threshold}" + "', source_similarity)")


def llm_checks() -> list[Check]:
    """Table `llm_flags` (llm_reason, llm_detail) joined into the verdict."""
    return [Check(reason, f"llm_reason = '{reason}'", "llm_detail") for reason in LLM_REASONS]


def language_bound_check() -> Check:
    """Table `lb_flags` (lb_reject, lb_family, lb_match) joined into the verdict."""
    return Check("language_bound", "coalesce(lb_reject, false)",
                 "'task depends on English form (' || lb_family || '): ' || lb_match")


def length_ratio_check(lr: LengthRatioParams) -> Check:
    """The per-language stats joined as `lr` (med, mad, n) and per source-length bucket as `lrb`."""
    # The language's stats for sources of this length (lrb) where that bucket has enough rows, else its own.
    med, mad = "coalesce(lrb.med, lr.med)", "coalesce(lrb.mad, lr.mad)"
    bound = f"{lr.mad_factor} * 1.4826 * greatest({mad}, {lr.min_mad})"  # MAD as a standard deviation
    return Check(
        "length_ratio",
        f"coalesce(lr.n >= {lr.min_rows} AND abs(log_length_ratio - {med}) > {bound}, false)",
        f"printf('log length ratio %.2f, median %.2f for sources of this length, bound +-%.2f', "
        f"log_length_ratio, {med}, {bound})")


def verdict_sql(checks: Sequence[Check], source_reasons: frozenset[str]) -> str:
    """SELECT of (rid, lang, id, reason, detail): the first failed check, the others named in detail.
    Checks whose reason is not in `source_reasons` are masked for source rows."""
    def fails(check: Check) -> str:
        guard = "" if check.name in source_reasons else "NOT is_source AND "
        return f"({guard}coalesce({check.fails}, false))"

    if not checks:
        return "SELECT rid, lang, id, NULL::VARCHAR AS reason, NULL::VARCHAR AS detail FROM cmp"
    reason = "CASE " + " ".join(f"WHEN {fails(c)} THEN '{c.name}'" for c in checks) + " END"
    detail = "CASE " + " ".join(f"WHEN {fails(c)} THEN {c.detail}" for c in checks) + " END"
    failed = "[" + ", ".join(f"CASE WHEN {fails(c)} THEN '{c.name}' END" for c in checks) + "]"
    return f"""
SELECT rid, lang, id, reason,
  detail || CASE WHEN len(others) > 0 THEN '; also failed: ' || array_to_string(others, ', ') ELSE '' END
    AS detail
FROM (
  SELECT rid, lang, id, {reason} AS reason, {detail} AS detail,
    list_filter({failed}, lambda x: x IS NOT NULL)[2:] AS others
  FROM cmp LEFT JOIN lr USING (lang) LEFT JOIN lrb USING (lang, length_bucket) LEFT JOIN lb_flags USING (rid)
    LEFT JOIN llm_flags USING (rid)
)
"""
