"""A deterministic stand-in for real models: answers, token counts, latency and injected failures.

Used by local mode, the tests and the benchmarks. Every simulated answer is flagged (`x-router-simulated: true`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Generator
from typing import Any

from llm_router.providers.base import (
    ContextWindowExceeded,
    Deadline,
    Embeddings,
    ProviderResponse,
    RetryableError,
    StreamDelta,
    Usage,
)
from llm_router.providers.schema_instance import minimal_instance
from llm_router.routing.features import TOKENS_PER_MESSAGE, estimate_tokens
from llm_router.schemas.catalog import ModelSpec, Simulation
from llm_router.schemas.openai import ChatCompletionRequest, FunctionDef

_NO_SIMULATION = Simulation()
# The reply format a shadow judge's rubric asks for (llm_router.shadow.RUBRIC ends with it).
_JUDGE_FORMAT = '{"answer_1": <1-10>, "answer_2": <1-10>}'
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

    def __init__(self, sleep: Callable[[float], object] = time.sleep, *, chunk_delay_ms: float | None = None) -> None:
        """`chunk_delay_ms`, when given, replaces every model's `simulate.chunk_delay_ms`."""
        self._sleep = sleep
        self._chunk_delay_ms = chunk_delay_ms

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        return self._answer(request, model, deadline, streaming=False)

    def stream(
        self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline
    ) -> Generator[StreamDelta, None, None]:
        """The same answer as `complete`, a word per delta; failures other than `interrupted` come first."""
        sim = model.simulate or _NO_SIMULATION
        answer = self._answer(request, model, deadline, streaming=True)
        interrupted = sim.failure == "interrupted" and self._failing(request, model, sim)
        delay = (self._chunk_delay_ms if self._chunk_delay_ms is not None else sim.chunk_delay_ms) / 1000
        for i, delta in enumerate(_deltas(answer)):
            if interrupted and i >= sim.failure_after_chunks:
                raise RetryableError(f"simulated model {model.id}: the stream broke off", kind="connection")
            if i and delay:
                self._sleep(delay)
            yield delta

    def embed(self, texts: list[str], model: ModelSpec, deadline: Deadline, dimensions: int | None) -> Embeddings:
        """Unit vectors determined by the text alone (the same text, the same vector, whatever the model), so that
        similarity code gives stable results locally; failures and latency as configured for the model."""
        sim = model.simulate or _NO_SIMULATION
        if sim.latency_ms:
            self._sleep(min(sim.latency_ms / 1000, deadline.remaining()))
        joined = "\n".join(texts)
        if sim.failure not in ("none", "interrupted") and _fraction(model.id, joined, "") < sim.failure_rate:
            self._fail(model, sim)
        size = dimensions or SIMULATED_DIMENSIONS
        tokens = sum(estimate_tokens(text) for text in texts)
        return Embeddings([_vector(text, size) for text in texts], tokens, simulated=True)

    def _answer(
        self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline, *, streaming: bool
    ) -> ProviderResponse:
        sim = model.simulate or _NO_SIMULATION
        prompt = "\n".join(m.text() for m in request.messages)
        input_tokens = estimate_tokens(prompt) + TOKENS_PER_MESSAGE * len(request.messages)
        if sim.latency_ms:
            wait = sim.latency_ms / 1000
            if wait > deadline.remaining():
                self._sleep(deadline.remaining())
                raise RetryableError(f"simulated model {model.id} timed out", kind="timeout")
            self._sleep(wait)
        # A stream is interrupted after it starts; a complete answer fails at once (as server_error).
        healthy = ("none", "interrupted") if streaming else ("none",)
        if sim.failure not in healthy and self._failing(request, model, sim):
            self._fail(model, sim)
        if input_tokens > model.context_window:
            raise ContextWindowExceeded(f"simulated model {model.id}: prompt exceeds {model.context_window} tokens")

        tool = _tool_to_call(request)
        if tool is not None:
            arguments = json.dumps(minimal_instance(tool.parameters or {"type": "object"}), separators=(",", ":"))
            call_id = "call_" + hashlib.sha256(f"{model.id}{prompt}".encode()).hexdigest()[:24]
            calls = [{"id": call_id, "type": "function", "function": {"name": tool.name, "arguments": arguments}}]
            usage = Usage(input_tokens, 12 + estimate_tokens(arguments))
            return ProviderResponse(None, "tool_calls", usage, tool_calls=calls, simulated=True)

        text = self._text(model, prompt, request)
        limit = request.output_token_limit
        finish = "stop"
        # A structured answer is never cut short: a truncated JSON document would fail the caller's parser.
        if limit is not None and estimate_tokens(text) > limit and not request.needs_json():
            text, finish = text[: limit * 4], "length"
        logprobs = _logprobs(text) if request.logprobs else None
        usage = Usage(input_tokens, estimate_tokens(text))
        return ProviderResponse(text, finish, usage, simulated=True, logprobs=logprobs)

    @staticmethod
    def _failing(request: ChatCompletionRequest, model: ModelSpec, sim: Simulation) -> bool:
        prompt = "\n".join(m.text() for m in request.messages)
        return _fraction(model.id, prompt, request.user or "") < sim.failure_rate

    @staticmethod
    def _text(model: ModelSpec, prompt: str, request: ChatCompletionRequest) -> str:
        response_format = request.response_format
        if response_format is not None and response_format.json_schema is not None:
            return json.dumps(minimal_instance(response_format.json_schema.schema_ or {}))
        if request.needs_json():
            return json.dumps({"model": model.id, "answer": "simulated", "prompt_chars": len(prompt)})
        if _JUDGE_FORMAT in (request.messages[0].text() if request.messages else ""):
            # A shadow judge's rubric (llm_router.shadow): grades from a hash of each answer, so local mode shows
            # scores end to end.
            answers = prompt.split("[Answer ")[1:]
            grades = [1 + int(_fraction(model.id, answer) * 10) % 10 for answer in answers[:2]] or [5]
            return json.dumps({f"answer_{i}": g for i, g in enumerate(grades, start=1)})
        seed = int.from_bytes(hashlib.sha256(f"{model.id}\x00{prompt}".encode()).digest()[:4], "big")
        count = 12 + seed % 24
        words = [_WORDS[(seed >> (i % 24) ^ i * 7) % len(_WORDS)] for i in range(count)]
        return f"[simulated {model.id}] " + " ".join(words).capitalize() + "."

    @staticmethod
    def _fail(model: ModelSpec, sim: Simulation) -> None:
        if sim.failure == "throttle":
            raise RetryableError(f"simulated model {model.id} is throttled", status=429, kind="throttle")
        if sim.failure in ("server_error", "interrupted"):
            raise RetryableError(f"simulated model {model.id} failed", status=500, kind="server_error")
        if sim.failure == "timeout":
            raise RetryableError(f"simulated model {model.id} timed out", kind="timeout")
        if sim.failure == "connection_error":
            raise RetryableError(f"simulated model {model.id}: connection reset", kind="connection")
        raise ContextWindowExceeded(f"simulated model {model.id}: prompt exceeds its context window")


SIMULATED_DIMENSIONS = 256


def _vector(text: str, size: int) -> list[float]:
    raw: list[float] = []
    block = 0
    while len(raw) < size:
        digest = hashlib.sha256(f"{block}\x00{text}".encode()).digest()
        raw.extend((b - 127.5) / 127.5 for b in digest)
        block += 1
    norm = math.sqrt(sum(v * v for v in raw[:size])) or 1.0
    return [round(v / norm, 6) for v in raw[:size]]


def _tool_to_call(request: ChatCompletionRequest) -> FunctionDef | None:
    """The tool a simulated model calls: the one named by `tool_choice`, else the first; with `auto` only when the
    conversation does not already end in tool results, so a tool loop comes to an answer."""
    if not request.uses_tools() or not request.tools:
        return None
    choice = request.tool_choice
    if choice is not None and not isinstance(choice, str):
        return next((t.function for t in request.tools if t.function.name == choice.function.name), None)
    if choice in (None, "auto") and request.messages[-1].role == "tool":
        return None
    return request.tools[0].function


def _logprobs(text: str) -> dict[str, Any]:
    """OpenAI-shaped log probabilities, one entry per word, deterministic by the word."""
    entries = []
    for token in re.findall(r"\s*\S+", text):
        logprob = -round(_fraction(token) * 2, 4)
        entries.append({"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": []})
    return {"content": entries, "refusal": None}


def _deltas(answer: ProviderResponse) -> Generator[StreamDelta, None, None]:
    """`answer` as deltas: a word each (with the space after it), tool calls, then the finish, then usage."""
    for word in re.findall(r"\s*\S+\s*", answer.content or ""):
        logprobs = _logprobs(word) if answer.logprobs is not None else None
        yield StreamDelta(content=word, simulated=True, logprobs=logprobs)
    for index, call in enumerate(answer.tool_calls or []):
        opening = {"index": index, "id": call["id"], "type": "function"}
        yield StreamDelta(
            tool_calls=[{**opening, "function": {"name": call["function"]["name"], "arguments": ""}}], simulated=True
        )
        yield StreamDelta(
            tool_calls=[{"index": index, "function": {"arguments": call["function"]["arguments"]}}], simulated=True
        )
    yield StreamDelta(finish_reason=answer.finish_reason, simulated=True)
    if answer.usage is not None:
        yield StreamDelta(usage=answer.usage, simulated=True)
