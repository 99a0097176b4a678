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

from collections.abc import Sequence

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
    n = len(texts)
    long_rows = np.flatnonzero(np.fromiter((len(t) > prefix_chars for t in texts), bool, n))
    found = np.zeros(n, bool)
    if not len(long_rows):
        return found
    probe, rest = long_rows[:PROBE_TEXTS], long_rows[PROBE_TEXTS:]
    found[probe] = _settled([texts[i] for i in probe.tolist()], accepted, prefix_chars, prefix_accept)
    if len(rest) and found[probe].mean() >= PAYS_FROM:
        found[rest] = _settled([texts[i] for i in rest.tolist()], accepted, prefix_chars, prefix_accept)
    return found


def _settled(texts: list[str], accepted: frozenset[str], prefix_chars: int, prefix_accept: float) -> np.ndarray:
    codes, flat = lid_model.ranked(texts, k=1, max_chars=prefix_chars)
    probability = np.frombuffer(flat, np.float64)
    ours = np.fromiter((code.split("_", 1)[0] in accepted for code in codes), bool, len(codes))
    return ours & (probability >= prefix_accept)
