"""Budget and allow-list decisions, usage sums and report periods, without AWS."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from llm_router.accounting import UsageAccounting, allowed, budget_periods, cheapest_first, over_soft_limit
from llm_router.cli.common import CliError
from llm_router.cli.usage import since_date
from llm_router.errors import BudgetExceededError, ModelNotAllowedError
from llm_router.gateway import RequestContext
from llm_router.routing.engine import Decision, Plan
from llm_router.schemas.catalog import RouteSpec
from llm_router.schemas.tenants import TenantSpec, UsageAmounts
from llm_router.stores.usage_store import DayUsage, Spend, next_day, next_month
from tests.helpers import model, snapshot

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
DEAR = model("dear", price={"input_per_mtok": 3, "output_per_mtok": 15})
MID = model("mid", price={"input_per_mtok": 1, "output_per_mtok": 5})
CHEAP = model("cheap", price={"input_per_mtok": 0.1, "output_per_mtok": 0.4})


class Tenants:
    def __init__(self, *specs: TenantSpec) -> None:
        self._specs = {s.id: s for s in specs}

    def get(self, tenant: str) -> TenantSpec | None:
        return self._specs.get(tenant)


class Usage:
    def __init__(self, day: float = 0.0, month: float = 0.0, fail: bool = False) -> None:
        self.day, self.month, self.fail, self.reads = day, month, fail, 0
        self.added: list[tuple[str, UsageAmounts]] = []

    def spend(self, tenant: str, when: datetime, *, day: bool = True, month: bool = True) -> Spend:
        self.reads += 1
        if self.fail:
            raise ConnectionError("unreachable")
        return Spend(self.day if day else None, self.month if month else None)

    def add(self, tenant: str, *, model: str, route: str, amounts: UsageAmounts, when: datetime) -> None:
        self.added.append((tenant, amounts))

    def add_day(self, tenant: str, day: date, usage: DayUsage) -> None:
        self.added.append((tenant, usage.total))


def accounting(
    spec: TenantSpec | None, usage: Usage | None = None, emitted: list[Any] | None = None
) -> UsageAccounting:
    from llm_router.metrics import MetricsRecorder

    tenants = Tenants(*([spec] if spec else []))
    metrics = MetricsRecorder(emitted.append if emitted is not None else None)
    return UsageAccounting(tenants, usage or Usage(), metrics, clock=lambda: NOW)


def before(acc: UsageAccounting, chain: list[Any], route: RouteSpec | None = None) -> Plan:
    route = route or RouteSpec(id="auto", default=tuple(m.id for m in chain))
    decision = Decision("auto", "auto", "default", route.default)
    config = snapshot(models=[DEAR, MID, CHEAP], routes=[route])
    return acc.before_call(RequestContext(tenant="t", request_id="r"), decision, Plan(models=list(chain)), config)


def test_a_tenant_without_settings_is_not_limited_and_costs_no_read() -> None:
    usage = Usage(day=1e9)

    chain = before(accounting(None, usage), [DEAR, CHEAP])

    assert [m.id for m in chain.models] == ["dear", "cheap"] and usage.reads == 0


def test_a_tenant_at_its_daily_budget_is_refused_with_429_until_midnight() -> None:
    spec = TenantSpec(id="t", daily_budget_usd=1.0)

    with pytest.raises(BudgetExceededError) as info:
        before(accounting(spec, Usage(day=1.0)), [CHEAP])

    error = info.value
    assert (error.status, error.code, error.type) == (429, "budget_exceeded", "insufficient_quota")
    assert error.headers["Retry-After"] == str(6 * 3600)
    assert error.extra["budget"]["period"] == "daily" and error.extra["budget"]["resets_at"].startswith("2026-11-30")
    assert "'t'" in error.message and "daily budget of $1.000000" in error.message


def test_a_tenant_over_its_monthly_budget_is_refused_even_under_its_daily_one() -> None:
    spec = TenantSpec(id="t", daily_budget_usd=10.0, monthly_budget_usd=50.0)

    with pytest.raises(BudgetExceededError) as info:
        before(accounting(spec, Usage(day=1.0, month=50.5)), [CHEAP])

    assert info.value.extra["budget"]["period"] == "monthly"
    assert info.value.extra["budget"]["resets_at"].startswith("2026-12-01")


def test_a_tenant_under_its_budget_keeps_its_chain() -> None:
    spec = TenantSpec(id="t", daily_budget_usd=1.0, on_exceed="degrade", soft_limit=0.9)

    chain = before(accounting(spec, Usage(day=0.89)), [DEAR, MID, CHEAP])

    assert [m.id for m in chain.models] == ["dear", "mid", "cheap"]


def test_degrade_over_the_soft_limit_tries_the_cheapest_capable_model_first() -> None:
    emitted: list[Any] = []
    spec = TenantSpec(id="t", daily_budget_usd=1.0, on_exceed="degrade", soft_limit=0.5)

    chain = before(accounting(spec, Usage(day=0.5), emitted), [DEAR, CHEAP, MID])

    assert [m.id for m in chain.models] == ["cheap", "mid", "dear"]
    assert emitted[-1]["BudgetDegraded"] == [1.0] and emitted[-1]["tenant"] == "t"


def test_refuse_over_the_soft_limit_changes_nothing_until_the_budget() -> None:
    spec = TenantSpec(id="t", daily_budget_usd=1.0, on_exceed="refuse", soft_limit=0.5)
    route = RouteSpec(id="auto", default=("dear", "cheap"), on_budget_exceeded="degrade")

    chain = before(accounting(spec, Usage(day=0.9)), [DEAR, CHEAP], route)

    assert [m.id for m in chain.models] == ["dear", "cheap"]


def test_a_route_that_degrades_applies_when_the_tenant_does_not_say() -> None:
    spec = TenantSpec(id="t", monthly_budget_usd=100.0)
    route = RouteSpec(id="auto", default=("dear", "cheap"), on_budget_exceeded="degrade")

    chain = before(accounting(spec, Usage(month=85.0)), [DEAR, CHEAP], route)

    assert [m.id for m in chain.models] == ["cheap", "dear"]


def test_degrade_still_refuses_at_the_budget() -> None:
    spec = TenantSpec(id="t", daily_budget_usd=1.0, on_exceed="degrade")

    with pytest.raises(BudgetExceededError):
        before(accounting(spec, Usage(day=1.2)), [DEAR, CHEAP])


def test_a_zero_budget_refuses_everything() -> None:
    with pytest.raises(BudgetExceededError):
        before(accounting(TenantSpec(id="t", daily_budget_usd=0.0)), [CHEAP])


def test_an_unreadable_counter_lets_the_request_through_and_is_counted() -> None:
    emitted: list[Any] = []
    spec = TenantSpec(id="t", daily_budget_usd=1.0)

    chain = before(accounting(spec, Usage(fail=True), emitted), [CHEAP])

    assert [m.id for m in chain.models] == ["cheap"]
    assert emitted[-1]["BudgetCheckFailed"] == [1.0]


def test_allow_list_filters_the_chain_and_says_why() -> None:
    spec = TenantSpec(id="t", models=("cheap", "dear"))

    chain = allowed(spec, Plan(models=[DEAR, MID, CHEAP]))

    assert [m.id for m in chain.models] == ["dear", "cheap"]
    assert chain.skipped == [("mid", "not allowed for tenant 't'")]


def test_allow_list_that_leaves_nothing_is_a_403_naming_what_is_allowed() -> None:
    spec = TenantSpec(id="t", models=("cheap",))

    with pytest.raises(ModelNotAllowedError) as info:
        before(accounting(spec), [DEAR, MID])

    assert info.value.status == 403 and info.value.code == "model_not_allowed"
    assert "dear, mid" in info.value.message and "may use: cheap" in info.value.message


def test_cheapest_first_ranks_by_input_plus_output_price_and_keeps_ties_in_order() -> None:
    twin = model("twin", price={"input_per_mtok": 0.1, "output_per_mtok": 0.4})

    ranked = cheapest_first(Plan(models=[DEAR, CHEAP, twin, MID]))

    assert [m.id for m in ranked.models] == ["cheap", "twin", "mid", "dear"]


def test_soft_limit_is_a_share_of_each_budget() -> None:
    spec = TenantSpec(id="t", daily_budget_usd=10, monthly_budget_usd=100, soft_limit=0.8)
    periods = budget_periods(spec, Spend(day_usd=2, month_usd=80), NOW.date())

    soft = over_soft_limit(spec, periods)

    assert soft is not None and soft.name == "monthly"
    assert not any(p.exceeded for p in periods)


def test_periods_reset_at_utc_midnight_and_the_first_of_the_month() -> None:
    assert next_day(date(2026, 12, 31)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month(date(2026, 12, 15)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month(date(2026, 1, 31)) == datetime(2026, 2, 1, tzinfo=UTC)


def test_usage_amounts_add_up_and_report_the_share_saved() -> None:
    one = UsageAmounts(requests=1, cost_usd=0.25, baseline_cost_usd=1.0, saved_usd=0.75, input_tokens=10)
    two = UsageAmounts.from_item({"requests": 2, "cost_usd": 0.75, "baseline_cost_usd": 1.0, "saved_usd": 0.25})

    total = one + two

    assert (total.requests, total.cost_usd, total.input_tokens) == (3, 1.0, 10)
    assert total.as_dict()["saved_pct"] == 50.0
    assert UsageAmounts(requests=1, cost_usd=1.0).as_dict()["saved_pct"] is None


@pytest.mark.parametrize(
    ("text", "first"), [("1d", date(2026, 11, 29)), ("7d", date(2026, 11, 23)), ("2026-11-01", date(2026, 11, 1))]
)
def test_since_counts_today_as_the_first_day(text: str, first: date) -> None:
    assert since_date(text, date(2026, 11, 29)) == first


@pytest.mark.parametrize("text", ["0d", "7x", "yesterday"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(CliError):
        since_date(text, date(2026, 11, 29))
