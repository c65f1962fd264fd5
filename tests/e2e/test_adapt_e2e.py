"""Adapting a route of the local server as an operator would: outcomes in its State table, `llm-router adapt ROUTE
--local`, the official `openai` client seeing the version that decided, and `adapt rollback` taking it back
within the config TTL, with no restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from openai import OpenAI

from llm_router.cli.common import local_environment
from llm_router.local.runtime import example_config
from llm_router.stores.aws import new_client
from tests.e2e.conftest import Served, start_server, stop_server
from tests.fakes.outcomes import ARITHMETIC, STRONG, WEAK, seed_outcomes


@pytest.fixture(scope="module")
def adapting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("adapt")
    config = example_config()
    config["routes"].append(
        {
            "id": "learned",
            "default": [WEAK, STRONG],
            "strategy": {"strategy": "threshold", "weak": WEAK, "strong": STRONG, "threshold": 0.58},
            "learn": {"collect": True, "min_samples": 200},
        }
    )
    path = Path(workdir) / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    server = start_server(workdir, "--config", str(path), "--simulate")
    yield server
    stop_server(server)


def _answer_headers(served: Served) -> tuple[str | None, str | None]:
    """(model that answered, adaptation that decided) for the arithmetic prompt, through the openai client."""
    client = OpenAI(base_url=f"{served.base_url}/v1", api_key="sk-local-dev", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="learned", messages=[{"role": "user", "content": ARITHMETIC}]
    )
    raw.parse()
    return raw.headers.get("x-router-model"), raw.headers.get("x-router-adaptation")


def _after_config_ttl(served: Served, expected: tuple[str, str | None]) -> tuple[str | None, str | None]:
    """The answer's headers once the server has reread its configuration (RULES_TTL_SECONDS=1)."""
    deadline = time.monotonic() + 10
    while True:
        seen = _answer_headers(served)
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.3)


def test_adapt_then_rollback_on_the_local_server(adapting_server: Served) -> None:
    served = adapting_server
    # Given 300 judged outcomes of the route in the server's State table
    info = json.loads((served.workdir / ".llm-router" / "local.json").read_text())
    env = local_environment(info["endpoint"], info.get("region", "us-east-1"))
    dynamodb = new_client(
        "dynamodb",
        endpoint_url=info["endpoint"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    seed_outcomes(dynamodb, info["state_table"], "learned", 300)
    # And the shipped model sends the arithmetic to the weak model
    assert _answer_headers(served) == (WEAK, None)

    # When the operator adapts the route
    adapted = served.cli("adapt", "learned", "--local")
    assert adapted.returncode == 0, adapted.stderr
    assert "promoted and activated v1" in adapted.stdout

    # Then, within the config TTL, the adaptation decides, and the answer says which version did
    assert _after_config_ttl(served, (STRONG, "v1")) == (STRONG, "v1")
    dry_run = served.cli("route", ARITHMETIC, "--route", "learned", "--local")
    assert dry_run.returncode == 0, dry_run.stderr
    assert json.loads(dry_run.stdout)["adaptation"] == "v1"

    # When the operator rolls it back, the shipped model decides again, without a restart
    rolled_back = served.cli("adapt", "rollback", "learned", "--local")
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert _after_config_ttl(served, (WEAK, None)) == (WEAK, None)
    listed = served.cli("adapt", "list", "learned", "--local", "--json")
    assert [(v["version"], v["active"]) for v in json.loads(listed.stdout)] == [("v1", False)]
