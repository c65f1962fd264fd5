"""The local server attacked as a caller would: policies, PII placement, slow inputs, unsafe regexes, Host headers."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import Served
from tests.e2e.test_openai_client import post

EMAIL_PROMPT = "Please write to jane.doe@example.com about her order."


@pytest.fixture(scope="module")
def client(served: Served) -> OpenAI:
    return OpenAI(base_url=f"{served.base_url}/v1", api_key="sk-local-dev", max_retries=0)


def _raw(served: Served, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    parts = urlsplit(served.base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_an_email_prompt_naming_the_us_model_is_never_answered_by_it(client: OpenAI) -> None:
    # When a caller names the external US model for a prompt with an e-mail address
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": EMAIL_PROMPT}])

    # Then the policy refuses it, naming itself; nothing was answered in the US
    body = refused.value.body
    assert isinstance(body, dict)
    assert body["code"] == "policy_violation" and body["rule"] == "pii-stays-in-eu"
    assert "pii-stays-in-eu" in body["message"]


def test_an_email_only_in_a_tool_call_argument_is_held_by_the_policy_too(client: OpenAI) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "Send the usual note."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "send_mail", "arguments": json.dumps({"to": "jane.doe@example.com"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sent"},
    ]
    tools: list[Any] = [{"type": "function", "function": {"name": "send_mail", "parameters": {"type": "object"}}}]

    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    # On the route, the same request is kept in the EU as the policy says
    answer = client.chat.completions.with_raw_response.create(model="auto", messages=messages, tools=tools)
    assert answer.headers["x-router-model"] == "eu-nova-lite"
    assert answer.headers["x-router-rule"] == "pii-stays-in-eu"


def test_a_megabyte_of_percent_signs_before_an_at_sign_is_answered_within_two_seconds(served: Served) -> None:
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "%" * 1_000_000 + "@"}]})

    started = time.perf_counter()
    status, answer = post(f"{served.base_url}/v1/chat/completions", body.encode())
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert status in (200, 400), answer


def test_rules_put_refuses_a_catastrophically_backtracking_regex(served: Served) -> None:
    rule = {"id": "slow", "route": "auto", "when": {"regex": "^(a+)+$"}, "then": {"targets": ["nova-micro"]}}

    result = served.cli("rules", "put", "--local", json.dumps(rule))

    assert result.returncode != 0
    assert "backtrack" in (result.stdout + result.stderr)


def test_a_foreign_host_header_is_refused(served: Served) -> None:
    status, body = _raw(
        served, "GET", "/v1/models", b"", {"Host": "attacker.example", "Authorization": "Bearer sk-local-dev"}
    )

    assert status == 421
    assert body["error"]["code"] == "host_not_allowed"


def test_a_body_that_is_not_utf8_is_a_400(served: Served) -> None:
    headers = {"Host": "127.0.0.1", "Authorization": "Bearer sk-local-dev", "Content-Type": "application/json"}
    status, body = _raw(served, "POST", "/v1/chat/completions", b'{"model": "auto", "x": "\xff\xfe"}', headers)

    assert status == 400
    assert "UTF-8" in body["error"]["message"]


def test_serving_beyond_loopback_with_the_development_key_is_refused(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLM_ROUTER_LOCAL_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "llm_router.cli.main", "serve", "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "LLM_ROUTER_LOCAL_KEY" in result.stderr + result.stdout
