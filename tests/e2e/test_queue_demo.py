"""The README's resilience demo: every model down -> 503 with a request id; models back -> the answer appears."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import httpx2
import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import start_server, stop_server


def get(url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": "Bearer sk-local-dev"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_queued_request_is_answered_once_models_recover(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory.mktemp("queue"))
    try:
        client = OpenAI(base_url=f"{server.base_url}/v1", api_key="sk-local-dev", max_retries=0)
        down = server.cli("simulate", "down", "--local")
        assert down.returncode == 0, down.stderr
        time.sleep(1.2)  # the config cache TTL of this server

        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hello!"}])
        error = info.value.body
        assert info.value.status_code == 503
        assert isinstance(error, dict) and error["queued"] is True
        request_id = error["request_id"]
        assert info.value.response.headers["Retry-After"]

        up = server.cli("simulate", "up", "--local")
        assert up.returncode == 0, up.stderr
        deadline, status, body = time.monotonic() + 30, 0, {}
        while time.monotonic() < deadline:
            status, body = get(f"{server.base_url}/v1/requests/{request_id}")
            if body.get("status") == "done":
                break
            time.sleep(0.5)

        assert status == 200
        assert body["status"] == "done"
        assert body["result"]["choices"][0]["message"]["content"].startswith("[simulated")
    finally:
        stop_server(server)


def test_the_stock_sdk_with_default_retries_leaves_exactly_one_queued_request(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The official client retries 5xx twice by default (honouring Retry-After): `x-should-retry: false` stops it,
    so a call against a router whose models are all down queues one request, not three, and returns at once."""
    workdir = tmp_path_factory.mktemp("retries")
    metrics = workdir / "metrics.jsonl"
    server = start_server(workdir, env_extra={"LLM_ROUTER_METRICS_SINK": str(metrics)})
    try:
        down = server.cli("simulate", "down", "--local")
        assert down.returncode == 0, down.stderr
        time.sleep(1.2)  # the config cache TTL of this server
        sent: list[httpx2.Request] = []
        http_client = httpx2.Client(event_hooks={"request": [sent.append]})
        client = OpenAI(base_url=f"{server.base_url}/v1", api_key="sk-local-dev", http_client=http_client)
        assert client.max_retries == 2  # the SDK's default, untouched

        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hello!"}])
        elapsed = time.monotonic() - started

        assert info.value.response.headers["x-should-retry"] == "false"
        assert len(sent) == 1
        assert elapsed < 20  # generous: three tries with Retry-After: 30 would take a minute
        queued = [line for line in metrics.read_text().splitlines() if '"Queued"' in line]
        assert len(queued) == 1
    finally:
        stop_server(server)
