"""Licence policy of the export: which licence each source and translation model imposes, and the
most restrictive combination of them (never guessed: an unknown source needs an `export.licenses` entry)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from schemas.errors import PolyinstructError
from schemas.export_layout import is_smoke_model


@dataclass(frozen=True)
class KnownSource:
    pattern: str  # regex searched in the source name (the `{source}` of `{source}-{index}` ids)
    license: str  # Hub license id
    hub_id: str | None
    what: str


# Sources we recognise. Unknown sources need an `export.licenses` entry: we never guess a license.
SOURCE_LICENSES: tuple[KnownSource, ...] = (
    KnownSource(r"^sample$", "cc-by-nc-4.0", "tatsu-lab/alpaca", "Alpaca sample embedded in polyinstruct"),
    KnownSource(r"(^|[-_.])alpaca([-_.]|$)", "cc-by-nc-4.0", "tatsu-lab/alpaca", "Stanford Alpaca"),
    KnownSource(r"(^|[-_.])dolly([-_.]|$)", "cc-by-sa-3.0", "databricks/databricks-dolly-15k",
                "Databricks Dolly 15k"),
)
# Translation model weights, matched as a lowercase substring of the model name.
MODEL_LICENSES: tuple[tuple[str, str], ...] = (("nllb", "cc-by-nc-4.0"), ("m2m100", "mit"))
# What each license imposes. A mix takes the union of terms: the most restrictive combination.
LICENSE_TERMS: dict[str, frozenset[str]] = {
    "mit": frozenset(),
    "apache-2.0": frozenset(),
    "cc-by-4.0": frozenset({"BY"}),
    "cc-by-sa-3.0": frozenset({"BY", "SA"}),
    "cc-by-sa-4.0": frozenset({"BY", "SA"}),
    "cc-by-nc-4.0": frozenset({"BY", "NC"}),
    "cc-by-nc-sa-4.0": frozenset({"BY", "NC", "SA"}),
}
TERMS_LICENSE: dict[frozenset[str], str] = {
    frozenset({"BY"}): "cc-by-4.0",
    frozenset({"BY", "SA"}): "cc-by-sa-4.0",  # BY-SA 3.0 allows adaptations under later BY-SA versions
    frozenset({"BY", "NC"}): "cc-by-nc-4.0",
    frozenset({"BY", "NC", "SA"}): "cc-by-nc-sa-4.0",
}


@dataclass(frozen=True)
class LicenseComponent:
    kind: str  # source | model
    name: str
    license: str | None  # None: imposes nothing (a smoke model's random weights)
    note: str


def source_component(name: str, extra: Mapping[str, str]) -> tuple[LicenseComponent, str]:
    """License and `source_datasets` entry of one data source."""
    if name in extra:
        return LicenseComponent("source", name, extra[name], "data.sources / export.licenses"), f"extended|other-{name}"
    for known in SOURCE_LICENSES:
        if re.search(known.pattern, name.lower()):
            entry = f"extended|{known.hub_id}" if known.hub_id else f"extended|other-{name}"
            return LicenseComponent("source", name, known.license, known.what), entry
    raise PolyinstructError(
        f"export: no license known for data source '{name}' (ids '{name}-N'); add it to export.licenses in"
        f" params.yaml, e.g. `licenses: {{{name}: cc-by-4.0}}` (a Hub license id, or `other`)"
    )


def model_component(model: str, extra: Mapping[str, str]) -> LicenseComponent:
    if is_smoke_model(model):
        return LicenseComponent("model", model, None, "smoke model: random weights, no translation")
    lowered = model.lower()
    for key, license_id in (*extra.items(), *MODEL_LICENSES):
        if key.lower() in lowered:
            return LicenseComponent("model", model, license_id, f"matches '{key}'")
    raise PolyinstructError(
        f"export: no license known for translation model '{model}'; add it to export.licenses in params.yaml,"
        f" e.g. `licenses: {{\"{model}\": apache-2.0}}` (a Hub license id, or `other`)"
    )


def combine_licenses(licenses: list[str]) -> str | list[str]:
    """The most restrictive combination: one license stays itself; a mix of known ones takes the union
    of their terms; anything we cannot reason about makes the result `other`."""
    distinct = sorted(set(licenses))
    if not distinct:
        return "other"
    if len(distinct) == 1:
        return distinct[0]
    if any(lic not in LICENSE_TERMS for lic in distinct):
        return "other"
    terms = frozenset().union(*(LICENSE_TERMS[lic] for lic in distinct))
    if not terms:  # only permissive licenses: all of them apply
        return distinct
    return TERMS_LICENSE[terms | {"BY"}]
