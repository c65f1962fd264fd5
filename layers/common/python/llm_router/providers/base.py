"""The provider port: one adapter per API turns an OpenAI-format request into its API's format and back.

Adapters raise only the typed errors below; the gateway decides from the type alone (never from message text)
whether to retry, fall back, or answer the caller.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Generator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest


class Deadline:
    """The time left for one request; every attempt gets what remains."""

    def __init__(self, seconds: float, *, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


# What the caller of a provider does while the model works on its first token (`waiting_with` sets it).
WHILE_WAITING: ContextVar[Callable[[], object] | None] = ContextVar("llm_router_while_waiting", default=None)


def while_waiting() -> None:
    """Called by a provider once its request is sent, before it waits for the first event.

    The caller's preparation runs first (`waiting_with`: whatever the first delta's way out needs that does not
    depend on it), then the youngest generation is collected. The collector runs after a fixed number of
    allocations, wherever the program is then; the way from the first byte to the first chunk handed on allocates
    enough that it would often be there (and every tenth time the older generation's collection too, a millisecond
    in a large process). Emptied now, the youngest generation has room for that whole way. The time is spent
    waiting anyway: a model takes far longer to its first token than either."""
    hook = WHILE_WAITING.get()
    if hook is not None:
        hook()
    gc.collect(0)


@contextlib.contextmanager
def waiting_with(hook: Callable[[], object]) -> Iterator[None]:
    """Have `hook` run by `while_waiting` in the calls made inside this block (this thread's, or this task's)."""
    token = WHILE_WAITING.set(hook)
    try:
        yield
    finally:
        WHILE_WAITING.reset(token)


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported (or, with `estimated`, as the router estimated) them."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False


@dataclass(frozen=True)
class ProviderResponse:
    """A provider's answer in the router's terms; `tool_calls` are OpenAI-shaped dicts."""

    content: str | None
    finish_reason: str
    usage: Usage | None
    tool_calls: list[dict[str, Any]] | None = None
    # The model that actually answered, when the provider says (prompt routers, inference profiles).
    answered_by: str | None = None
    simulated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # OpenAI's `choices[].logprobs`, from the providers that give them (asked for with `logprobs: true`).
    logprobs: dict[str, Any] | None = None


@dataclass(slots=True)  # not frozen: made for every event of every stream, and never changed once made
class StreamDelta:
    """One increment of a streamed answer, in the router's terms (translated from the provider's events).

    `tool_calls` are OpenAI chunk-shaped deltas: `{"index": i, "id": ..., "type": "function",
    "function": {"name": ..., "arguments": "<fragment>"}}`, where only the first delta of a call carries its id,
    type and name. `finish_reason` comes once, near the end; `usage` once, when the provider reports it (usually
    last). Empty deltas are never yielded.
    """

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    # The model that actually answered, when the provider says (prompt routers, inference profiles).
    answered_by: str | None = None
    simulated: bool = False
    logprobs: dict[str, Any] | None = None


@dataclass(frozen=True)
class Embeddings:
    """A provider's embeddings, one vector per input text in order, and the input tokens it billed."""

    vectors: list[list[float]]
    input_tokens: int
    estimated: bool = False
    simulated: bool = False


class Provider(Protocol):
    """Calls one kind of API. Implementations must be safe to share across threads."""

    name: str

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        """Answer `request` with `model` before `deadline`, or raise a ProviderError subclass."""
        ...

    def stream(
        self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline
    ) -> Generator[StreamDelta, None, None]:
        """Answer `request` with `model` as a stream of deltas.

        The call is made on the first `next()`: a failure before the provider's first delta raises a typed
        ProviderError there (so the gateway can still fall back); a failure later raises a ProviderError from a
        later `next()`. `deadline` bounds the time to the first delta; after it, each read waits at most
        `STREAM_IDLE_SECONDS`. Closing the iterator early closes the upstream connection. Once the request is sent
        and before waiting for the first event, it calls `while_waiting()`, so that the caller prepares what it can
        while the model works.
        """
        ...

    def embed(self, texts: list[str], model: ModelSpec, deadline: Deadline, dimensions: int | None) -> Embeddings:
        """Embed `texts` with `model`; InvalidRequest where the API has no embeddings."""
        ...


# After the first delta, a stream may run for minutes; each read waits at most this long for the next bytes.
STREAM_IDLE_SECONDS = 60.0


class ProviderError(Exception):
    """Base of the typed provider errors. `kind` is a short metric-friendly name."""

    kind = "error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RetryableError(ProviderError):
    """Throttling, 5xx, timeouts, connection errors: try again or fall back."""

    kind = "retryable"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, kind: str | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        if kind:
            self.kind = kind


class ContextWindowExceeded(ProviderError):
    """The prompt does not fit the model: fall back to a candidate with a larger window."""

    kind = "context_overflow"


class ContentFiltered(ProviderError):
    """The provider refused the content; returned to the caller as-is."""

    kind = "content_filtered"


class InvalidRequest(ProviderError):
    """A 4xx caused by the request itself: returned to the caller, not retried."""

    kind = "invalid_request"


class ProviderAuthError(ProviderError):
    """Credentials or permissions are wrong (a configuration error): fall back and count it."""

    kind = "auth"
