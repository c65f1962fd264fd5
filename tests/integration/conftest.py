"""In-process handler tests under moto: the stack's tables, the example config, a local API key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto import mock_aws

from llm_router.gateway import CircuitBreaker
from llm_router.local.runtime import DEFAULT_LOCAL_KEY, LOCAL_TENANT, example_config, reset_process_caches
from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE
from llm_router.stores.config_admin import ConfigAdmin, validate_document
from llm_router.stores.key_store import KeyStore
from llm_router.stores.tables import TTL_ATTRIBUTE, table_definition
from tests.helpers import api_event


@dataclass
class Router:
    """Calls the real authorizer and router handler in-process, as the local server and API Gateway do."""

    admin: ConfigAdmin
    keys: KeyStore
    queue_url: str = ""
    dead_letter_queue_url: str = ""
    emitted: list[dict[str, Any]] = field(default_factory=list)

    def call(self, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        from llm_router.local.server import invoke

        return invoke(api_event(body, **kwargs))

    def chat(self, content: str, **extra: Any) -> dict[str, Any]:
        return self.call({"model": "auto", "messages": [{"role": "user", "content": content}], **extra})

    @staticmethod
    def json(response: dict[str, Any]) -> Any:
        return json.loads(response["body"])

    def metric_values(self, name: str) -> list[float]:
        return [v for doc in self.emitted for v in doc.get(name, [])]

    def set_models(self, **simulate: Any) -> None:
        """Give every catalog model the same simulation settings (e.g. failure="server_error")."""
        for entry in self.admin.entries("model"):
            self.admin.put_raw("model", {**entry, "simulate": simulate})

    def drain(self, rounds: int = 20) -> int:
        """Run the replay worker over the fallback queue until it is empty; returns messages handled."""
        from llm_router.local.replay_thread import drain_once
        from llm_router.replay import handle
        from llm_router.stores.aws import client

        handled = 0
        for _ in range(rounds):
            received = drain_once(client("sqs"), self.queue_url, handle)
            handled += received
            if received == 0:
                break
        return handled

    def queue_depth(self, url: str) -> int:
        from llm_router.stores.aws import client

        attributes = client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def router(monkeypatch: pytest.MonkeyPatch) -> Iterator[Router]:
    monkeypatch.setenv("LLM_ROUTER_SIMULATE", "true")
    monkeypatch.setenv("RULES_TTL_SECONDS", "0")
    monkeypatch.setenv("CONFIG_TABLE_NAME", DEFAULT_CONFIG_TABLE)
    monkeypatch.setenv("STATE_TABLE_NAME", DEFAULT_STATE_TABLE)
    monkeypatch.setenv("MAX_RECEIVE_COUNT", "3")
    monkeypatch.setenv("REPLAY_BACKOFF_SECONDS", "0")
    with mock_aws():
        reset_process_caches()
        from llm_router.stores.aws import client

        ddb = client("dynamodb")
        for name in (DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE):
            ddb.create_table(**table_definition(name))
        ddb.update_time_to_live(
            TableName=DEFAULT_STATE_TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
        )
        sqs = client("sqs")
        dlq_url = sqs.create_queue(QueueName="fallback-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
        queue_url = sqs.create_queue(
            QueueName="fallback", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "0"}
        )["QueueUrl"]
        monkeypatch.setenv("FALLBACK_QUEUE_URL", queue_url)
        reset_process_caches()
        admin = ConfigAdmin(DEFAULT_CONFIG_TABLE)
        admin.apply(validate_document(example_config()))
        keys = KeyStore(DEFAULT_CONFIG_TABLE)
        keys.create(LOCAL_TENANT, DEFAULT_LOCAL_KEY)
        r = Router(admin, keys, queue_url, dlq_url)
        from llm_router import api

        gateway = api.get_gateway()
        gateway.metrics._emit = r.emitted.append  # capture EMF documents instead of printing them
        gateway._sleep = lambda seconds: None  # retry back-off without waiting
        gateway.breaker = CircuitBreaker(cooldown=0)  # models that recover are tried again at once
        yield r
        reset_process_caches()
