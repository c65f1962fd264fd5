"""The gateway's streaming path with in-process providers that play scripts (no HTTP): fallback until the first
delta, the stream committed after it, accounting once however the stream ends, and the SSE rendering."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import pytest

from llm_router.api import DONE, sse_stream
from llm_router.breaker import CircuitBreaker
from llm_router.errors import InvalidRequestError
from llm_router.gateway import (
    Answer,
    ClosingIterator,
    Gateway,
    Prepare,
    Priced,
    Queued,
    Refused,
    RequestContext,
    StreamEnd,
    StreamEvent,
    Streaming,
    StreamStart,
)
from llm_router.metrics import MetricsRecorder
from llm_router.pricing import cost_usd
from llm_router.providers.base import (
    ContextWindowExceeded,
    Deadline,
    Embeddings,
    InvalidRequest,
    ProviderResponse,
    RetryableError,
    StreamDelta,
    Usage,
    while_waiting,
)
from llm_router.routing.engine import Decision, Plan
from llm_router.routing.features import estimate_tokens
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.stores.fallback_queue import QueuedRequest
from tests.helpers import chat, model, snapshot

# In a script: the request is out and the provider waits for its first event (`while_waiting`).
WAIT = "wait"
Play = Sequence[StreamDelta | Exception | str]
USAGE = Usage(input_tokens=12, output_tokens=3)
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 4.0}


def words(*texts: str, finish: str = "stop", usage: Usage | None = USAGE) -> list[StreamDelta | Exception | str]:
    out: list[StreamDelta | Exception | str] = [StreamDelta(content=t) for t in texts]
    out.append(StreamDelta(finish_reason=finish))
    if usage is not None:
        out.append(StreamDelta(usage=usage))
    return out


class ScriptedProvider:
    """Plays one script per call: its deltas in order, raising the errors where they stand."""

    name = "scripted"

    def embed(self, texts: list[str], model: ModelSpec, deadline: Deadline, dimensions: int | None) -> Embeddings:
        raise InvalidRequest(f"{model.id}: no embeddings here")

    def __init__(self, *plays: Play) -> None:
        self.plays: deque[Play] = deque(plays)
        self.calls = 0
        self.yielded = 0  # deltas handed out, over all calls
        self.closed = 0  # streams whose generator finished or was closed

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        raise AssertionError("a streamed request must not call complete()")

    def stream(
        self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline
    ) -> Generator[StreamDelta, None, None]:
        return self._play(self.plays.popleft() if self.plays else [])

    def _play(self, play: Play) -> Generator[StreamDelta, None, None]:
        self.calls += 1
        try:
            for item in play:
                if isinstance(item, Exception):
                    raise item
                if item == WAIT:
                    while_waiting()
                    continue
                assert isinstance(item, StreamDelta)
                self.yielded += 1
                yield item
        finally:
            self.closed += 1


class Providers:
    def __init__(self, **by_model: ScriptedProvider) -> None:
        self.by_model = by_model

    def for_model(self, model: ModelSpec) -> ScriptedProvider:
        return self.by_model[model.id]


class RecordingAccounting:
    def __init__(self) -> None:
        self.answers: list[Answer] = []

    def before_call(self, ctx: RequestContext, decision: Decision, chain: Plan, config: ConfigSnapshot) -> Plan:
        return chain

    def after_answer(self, ctx: RequestContext, answer: Priced) -> None:
        assert isinstance(answer, Answer)
        self.answers.append(answer)

    def permitted_models(self, tenant: str) -> frozenset[str] | None:
        return None


class FixedConfig:
    def __init__(self, config: ConfigSnapshot) -> None:
        self.config = config

    def snapshot(self) -> ConfigSnapshot:
        return self.config


class RecordingQueue:
    def __init__(self) -> None:
        self.sent: list[QueuedRequest] = []
        self.records: list[str] = []

    def send(self, item: QueuedRequest) -> None:
        self.sent.append(item)

    def put_queued(self, request_id: str, tenant: str, mode: str, decision: dict[str, Any], errors: list[Any]) -> None:
        self.records.append(request_id)

    def mark_failed(self, request_id: str, errors: list[Any], decision: dict[str, Any] | None) -> None:
        raise AssertionError("the queue was written")


class Harness:
    """A gateway over scripted providers, with what it emitted, accounted and queued."""

    def __init__(self, models: list[ModelSpec], breaker: CircuitBreaker | None = None, **providers: ScriptedProvider):
        config = snapshot(models=models, routes=[RouteSpec(id="auto", default=tuple(m.id for m in models))])
        self.emitted: list[dict[str, Any]] = []
        self.accounting = RecordingAccounting()
        self.queue = RecordingQueue()
        self.gateway = Gateway(
            FixedConfig(config),
            Providers(**providers),
            MetricsRecorder(self.emitted.append),
            breaker=breaker,
            sleep=lambda seconds: None,
            accounting=self.accounting,
            queue=self.queue,
            requests=self.queue,
        )

    def stream(self, request: ChatCompletionRequest | None = None, prepare: Prepare | None = None) -> Streaming:
        request = request or chat("Hello!", stream=True)
        return self.gateway.stream(request, RequestContext(tenant="t", request_id="r1"), prepare)

    def request_line(self) -> dict[str, Any]:
        (line,) = [doc for doc in self.emitted if "Requests" in doc]
        return line


def priced(model_id: str, **fields: Any) -> ModelSpec:
    return model(model_id, price=PRICE, **fields)


def split(events: Iterator[StreamEvent]) -> tuple[list[StreamDelta], StreamEnd]:
    *deltas, end = list(events)
    assert isinstance(end, StreamEnd) and all(isinstance(d, StreamDelta) for d in deltas)
    return deltas, end  # type: ignore[return-value]


def text(deltas: list[StreamDelta]) -> str:
    return "".join(d.content or "" for d in deltas)


# -- before the first delta: exactly the fallbacks of a complete() ---------------------------------------------
def test_a_retryable_failure_before_the_first_delta_is_retried_then_falls_back() -> None:
    down = RetryableError("a: 503", status=503)
    a, b = ScriptedProvider([down], [down]), ScriptedProvider(words("Hel", "lo"))
    h = Harness([priced("a"), priced("b")], a=a, b=b)

    streaming = h.stream()
    deltas, end = split(streaming.events)

    assert streaming.start.model.id == "b"
    assert [(x.model, x.ok) for x in streaming.start.attempts] == [("a", False), ("a", False), ("b", True)]
    assert text(deltas) == "Hello" and end.error is None
    assert a.calls == 2 and a.closed == 2
    assert h.request_line()["Fallbacks"] == [2.0]


def test_a_context_overflow_before_the_first_delta_moves_to_a_larger_window() -> None:
    a = ScriptedProvider([ContextWindowExceeded("a: too long", status=400)])
    b = ScriptedProvider(words("fits"))
    h = Harness([priced("a", context_window=1000), priced("b", context_window=200_000)], a=a, b=b)

    streaming = h.stream()
    deltas, _ = split(streaming.events)

    assert streaming.start.model.id == "b"
    assert [x.kind for x in streaming.start.attempts] == ["context_overflow", None]
    assert text(deltas) == "fits" and a.calls == 1


def test_an_open_circuit_skips_the_model_without_calling_it() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=60)
    breaker.failure("a")
    a, b = ScriptedProvider(words("never")), ScriptedProvider(words("from b"))
    h = Harness([priced("a"), priced("b")], breaker=breaker, a=a, b=b)

    streaming = h.stream()
    deltas, _ = split(streaming.events)

    assert streaming.start.model.id == "b" and text(deltas) == "from b"
    assert [x.kind for x in streaming.start.attempts] == ["circuit_open", None]
    assert a.calls == 0


def test_a_stream_that_ends_without_a_delta_is_a_failure_to_fall_back_from() -> None:
    a, b = ScriptedProvider([], []), ScriptedProvider(words("late", " but here"))
    h = Harness([priced("a"), priced("b")], a=a, b=b)

    streaming = h.stream()
    deltas, _ = split(streaming.events)

    assert streaming.start.model.id == "b" and text(deltas) == "late but here"
    assert [x.kind for x in streaming.start.attempts] == ["empty_stream", "empty_stream", None]


def test_a_stream_no_candidate_could_start_is_queued_like_any_request() -> None:
    down = RetryableError("down", status=500)
    h = Harness([priced("a"), priced("b")], a=ScriptedProvider([down], [down]), b=ScriptedProvider([down], [down]))
    body = json.dumps({"model": "auto", "stream": True, "messages": [{"role": "user", "content": "Hello!"}]})

    outcome = h.gateway.serve(chat("Hello!", stream=True), RequestContext(tenant="t", request_id="r9"), body.encode())

    assert isinstance(outcome, Queued) and outcome.mode == "fallback"
    assert [a["model"] for a in outcome.attempts] == ["a", "a", "b", "b"]
    assert [item.request_id for item in h.queue.sent] == ["r9"] and h.queue.records == ["r9"]
    assert h.accounting.answers == []


def test_a_refusal_before_the_first_delta_goes_to_the_caller_and_no_other_model_is_tried() -> None:
    refusal = InvalidRequest("a: bad temperature", status=400)
    a = ScriptedProvider([refusal], [refusal])
    b = ScriptedProvider(words("never"))
    h = Harness([priced("a"), priced("b")], a=a, b=b)

    with pytest.raises(InvalidRequestError) as info:
        h.stream()
    outcome = h.gateway.serve(chat("Hello!", stream=True), RequestContext(tenant="t"), b"{}")

    assert "a refused the request" in info.value.message and info.value.headers["x-router-model"] == "a"
    assert isinstance(outcome, Refused) and outcome.error.status == 400
    assert b.calls == 0 and h.accounting.answers == []


# -- after the first delta: committed, accounted once -----------------------------------------------------------
class Preparations:
    """A `prepare` that notes each start it was given, with how far its model's script had got by then."""

    def __init__(self, *providers: ScriptedProvider) -> None:
        self.providers = providers
        self.seen: list[tuple[str, list[str | None], int]] = []
        self.events: list[Iterator[StreamEvent]] = []

    def __call__(self, start: StreamStart, events: Iterator[StreamEvent]) -> str:
        self.seen.append((start.model.id, [x.kind for x in start.attempts], sum(p.yielded for p in self.providers)))
        self.events.append(events)
        return f"prepared for {start.model.id}"


def test_what_the_stream_needs_is_prepared_while_the_model_works_on_its_first_token() -> None:
    a = ScriptedProvider([WAIT, *words("Hel", "lo")])
    prepare = Preparations(a)
    h = Harness([priced("a")], a=a)

    streaming = h.stream(prepare=prepare)

    # Prepared once, before the provider had produced anything; the start it was given is the stream's own,
    # with the attempt that succeeded added once the first delta was in.
    assert prepare.seen == [("a", [], 0)]
    assert streaming.prepared == "prepared for a" and prepare.events == [streaming.events]
    assert [(x.model, x.ok) for x in streaming.start.attempts] == [("a", True)]
    deltas, end = split(streaming.events)
    assert text(deltas) == "Hello" and end.error is None


def test_a_model_that_fails_after_the_preparation_is_prepared_for_again_and_so_is_the_one_that_answers() -> None:
    down = RetryableError("a: the stream broke before its first event", kind="connection")
    a = ScriptedProvider([WAIT, down], [WAIT, down])
    b = ScriptedProvider([WAIT, *words("from b")])
    prepare = Preparations(a, b)
    h = Harness([priced("a"), priced("b")], a=a, b=b)

    streaming = h.stream(prepare=prepare)

    assert [(model_id, kinds) for model_id, kinds, _ in prepare.seen] == [
        ("a", []),
        ("a", ["connection"]),
        ("b", ["connection", "connection"]),
    ]
    assert streaming.prepared == "prepared for b" and streaming.start.model.id == "b"
    assert prepare.events[-1] is streaming.events  # the failed model's events were never started
    for unused in prepare.events[:-1]:
        assert isinstance(unused, ClosingIterator)
        unused.close()  # closing them settles nothing: nothing was received
    assert h.accounting.answers == []
    assert [(x.model, x.ok) for x in streaming.start.attempts] == [("a", False), ("a", False), ("b", True)]
    assert text(split(streaming.events)[0]) == "from b"


def test_a_provider_that_does_not_say_it_waits_is_prepared_for_once_its_first_delta_is_in() -> None:
    a = ScriptedProvider(words("no wait"))
    prepare = Preparations(a)
    h = Harness([priced("a")], a=a)

    streaming = h.stream(prepare=prepare)

    assert prepare.seen == [("a", [None], 1)]
    assert streaming.prepared == "prepared for a"
    assert [(x.model, x.ok) for x in streaming.start.attempts] == [("a", True)]


def test_a_simulated_first_delta_marks_a_prepared_start_simulated() -> None:
    a = ScriptedProvider([WAIT, StreamDelta(content="sim", simulated=True), StreamDelta(finish_reason="stop")])
    h = Harness([priced("a")], a=a)

    streaming = h.stream(prepare=Preparations(a))

    assert streaming.start.simulated and [(x.model, x.ok) for x in streaming.start.attempts] == [("a", True)]


def test_nothing_is_accounted_until_the_stream_ends_then_once_with_the_reported_usage() -> None:
    h = Harness([priced("a")], a=ScriptedProvider(words("one", " two", usage=USAGE)))

    streaming = h.stream()
    first = next(streaming.events)
    assert first == StreamDelta(content="one") and h.accounting.answers == []
    rest, end = split(streaming.events)
    assert text(rest) == " two"

    (answer,) = h.accounting.answers
    assert end.answer is answer and end.error is None
    assert answer.usage == USAGE and not answer.usage.estimated
    assert answer.cost_usd == pytest.approx(cost_usd(USAGE, priced("a").price))
    assert answer.completion.choices[0].message.content == "one two"
    assert answer.completion.usage is not None and answer.completion.usage.completion_tokens == 3
    line = h.request_line()
    assert line["OutputTokens"] == [3.0] and line["cost_estimated"] is False and line["streamed"] is True
    assert "StreamInterrupted" not in line


def test_without_reported_usage_the_tokens_are_estimated_and_flagged() -> None:
    h = Harness([priced("a")], a=ScriptedProvider(words("an answer", " with no usage", usage=None)))

    _, end = split(h.stream().events)

    (answer,) = h.accounting.answers
    prompt = chat("Hello!").messages[0].text()
    assert answer.usage == Usage(
        input_tokens=estimate_tokens(prompt), output_tokens=estimate_tokens("an answer with no usage"), estimated=True
    )
    assert end.answer.cost_usd == pytest.approx(cost_usd(answer.usage, priced("a").price))
    assert h.request_line()["cost_estimated"] is True


def test_a_provider_error_mid_stream_ends_it_with_the_error_and_accounts_what_was_delivered() -> None:
    cut = RetryableError("a: connection failed (ProtocolError)", kind="connection")
    a, b = ScriptedProvider([StreamDelta(content="half an "), StreamDelta(content="answ"), cut]), ScriptedProvider()
    h = Harness([priced("a"), priced("b")], a=a, b=b)

    streaming = h.stream()
    deltas, end = split(streaming.events)

    assert text(deltas) == "half an answ"
    assert end.error is cut  # no fallback once the client has output
    assert b.calls == 0
    (answer,) = h.accounting.answers
    assert answer.usage.output_tokens == estimate_tokens("half an answ") and answer.usage.estimated
    line = h.request_line()
    assert line["StreamInterrupted"] == [1.0] and line["interrupted"] is True
    assert any(doc.get("ProviderErrors") == [1.0] and doc.get("ErrorKind") == "connection" for doc in h.emitted)


def test_a_client_closing_the_stream_early_closes_the_upstream_and_still_accounts_once() -> None:
    a = ScriptedProvider(words("one", " two", " three"))
    h = Harness([priced("a")], a=a)

    streaming = h.stream()
    assert next(streaming.events) == StreamDelta(content="one")
    streaming.events.close()  # type: ignore[attr-defined]
    streaming.events.close()  # type: ignore[attr-defined]

    assert a.closed == 1
    (answer,) = h.accounting.answers
    assert answer.usage.output_tokens == estimate_tokens("one") and answer.usage.estimated
    assert h.request_line()["StreamInterrupted"] == [1.0]


def test_a_stream_closed_before_it_was_read_still_closes_the_upstream_and_accounts_the_first_delta() -> None:
    a = ScriptedProvider(words("one", " two"))
    h = Harness([priced("a")], a=a)

    streaming = h.stream()
    streaming.events.close()  # type: ignore[attr-defined]

    assert a.closed == 1
    (answer,) = h.accounting.answers
    assert answer.usage.output_tokens == estimate_tokens("one")
    assert h.request_line()["StreamInterrupted"] == [1.0]


# -- rendering: OpenAI's chat.completion.chunk events -----------------------------------------------------------
def sse_events(streaming: Streaming, include_usage: bool) -> list[Any]:
    raw = b"".join(sse_stream(streaming.start, streaming.events, include_usage))
    assert raw.endswith(b"\n\n")
    out: list[Any] = []
    for event in raw.split(b"\n\n")[:-1]:
        assert event.startswith(b"data: ")
        data = event.removeprefix(b"data: ")
        out.append("[DONE]" if data == DONE.strip().removeprefix(b"data: ") else json.loads(data))
    return out


def test_sse_sends_the_role_first_the_deltas_as_they_come_one_finish_the_usage_then_done() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    fragment = {"index": 0, "function": {"arguments": '{"city": "Paris"}'}}
    play = [
        StreamDelta(tool_calls=[call]),
        StreamDelta(tool_calls=[fragment]),
        StreamDelta(finish_reason="tool_calls"),
        StreamDelta(usage=USAGE),
    ]
    h = Harness([priced("a")], a=ScriptedProvider(play))
    streaming = h.stream(chat("Weather?", stream=True, stream_options={"include_usage": True}))

    events = sse_events(streaming, include_usage=True)

    chunks, usage, done = events[:-2], events[-2], events[-1]
    assert done == "[DONE]"
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-r1" for c in chunks)
    assert all(c["model"] == "a" for c in [*chunks, usage])
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": "", "tool_calls": [call]}
    assert deltas[1] == {"tool_calls": [fragment]}
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "tool_calls"]
    assert deltas[2] == {}
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == 12
    assert usage["usage"]["completion_tokens"] == 3
    x_router = usage["usage"]["x_router"]
    assert x_router["cost_usd"] == pytest.approx(cost_usd(USAGE, priced("a").price))
    assert x_router["cost_estimated"] is False


def test_sse_without_include_usage_has_no_usage_chunk_and_a_stream_without_finish_gets_one() -> None:
    h = Harness([priced("a")], a=ScriptedProvider([StreamDelta(content="Hi"), StreamDelta(content="!")]))

    events = sse_events(h.stream(), include_usage=False)

    assert events[-1] == "[DONE]"
    assert [c["choices"][0]["delta"] for c in events[:-1]] == [
        {"role": "assistant", "content": "Hi"},
        {"content": "!"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in events[:-1]] == [None, None, "stop"]
    assert all("usage" not in c for c in events[:-1])


def test_sse_chunks_are_byte_for_byte_the_compact_json_of_the_whole_chunk_object() -> None:
    logprobs = {"content": [{"token": "é", "logprob": -0.25, "bytes": [195, 169], "top_logprobs": []}]}
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    play = [
        StreamDelta(content='Ünïcode \u2028 "quoted" \\ </script>'),
        StreamDelta(content="x", logprobs=logprobs),
        StreamDelta(tool_calls=[call]),
        StreamDelta(content="last", finish_reason="length"),
    ]
    h = Harness([priced("a")], a=ScriptedProvider(play))
    streaming = h.stream()

    raw = list(sse_stream(streaming.start, streaming.events, include_usage=False))

    base = {"id": "chatcmpl-r1", "object": "chat.completion.chunk", "created": streaming.start.created, "model": "a"}
    expected = [
        ({"role": "assistant", "content": play[0].content}, None, None),
        ({"content": "x"}, logprobs, None),
        ({"tool_calls": [call]}, None, None),
        ({"content": "last"}, None, None),
        ({}, None, "length"),
    ]
    for piece, (delta, chunk_logprobs, finish) in zip(raw, expected, strict=False):
        choice = {"index": 0, "delta": delta, "logprobs": chunk_logprobs, "finish_reason": finish}
        body = json.dumps({**base, "choices": [choice]}, separators=(",", ":"), ensure_ascii=False)
        assert piece == b"data: " + body.encode() + b"\n\n"
    assert raw[len(expected) :] == [DONE]


def test_sse_ends_a_broken_stream_with_an_openai_error_event() -> None:
    cut = RetryableError("a: timed out", kind="timeout")
    h = Harness([priced("a")], a=ScriptedProvider([StreamDelta(content="so far"), cut]))

    events = sse_events(h.stream(), include_usage=True)

    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "so far"}
    error = events[-1]["error"]
    assert error["code"] == "stream_interrupted" and error["type"] == "server_error"
    assert "a: timed out" in error["message"]
    assert "[DONE]" not in events and len(events) == 2
    assert len(h.accounting.answers) == 1


def test_an_unexpected_failure_mid_stream_is_an_error_event_and_the_stream_is_still_accounted() -> None:
    h = Harness([priced("a")], a=ScriptedProvider([StreamDelta(content="so far"), KeyError("choices")]))

    events = sse_events(h.stream(), include_usage=False)

    assert [e["choices"][0]["delta"] for e in events[:-1]] == [{"role": "assistant", "content": "so far"}]
    assert events[-1]["error"]["code"] == "internal_error"
    assert "KeyError" not in json.dumps(events[-1]) and "choices" not in events[-1]["error"]["message"]
    assert len(h.accounting.answers) == 1
    assert h.request_line()["StreamInterrupted"] == [1.0]


def test_closing_the_sse_body_before_it_was_read_closes_the_stream_under_it() -> None:
    a = ScriptedProvider(words("one", " two"))
    h = Harness([priced("a")], a=a)
    streaming = h.stream()

    body = sse_stream(streaming.start, streaming.events, include_usage=False)
    body.close()  # type: ignore[attr-defined]

    assert a.closed == 1 and len(h.accounting.answers) == 1
