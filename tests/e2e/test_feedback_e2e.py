"""Learning from traffic on the local server: answers through the official `openai` client, feedback over plain
HTTP, the shadow judge in the background replay worker, and `experiments report --local`."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openai import OpenAI

from llm_router.local.runtime import example_config
from tests.e2e.conftest import Served, start_server, stop_server


@pytest.fixture(scope="module")
def learning_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("learn")
    config = example_config()
    config["routes"].append(
        {
            "id": "learn",
            "default": ["nova-micro", "claude-sonnet"],
            "strategy": {"strategy": "threshold", "weak": "nova-micro", "strong": "claude-sonnet", "threshold": 0.58},
            "learn": {"collect": True, "shadow": {"rate": 1.0, "judge": "claude-sonnet", "daily_budget_usd": 1.0}},
        }
    )
    path = Path(workdir) / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    server = start_server(workdir, "--config", str(path), "--simulate")
    yield server
    stop_server(server)


def post(served: Served, path: str, body: Any, key: str = "sk-local-dev") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{served.base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def rate(served: Served, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Feedback, retried briefly: the record is written just after the answer."""
    deadline = time.monotonic() + 10
    while True:
        status, reply = post(served, "/v1/feedback", body)
        if status != 404 or time.monotonic() > deadline:
            return status, reply
        time.sleep(0.1)


def test_feedback_and_shadow_scores_reach_the_report(learning_server: Served) -> None:
    client = OpenAI(base_url=f"{learning_server.base_url}/v1", api_key="sk-local-dev", max_retries=0)
    completion = client.chat.completions.create(
        model="learn", messages=[{"role": "user", "content": "What is the capital of France?"}]
    )
    assert completion.choices[0].message.content
    # When the caller rates the answer by its completion id, twice
    status, first = rate(learning_server, {"request_id": completion.id, "thumbs": "up", "comment": "right"})
    again = post(learning_server, "/v1/feedback", {"request_id": completion.id, "thumbs": "up", "comment": "right"})
    # Then it is recorded, and the repeat answers the same
    assert status == 200, first
    assert first["score"] == 1.0 and again == (200, first)
    # And a bad rating is a 400 in OpenAI's format
    status, error = post(learning_server, "/v1/feedback", {"request_id": completion.id, "score": 7})
    assert status == 400 and error["error"]["param"] == "score"
    # And the report shows the feedback and, once the background worker has judged it, the shadow score
    deadline = time.monotonic() + 30
    while True:
        result = learning_server.cli("experiments", "report", "learn", "--local", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        (arm,) = report["arms"]
        if arm["shadow"]["n"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert arm["requests"] == 1 and arm["feedback"]["mean"] == 1.0
    assert arm["shadow"]["n"] == 1 and 0.0 <= arm["shadow"]["mean"] <= 1.0
