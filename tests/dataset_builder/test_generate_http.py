"""The OpenAI-compatible backend against a small chat-completions server on 127.0.0.1, started here:
bounded concurrency, retries with backoff, too-long prompts rejected, the memory, the API key kept
out of every output. Nothing leaves the machine."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dataset_builder.generate_http import OpenAICompatibleEngine
from dataset_builder.respond import open_engine, respond_file
from schemas.errors import PolyinstructError
from schemas.params import parse_params
from tests.dataset_builder.respond_helpers import translated_file

SECRET = "sk-test-do-not-print-0123456789"


class FakeServer:
    """Answers each chat with its last user message reversed; fails the first call of each prompt
    with 503 (so every prompt needs one retry); refuses prompts holding TOO_LONG like vLLM does."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = self.calls = 0
        self.seen: set[str] = set()
        self.auth: set[str] = set()
        self.bodies: list[dict[str, Any]] = []

    def handle(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.auth.add(handler.headers.get("Authorization", ""))
            self.bodies.append(body)
            first = user not in self.seen
            self.seen.add(user)
        time.sleep(0.02)  # let requests overlap
        with self.lock:
            self.in_flight -= 1
        if handler.path != "/v1/chat/completions":
            return 404, {"error": "not found"}
        if "TOO_LONG" in user:
            return 400, {"error": {"message": "This model's maximum context length is 4096 tokens"}}
        if first:
            return 503, {"error": "busy"}
        text = user[::-1][: body["max_tokens"]]
        return 200, {"choices": [{"message": {"role": "assistant", "content": text},
                                  "finish_reason": "length" if len(user) > body["max_tokens"] else "stop"}],
                     "usage": {"prompt_tokens": len(user), "completion_tokens": len(text)}}


@pytest.fixture
def server() -> Iterator[tuple[str, FakeServer]]:
    fake = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            status, reply = fake.handle(self)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", fake
    httpd.shutdown()
    httpd.server_close()


def _params(url: str, concurrency: int = 3) -> Any:
    return parse_params({"responses": {"backend": "openai", "shard_prompts": 5, "decoding": {"max_new_tokens": 60},
                                       "endpoint": {"url": url, "model": "served-model", "api_key_env": "TEST_KEY",
                                                    "concurrency": concurrency, "max_retries": 2}}})


def test_respond_over_http(server: tuple[str, FakeServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    url, fake = server
    monkeypatch.setenv("TEST_KEY", SECRET)
    too_long = {"id": "sample-long", "instruction": "TOO_LONG " * 5, "input": "", "output": "x"}
    src = translated_file(tmp_path / "fra_Latn.parquet", 12, extra=[too_long])
    params = _params(url)
    engine, compute_type = open_engine(params)
    metrics = respond_file(src, "fra_Latn", engine, tmp_path / "out.parquet", tmp_path / "m.json",
                           tmp_path / "rejects.parquet", params, compute_type, cache=tmp_path / "memory").metrics
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    source = {r["id"]: r for r in pq.read_table(src).to_pylist()}
    assert len(rows) == 12 and [r["reason"] for r in pq.read_table(tmp_path / "rejects.parquet").to_pylist()] \
        == ["prompt_too_long"]
    for row in rows:
        user = source[row["id"]]["instruction"] + (f"\n\n{source[row['id']]['input']}"
                                                   if source[row["id"]]["input"] else "")
        assert row["output"] == user[::-1][:60].strip()
        assert ("output" in row["truncated_fields"]) == (len(user) > 60)
        assert row["output_model"] == f"openai:served-model@{url}" and row["smoke"] is True  # smoke translations
    assert fake.auth == {f"Bearer {SECRET}"}
    assert 1 < fake.max_in_flight <= 3  # concurrent, and bounded
    assert fake.calls == 13 * 2 - 1  # each prompt retried once after its 503; the too-long one is not retried
    system = fake.bodies[0]["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Vous êtes")
    assert metrics["prompts_generated"] == 13 and metrics["output_tokens"] > 0

    calls = fake.calls
    again = respond_file(src, "fra_Latn", engine, tmp_path / "out2.parquet", None, tmp_path / "rejects2.parquet",
                         params, compute_type, cache=tmp_path / "memory").metrics
    assert again["cache_hit_rate"] == 1.0 and fake.calls == calls  # the memory answers everything
    written = [p.read_text(errors="replace") for p in tmp_path.rglob("*.json")]
    written += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*.parquet")]
    captured = capsys.readouterr()
    assert not any(SECRET in text for text in [*written, captured.out, captured.err])


def test_dead_server_is_one_line_after_retries(tmp_path: Path) -> None:
    params = _params("http://127.0.0.1:9/v1", concurrency=1)  # port 9 (discard): nothing listens
    waits: list[float] = []
    engine = OpenAICompatibleEngine(params.responses.endpoint, params.responses.decoding, sleep=waits.append)
    with pytest.raises(PolyinstructError, match=r"no answer after 3 tries .*a rerun resumes") as err:
        engine([engine.render([{"role": "user", "content": "hi"}])])
    assert "\n" not in str(err.value) and waits == [0.5, 1.0]  # exponential backoff


def test_openai_backend_needs_url_and_model() -> None:
    with pytest.raises(PolyinstructError, match="endpoint.url and endpoint.model"):
        parse_params({"responses": {"backend": "openai"}})
