"""params.yaml `evaluate` (the judge and its rubrics) and `report`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.params.responses import DecodingParams, EndpointParams
from schemas.params.section import Section

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


class JudgeParams(Section):
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


class EvaluateParams(Section):
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


class ReportParams(Section):
    examples: int = Field(default=5, ge=0)  # rejected rows shown per language and reason in rejects.html
    dvc_plots: bool = True  # render `dvc plots show` with the local template into reports/plots
