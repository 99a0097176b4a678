"""fastText on a text's beginning first (quality.langid step 3): a long text whose first `prefix_chars`
characters (params: quality.filters.lang_id) lid.176 already gives, clearly (probability >= `prefix_accept`), to
the expected language is accepted without reading the rest; every other text gets the full judgement on its whole prose.

Why: lid.176's cost grows with the characters it reads (about 45 us of CPU at 20 characters, 95 at 60, 195 at
the 200 of `max_chars`, on the benchmark's prose), and almost every text of a translated dataset is in its
language. This only accepts: a text is never rejected on its beginning, and a text the full judgement would
accept is accepted either way. It changes a verdict only where the beginning is clearly the expected language
and the whole prose is not (a mixed text): measured on the real sets by `python -m benchmarks.bench_langid`
(`prefix_changed`) and by `make bench-fidelity`."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from quality import lid_model

# The first this many long texts of a batch (one language in the filter stage) show whether reading the beginning
# first pays: it costs about half a full reading, so it does only where at least PAYS_FROM of them are settled
# (real translations: about 60% of all texts, most of the rest being too short; the benchmark's synthetic
# letter-substituted "translations": about 10%). Below it, the rest of the batch gets the full judgement directly.
PROBE_TEXTS = 1000
PAYS_FROM = 0.5


def accepted_on_prefix(texts: Sequence[str], accepted: frozenset[str], prefix_chars: int, prefix_accept: float
                       ) -> np.ndarray:
    """Bool per text: longer than `prefix_chars` (shorter ones get the full judgement directly), and lid.176's
    first guess on its first `prefix_chars` characters is a language of `accepted` (ISO 639-3 prefixes of FLORES
    codes) with probability >= `prefix_accept`. Past the first PROBE_TEXTS long texts, only if it pays there."""
    found, rest = _probe(texts, accepted, prefix_chars, prefix_accept)
    if len(rest):
        found[rest] = _settled([texts[i] for i in rest.tolist()], accepted, prefix_chars, prefix_accept)
    return found


def ranked_after_prefix(texts: Sequence[str], accepted: frozenset[str], prefix_chars: int | None,
                        prefix_accept: float) -> Callable[[], tuple[np.ndarray, list[str], array]]:
    """`accepted_on_prefix` and `lid_model.ranked` (k=2) of the texts it does not settle, in one pass of the
    workers, started now and collected by calling the result: (settled per text, codes and probabilities of the
    others, flat; `prefix_chars` None: the whole of every text). The probe runs now, in this process; the rest of
    the beginnings, where it pays, are read in the workers just before the whole of a text not settled on them."""
    settled, rest = _probe(texts, accepted, prefix_chars, prefix_accept)
    flags = np.zeros(len(texts), bool)
    flags[rest] = True
    others = np.flatnonzero(~settled)
    first = lid_model.FirstRead(flags[others].tolist(), _accepted_labels(accepted), prefix_chars, prefix_accept) \
        if len(rest) and prefix_chars else lid_model.FirstRead([False] * len(others), frozenset(), 0, 1.0)
    collect = lid_model.ranked_later([texts[i] for i in others.tolist()], first)

    def result() -> tuple[np.ndarray, list[str], array]:
        codes, probabilities, on_prefix = collect()
        settled[others[on_prefix]] = True
        return settled, codes, probabilities
    return result


def _probe(texts: Sequence[str], accepted: frozenset[str], prefix_chars: int | None, prefix_accept: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """Settled on the beginning among the first PROBE_TEXTS long texts, and the rest of the long texts where that
    pays (at least PAYS_FROM of those settled; else none)."""
    n = len(texts)
    found = np.zeros(n, bool)
    if not prefix_chars:
        return found, np.zeros(0, np.int64)
    long_rows = np.flatnonzero(np.fromiter((len(t) > prefix_chars for t in texts), bool, n))
    if not len(long_rows):
        return found, long_rows
    probe, rest = long_rows[:PROBE_TEXTS], long_rows[PROBE_TEXTS:]
    found[probe] = _settled([texts[i] for i in probe.tolist()], accepted, prefix_chars, prefix_accept)
    return found, rest if len(rest) and found[probe].mean() >= PAYS_FROM else rest[:0]


def _settled(texts: list[str], accepted: frozenset[str], prefix_chars: int, prefix_accept: float) -> np.ndarray:
    codes, flat = lid_model.ranked(texts, k=1, max_chars=prefix_chars)
    probability = np.frombuffer(flat, np.float64)
    ours = np.fromiter((code.split("_", 1)[0] in accepted for code in codes), bool, len(codes))
    return ours & (probability >= prefix_accept)


@cache
def _accepted_labels(accepted: frozenset[str]) -> frozenset[str]:
    """lid.176's labels that `_settled` takes for a language of `accepted` (its workers see labels, not codes)."""
    mapping = lid_model.label_map()
    return frozenset(label for label in lid_model.labels() if mapping.get(label, label).split("_", 1)[0] in accepted)
