"""Fault injection that can fail: a schedule of requests whose every outcome is known in advance, run through the
handler while models and the queue fail, then checked request by request and against independent evidence.

Each scheduled request carries its expected outcome, fixed by how the faults were built rather than read from the
response: with `claude-sonnet` healthy (the last fallback of every chain the example config can produce), any fault
on the other models still ends in an answer; with every model down the request is queued and answered after the
drain; a pinned model that never recovers ends dead-lettered; with the queue unreachable too it is not kept; a
malformed body is refused. The suite then checks every request's response against its expectation, the request
records and the dead-letter queue against the queued ones, and the usage counters in DynamoDB and the emitted
metrics against the counts. `test_the_suite_fails_on_a_broken_gateway` runs the same suite against a gateway that
turns a quarter of the requests it should queue into 400s, and requires the suite to fail.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from llm_router.errors import InvalidRequestError
from llm_router.gateway import Gateway, NotKept, Queued, Refused
from llm_router.providers.base import Deadline, ProviderResponse
from llm_router.providers.simulated import SimulatedProvider
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.stores.fallback_queue import FallbackQueue
from llm_router.stores.payload_store import PayloadStore
from tests.helpers import header
from tests.integration.conftest import Router

SEED = 20261129
WORDS = "alpha beta gamma delta python budget invoice summary translate explain compare rust sql poem".split()
FAILURES = ["throttle", "server_error", "timeout", "connection_error"]
# Every model but the last fallback of every chain: any fault on these still ends in an answer.
SURVIVABLE = ["nova-micro", "claude-haiku", "eu-nova-lite", "gpt-4o-mini"]
ALL_MODELS = [*SURVIVABLE, "claude-sonnet"]
THREADS = 4

ANSWERED, REFUSED, DONE, DEAD, NOT_KEPT = "answered", "refused", "queued -> done", "queued -> dead-lettered", "not kept"
CATEGORIES = [ANSWERED, REFUSED, DONE, DEAD, NOT_KEPT]


class BrokenSqs:
    """An SQS client whose every call fails, as when the queue endpoint is unreachable."""

    def __getattr__(self, name: str) -> Any:
        def fail(**_: Any) -> Any:
            raise ConnectionError("sqs unreachable")

        return fail


class CountingModels(SimulatedProvider):
    """The simulated models, counting the answers they gave (live and replayed): evidence the responses cannot fake."""

    def __init__(self) -> None:
        super().__init__()
        self.answers = 0
        self._lock = threading.Lock()

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        response = super().complete(request, model, deadline)
        with self._lock:
            self.answers += 1
        return response


@dataclass
class Sent:
    """One scheduled request: what it should end as, and what it got."""

    index: int
    expected: str
    status: int = 0
    request_id: str | None = None
    body: str = ""
    queued: bool | None = None
    replay: bool = False


@dataclass
class Chaos:
    router: Router
    scale: float = 1.0
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    sent: list[Sent] = field(default_factory=list)
    retry_pairs: list[tuple[Sent, Sent]] = field(default_factory=list)
    recovered_retries: list[tuple[Sent, Sent]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.models = CountingModels()
        self.router.build(providers={"simulated": self.models})
        self.gateway = self.router.gateway
        self.gateway.config.cache.ttl = 3600  # config changes below invalidate the cache explicitly

    def n(self, count: int) -> int:
        return max(4, int(count * self.scale))

    # -- faults ----------------------------------------------------------------------------------------------
    def configure(self, failing: dict[str, tuple[str, float]]) -> None:
        failing = {"doomed": ("server_error", 1.0), **failing}  # the one model that never recovers
        for entry in self.router.admin.entries("model"):
            failure, rate = failing.get(entry["id"], ("none", 1.0))
            self.router.admin.put_raw("model", {**entry, "simulate": {"failure": failure, "failure_rate": rate}})
        self.gateway.config.invalidate()

    def survivable_faults(self) -> None:
        subset = self.rng.sample(SURVIVABLE, self.rng.randint(1, len(SURVIVABLE)))
        self.configure({m: (self.rng.choice(FAILURES), self.rng.choice([0.3, 0.6, 1.0])) for m in subset})

    # -- requests ----------------------------------------------------------------------------------------------
    def chat(self, model: str = "auto", **extra: Any) -> dict[str, Any]:
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(3, 30)))
        user = f"u{self.rng.randrange(17)}"
        return {"model": model, "messages": [{"role": "user", "content": words}], "user": user, **extra}

    def send(self, expected: str, body: Any, headers: dict[str, str] | None = None) -> Sent:
        sent = Sent(len(self.sent), expected)
        self.sent.append(sent)
        self.observe(sent, self.router.call(body, headers=headers))
        return sent

    def send_many(self, expected: str, bodies: list[Any], headers: dict[str, str] | None = None) -> None:
        """Concurrently, as a busy function instance serves them."""
        batch = [Sent(len(self.sent) + i, expected) for i in range(len(bodies))]
        self.sent += batch
        with ThreadPoolExecutor(THREADS) as pool:
            responses = list(pool.map(lambda b: self.router.call(b, headers=headers), bodies))
        for sent, response in zip(batch, responses, strict=True):
            self.observe(sent, response)

    @staticmethod
    def observe(sent: Sent, response: dict[str, Any]) -> None:
        sent.status = response["statusCode"]
        sent.body = response["body"]
        payload = json.loads(response["body"])
        error = payload.get("error") if isinstance(payload, dict) else None
        sent.request_id = header(response, "x-router-request-id") or (error or {}).get("request_id")
        sent.queued = (error or {}).get("queued")
        sent.replay = header(response, "x-router-idempotent-replay") == "true"

    # -- the schedule ------------------------------------------------------------------------------------------
    def run(self) -> None:
        # Survivable faults on random subsets of models, re-drawn every 50 requests, sent 4 at a time.
        for _ in range(self.n(8)):
            self.survivable_faults()
            self.send_many(ANSWERED, [self.chat() for _ in range(50)])
        # The first choices overflow their context window: the request moves on to a larger window.
        self.configure({"nova-micro": ("context_overflow", 1.0), "gpt-4o-mini": ("context_overflow", 1.0)})
        self.send_many(ANSWERED, [self.chat() for _ in range(self.n(60))])
        # Every model down: queued, answered after the drain.
        self.configure({m: ("server_error", 1.0) for m in ALL_MODELS})
        self.send_many(DONE, [self.chat() for _ in range(self.n(150))])
        self.send_many(DONE, [self.chat() for _ in range(self.n(40))], headers={"Prefer": "respond-async"})
        # Every model down and the queue unreachable: not kept; some carry a key, retried once the queue is back.
        real_queue = self.gateway.queue
        payloads = PayloadStore(self.router.settings.state_table_name, dynamodb=self.router.clients.get("dynamodb"))
        self.gateway.queue = FallbackQueue(self.router.queue_url, payloads, sqs=BrokenSqs())
        keyed = []
        for i in range(self.n(60)):
            body, key = self.chat(), {"Idempotency-Key": f"lost-{i}"} if i % 2 else None
            lost = self.send(NOT_KEPT, body, key)
            if key:
                keyed.append((lost, body, key))
        self.gateway.queue = real_queue
        # The queue is back (models still down): the same key queues the request this time.
        for lost, body, key in keyed:
            self.recovered_retries.append((lost, self.send(DONE, body, key)))
        # Idempotent retries of answered requests under survivable faults: the same answer, nothing new.
        self.survivable_faults()
        for i in range(self.n(100)):
            body, key = self.chat(), {"Idempotency-Key": f"retry-{i}"}
            first = self.send(ANSWERED, body, key)
            response = self.router.call(body, headers=key)
            again = Sent(-1, ANSWERED)
            self.observe(again, response)
            self.retry_pairs.append((first, again))
        # Malformed bodies, and a pinned model that never recovers.
        for _ in range(self.n(40)):
            self.send(REFUSED, {"model": "auto", "messages": self.rng.choice([[], "x", [{"role": "bot"}]])})
        self.send_many(DEAD, [self.chat(model="doomed") for _ in range(self.n(30))])
        # Recovery: every model healthy except `doomed`; the replay worker drains the queue.
        self.configure({})
        self.router.drain(rounds=400)

    # -- the checks ----------------------------------------------------------------------------------------------
    def outcomes(self) -> Counter[str]:
        """Every request's outcome checked against its expectation; raises AssertionError listing mismatches."""
        requests = self.gateway.requests
        assert requests is not None
        dlq = dead_lettered(self.router)
        observed: Counter[str] = Counter()
        wrong: list[str] = []
        for sent in self.sent:
            got = self.category(sent, requests, dlq)
            observed[got] += 1
            if got != sent.expected:
                wrong.append(f"#{sent.index} expected {sent.expected}, got {got} ({sent.status} {sent.body[:80]})")
        if wrong:
            raise AssertionError(f"{len(wrong)} of {len(self.sent)} requests ended wrongly:\n" + "\n".join(wrong[:10]))
        ids = [s.request_id for s in self.sent if s.request_id]
        assert len(ids) == len(set(ids)), "a request id was given to two requests"
        # Dead-lettered: exactly the requests scheduled to be, no more (the DLQ is read, not the responses).
        assert dlq == {s.request_id for s in self.sent if s.expected == DEAD}
        return observed

    @staticmethod
    def category(sent: Sent, requests: Any, dlq: set[str]) -> str:
        if sent.status == 200 and json.loads(sent.body).get("object") == "chat.completion":
            return ANSWERED
        if 400 <= sent.status < 500:
            return REFUSED
        queued = sent.status == 202 or (sent.status == 503 and sent.queued is True)
        if sent.status == 503 and sent.queued is False:
            return NOT_KEPT
        if not queued or not sent.request_id:
            return f"unexpected {sent.status}"
        record = requests.get(sent.request_id)
        if record is None:
            return "queued without a record"
        if record.status == "done" and record.result and record.result.get("object") == "chat.completion":
            return DONE
        if record.status == "failed" and sent.request_id in dlq:
            return DEAD
        return f"queued, still {record.status}"

    def check(self) -> Counter[str]:
        observed = self.outcomes()
        for first, again in self.retry_pairs:
            assert again.body == first.body and again.replay, "an idempotent retry got another answer"
        for lost, retried in self.recovered_retries:
            assert not retried.replay and retried.request_id != lost.request_id, "a lost request was replayed"
        answered = observed[ANSWERED] + observed[DONE]  # live, or by the replay worker
        # Independent evidence: what the models themselves answered, and the emitted metrics. (Not the usage
        # counters: moto's UpdateItem is not atomic under threads, unlike DynamoDB's ADD.)
        assert self.models.answers == answered, f"the models answered {self.models.answers}, the schedule {answered}"
        assert self.router.metric_values("Requests").count(1.0) == answered
        assert len(self.router.metric_values("Queued")) == observed[DONE] + observed[DEAD]
        assert len(self.router.metric_values("QueueWriteFailed")) == observed[NOT_KEPT]
        assert self.router.queue_depth(self.router.queue_url) == 0
        return observed


def dead_lettered(router: Router) -> set[str]:
    sqs = router.clients.get("sqs")
    ids: set[str] = set()
    for _ in range(50):
        messages = sqs.receive_message(
            QueueUrl=router.dead_letter_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300
        ).get("Messages", [])
        if not messages:
            break
        ids.update(json.loads(m["Body"])["request_id"] for m in messages)
    return ids


def test_every_request_ends_as_scheduled_under_faults(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    router.admin.put_raw(
        "model",
        {"id": "doomed", "provider": "simulated", "model_id": "doomed", "simulate": {"failure": "server_error"}},
    )
    chaos = Chaos(router)
    chaos.run()
    observed = chaos.check()

    expected = Counter(s.expected for s in chaos.sent)
    assert observed == expected and all(expected[c] > 0 for c in CATEGORIES)
    with capsys.disabled():
        print(f"\n\nFault-injection tally (seed {SEED}, {len(chaos.sent)} requests, {THREADS} threads, "
              f"{len(chaos.retry_pairs)} idempotent retries, {len(chaos.recovered_retries)} retried after the queue "
              "came back)")  # fmt: skip
        for name in CATEGORIES:
            print(f"  {name:<26}{observed[name]:>6}  (scheduled {expected[name]})")
        print()


class DropsQueuedRequests(Gateway):
    """A deliberately broken gateway: every fourth request it should queue is refused with a 400 instead."""

    def _enqueue(self, ctx: Any, mode: Any, body: bytes, decision: Any, attempts: Any) -> Queued | NotKept:
        self.enqueued = getattr(self, "enqueued", 0) + 1
        if self.enqueued % 4 == 0:
            return Refused(InvalidRequestError("dropped", code="invalid_request"))  # type: ignore[return-value]
        return super()._enqueue(ctx, mode, body, decision, attempts)


def test_the_suite_fails_on_a_broken_gateway(router: Router) -> None:
    router.admin.put_raw(
        "model",
        {"id": "doomed", "provider": "simulated", "model_id": "doomed", "simulate": {"failure": "server_error"}},
    )
    chaos = Chaos(router, scale=0.25)
    chaos.gateway.__class__ = DropsQueuedRequests  # the same gateway, with its queueing broken
    chaos.run()

    with pytest.raises(AssertionError, match="ended wrongly") as failure:
        chaos.check()
    assert "expected queued -> done, got refused" in str(failure.value)
