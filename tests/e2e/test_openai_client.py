"""The local server driven by the official `openai` client, the way a user would."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import Served, start_server, stop_server


@pytest.fixture(scope="module")
def client(served: Served) -> OpenAI:
    return OpenAI(base_url=f"{served.base_url}/v1", api_key="sk-local-dev", max_retries=0)


def test_auto_answers_with_router_headers(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Hello!"}]
    )
    completion = raw.parse()

    assert completion.choices[0].message.content
    assert completion.model == raw.headers["x-router-model"] == "nova-micro"
    assert raw.headers["x-router-rule"] == "threshold"
    assert raw.headers["x-router-simulated"] == "true"
    assert int(raw.headers["x-router-attempts"]) == 1
    assert float(raw.headers["x-router-cost-usd"]) > 0
    assert raw.headers["x-router-request-id"]


def test_python_prompt_goes_to_a_different_model_than_a_greeting(client: OpenAI) -> None:
    greeting = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hi!"}])
    code = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "How do I read a CSV file in Python?"}]
    )

    assert greeting.model == "nova-micro"
    assert code.model == "claude-haiku"


def test_streaming_works_with_the_sdk(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Hello!"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[simulated nova-micro]")
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_wrong_key_is_401(served: Served) -> None:
    bad = OpenAI(base_url=f"{served.base_url}/v1", api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 401


def test_malformed_body_is_400_naming_the_field(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="auto", messages=[])
    assert "messages" in str(info.value)


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])


def post(url: str, data: bytes) -> tuple[int, Any]:
    """A plain HTTP POST, as curl would send it."""
    request = urllib.request.Request(
        url, data=data, headers={"Authorization": "Bearer sk-local-dev", "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_curl_style_invalid_json_is_400(served: Served) -> None:
    status, body = post(f"{served.base_url}/v1/chat/completions", b'{"model": "auto", "messages": [')

    assert status == 400
    assert "not valid JSON" in body["error"]["message"]


def test_route_endpoint_explains_both_decisions(served: Served) -> None:
    def explain(content: str) -> Any:
        body = {"model": "auto", "messages": [{"role": "user", "content": content}]}
        return post(f"{served.base_url}/v1/route", json.dumps(body).encode())[1]

    greeting, code = explain("Hello!"), explain("Fix my python traceback")
    # Hybrid example route: the greeting is left to the difficulty threshold, whose scores the trace shows; the
    # keyword rule decides the other before any classifier score is computed.
    assert greeting["rule"] == "threshold" and "difficulty" in greeting["scores"]
    assert code["rule"] == "code-to-haiku" and "difficulty" not in code["scores"]


def test_rule_edit_through_the_cli_changes_routing_within_the_ttl(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory.mktemp("edit"))
    try:
        client = OpenAI(base_url=f"{server.base_url}/v1", api_key="sk-local-dev", max_retries=0)
        before = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hello!"}])
        rule = {
            "id": "hello-to-sonnet",
            "route": "auto",
            "priority": 1,
            "when": {"keywords": ["hello"]},
            "then": {"targets": ["claude-sonnet"]},
        }
        put = server.cli("rules", "put", "--local", json.dumps(rule))
        assert put.returncode == 0, put.stderr

        deadline, model = time.monotonic() + 10, before.model
        while model != "claude-sonnet" and time.monotonic() < deadline:
            time.sleep(0.2)
            model = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hello!"}]).model

        assert before.model == "nova-micro"
        assert model == "claude-sonnet"
        listed = server.cli("rules", "list", "--local")
        assert "hello-to-sonnet" in listed.stdout
    finally:
        output = stop_server(server)
    assert "serving on" in output
    assert not (server.workdir / ".llm-router" / "local.json").exists()


def test_invalid_rule_is_refused_by_the_cli(served: Served) -> None:
    result = served.cli("rules", "put", "--local", '{"id": "bad", "when": {"regex": "("}, "then": {"targets": ["x"]}}')

    assert result.returncode == 2
    assert "regex does not compile" in result.stderr


def test_concurrent_requests_each_get_their_own_answer(client: OpenAI) -> None:
    from concurrent.futures import ThreadPoolExecutor

    prompts = [("Hello there!", "nova-micro"), ("My python traceback says KeyError", "claude-haiku")] * 8

    def ask(prompt: str) -> str:
        return client.chat.completions.create(model="auto", messages=[{"role": "user", "content": prompt}]).model

    with ThreadPoolExecutor(max_workers=8) as pool:
        models = list(pool.map(ask, [p for p, _ in prompts]))

    assert models == [expected for _, expected in prompts]
