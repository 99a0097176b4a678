"""What an export wrote: one ConfigExport per language and the ExportResult the card and the CLI read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dataset_builder.export.licenses import LicenseComponent
from dataset_builder.responder_card import ResponderProvenance
from schemas.languages import Language


@dataclass
class ConfigExport:
    """One language's part of the export."""

    config: str
    language: Language
    counts: dict[str, int]  # split -> rows
    files: dict[str, list[str]]  # split -> shard paths relative to the export folder
    num_bytes: dict[str, int]  # split -> Arrow bytes of the text columns
    download_size: int  # bytes of this config's Parquet shards
    models: dict[str, int]  # model name -> rows
    sources: dict[str, int]  # source name -> rows
    smoke: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class ExportResult:
    out: Path
    configs: list[ConfigExport]
    default_config: str
    license: str | list[str]
    smoke: bool
    components: list[LicenseComponent] = field(default_factory=list)
    empty_languages: list[Language] = field(default_factory=list)  # no record left: no config
    responders: ResponderProvenance = field(default_factory=ResponderProvenance)  # generated outputs

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        return {c.config: dict(c.counts) for c in self.configs}
