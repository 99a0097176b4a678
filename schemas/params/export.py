"""params.yaml `export`: the HF datasets layout and its licences."""

from __future__ import annotations

from pydantic import Field, model_validator

from schemas.params.section import Section


class ExportParams(Section):
    name: str = "polyinstruct-demo"
    pretty_name: str = "polyinstruct demo (smoke model)"
    seed: int = 0
    validation_fraction: float = Field(default=0.05, ge=0, lt=1)
    test_fraction: float = Field(default=0.05, ge=0, lt=1)
    max_shard_mb: float = Field(default=500, gt=0)  # every Parquet shard stays under this size
    # Extra license table entries: a source name (the `{source}` in ids, e.g. mydata) or a substring of
    # the translation model name -> a Hub license id (cc-by-4.0, apache-2.0, other, ...).
    licenses: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fractions(self) -> ExportParams:
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("validation_fraction + test_fraction must be below 1")
        return self
