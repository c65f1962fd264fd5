"""In-process handler tests under moto: the stack's tables, the example config, a local API key."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto import mock_aws

from llm_router.api import drained
from llm_router.breaker import CircuitBreaker
from llm_router.gateway import Gateway
from llm_router.local.runtime import DEFAULT_LOCAL_KEY, LOCAL_TENANT, example_config
from llm_router.local.server import LocalGateway
from llm_router.replay import Replayer
from llm_router.runtime import StreamingResponse
from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE, ReplaySettings, RouterSettings, get_settings
from llm_router.stores import aws
from llm_router.stores.config_admin import ConfigAdmin, validate_document
from llm_router.stores.key_store import KeyStore
from llm_router.stores.request_store import RequestStore
from llm_router.stores.tables import TTL_ATTRIBUTE, table_definition
from llm_router.wiring import AwsClients, build_key_store, build_replayer, build_request_store, build_router_api
from tests.helpers import api_event

ROUTER_ENV = {
    "LLM_ROUTER_SIMULATE": "true",
    "RULES_TTL_SECONDS": "0",
    "CONFIG_TABLE_NAME": DEFAULT_CONFIG_TABLE,
    "STATE_TABLE_NAME": DEFAULT_STATE_TABLE,
    "MAX_RECEIVE_COUNT": "3",
    "REPLAY_BACKOFF_SECONDS": "0",
    # The fake providers listen on loopback over plain http and take keys from LLM_ROUTER_KEY_* variables.
    "LLM_ROUTER_LOCAL_MODE": "true",
}


@dataclass
class Router:
    """Calls the real authorizer and router handler in-process, as the local server and API Gateway do."""

    admin: ConfigAdmin
    keys: KeyStore
    clients: AwsClients
    env: dict[str, str]
    queue_url: str = ""
    dead_letter_queue_url: str = ""
    emitted: list[dict[str, Any]] = field(default_factory=list)
    local: LocalGateway | None = None
    replayer: Replayer | None = None

    def build(self, *, breaker: CircuitBreaker | None = None, **overrides: Any) -> Router:
        """(Re)build the router from `env` through the composition root: EMF documents captured, retry
        back-offs not waited for, and (by default) a breaker that lets recovered models be tried at once."""
        settings = self.settings
        overrides = {
            "emit": self.emitted.append,
            "sleep": lambda seconds: None,
            "key_environ": {**os.environ, **self.env},
            **overrides,
        }
        breaker = breaker or CircuitBreaker(cooldown=0)
        api = build_router_api(settings, clients=self.clients, breaker=breaker, **overrides)
        self.local = LocalGateway(api, build_key_store(settings, clients=self.clients))
        if settings.fallback_queue_url:
            replay_settings = ReplaySettings.from_env({**os.environ, **self.env})
            self.replayer = build_replayer(replay_settings, clients=self.clients, breaker=breaker, **overrides)
        return self

    @property
    def settings(self) -> RouterSettings:
        return RouterSettings.from_env({**os.environ, **self.env})

    @property
    def requests(self) -> RequestStore:
        """The queued requests' records, read as `GET /v1/requests/{id}` reads them."""
        return build_request_store(self.settings, self.clients)

    @property
    def gateway(self) -> Gateway:
        assert self.local is not None
        return self.local.api.gateway

    def call(self, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        """The response as API Gateway would return it; a stream is read to its end."""
        assert self.local is not None
        response = self.local.invoke(api_event(body, **kwargs))
        if isinstance(response, StreamingResponse):
            result = drained(response)
            headers = {"Content-Type": result["content_type"], **result["headers"]}
            return {"statusCode": result["status"], "headers": headers, "body": result["body"]}
        return response

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

        assert self.replayer is not None, "the replay worker needs FALLBACK_QUEUE_URL"
        handled = 0
        for _ in range(rounds):
            received = drain_once(self.clients.get("sqs"), self.queue_url, self.replayer.handle)
            handled += received
            if received == 0:
                break
        return handled

    def queue_depth(self, url: str) -> int:
        attributes = self.clients.get("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def router(monkeypatch: pytest.MonkeyPatch) -> Iterator[Router]:
    # The CLI, run in-process by some tests, reads its environment and keeps one client per service.
    for name, value in ROUTER_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        aws.reset()
        get_settings.cache_clear()
        clients = AwsClients(region="us-east-1")
        ddb = clients.get("dynamodb")
        for name in (DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE):
            ddb.create_table(**table_definition(name))
        ddb.update_time_to_live(
            TableName=DEFAULT_STATE_TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
        )
        sqs = clients.get("sqs")
        dlq_url = sqs.create_queue(QueueName="fallback-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
        queue_url = sqs.create_queue(
            QueueName="fallback", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "0"}
        )["QueueUrl"]
        admin = ConfigAdmin(DEFAULT_CONFIG_TABLE, dynamodb=ddb)
        admin.apply(validate_document(example_config()))
        keys = KeyStore(DEFAULT_CONFIG_TABLE, dynamodb=ddb)
        keys.create(LOCAL_TENANT, DEFAULT_LOCAL_KEY, admin=True)  # as local mode does
        env = {**ROUTER_ENV, "FALLBACK_QUEUE_URL": queue_url}
        monkeypatch.setenv("FALLBACK_QUEUE_URL", queue_url)
        yield Router(admin, keys, clients, env, queue_url, dlq_url).build()
        aws.reset()
        get_settings.cache_clear()
