"""Concurrent requests of one tenant against one budget: the overshoot stays within one request's cost each.

Each thread plays one Lambda instance: its own gateway, caches and accounting, sharing only the DynamoDB tables,
as concurrent invocations do in AWS. The bound under test is derived in llm_router/accounting.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from llm_router.accounting import UsageAccounting
from llm_router.errors import BudgetExceededError
from llm_router.gateway import Gateway, RequestContext
from llm_router.metrics import MetricsRecorder
from llm_router.providers.base import Deadline, ProviderResponse
from llm_router.providers.registry import ProviderRegistry
from llm_router.providers.simulated import SimulatedProvider
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.schemas.tenants import TenantSpec
from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE
from llm_router.stores.config_store import ConfigStore
from llm_router.stores.tenant_store import TenantStore
from llm_router.stores.usage_store import UsageStore
from tests.helpers import chat
from tests.integration.conftest import Router

THREADS = 8
# Far more than any budget below allows: a cap that did not hold would show as a huge overshoot, not a hang.
MAX_REQUESTS_PER_THREAD = 60


class AtomicCalls:
    """A DynamoDB client whose calls run one at a time.

    DynamoDB applies each call atomically; moto's in-process backend does not promise that across threads.
    Calls of different requests still interleave freely, and that interleaving is where overshoot comes from.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call


class FirstRoundTogether:
    """Holds the first call of every thread until all are inside: each passed its budget check before any
    added its cost, the worst case for read-then-add."""

    name = "simulated"

    def __init__(self, parties: int) -> None:
        self._barrier = threading.Barrier(parties)
        self._calls = 0
        self._lock = threading.Lock()
        self._inner = SimulatedProvider()

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        with self._lock:
            self._calls += 1
            first_round = self._calls <= self._barrier.parties
        if first_round:
            self._barrier.wait(timeout=60)
        return self._inner.complete(request, model, deadline)


def lambda_instance(ddb: Any, provider: Any) -> Gateway:
    providers = ProviderRegistry(simulate_all=True)
    providers.register("simulated", provider)
    accounting = UsageAccounting(
        TenantStore(DEFAULT_CONFIG_TABLE, dynamodb=ddb), UsageStore(DEFAULT_STATE_TABLE, dynamodb=ddb)
    )
    config = ConfigStore(DEFAULT_CONFIG_TABLE, dynamodb=ddb)
    return Gateway(config, providers, MetricsRecorder(None), accounting=accounting, sleep=lambda s: None)


def send_until_refused(gateway: Gateway) -> tuple[list[float], bool]:
    """Costs of the answers this instance got, and whether it was refused in the end."""
    costs: list[float] = []
    for _ in range(MAX_REQUESTS_PER_THREAD):
        try:
            answer = gateway.complete(chat("Hello!"), RequestContext(tenant="local"))
        except BudgetExceededError:
            return costs, True
        costs.append(answer.cost_usd)
    return costs, False


def run_tenant(budget_usd: float, provider_for: Callable[[], Any]) -> tuple[list[float], list[bool], float]:
    """Every thread sends until refused; returns every answer's cost, who was refused, and the counter."""
    from llm_router.stores.aws import client

    ddb = AtomicCalls(client("dynamodb"))
    TenantStore(DEFAULT_CONFIG_TABLE, dynamodb=ddb).put(TenantSpec(id="local", daily_budget_usd=budget_usd))
    provider = provider_for()
    instances = [lambda_instance(ddb, provider) for _ in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(send_until_refused, instances))
    counter = UsageStore(DEFAULT_STATE_TABLE, dynamodb=ddb).spend("local", datetime.now(UTC)).day_usd or 0.0
    return [c for costs, _ in results for c in costs], [refused for _, refused in results], counter


def one_request_cost(router: Router) -> float:
    """What one 'Hello!' costs on the model `auto` picks for it (the simulated answers are deterministic)."""
    return router.gateway.complete(chat("Hello!"), RequestContext(tenant="probe")).cost_usd


def test_worst_case_overshoot_is_at_most_one_request_per_concurrent_request(router: Router) -> None:
    cost = one_request_cost(router)
    budget = 2.5 * cost

    costs, refused, counter = run_tenant(budget, lambda: FirstRoundTogether(THREADS))

    spent = sum(costs)
    overshoot = spent - budget
    assert all(refused)
    assert len(costs) >= THREADS  # every thread passed its first check before any cost was added
    assert 0 < overshoot < THREADS * cost
    assert counter == pytest.approx(spent, rel=1e-9)  # no increment lost


def test_free_running_threads_stop_at_the_budget_within_the_bound(router: Router) -> None:
    cost = one_request_cost(router)
    budget = 20.5 * cost

    costs, refused, counter = run_tenant(budget, SimulatedProvider)

    spent = sum(costs)
    requests_over = len(costs) - 21  # 21 answers reach the budget one at a time
    assert all(refused)
    assert spent >= budget
    assert spent - budget < THREADS * cost, f"{requests_over} requests over the budget"
    assert counter == pytest.approx(spent, rel=1e-9)
