"""`llm-router serve --config` in front of fake OpenAI-compatible servers, driven by the official `openai` client:
real answers and tool calls through the router, and a primary killed mid-run without a 5xx reaching the caller."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from tests.e2e.conftest import Served, start_server, stop_server
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.router import openai_model

KEY = "sk-fake-upstream-0123456789abcdef"
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
        },
    }
]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, FakeOpenAI]]:
    servers = {"primary": FakeOpenAI(api_key=KEY).start(), "fallback": FakeOpenAI(api_key=KEY).start()}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, FakeOpenAI]) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("serve-fake-openai")
    doc = {
        "models": [
            openai_model("primary", upstreams["primary"].url),
            openai_model("fallback", upstreams["fallback"].url, model_id="gpt-4.1-mini"),
        ],
        "routes": [{"id": "auto", "default": ["primary", "fallback"]}],
        "rules": [],
    }
    config = Path(workdir) / "router.yaml"
    config.write_text(yaml.safe_dump(doc))
    server = start_server(workdir, "--config", str(config), env_extra={"LLM_ROUTER_KEY_FAKE_OPENAI_KEY": KEY})
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def client(served: Served) -> OpenAI:
    # No client-side retries: every answer the test sees is the router's first answer.
    return OpenAI(base_url=f"{served.base_url}/v1", api_key="sk-local-dev", max_retries=0, timeout=60)


def test_answers_come_from_the_upstream_through_the_router(client: OpenAI, upstreams: dict[str, FakeOpenAI]) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Hello there!"}]
    )
    completion = raw.parse()

    assert completion.choices[0].message.content == "gpt-4o-mini heard: Hello there!"
    assert completion.model == raw.headers["x-router-model"] == "primary"
    assert raw.headers["x-router-attempts"] == "1"
    assert "x-router-simulated" not in raw.headers
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert upstreams["primary"].requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_tool_calls_round_trip_through_the_router(client: OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(model="auto", messages=messages, tools=TOOLS)

    tool_calls = first.choices[0].message.tool_calls
    assert tool_calls is not None
    call = tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}

    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = client.chat.completions.create(model="auto", messages=messages, tools=TOOLS)

    assert second.choices[0].message.content == "The tool said: 18C and sunny"


def test_killing_the_primary_mid_run_moves_answers_to_the_fallback(
    client: OpenAI, upstreams: dict[str, FakeOpenAI]
) -> None:
    primary = upstreams["primary"]
    before = [
        client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": f"warm-up {i}"}]
        )
        for i in range(3)
    ]
    assert [r.headers["x-router-model"] for r in before] == ["primary"] * 3

    # A request is in flight at the primary when it dies.
    primary.mode, primary.slow_seconds = "slow", 60
    seen = len(primary.requests)
    in_flight: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: in_flight.update(
            raw=client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": "in flight"}]
            )
        )
    )
    thread.start()
    for _ in range(600):  # until the primary has the request (bounded: 60 s at most)
        if len(primary.requests) > seen:
            break
        time.sleep(0.1)
    primary.stop()
    thread.join(timeout=60)

    after = [
        client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": f"after {i}"}]
        )
        for i in range(8)
    ]

    for raw in [in_flight["raw"], *after]:
        assert raw.status_code == 200
        assert raw.headers["x-router-model"] == "fallback"
        assert int(raw.headers["x-router-attempts"]) > 1
        assert raw.parse().choices[0].message.content.startswith("gpt-4.1-mini heard:")
