"""Token streaming through `llm-router serve --config`, from OpenAI-compatible upstreams that emit 20 chunks 100 ms
apart, as the official `openai` SDK and LangChain's ChatOpenAI see it.

The fake upstreams run in this process and record when they wrote each chunk (time.monotonic()); the clients note
when they received each one on the same clock, so "the first token reached the client at once" is a measurement.
The scenarios stream at the same time (each has its own upstream), so the module takes about one stream's time.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
import yaml
from langchain_openai import ChatOpenAI
from openai import OpenAI

from llm_router.routing.features import estimate_tokens
from tests.e2e.conftest import Served, start_server, stop_server
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.router import openai_model
from tests.fakes.server import StreamLog
from tests.fakes.streams import eventually

KEY = "sk-fake-upstream-0123456789abcdef"
CHUNKS, INTERVAL = 20, 0.1
# The upstream's whole stream lasts CHUNKS * INTERVAL = 2 s; what the client sees must follow it chunk by chunk.
FIRST_CHUNK_LAG_S = 0.15
PROMPT = "Tell me, slowly and one piece at a time, what streaming through a router looks like."
UPSTREAMS = ("sdk", "langchain", "usage", "flaky_5xx", "flaky_429", "backup", "cut", "gone", "pace")


def content_of(event: bytes) -> str:
    """The text an upstream `chat.completion.chunk` event carried ('' for role, finish, usage and [DONE])."""
    data = event.decode().removeprefix("data: ").strip()
    if data == "[DONE]":
        return ""
    choices = json.loads(data).get("choices") or [{}]
    return str((choices[0].get("delta") or {}).get("content") or "")


def upstream_pieces(log: StreamLog) -> list[tuple[float, str]]:
    """(write time, text) of every chunk with text that the upstream wrote."""
    return [(t, text) for t, chunk in zip(log.times, log.chunks, strict=True) if (text := content_of(chunk))]


@dataclass
class Received:
    """What a client saw of one stream: each text piece with its arrival time, the headers, how it ended."""

    pieces: list[tuple[float, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[Any] = field(default_factory=list)
    error: Exception | None = None
    started: float = 0.0
    ended: float = 0.0

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.pieces)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, FakeOpenAI]]:
    servers = {name: FakeOpenAI(api_key=KEY).start() for name in UPSTREAMS}
    for server in servers.values():
        server.stream_chunks, server.stream_interval = CHUNKS, INTERVAL
    servers["flaky_5xx"].mode = "server_error"
    servers["flaky_429"].mode, servers["flaky_429"].retry_after = "throttle", "30"
    servers["cut"].mode, servers["cut"].stream_cut_after = "stream_cut", 6  # the role chunk and 5 pieces of text
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, FakeOpenAI]) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("serve-streaming")
    doc = {
        "models": [openai_model(name, server.url) for name, server in upstreams.items()],
        "routes": [
            {"id": "after-5xx", "default": ["flaky_5xx", "backup"]},
            {"id": "after-429", "default": ["flaky_429", "backup"]},
        ],
        "rules": [],
    }
    config = workdir / "router.yaml"
    config.write_text(yaml.safe_dump(doc))
    metrics = workdir / ".llm-router" / "metrics.jsonl"
    env = {"FAKE_OPENAI_KEY": KEY, "LLM_ROUTER_METRICS_SINK": str(metrics)}
    server = start_server(workdir, "--config", str(config), env_extra=env)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def client(served: Served) -> OpenAI:
    # No client-side retries: every stream the test sees is the router's first answer.
    return OpenAI(base_url=f"{served.base_url}/v1", api_key="sk-local-dev", max_retries=0, timeout=30)


def sdk_stream(client: OpenAI, model: str, *, leave_after: int | None = None, **extra: Any) -> Received:
    """One streamed completion through the official SDK, each piece stamped as it arrives; with `leave_after`,
    the client closes the stream after that many pieces."""
    out = Received(started=time.monotonic())
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], stream=True, **extra
    )
    out.headers = dict(raw.headers)
    stream = raw.parse()
    try:
        for chunk in stream:
            now = time.monotonic()
            out.chunks.append(chunk)
            text = chunk.choices[0].delta.content if chunk.choices else None
            if text:
                out.pieces.append((now, text))
            if len(out.pieces) == leave_after:
                stream.close()
                break
    except openai.APIError as exc:
        out.error = exc
    out.ended = time.monotonic()
    return out


def langchain_stream(served: Served, model: str) -> Received:
    """The same through LangChain's ChatOpenAI(...).stream()."""
    chat = ChatOpenAI(model=model, base_url=f"{served.base_url}/v1", api_key="sk-local-dev", max_retries=0, timeout=30)
    out = Received(started=time.monotonic())
    for chunk in chat.stream(PROMPT):
        if isinstance(chunk.content, str) and chunk.content:
            out.pieces.append((time.monotonic(), chunk.content))
    out.ended = time.monotonic()
    return out


@pytest.fixture(scope="module")
def streamed(client: OpenAI, served: Served) -> dict[str, Received]:
    """Every scenario below, streaming at the same time, each from its own upstream."""
    scenarios: dict[str, Callable[[], Received]] = {
        "sdk": lambda: sdk_stream(client, "sdk"),
        "langchain": lambda: langchain_stream(served, "langchain"),
        "usage": lambda: sdk_stream(client, "usage", stream_options={"include_usage": True}),
        "after-5xx": lambda: sdk_stream(client, "after-5xx"),
        "after-429": lambda: sdk_stream(client, "after-429"),
        "cut": lambda: sdk_stream(client, "cut"),
        "gone": lambda: sdk_stream(client, "gone", leave_after=3),
    }
    with ThreadPoolExecutor(len(scenarios)) as pool:
        futures = {name: pool.submit(run) for name, run in scenarios.items()}
        return {name: future.result(timeout=60) for name, future in futures.items()}


def request_line(served: Served, request_id: str) -> dict[str, Any]:
    """The request's EMF document in the server's metrics file (written once the stream has ended)."""
    metrics = served.workdir / ".llm-router" / "metrics.jsonl"

    def lines() -> list[dict[str, Any]]:
        docs = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
        return [doc for doc in docs if doc.get("request_id") == request_id and "Requests" in doc]

    assert eventually(lambda: len(lines()) == 1, seconds=5)
    return lines()[0]


def assert_streamed_live(received: Received, log: StreamLog) -> None:
    """The client got the upstream's pieces one by one, each soon after it was written, and the same text."""
    sent = upstream_pieces(log)
    assert [text for _, text in received.pieces] == [text for _, text in sent]
    assert len(sent) == CHUNKS
    # The first token is passed on at once, not after the answer is complete.
    assert received.pieces[0][0] - sent[0][0] < FIRST_CHUNK_LAG_S
    # One by one: the arrivals are spread over the upstream's two seconds, never bunched up.
    arrivals = [t for t, _ in received.pieces]
    assert len({round(t, 2) for t in arrivals}) >= 15
    assert arrivals[-1] - arrivals[0] > 1.5
    lags = sorted(got - wrote for (got, _), (wrote, _) in zip(received.pieces, sent, strict=True))
    assert lags[len(lags) // 2] < FIRST_CHUNK_LAG_S


@pytest.mark.timeout(120)
def test_the_sdk_gets_each_token_as_the_upstream_writes_it(
    streamed: dict[str, Received], upstreams: dict[str, FakeOpenAI]
) -> None:
    received = streamed["sdk"]

    assert received.error is None
    assert_streamed_live(received, upstreams["sdk"].streams[0])
    assert received.text == f"gpt-4o-mini heard: {PROMPT}"
    assert received.headers["content-type"].startswith("text/event-stream")
    assert received.headers["x-router-model"] == "sdk"
    assert received.headers["x-router-attempts"] == "1"
    assert received.chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in received.chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    # The upstream was asked to stream (with usage in its last chunk, for the accounting).
    body = upstreams["sdk"].requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.timeout(120)
def test_langchain_streams_token_by_token(streamed: dict[str, Received], upstreams: dict[str, FakeOpenAI]) -> None:
    received = streamed["langchain"]

    assert_streamed_live(received, upstreams["langchain"].streams[0])
    assert received.text == f"gpt-4o-mini heard: {PROMPT}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("route", "primary", "attempts"),
    [
        # A 500 is retried once on the same model after a short wait, then the next candidate streams.
        ("after-5xx", "flaky_5xx", 3),
        # A 429 asking for more than a couple of seconds is not waited for: straight to the next candidate.
        ("after-429", "flaky_429", 2),
    ],
)
def test_a_primary_failing_before_its_first_byte_falls_back_and_the_secondary_streams(
    streamed: dict[str, Received], upstreams: dict[str, FakeOpenAI], route: str, primary: str, attempts: int
) -> None:
    received = streamed[route]

    assert received.error is None
    assert received.headers["x-router-model"] == "backup"
    assert received.headers["x-router-attempts"] == str(attempts)
    assert len(upstreams[primary].requests) == attempts - 1
    assert not upstreams[primary].streams  # it never produced a byte of the answer
    # Both fallback scenarios streamed from the backup, the same prompt each: the same pieces each time.
    assert [log.completed for log in upstreams["backup"].streams] == [True, True]
    sent = upstream_pieces(upstreams["backup"].streams[0])
    assert [text for _, text in received.pieces] == [text for _, text in sent]
    assert received.text == f"gpt-4o-mini heard: {PROMPT}"


@pytest.mark.timeout(120)
def test_a_mid_stream_upstream_failure_is_an_sdk_error_and_the_delivered_tokens_are_accounted(
    streamed: dict[str, Received], upstreams: dict[str, FakeOpenAI], served: Served
) -> None:
    received = streamed["cut"]
    sent = upstream_pieces(upstreams["cut"].streams[0])

    # The SDK raises on the router's error event; the pieces before it arrived as usual.
    assert isinstance(received.error, openai.APIError)
    assert "stopped answering mid-stream" in received.error.message
    assert [text for _, text in received.pieces] == [text for _, text in sent]
    assert len(sent) == 5
    assert received.headers["x-router-model"] == "cut"

    # The request's EMF line: the tokens delivered (estimated: the upstream never sent its usage), interrupted.
    line = request_line(served, received.headers["x-router-request-id"])
    assert line["StreamInterrupted"] == [1.0]
    assert line["interrupted"] is True and line["cost_estimated"] is True
    assert line["OutputTokens"] == [float(estimate_tokens(received.text))]
    assert line["CostUSD"][0] > 0

    # The usage counters have it too, under the model that streamed.
    report = served.cli("usage", "--local", "--json")
    assert report.returncode == 0, report.stderr
    models = {row["model"]: row for row in json.loads(report.stdout)["models"]}
    assert models["cut"]["requests"] == 1
    assert models["cut"]["output_tokens"] == estimate_tokens(received.text)


@pytest.mark.timeout(120)
def test_a_client_going_away_mid_stream_closes_the_upstream_and_is_accounted(
    streamed: dict[str, Received], upstreams: dict[str, FakeOpenAI], served: Served
) -> None:
    received = streamed["gone"]
    log = upstreams["gone"].streams[0]

    # The router stops reading from the upstream soon after its next write to the client fails.
    assert eventually(lambda: log.aborted, seconds=5)
    assert not log.completed and len(upstream_pieces(log)) < CHUNKS
    assert len(received.pieces) == 3

    line = request_line(served, received.headers["x-router-request-id"])
    assert line["StreamInterrupted"] == [1.0] and line["interrupted"] is True
    assert line["OutputTokens"][0] >= estimate_tokens(received.text)


@pytest.mark.timeout(120)
def test_the_usage_chunk_carries_the_cost_extension(streamed: dict[str, Received]) -> None:
    received = streamed["usage"]
    last = received.chunks[-1]

    assert received.error is None
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens > 0 and last.usage.prompt_tokens > 0
    extension = (last.usage.model_extra or {})["x_router"]
    assert extension["cost_usd"] > 0
    assert extension["cost_estimated"] is False  # the upstream reported its usage
    assert sum(1 for c in received.chunks if c.usage is not None) == 1


@pytest.mark.timeout(120)
def test_four_concurrent_streams_take_about_as_long_as_one_and_health_answers_meanwhile(
    client: OpenAI, served: Served
) -> None:
    alone = sdk_stream(client, "pace")
    assert alone.error is None and len(alone.pieces) == CHUNKS

    health_ms: list[float] = []
    stop = threading.Event()

    def poll_health() -> None:
        while not stop.is_set():
            started = time.monotonic()
            with urllib.request.urlopen(f"{served.base_url}/health", timeout=5) as response:
                assert response.status == 200
            health_ms.append((time.monotonic() - started) * 1000)
            stop.wait(0.1)

    poller = threading.Thread(target=poll_health)
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        poller.start()
        together = list(pool.map(lambda _: sdk_stream(client, "pace"), range(4)))
    elapsed = time.monotonic() - started
    stop.set()
    poller.join(timeout=10)

    assert all(r.error is None and r.text == alone.text for r in together)
    assert elapsed < 1.6 * (alone.ended - alone.started)
    assert len(health_ms) >= 10
    assert max(health_ms) < 500
