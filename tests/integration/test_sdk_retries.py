"""The official openai client, with its default retries, against every 503 and budget 429 the router answers: one
HTTP request each (`x-should-retry: false`), so a queued request is never queued again by the SDK."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest
from openai import OpenAI

from llm_router.cli.main import main as cli
from llm_router.local.runtime import LOCAL_TENANT
from llm_router.local.server import LocalServer
from llm_router.stores.fallback_queue import FallbackQueue
from llm_router.stores.payload_store import PayloadStore
from tests.integration.conftest import Router
from tests.integration.test_chaos import BrokenSqs

HELLO = [{"role": "user", "content": "Hello!"}]


@pytest.fixture
def served(router: Router) -> Iterator[tuple[OpenAI, list[httpx2.Request]]]:
    assert router.local is not None
    server = LocalServer("127.0.0.1", 0).attach(router.local).start()
    sent: list[httpx2.Request] = []
    client = OpenAI(
        base_url=f"{server.base_url}/v1",
        api_key="sk-local-dev",
        http_client=httpx2.Client(event_hooks={"request": [sent.append]}),
    )
    assert client.max_retries == 2  # the SDK's default, untouched
    yield client, sent
    server.stop()


def test_a_queued_503_is_sent_once(router: Router, served: tuple[OpenAI, list[httpx2.Request]]) -> None:
    client, sent = served
    router.set_models(failure="server_error")
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="auto", messages=HELLO)  # type: ignore[arg-type]

    assert len(sent) == 1 and router.queue_depth(router.queue_url) == 1
    assert info.value.response.headers["Retry-After"] == "30"
    assert router.metric_values("Queued") == [1.0]


def test_a_503_that_was_not_kept_is_sent_once(router: Router, served: tuple[OpenAI, list[httpx2.Request]]) -> None:
    client, sent = served
    payloads = PayloadStore(router.settings.state_table_name, dynamodb=router.clients.get("dynamodb"))
    router.gateway.queue = FallbackQueue(router.queue_url, payloads, sqs=BrokenSqs())
    router.set_models(failure="server_error")
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="auto", messages=HELLO)  # type: ignore[arg-type]

    assert len(sent) == 1
    assert info.value.response.headers["Retry-After"] == "5"
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "queue_unavailable"


def test_a_budget_429_is_sent_once(router: Router, served: tuple[OpenAI, list[httpx2.Request]]) -> None:
    """This SDK version also gives up on a Retry-After over 60 s, which a budget's usually is; the header keeps the
    last minute before the reset, and SDKs that ignore long Retry-After values, from retrying."""
    client, sent = served
    assert cli(["tenants", "set", LOCAL_TENANT, "--daily-budget", "0"]) == 0
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="auto", messages=HELLO)  # type: ignore[arg-type]

    assert len(sent) == 1
    assert int(info.value.response.headers["Retry-After"]) > 0
