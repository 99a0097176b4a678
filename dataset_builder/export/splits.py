"""The split of a record: a pure function of its id and `export.seed` (md5 of f"{seed}:{id}"), so the same
ids are held out in every language and a rerun writes identical bytes."""

from __future__ import annotations

import hashlib

from schemas.export_layout import SPLITS
from schemas.params import ExportParams

HASH_HEX_DIGITS = 15  # 60 bits of the md5: fits UBIGINT and a double's exact integers up to rounding
HASH_SCALE = float(1 << (4 * HASH_HEX_DIGITS))


def split_for_id(record_id: str, seed: int, validation_fraction: float, test_fraction: float) -> str:
    """Reference definition of the split (the export computes the same thing vectorised in DuckDB):
    u = first 60 bits of md5(f"{seed}:{id}") / 2**60; test below test_fraction, then validation."""
    u = int(hashlib.md5(f"{seed}:{record_id}".encode()).hexdigest()[:HASH_HEX_DIGITS], 16) / HASH_SCALE
    if u < test_fraction:
        return "test"
    return "validation" if u < test_fraction + validation_fraction else "train"


SPLIT_SQL = f"""
WITH keyed AS (
    SELECT *,
        ('0x' || substr(md5($seed || ':' || id), 1, {HASH_HEX_DIGITS}))::UBIGINT::DOUBLE / {HASH_SCALE} AS u
    FROM rows
)
SELECT id, lang, instruction, input, output, model,
    CASE WHEN u < $test THEN 'test' WHEN u < $test_plus_validation THEN 'validation' ELSE 'train' END AS split
FROM keyed
-- natural id order (sample-2 before sample-10), then the id itself: stable across runs
ORDER BY regexp_replace(id, '-[0-9]+$', ''), TRY_CAST(regexp_extract(id, '-([0-9]+)$', 1) AS UBIGINT) NULLS LAST,
    id
"""


def active_splits(params: ExportParams) -> tuple[str, ...]:
    """Splits with a non-zero share; a zero fraction leaves that split out of every config."""
    share = {"train": 1.0, "validation": params.validation_fraction, "test": params.test_fraction}
    return tuple(s for s in SPLITS if share[s] > 0)
