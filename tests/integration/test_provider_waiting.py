"""Each provider over real sockets calls `while_waiting` once its request is accepted and before it reads the first
event, so that the gateway prepares the stream's way out while the model works; never for a request refused
before its stream."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from llm_router.providers.base import Deadline, RetryableError, StreamDelta, waiting_with
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.bedrock_api import FakeBedrock
from tests.fakes.openai_api import FakeOpenAI
from tests.integration import test_provider_anthropic as anthropic
from tests.integration import test_provider_bedrock as bedrock
from tests.integration import test_provider_openai as openai

Stream = Callable[[Any], Generator[StreamDelta, None, None]]

PROVIDERS: dict[str, tuple[Callable[[], Any], Stream]] = {
    "openai": (
        lambda: FakeOpenAI(api_key=openai.KEY),
        lambda fake: openai.provider().stream(openai.request(), openai.spec(fake), Deadline(10)),
    ),
    "anthropic": (
        lambda: FakeAnthropic(api_key=anthropic.KEY),
        lambda fake: anthropic.provider().stream(anthropic.request(), anthropic.spec(fake), Deadline(10)),
    ),
    "bedrock": (
        FakeBedrock,
        lambda fake: bedrock.loopback_provider(fake).stream(bedrock.chat(), bedrock.STREAM_MODEL, Deadline(10)),
    ),
}


@pytest.fixture(params=sorted(PROVIDERS))
def upstream(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Stream]]:
    make, stream = PROVIDERS[request.param]
    server = make().start()
    yield server, stream
    server.stop()


def test_the_caller_prepares_once_the_request_is_accepted_and_before_the_first_event(
    upstream: tuple[Any, Stream],
) -> None:
    fake, stream = upstream
    fake.stream_chunks, fake.stream_interval = 5, 0.05
    seen: list[int] = []
    deltas = stream(fake)

    with waiting_with(lambda: seen.append(len(fake.requests))):
        first = next(deltas)

    assert seen == [1]  # once, with the request at the server
    assert first.content
    deltas.close()


@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_a_request_refused_before_its_stream_is_not_prepared_for(name: str) -> None:
    make, stream = PROVIDERS[name]
    fake = make().start()
    try:
        fake.mode = "server_error"
        seen: list[int] = []
        deltas = stream(fake)

        with waiting_with(lambda: seen.append(len(fake.requests))), pytest.raises(RetryableError):
            next(deltas)

        assert seen == []
    finally:
        fake.stop()
