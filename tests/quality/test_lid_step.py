"""The filter stage's language-ID step (quality.lid_step): pipelined over languages (the workers read the next
language while lingua finishes this one) with the verdicts of judging one language at a time, and lingua's models
released per family but for those the next family shares."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from quality import langid, lid_lingua, lid_model, lid_prefix, lid_sql, lid_step
from quality.langid import JudgeConfig
from schemas.languages import resolve
from schemas.params import LangIdParams

ENGLISH = "South Africa is a country at the southern tip of the African continent with eleven official languages."
TEXTS: dict[str, list[str]] = {
    "deu_Latn": ["Berlin ist die Hauptstadt von Deutschland und mit fast vier Millionen Einwohnern die größte Stadt "
                 "des Landes.", "Rechne kg in Pfund um", ENGLISH, ENGLISH + " Berlin ist die Hauptstadt.",
                 "Schreibe ein kurzes Gedicht über den Herbst und die fallenden Blätter im Wald."],
    "spa_Latn": ["Galicia es una comunidad autónoma situada en el noroeste de la península ibérica y su capital es "
                 "Santiago.", "Galicia é unha comunidade autónoma situada no noroeste da península Ibérica.",
                 ENGLISH, "Escribe un poema corto sobre el otoño y las hojas que caen en el bosque."],
    "por_Latn": ["Descreva uma pessoa famosa da história do seu país e explique por que ela é importante hoje.",
                 "Describe una persona famosa de la historia de tu país.", ENGLISH],
    "rus_Cyrl": ["Москва является столицей России и крупнейшим городом страны с населением более двенадцати "
                 "миллионов человек.", "Київ є столицею України і найбільшим містом країни.", ENGLISH],
    "tha_Thai": ["ประเทศไทยเป็นประเทศในเอเชียตะวันออกเฉียงใต้ มีกรุงเทพมหานครเป็นเมืองหลวง", ENGLISH],
}


class _Progress:
    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def advance(self, *args: Any) -> None:
        pass


def _connection() -> duckdb.DuckDBPyConnection:
    """Tables `rows` and `judge_rows` as the stage has them: each text an instruction, with an English source."""
    rids, ids, langs, sources, instructions, outputs = [], [], [], [], [], []
    for lang, texts in TEXTS.items():
        for k, text in enumerate(texts * 3):  # several of each: the batch is long enough for the workers
            for is_source in (True, False):
                rids.append(len(rids))
                ids.append(f"{lang}-{k}")
                langs.append("eng_Latn" if is_source else lang)
                sources.append(is_source)
                instructions.append("Source instruction." if is_source else text)
                outputs.append("Source output." if is_source else "")
    con = duckdb.connect()
    con.register("source_rows", pa.table({"rid": rids, "id": ids, "lang": langs, "is_source": sources,
                                          "instruction": instructions, "output": outputs}))
    con.execute("CREATE TABLE rows AS SELECT * FROM source_rows")
    con.execute("CREATE TABLE judge_rows AS SELECT rid, lang FROM rows WHERE NOT is_source")
    return con


def _serial_failures(con: duckdb.DuckDBPyConnection, config: JudgeConfig) -> dict[int, str]:
    """One language at a time, in this process (no workers): `langid.judge_arrays` on the step's prose."""
    failures: dict[int, str] = {}
    for lang in TEXTS:
        table = con.sql(f"SELECT rid, instruction || chr(10) || output AS text FROM rows WHERE lang = '{lang}' "
                        "ORDER BY rid").to_arrow_table()
        prose, fractions = lid_sql.prose_and_scripts(table.column("text").to_pylist(), [resolve(lang).script],
                                                     config.max_chars)
        verdicts, reasons = langid.judge_arrays(prose, fractions[resolve(lang).script], lang, config,
                                                measured=True)
        rids = table.column("rid").to_pylist()
        for i in np.flatnonzero(verdicts == langid.WRONG).tolist():
            failures[rids[i]] = reasons.get(i) or "wrong language"
    return failures


def test_the_pipelined_step_gives_the_verdicts_of_one_language_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers read each language's texts (beginnings first, past a probe of one) while this process finishes
    the language before: each language's reading is started before the previous one is finished, and the failures
    and their details are those of judging each language alone, in this process."""
    con = _connection()
    config = JudgeConfig.of()
    expected = _serial_failures(con, config)
    assert len(expected) >= 8  # English everywhere, Ukrainian for Russian ...
    monkeypatch.setattr(lid_model, "PARALLEL_MIN_TEXTS", 2)  # every batch goes to the workers
    monkeypatch.setattr(lid_prefix, "PROBE_TEXTS", 1)  # the rest of the beginnings are read in the workers
    events: list[tuple[str, str]] = []
    start, finish = langid.start_judgement, langid.Judgement.finish

    def started(prose: Any, fraction: Any, lang: str, *args: Any, **kwargs: Any) -> langid.Judgement:
        events.append(("start", lang))
        return start(prose, fraction, lang, *args, **kwargs)

    def finished(judgement: langid.Judgement) -> Any:
        events.append(("finish", judgement.expected))
        return finish(judgement)
    monkeypatch.setattr(langid, "start_judgement", started)
    monkeypatch.setattr(langid.Judgement, "finish", finished)
    run = lid_step.language_ids(con, LangIdParams(enabled=True), _Progress())
    found = dict(zip(run.failures.column("rid").to_pylist(), run.failures.column("detail").to_pylist(), strict=True))
    assert found == expected
    assert run.model_texts["prefix"] > 0 and run.model_texts["fasttext"] > 0 and run.model_texts["script"] > 0
    order = [lang for _, lang in events[::2]]
    assert len(events) == 2 * len(TEXTS) and events[0][0] == events[1][0] == "start"
    for k, lang in enumerate(order[:-1]):  # the next language is started before this one is finished
        assert events.index(("start", order[k + 1])) < events.index(("finish", resolve(lang).flores))


def test_lingua_keeps_the_models_the_next_family_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing family unloads only the languages the next family lacks (English, in every Latin-script family,
    stays loaded); the end of the step unloads all, kept ones included. The detectors are dropped either way."""
    import lingua

    lid_lingua.release_models()  # whatever earlier tests left loaded
    langid.judge(["Describe una persona famosa de la historia de tu país."], [1.0], "por_Latn")
    assert lid_lingua._DETECTORS
    loaded = {p for prefixes, _ in lid_lingua._DETECTORS for p in prefixes}
    assert "eng" in loaded and "spa" in loaded
    unloaded: list[set[str]] = []
    builder = lingua.LanguageDetectorBuilder

    class Recording:
        @staticmethod
        def from_languages(*languages: lingua.Language) -> Any:
            unloaded.append({lang.iso_code_639_3.name.lower() for lang in languages})
            return builder.from_languages(*languages)
    monkeypatch.setattr(lingua, "LanguageDetectorBuilder", Recording)
    germanic = {lid_lingua.prefix(c) for c in langid.candidates_for("deu_Latn")}
    lid_lingua.release_models(keep=germanic)
    assert not lid_lingua._DETECTORS
    assert unloaded == [loaded - germanic] and "eng" not in unloaded[0] and "spa" in unloaded[0]
    lid_lingua.release_models()  # English, kept but not used since: unloaded now
    assert unloaded == [loaded - germanic, {"eng"}]
    lid_lingua.release_models()  # nothing held: nothing to unload
    assert len(unloaded) == 2


def test_a_language_comes_out_in_row_order_even_from_a_parallel_scan() -> None:
    """The verdicts depend on the order of a language's texts (lid_prefix probes the first long ones): a large
    language scanned by two threads comes back out of order unless the slice orders it."""
    con = duckdb.connect(config={"threads": 2, "preserve_insertion_order": False})
    try:
        con.execute("CREATE TEMP TABLE lid_prose AS SELECT CASE WHEN i % 2 = 0 THEN 'deu_Latn' ELSE 'fra_Latn' END "
                    "AS lang, i AS rid, 'ein Satz' AS prose FROM range(600000) r(i) ORDER BY lang, rid")
        for lang in ("deu_Latn", "fra_Latn"):
            rids = lid_step.language_slice(con, lang).column("rid").to_numpy()
            assert len(rids) == 300000 and (np.diff(rids) > 0).all()
    finally:
        con.close()
