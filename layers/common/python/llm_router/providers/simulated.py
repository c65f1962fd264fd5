"""A deterministic stand-in for real models: answers, token counts, latency and injected failures.

Used by local mode, the tests and the benchmarks. Every simulated answer is flagged (`x-router-simulated: true`).
"""

from __future__ import annotations

import hashlib
import json
import time

from llm_router.providers.base import (
    ContextWindowExceeded,
    Deadline,
    ProviderResponse,
    RetryableError,
    Usage,
)
from llm_router.routing.features import TOKENS_PER_MESSAGE, estimate_tokens
from llm_router.schemas.catalog import ModelSpec, Simulation
from llm_router.schemas.openai import ChatCompletionRequest

_NO_SIMULATION = Simulation()
_WORDS = [
    "routing",
    "keeps",
    "answers",
    "fast",
    "and",
    "affordable",
    "while",
    "the",
    "strong",
    "model",
    "handles",
    "the",
    "hard",
    "questions",
    "every",
    "request",
    "is",
    "answered",
    "by",
    "the",
    "model",
    "that",
    "fits",
    "it",
    "best",
    "within",
    "its",
    "budget",
]


def _fraction(*parts: str) -> float:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class SimulatedProvider:
    """Answers from a hash of the prompt; behaviour per model comes from its catalog entry's `simulate`."""

    name = "simulated"

    def __init__(self, sleep: object = time.sleep) -> None:
        self._sleep = sleep

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        sim = model.simulate or _NO_SIMULATION
        prompt = "\n".join(m.text() for m in request.messages)
        input_tokens = estimate_tokens(prompt) + TOKENS_PER_MESSAGE * len(request.messages)
        if sim.latency_ms:
            wait = sim.latency_ms / 1000
            if wait > deadline.remaining():
                self._sleep(deadline.remaining())  # type: ignore[operator]
                raise RetryableError(f"simulated model {model.id} timed out", kind="timeout")
            self._sleep(wait)  # type: ignore[operator]
        if sim.failure != "none" and _fraction(model.id, prompt, request.user or "") < sim.failure_rate:
            self._fail(model, sim)
        if input_tokens > model.context_window:
            raise ContextWindowExceeded(f"simulated model {model.id}: prompt exceeds {model.context_window} tokens")

        if request.uses_tools() and request.tool_choice not in (None, "auto") and request.tools:
            tool = request.tools[0].function.name
            if not isinstance(request.tool_choice, str):
                tool = request.tool_choice.function.name
            call_id = "call_" + hashlib.sha256(f"{model.id}{prompt}".encode()).hexdigest()[:24]
            calls = [{"id": call_id, "type": "function", "function": {"name": tool, "arguments": "{}"}}]
            return ProviderResponse(None, "tool_calls", Usage(input_tokens, 12), tool_calls=calls, simulated=True)

        text = self._text(model, prompt, request)
        limit = request.output_token_limit
        finish = "stop"
        if limit is not None and estimate_tokens(text) > limit:
            text, finish = text[: limit * 4], "length"
        return ProviderResponse(text, finish, Usage(input_tokens, estimate_tokens(text)), simulated=True)

    @staticmethod
    def _text(model: ModelSpec, prompt: str, request: ChatCompletionRequest) -> str:
        if request.needs_json():
            return json.dumps({"model": model.id, "answer": "simulated", "prompt_chars": len(prompt)})
        seed = int.from_bytes(hashlib.sha256(f"{model.id}\x00{prompt}".encode()).digest()[:4], "big")
        count = 12 + seed % 24
        words = [_WORDS[(seed >> (i % 24) ^ i * 7) % len(_WORDS)] for i in range(count)]
        return f"[simulated {model.id}] " + " ".join(words).capitalize() + "."

    @staticmethod
    def _fail(model: ModelSpec, sim: Simulation) -> None:
        if sim.failure == "throttle":
            raise RetryableError(f"simulated model {model.id} is throttled", status=429, kind="throttle")
        if sim.failure == "server_error":
            raise RetryableError(f"simulated model {model.id} failed", status=500, kind="server_error")
        if sim.failure == "timeout":
            raise RetryableError(f"simulated model {model.id} timed out", kind="timeout")
        if sim.failure == "connection_error":
            raise RetryableError(f"simulated model {model.id}: connection reset", kind="connection")
        raise ContextWindowExceeded(f"simulated model {model.id}: prompt exceeds its context window")
