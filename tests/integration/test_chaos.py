"""Fault injection: 1,000+ requests through the handler while models and the queue fail, then a drain.

Every request must end in exactly one of: answered, refused (4xx), queued -> done, queued -> dead-lettered with
a `failed` record, or 503 with queued=false. The tally is printed; the metrics emitted must agree with it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

from llm_router.breaker import CircuitBreaker
from llm_router.local.server import LocalGateway
from llm_router.stores.config_store import ConfigStore
from llm_router.wiring import AwsClients, build_router_api
from tests.helpers import header
from tests.integration.conftest import Router

SEED = 20261129
WORDS = "alpha beta gamma delta python budget invoice summary translate explain compare rust sql poem".split()
FAILURES = ["throttle", "server_error", "timeout", "connection_error"]
MODELS = ["nova-micro", "claude-haiku", "claude-sonnet", "eu-nova-lite", "gpt-4o-mini"]


class BrokenSqs:
    """An SQS client whose every call fails, as when the queue endpoint is unreachable."""

    def __getattr__(self, name: str) -> Any:
        def fail(**_: Any) -> Any:
            raise ConnectionError("sqs unreachable")

        return fail


class WithBrokenSqs(AwsClients):
    """The router's clients, except that SQS is unreachable."""

    def __init__(self, clients: AwsClients) -> None:
        super().__init__()
        self.clients = clients

    def get(self, service: str) -> Any:
        return BrokenSqs() if service == "sqs" else self.clients.get(service)


class Chaos:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.rng = random.Random(SEED)
        self.outcomes: dict[str, str] = {}  # request id -> first-response category
        self.idempotent_pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.sent = 0
        # Rules cached for an hour: the config changes below invalidate the caches explicitly.
        router.env["RULES_TTL_SECONDS"] = "3600"
        router.build()
        self.gateway = router.gateway

    def configure(self, failing: dict[str, tuple[str, float]]) -> None:
        failing = {"doomed": ("server_error", 1.0), **failing}  # the one model that never recovers
        for entry in self.router.admin.entries("model"):
            failure, rate = failing.get(entry["id"], ("none", 1.0))
            self.router.admin.put_raw("model", {**entry, "simulate": {"failure": failure, "failure_rate": rate}})
        assert self.router.replayer is not None
        for gateway in (self.gateway, self.router.replayer.gateway):
            assert isinstance(gateway.config, ConfigStore)
            gateway.config.invalidate()

    def random_faults(self) -> None:
        subset = self.rng.sample(MODELS, self.rng.randint(1, len(MODELS)))
        self.configure({m: (self.rng.choice(FAILURES), self.rng.choice([0.3, 0.6, 1.0])) for m in subset})

    def prompt(self) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(3, 30)))

    def send(self, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
        self.sent += 1
        response = self.router.call(body, headers=headers)
        status = response["statusCode"]
        payload = json.loads(response["body"])
        request_id = header(response, "x-router-request-id") or payload.get("error", {}).get("request_id")
        if status == 200:
            category = "answered"
        elif status == 202:
            category = "queued"
        elif status == 503:
            category = "queued" if payload["error"].get("queued") else "not_queued"
        elif 400 <= status < 500:
            category = "refused"
            request_id = request_id or f"refused-{self.sent}"
        else:
            pytest.fail(f"unexpected status {status}: {response['body'][:200]}")
        assert request_id, f"no request id in {status} response"
        assert request_id not in self.outcomes or headers, "a request id was reused"
        self.outcomes.setdefault(request_id, category)
        return response

    def chat(self, model: str = "auto", **extra: Any) -> dict[str, Any]:
        return {
            "model": model,
            "messages": [{"role": "user", "content": self.prompt()}],
            "user": f"u{self.sent % 17}",
            **extra,
        }


def dead_lettered(router: Router) -> set[str]:
    sqs = router.clients.get("sqs")
    ids: set[str] = set()
    for _ in range(50):
        messages = sqs.receive_message(QueueUrl=router.dead_letter_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            break
        ids.update(json.loads(m["Body"])["request_id"] for m in messages)
    return ids


def test_no_request_is_lost_under_faults(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    chaos = Chaos(router)
    router.admin.put_raw(
        "model",
        {"id": "doomed", "provider": "simulated", "model_id": "doomed", "simulate": {"failure": "server_error"}},
    )

    # Phase 1: random faults on random subsets of models, re-drawn every 50 requests.
    for i in range(600):
        if i % 50 == 0:
            chaos.random_faults()
        chaos.send(chaos.chat())
    # Phase 2: every model down.
    chaos.configure({m: ("server_error", 1.0) for m in MODELS})
    for _ in range(150):
        chaos.send(chaos.chat())
    # Phase 3: every model down and the queue unreachable.
    healthy = router.local
    broken_queue = build_router_api(
        router.settings,
        clients=WithBrokenSqs(router.clients),
        emit=router.emitted.append,
        sleep=lambda seconds: None,
        breaker=CircuitBreaker(cooldown=0),
    )
    router.local = LocalGateway(broken_queue, router.keys)
    for _ in range(60):
        chaos.send(chaos.chat())
    router.local = healthy
    # Phase 4: idempotent retries under faults, async requests, malformed bodies, a model that never recovers.
    chaos.random_faults()
    for i in range(100):
        body, key = chaos.chat(), {"Idempotency-Key": f"retry-{i}"}
        first = chaos.send(body, key)
        chaos.idempotent_pairs.append((first, router.call(body, headers=key)))
    for _ in range(60):
        chaos.send(chaos.chat(), {"Prefer": "respond-async"})
    for _ in range(40):
        chaos.send({"model": "auto", "messages": chaos.rng.choice([[], "x", [{"role": "bot"}]])})
    for _ in range(30):
        chaos.send(chaos.chat(model="doomed"))

    # Recovery: every model healthy except `doomed`; the replay worker drains the queue.
    chaos.configure({"doomed": ("server_error", 1.0)})
    router.drain(rounds=200)

    requests = router.requests
    dlq = dead_lettered(router)
    final: Counter[str] = Counter()
    for request_id, category in chaos.outcomes.items():
        if category != "queued":
            final[category] += 1
            continue
        record = requests.get(request_id)
        assert record is not None, f"queued request {request_id} has no record"
        if record.status == "done":
            assert record.result is not None and record.result["object"] == "chat.completion"
            final["queued -> done"] += 1
        elif record.status == "failed":
            assert request_id in dlq, f"{request_id} failed but is not in the dead-letter queue"
            final["queued -> dead-lettered"] += 1
        else:
            pytest.fail(f"request {request_id} is still {record.status} after the drain")

    for first, retry in chaos.idempotent_pairs:
        assert retry["body"] == first["body"], "an idempotent retry got a different answer"
    sync_answered = final["answered"]
    queued = final["queued -> done"] + final["queued -> dead-lettered"]
    assert router.queue_depth(router.queue_url) == 0
    assert sum(final.values()) == len(chaos.outcomes) == chaos.sent
    assert router.metric_values("Requests").count(1.0) == sync_answered + final["queued -> done"]
    assert len(router.metric_values("Queued")) == queued
    assert len(router.metric_values("QueueWriteFailed")) == final["not_queued"]
    assert final["queued -> dead-lettered"] == 30 and len(dlq) == 30
    assert min(final.values()) > 0 and len(final) == 5

    with capsys.disabled():
        print(f"\n\nFault-injection tally (seed {SEED}, {chaos.sent} requests, {len(chaos.idempotent_pairs)} retries)")
        for name in ["answered", "refused", "queued -> done", "queued -> dead-lettered", "not_queued"]:
            label = "503 queued=false" if name == "not_queued" else name
            print(f"  {label:<26}{final[name]:>6}")
        print(f"  {'unaccounted':<26}{chaos.sent - sum(final.values()):>6}\n")
