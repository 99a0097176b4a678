"""The OpenAI-compatible backend of the generate engine (`responses.backend: openai`): a vLLM,
llama.cpp or TGI server that the user starts, given by `endpoint.url`. For a billion generated tokens,
a server's continuous batching can beat CTranslate2's static batches.

Requests go to `{url}/chat/completions` (the server applies the model's chat template), at most
`endpoint.concurrency` at a time, each retried with exponential backoff on connection errors, 429 and
5xx. A prompt the server refuses as too long for the context (HTTP 400 naming the context or length)
comes back as finish reason `too_long`, which the respond stage rejects. The API key is read from the
environment variable `endpoint.api_key_env` and sent only in the Authorization header; it is never
printed or written. The rendered prompt (the memory's key) is the canonical JSON of the conversation.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dataset_builder.generate import LENGTH, STOP, TOO_LONG, Generation, GenerationStats, Messages
from schemas.errors import PolyinstructError
from schemas.params import DecodingParams, EndpointParams

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
BACKOFF_S = 0.5  # first wait; doubles per retry
_TOO_LONG_WORDS = ("context", "too long", "maximum", "max_tokens", "exceeds")


class OpenAICompatibleEngine:
    def __init__(self, endpoint: EndpointParams, decoding: DecodingParams,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not endpoint.url or not endpoint.model:
            raise PolyinstructError("responses.backend=openai needs responses.endpoint.url and .model")
        self.endpoint, self.decoding = endpoint, decoding
        self.url = endpoint.url.rstrip("/") + "/chat/completions"
        self.fingerprint = f"openai:{endpoint.model}@{endpoint.url.rstrip('/')}"
        self.smoke = False
        self.context_tokens: int | None = None  # the server checks; see TOO_LONG
        self.stats = GenerationStats()
        self.on_batch: Callable[[int, int], None] | None = None
        self._sleep = sleep
        self._api_key = os.environ.get(endpoint.api_key_env) or None

    def render(self, messages: Messages) -> str:
        return json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def prompt_tokens(self, prompts: Sequence[str]) -> list[int] | None:
        return None

    def _body(self, prompt: str) -> bytes:
        d = self.decoding
        body: dict[str, Any] = {"model": self.endpoint.model, "messages": json.loads(prompt),
                                "max_tokens": d.max_new_tokens, "temperature": d.temperature, "top_p": d.top_p,
                                "seed": d.seed, "n": 1, "stream": False}
        if d.top_k:
            body["top_k"] = d.top_k  # vLLM and llama.cpp extension
        if d.repetition_penalty != 1.0:
            body["repetition_penalty"] = d.repetition_penalty
        return json.dumps(body).encode()

    def _post(self, prompt: str) -> Generation:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        last = ""
        for attempt in range(self.endpoint.max_retries + 1):
            if attempt:
                self._sleep(BACKOFF_S * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=self._body(prompt), headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.endpoint.timeout_s) as response:
                    return self._parse(json.loads(response.read()))
            except urllib.error.HTTPError as err:
                detail = err.read().decode("utf-8", "replace")[:300]
                if err.code == 400 and any(w in detail.lower() for w in _TOO_LONG_WORDS):
                    return Generation("", 0, 0, TOO_LONG)
                if err.code not in RETRY_STATUS:
                    raise PolyinstructError(f"{self.url}: HTTP {err.code} ({' '.join(detail.split())[:200]}); check"
                                            " responses.endpoint (url, model) and the server log") from None
                last = f"HTTP {err.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                last = str(getattr(err, "reason", err))
            except (json.JSONDecodeError, KeyError, IndexError, TypeError) as err:
                raise PolyinstructError(f"{self.url}: not an OpenAI-compatible chat completion ({err!r:.120})")\
                    from None
        raise PolyinstructError(f"{self.url}: no answer after {self.endpoint.max_retries + 1} tries ({last[:120]});"
                                " is the server running? finished shards are in the response memory, a rerun"
                                " resumes from there")

    @staticmethod
    def _parse(reply: dict[str, Any]) -> Generation:
        choice = reply["choices"][0]
        usage = reply.get("usage") or {}
        finish = LENGTH if choice.get("finish_reason") == "length" else STOP
        return Generation(str(choice["message"]["content"] or "").strip(), int(usage.get("prompt_tokens", 0)),
                          int(usage.get("completion_tokens", 0)), finish)

    def __call__(self, prompts: Sequence[str]) -> list[Generation]:
        started = time.perf_counter()
        results: list[Generation] = []
        with ThreadPoolExecutor(self.endpoint.concurrency) as pool:
            for result in pool.map(self._post, prompts):  # in order; at most `concurrency` in flight
                results.append(result)
                self.stats.prompts += 1
                self.stats.prompt_tokens += result.prompt_tokens
                self.stats.output_tokens += result.output_tokens
                if self.on_batch:
                    self.on_batch(1, result.output_tokens)
        self.stats.batches += 1
        self.stats.seconds += time.perf_counter() - started
        return results
