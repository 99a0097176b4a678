"""The LLM judge: verdict parsing, language-ID gating, pairwise in both orders, and a real judged
evaluation on the smoke judge (CTranslate2 Generator) with its memory answering a rerun."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from dataset_builder.judge_backend import open_judge
from quality.langid import matches_language
from schemas.errors import PolyinstructError
from schemas.params import JudgeParams, parse_params
from trl_training.evaluate import evaluate
from trl_training.judge import Messages, judge_pairwise, judge_pointwise, parse_preference, parse_score
from trl_training.prompt_files import read_prompt_file

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


@pytest.mark.parametrize(("verdict", "score"), [
    ("The answer is accurate and fluent. Rating: [[8]]", 8.0),
    ("Explanation... [[ 3 ]] overall", 3.0),
    ("Score: 7.5, because the answer covers 2 of 3 points", 7.5),
    ("Оценка: 6", 6.0),
    ("I give it 4/10.", 4.0),
    ("9", 9.0),
    ("Rating: [[11]]", None),  # off the scale: not clipped, not guessed
    ("The answer is good, but misses 2 points.", None),
    ("", None),
    (None, None),
])
def test_parse_score(verdict: str | None, score: float | None) -> None:
    assert parse_score(verdict, 1, 10) == score


def test_parse_preference() -> None:
    assert parse_preference("A is clearer. [[A]]") == "A"
    assert parse_preference("[[C]]") == "tie"
    assert parse_preference("[[A]] no wait [[B]]") is None
    assert parse_preference("Assistant B") is None


class ScriptedJudge:
    """A deterministic stand-in for the model, for the counting logic only (the real engine runs below)."""

    fingerprint, smoke = "scripted", False

    def __init__(self, reply: Any) -> None:
        self.reply, self.asked = reply, []

    def complete(self, conversations: Sequence[Messages]) -> list[str | None]:
        self.asked += [c[0]["content"] for c in conversations]
        return [self.reply(c[0]["content"]) for c in conversations]


def test_language_gate_and_unparseable() -> None:
    judge = ScriptedJudge(lambda text: "Rating: [[9]]" if "good answer" in text else "no idea")
    settings = JudgeParams()
    graded = judge_pointwise(judge, settings, "French", ["q1", "q2", "q3", "q4"],
                             ["good answer", "wrong language answer", "rambling", "good answer, short"],
                             [True, False, True, None])
    assert graded.scores == [9.0, 1.0, None, 9.0]  # floor for the wrong language; None (too short) is judged
    assert graded.summary == {"judged": 3, "wrong_language": 1, "unparseable": 1, "mean_score": pytest.approx(19 / 3)}
    assert len(judge.asked) == 3 and all("French" in a for a in judge.asked)


def test_pairwise_cancels_position_bias() -> None:
    settings = JudgeParams()
    always_first = ScriptedJudge(lambda _: "[[A]]")
    pair = judge_pairwise(always_first, settings, "French", ["q"] * 4, ["long answer"] * 4, ["short"] * 4,
                          [True] * 4, [True] * 4)
    assert pair["win_rate"] == 0.5 and pair["consistent_pairs"] == 0 and len(always_first.asked) == 8

    def longer(text: str) -> str:
        a = text.split("[The Start of Assistant A's Answer]\n")[1].split("\n")[0]
        b = text.split("[The Start of Assistant B's Answer]\n")[1].split("\n")[0]
        return "[[A]]" if len(a) > len(b) else "[[B]]"

    fair = ScriptedJudge(longer)
    pair = judge_pairwise(fair, settings, "French", ["q"] * 3, ["long answer"] * 3, ["short"] * 3,
                          [True, True, True], [True, False, True])
    assert pair == {"pairs": 3, "judged_pairs": 2, "language_gated_pairs": 1, "unparseable_verdicts": 0,
                    "consistent_pairs": 2, "win_rate": 1.0}


def test_bad_templates_fail_at_parse() -> None:
    with pytest.raises(PolyinstructError, match=r"must contain \{answer\}"):
        parse_params({"evaluate": {"judge": {"template": "Rate {question}"}}})
    with pytest.raises(PolyinstructError, match="scale_min"):
        parse_params({"evaluate": {"judge": {"scale_min": 5, "scale_max": 5}}})


@pytest.fixture(scope="module")
def judged(trained: dict[str, Any], smoke_lm: Path, export_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("judged")
    base = trained["params"]
    params = base.model_copy(update={"evaluate": base.evaluate.model_copy(update={
        "max_eval_examples": 2, "max_generation_prompts": 3, "max_new_tokens": 8,
        "judge": JudgeParams(cache=str(root / "judge_memory"),
                             decoding=base.evaluate.judge.decoding.model_copy(update={"max_new_tokens": 8}))})})
    prompts = root / "test_fr.jsonl"  # a cut last line, as the real HPLT test_hi.jsonl has
    prompts.write_text('{"id": "a", "prompt": "Quelle est la capitale de la France ?"}\n'
                       '{"id": "b", "prompt": "Écris un court poème sur la mer, s\'il te plaît."}\n'
                       '{"id": "c", "prompt": "Donne-moi trois conseils pour bien dormir."}\n'
                       '{"id": "d", "prompt": "Pourquoi le ciel est-il ble', encoding="utf-8")
    backend = open_judge("smoke", params)
    out = root / "eval.json"
    result = evaluate(smoke_lm, trained["adapter"], export_dir, out, params, prompt_files=[prompts], judge=backend,
                      language_check=matches_language)
    first = backend.stats()
    again = open_judge("smoke", params)
    evaluate(smoke_lm, trained["adapter"], export_dir, root / "again.json", params, prompt_files=[prompts],
             judge=again, language_check=matches_language)
    return {"result": result, "out": out, "first": first, "again": again.stats()}


@pytest.mark.slow
def test_judged_evaluation_on_the_smoke_judge(judged: dict[str, Any]) -> None:
    result = judged["result"]
    row = result["languages"]["fra_Latn"]
    assert row["prompts"] == 3 and row["quarantined_lines"] == 1
    assert result["quarantined"][0]["line"] == 4 and "not valid JSON" in result["quarantined"][0]["reason"]
    for side in ("base", "adapter"):
        judged_n, wrong = row[f"judge_judged_{side}"], row[f"judge_wrong_language_{side}"]
        assert judged_n + wrong == 3
        assert 0 <= row[f"judge_unparseable_{side}"] <= judged_n
    assert row["pairwise"]["pairs"] == 3
    # Identity with every score, and the smoke marking everywhere.
    assert row["judge_model"].startswith("smoke:") and len(row["judge_template_sha256"]) == 16
    assert result["smoke_judge"] and result["judge"]["smoke"] and "SMOKE JUDGE" in result["judge"]["note"]
    markdown = judged["out"].with_suffix(".md").read_text(encoding="utf-8")
    assert "## Judged generations" in markdown and "SMOKE JUDGE" in markdown and "test_fr.jsonl:4" in markdown
    item = result["generations"]["fra_Latn"][0]
    assert {"base_judge_score", "adapter_judge_verdict"} <= set(item)
    assert json.loads(judged["out"].read_text(encoding="utf-8"))["judge"]["model"] == row["judge_model"]


@pytest.mark.slow
def test_judge_memory_answers_a_rerun(judged: dict[str, Any]) -> None:
    assert judged["first"]["generated"] > 0
    assert judged["again"]["generated"] == 0
    assert judged["again"]["cache_hits"] == judged["first"]["generated"] + judged["first"]["cache_hits"]


def test_every_registry_language_names_a_prompt_file(tmp_path: Path) -> None:
    from schemas.languages import BACTRIAN_X

    for lang in BACTRIAN_X:
        for code in {lang.iso639_1 or lang.flores, lang.flores}:
            path = tmp_path / f"test_{code}.jsonl"
            path.write_text('{"id": 1, "prompt": "x"}\n', encoding="utf-8")
            assert read_prompt_file(path).lang == lang.flores, path.name
