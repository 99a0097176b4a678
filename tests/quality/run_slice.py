"""A small real run for the report tests: the embedded sample through the real ingest, filter, validate and
report commands, inside a DVC repository with the project's dvc.yaml (so `dvc plots show` renders its
declared plots). Translation is the one stand-in (the smoke model costs minutes): each language gets a
deterministic rewrite of the English text, with defects planted so that the filters reject rows for
several reasons."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from schemas.artifacts import write_parquet
from schemas.records import TRANSLATED_SCHEMA
from tests.conftest import REPO_ROOT, run_cli

TARGETS = ("fra_Latn", "rus_Cyrl")
_CYRILLIC = str.maketrans("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                          "абцдефгхийклмнопярстуввхызАБЦДЕФГХИЙКЛМНОПЯРСТУВВХЫЗ")


def _rewrite(text: str, lang: str) -> str:
    """Every alphabetic word changed (so the text is not `untranslated`); digits and punctuation kept."""
    if lang == "rus_Cyrl":
        return text.translate(_CYRILLIC)
    return re.sub(r"[A-Za-z]{2,}", lambda m: m.group(0)[::-1].lower() + "e", text)


def _translated(source: pa.Table, lang: str) -> pa.Table:
    rows = []
    for i, rec in enumerate(source.to_pylist()):
        row = {"id": rec["id"], "lang": lang, "model": "smoke:stand-in", "smoke": True, "truncated_fields": [],
               "protected_spans_ok": True, "kept_verbatim": False,
               **{f: _rewrite(rec[f], lang) for f in ("instruction", "input", "output")}}
        if i % 11 == 3:  # planted defects, each a different reject reason
            row["output"] = ""
        elif i % 13 == 5:
            row.update({f: rec[f] for f in ("instruction", "input", "output")})
        elif i % 17 == 7:
            row["output"] = "ла " * 60
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=TRANSLATED_SCHEMA)


def _eval_result(mixture: str, loss_shift: float) -> dict:
    """What `polyinstruct evaluate` writes, reduced to the fields the index reads (training an adapter
    per mixture would cost minutes)."""
    langs = {lang: {"base_loss": 8.0, "adapter_loss": 7.6 + loss_shift + k / 10, "fidelity_base": 0.0,
                    "fidelity_adapter": None} for k, lang in enumerate(("eng_Latn", *TARGETS))}
    return {"mixture": mixture, "smoke": True, "note": "SMOKE: stand-in numbers for the report test.",
            "overall": {"base_loss": 8.0, "adapter_loss": 7.7 + loss_shift}, "languages": langs}


def build_run(root: Path) -> Path:
    """Run the slice in `root` (which becomes a DVC repository); returns `root`."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["languages"]["targets"] = list(TARGETS)
    params["translate"]["per_language"] = params["languages"]["targets"]  # dvc.yaml's translate foreach
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copyfile(REPO_ROOT / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO_ROOT / "quality" / "report_templates", root / "quality" / "report_templates")  # plot templates
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root, check=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert run_cli(mp, "ingest", "--in", "embedded") == 0
        source = pq.read_table(root / "data" / "source.parquet")
        for lang in TARGETS:
            write_parquet(_translated(source, lang), root / "data" / "translated" / f"{lang}.parquet")
        assert run_cli(mp, "filter") == 0
        assert run_cli(mp, "validate") == 0
        for name, shift in (("multilingual", 0.0), ("downsampled", 0.2)):
            path = root / "metrics" / "eval" / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_eval_result(name, shift)))
        assert run_cli(mp, "report") == 0
    return root
