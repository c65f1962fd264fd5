"""Usage counters written behind the answers: held, summed, flushed, never lost on a failed write (moto)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from moto import mock_aws

from llm_router.accounting import UsageAccounting
from llm_router.schemas.tenants import TenantSpec, UsageAmounts
from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE
from llm_router.stores.tables import table_definition
from llm_router.stores.tenant_store import TenantStore
from llm_router.stores.usage_buffer import UsageBuffer
from llm_router.stores.usage_store import UsageStore
from tests.integration.conftest import Router

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Iterator[UsageStore]:
    with mock_aws():
        from llm_router.stores.aws import client

        client.cache_clear()
        ddb = client("dynamodb")
        for name in (DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE):
            ddb.create_table(**table_definition(name))
        yield UsageStore(DEFAULT_STATE_TABLE)
        client.cache_clear()


def _day(store: UsageStore, tenant: str = "acme") -> UsageAmounts:
    return store.report(NOW.date(), NOW.date(), tenant=tenant).tenants.get(tenant, UsageAmounts())


def test_answers_are_held_then_written_as_one_sum_per_tenant_and_day(store: UsageStore) -> None:
    clock = Clock()
    buffer = UsageBuffer(store, 5.0, clock=clock)
    writes = []
    real_add_day = store.add_day
    store.add_day = lambda *a, **k: (writes.append(a[:2]), real_add_day(*a, **k))[1]  # type: ignore[method-assign]

    for i in range(10):
        clock.now = i * 0.4  # 0.0 .. 3.6 s: not yet due
        model = "small" if i % 2 else "large"
        buffer.add("acme", model=model, route="auto", amounts=UsageAmounts(1, 0.5, input_tokens=10), when=NOW)
    buffer.add("globex", model="small", route="auto", amounts=UsageAmounts(1, 0.25), when=NOW)

    assert writes == [] and _day(store).requests == 0 and buffer.pending == 2
    clock.now = 5.0  # the oldest answer is now 5 s old: this one writes everything held
    buffer.add("acme", model="small", route="auto", amounts=UsageAmounts(1, 0.5, input_tokens=10), when=NOW)

    assert sorted(writes) == [("acme", NOW.date()), ("globex", NOW.date())]
    assert buffer.pending == 0
    report = store.report(NOW.date(), NOW.date())
    assert report.tenants["acme"].requests == 11
    assert report.tenants["acme"].cost_usd == pytest.approx(5.5)
    assert report.tenants["acme"].input_tokens == 110
    assert report.models[("acme", "small")].requests == 6 and report.models[("acme", "large")].requests == 5
    assert report.routes[("acme", "auto")].requests == 11
    assert report.tenants["globex"].cost_usd == pytest.approx(0.25)


def test_days_are_kept_apart(store: UsageStore) -> None:
    buffer = UsageBuffer(store, 60.0)
    buffer.add("acme", model="m", route="auto", amounts=UsageAmounts(1, 1.0), when=NOW - timedelta(days=1))
    buffer.add("acme", model="m", route="auto", amounts=UsageAmounts(1, 2.0), when=NOW)

    assert buffer.flush() == 2
    assert _day(store).cost_usd == pytest.approx(2.0)
    yesterday = store.report(NOW.date() - timedelta(days=1), NOW.date() - timedelta(days=1), tenant="acme")
    assert yesterday.tenants["acme"].cost_usd == pytest.approx(1.0)


def test_a_failed_write_keeps_its_sums_for_the_next_flush(store: UsageStore) -> None:
    errors: list[str] = []
    buffer = UsageBuffer(store, 60.0, on_error=lambda tenant, exc: errors.append(tenant))
    buffer.add("acme", model="m", route="auto", amounts=UsageAmounts(2, 1.0), when=NOW)
    real_add_day = store.add_day

    def unavailable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("DynamoDB unreachable")

    store.add_day = unavailable  # type: ignore[method-assign]
    assert buffer.flush() == 0
    assert errors == ["acme"] and buffer.pending == 1
    buffer.add("acme", model="m", route="auto", amounts=UsageAmounts(1, 0.5), when=NOW)

    store.add_day = real_add_day  # type: ignore[method-assign]
    assert buffer.flush() == 1
    assert _day(store).requests == 3 and _day(store).cost_usd == pytest.approx(1.5)


def test_budget_tenants_are_written_with_every_answer_and_others_behind(router: Router) -> None:
    router.env["USAGE_FLUSH_SECONDS"] = "3600"
    buffered = router.build().gateway.accounting
    assert isinstance(buffered, UsageAccounting)
    state = UsageStore(DEFAULT_STATE_TABLE)
    today = datetime.now(UTC).date()

    def spent() -> int:
        return (
            state.report(today - timedelta(days=1), today, tenant="local").tenants.get("local", UsageAmounts()).requests
        )

    assert router.chat("Hello!")["statusCode"] == 200
    assert spent() == 0 and buffered.buffer is not None and buffered.buffer.pending == 1

    TenantStore(DEFAULT_CONFIG_TABLE).put(TenantSpec.model_validate({"id": "local", "daily_budget_usd": 10}))
    buffered.tenants.invalidate()
    assert router.chat("Hello again!")["statusCode"] == 200
    assert spent() == 1  # the budget tenant's answer is counted at once; the earlier one is still held

    buffered.buffer.flush()
    assert spent() == 2


def test_held_sums_are_written_on_a_timer_when_traffic_stops(store: UsageStore) -> None:
    buffer = UsageBuffer(store, 0.2)
    buffer.add("acme", model="m", route="auto", amounts=UsageAmounts(1, 0.5), when=NOW)
    assert _day(store).requests == 0 and buffer.pending == 1

    deadline = time.monotonic() + 10  # generous: the timer is due after 0.2 s
    while _day(store).requests == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    buffer.close()

    assert _day(store).requests == 1, "no answer came after the first one, and its sums were never written"
    assert _day(store).cost_usd == pytest.approx(0.5) and buffer.pending == 0


def test_the_timer_waits_for_the_oldest_sum_to_be_due(store: UsageStore) -> None:
    clock = Clock()
    buffer = UsageBuffer(store, 30.0, clock=clock)
    assert buffer.seconds_until_due() is None
    buffer.add("acme", model="m", route="auto", amounts=UsageAmounts(1, 0.5), when=NOW)
    clock.now = 10.0
    buffer.add("acme", model="m", route="auto", amounts=UsageAmounts(1, 0.5), when=NOW)
    assert buffer.seconds_until_due() == pytest.approx(20.0)
    clock.now = 31.0
    assert buffer.seconds_until_due() == 0.0
    buffer.close()
