"""The cost demo of the README (Cost), step by step: a mixed workload through `auto`, `llm-router usage` shows cost and
savings per model and route, then a tiny budget and the next request is refused with 429."""

from __future__ import annotations

import json
import time

import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import Served

WORKLOAD = [
    ("Hello!", "nova-micro"),
    ("What is the capital of France?", "nova-micro"),
    ("Thanks, that helps a lot.", "nova-micro"),
    ("Why does my Python script raise KeyError?", "claude-haiku"),
    ("Write a SQL query that counts orders per day", "claude-haiku"),
    ("Please email the invoice to jane.doe@example.com", "eu-nova-lite"),
]


@pytest.fixture(scope="module")
def client(served: Served) -> OpenAI:
    return OpenAI(base_url=f"{served.base_url}/v1", api_key="sk-local-dev", max_retries=0)


def test_usage_shows_cost_and_savings_then_a_tiny_budget_refuses_the_next_request(
    served: Served, client: OpenAI
) -> None:
    # Given a mixed workload sent through `auto`
    costs, saved = 0.0, 0.0
    for prompt, expected_model in WORKLOAD:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": prompt}]
        )
        assert raw.parse().model == expected_model
        costs += float(raw.headers["x-router-cost-usd"])
        saved += float(raw.headers["x-router-saved-usd"])

    # When the operator asks what it cost
    result = served.cli("usage", "--local", "--json")
    table = served.cli("usage", "--local")

    # Then spend and savings against the baseline show per model and per route
    assert result.returncode == 0, result.stderr
    usage = json.loads(result.stdout)
    [tenant] = usage["tenants"]
    assert tenant["tenant"] == "local" and tenant["requests"] == len(WORKLOAD)
    assert tenant["cost_usd"] == pytest.approx(costs, abs=1e-7)
    assert tenant["saved_usd"] == pytest.approx(saved, abs=1e-7) and tenant["saved_usd"] > 0
    models = {row["model"]: row for row in usage["models"]}
    assert {m: r["requests"] for m, r in models.items()} == {"nova-micro": 3, "claude-haiku": 2, "eu-nova-lite": 1}
    assert all(0 < r["cost_usd"] < r["baseline_cost_usd"] for r in models.values())
    [route] = usage["routes"]
    assert route["route"] == "auto" and route["requests"] == len(WORKLOAD)
    assert table.returncode == 0 and "claude-haiku" in table.stdout and "not the AWS bill" in table.stdout

    # When a tiny daily budget is set for the tenant of the local key
    budget = served.cli("tenants", "set", "local", "--daily-budget", "0.000001", "--local")
    assert budget.returncode == 0, budget.stderr

    # Then the next request is refused with 429 budget_exceeded (once the 1 s settings cache has expired)
    error: openai.RateLimitError | None = None
    deadline = time.monotonic() + 15
    while error is None and time.monotonic() < deadline:
        try:
            client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "One more?"}])
            time.sleep(0.2)
        except openai.RateLimitError as exc:
            error = exc
    assert error is not None
    assert error.status_code == 429 and error.code == "budget_exceeded"
    assert "daily budget" in error.message
    listed = served.cli("tenants", "list", "--local")
    assert listed.returncode == 0 and "0.000001" in listed.stdout
