"""The responder in the dataset card (Bactrian-X's recipe): which model wrote the outputs, per config,
and under which licence.

In generate mode each row's `output_model` names the responder's fingerprint (or `translated`). The
export counts them per language file, and each responder becomes a licence component beside the data
sources and the translation model. Llama, Gemma and Qwen weights come under different licences, and
some families differ by size, so a responder this table does not know is refused with one line naming
the `export.licenses` entry to add, as the translation model is. A smoke responder (`smoke:` prefix)
imposes nothing and is marked smoke.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.errors import PolyinstructError
from schemas.models import SMOKE_MODEL_PREFIX

TRANSLATED = "translated"  # output_model of a row whose output was translated, not generated
# Responder weights, matched as a lowercase substring of the fingerprint, most specific first. Qwen is
# left out on purpose: its licence depends on the size (apache-2.0, qwen, qwen-research).
RESPONDER_LICENSES: tuple[tuple[str, str], ...] = (
    ("llama-3.3", "llama3.3"), ("llama-3.2", "llama3.2"), ("llama-3.1", "llama3.1"), ("meta-llama-3-", "llama3"),
    ("gemma", "gemma"), ("mistral-7b-instruct", "apache-2.0"), ("phi-3", "mit"),
)
Component = tuple[str, str, str | None, str]  # (kind, name, license, note), as export's LicenseComponent


@dataclass
class ResponderProvenance:
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # language file stem -> responder -> rows

    @property
    def responders(self) -> list[str]:
        return sorted({m for counts in self.rows.values() for m in counts})

    def components(self, extra: Mapping[str, str]) -> list[Component]:
        return [responder_component(m, extra) for m in self.responders]

    def markdown(self) -> list[str]:
        """The card's "Response model" section (nothing when every output was translated)."""
        if not self.responders:
            return []
        rows = [f"| {lang} | `{m}` | {n} | {'yes' if m.startswith(SMOKE_MODEL_PREFIX) else 'no'} |"
                for lang, counts in sorted(self.rows.items()) for m, n in sorted(counts.items())]
        lines = ["## Response model", "",
                 "Outputs generated in each language by an instruction-tuned LM (Bactrian-X's recipe), not"
                 " translated. Each row's `output_model` column names it.", "",
                 "| config | responder | rows | smoke |", "| --- | --- | --- | --- |", *rows, ""]
        if any(m.startswith(SMOKE_MODEL_PREFIX) for m in self.responders):
            lines += ["At least one config's outputs come from a **smoke responder**: they are random text.", ""]
        return lines


def responder_component(model: str, extra: Mapping[str, str]) -> Component:
    if model.startswith(SMOKE_MODEL_PREFIX):
        return ("responder", model, None, "smoke model: random weights, generated noise")
    lowered = model.lower()
    for key, license_id in (*extra.items(), *RESPONDER_LICENSES):
        if key.lower() in lowered:
            return ("responder", model, license_id, f"matches '{key}'")
    raise PolyinstructError(
        f"export: no license known for response model '{model}'; add it to export.licenses in params.yaml,"
        f" e.g. `licenses: {{\"{model}\": apache-2.0}}` (the Hub license id of its weights, or `other`)")


def responder_provenance(files: Sequence[Path]) -> ResponderProvenance:
    """Rows per responder in each filtered language file (files without `output_model`: none)."""
    found = ResponderProvenance()
    for path in files:
        if "output_model" not in pq.read_schema(path).names:
            continue
        column = pq.read_table(path, columns=["output_model"]).column("output_model")
        generated = column.filter(pc.and_(pc.is_valid(column), pc.not_equal(column, TRANSLATED)))
        counts = pc.value_counts(generated)
        if len(counts):
            found.rows[Path(path).stem] = dict(sorted(zip(counts.field("values").to_pylist(),
                                                          counts.field("counts").to_pylist(), strict=True)))
    return found
