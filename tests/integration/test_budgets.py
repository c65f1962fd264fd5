"""Usage counters, budgets, degrading and allow-lists through the real authorizer and handler, under moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llm_router.schemas.tenants import TenantSpec, UsageAmounts
from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE
from llm_router.stores.tenant_store import TenantStore
from llm_router.stores.usage_store import UsageReport, UsageStore
from tests.helpers import header
from tests.integration.conftest import Router

PROOF_RULE = {
    "id": "proofs-to-sonnet",
    "route": "auto",
    "priority": 1,
    "when": {"keywords": ["prove"]},
    "then": {"targets": ["claude-sonnet", "claude-haiku", "nova-micro"]},
}


def set_tenant(**settings: object) -> None:
    TenantStore(DEFAULT_CONFIG_TABLE).put(TenantSpec.model_validate({"id": "local", **settings}))


def report() -> UsageReport:
    today = datetime.now(UTC).date()
    # From yesterday, so a run that crosses midnight still sees every counter.
    return UsageStore(DEFAULT_STATE_TABLE).report(today - timedelta(days=1), today, tenant="local")


def spend_already(cost_usd: float) -> None:
    amounts = UsageAmounts(requests=1, cost_usd=cost_usd)
    UsageStore(DEFAULT_STATE_TABLE).add(
        "local", model="claude-sonnet", route="auto", amounts=amounts, when=datetime.now(UTC)
    )


def test_answers_add_cost_savings_and_tokens_to_the_tenant_counters(router: Router) -> None:
    responses = [
        router.chat("Hello!"),
        router.chat("Good morning, how are you?"),
        router.chat("Why does my Python script raise KeyError?"),
        router.call({"model": "claude-haiku", "messages": [{"role": "user", "content": "Hi"}]}),
    ]

    usage = report()
    total = usage.tenants["local"]
    assert [r["statusCode"] for r in responses] == [200] * 4
    assert total.requests == 4
    assert total.cost_usd == pytest.approx(sum(float(header(r, "x-router-cost-usd") or 0) for r in responses), abs=1e-7)
    saved = [float(header(r, "x-router-saved-usd") or 0) for r in responses[:3]]
    assert total.saved_usd == pytest.approx(sum(saved), abs=1e-7) and total.saved_usd > 0
    assert total.input_tokens == sum(router.json(r)["usage"]["prompt_tokens"] for r in responses)
    assert usage.models[("local", "nova-micro")].requests == 2
    assert usage.models[("local", "claude-haiku")].requests == 2
    assert usage.routes[("local", "auto")].requests == 3
    assert usage.routes[("local", "pinned")].requests == 1
    assert usage.routes[("local", "pinned")].baseline_cost_usd == 0  # a pinned model has no baseline to save on


def test_month_counter_holds_the_same_spend_as_the_day(router: Router) -> None:
    router.chat("Hello!")
    router.chat("Fix this python traceback")

    spend = UsageStore(DEFAULT_STATE_TABLE).spend("local", datetime.now(UTC))

    assert spend.month_usd == pytest.approx(spend.day_usd or -1) and (spend.day_usd or 0) > 0


def test_tiny_daily_budget_refuses_the_next_request_before_any_model_is_called(router: Router) -> None:
    set_tenant(daily_budget_usd=0.000001)

    first = router.chat("Hello!")
    second = router.chat("Hello again!")

    assert first["statusCode"] == 200
    assert second["statusCode"] == 429
    error = router.json(second)["error"]
    assert (error["code"], error["type"]) == ("budget_exceeded", "insufficient_quota")
    assert "daily budget" in error["message"] and error["budget"]["limit_usd"] == 0.000001
    assert int(header(second, "Retry-After") or 0) > 0
    assert router.metric_values("Requests") == [1.0]  # the refused request reached no model
    assert router.metric_values("BudgetExceeded") == [1.0]
    assert report().tenants["local"].requests == 1


def test_monthly_budget_is_enforced_too(router: Router) -> None:
    set_tenant(monthly_budget_usd=0.5)
    spend_already(0.5)

    response = router.chat("Hello!")

    assert response["statusCode"] == 429
    assert router.json(response)["error"]["budget"]["period"] == "monthly"


def test_raising_the_budget_lets_requests_through_again(router: Router) -> None:
    set_tenant(daily_budget_usd=0.1)
    spend_already(0.1)
    assert router.chat("Hello!")["statusCode"] == 429

    set_tenant(daily_budget_usd=0.2)

    assert router.chat("Hello!")["statusCode"] == 200


def test_degrade_over_the_soft_limit_answers_with_the_cheapest_model_of_the_chain(router: Router) -> None:
    router.admin.put_raw("rule", PROOF_RULE)
    set_tenant(daily_budget_usd=1.0, on_exceed="degrade", soft_limit=0.5)
    before = router.chat("Please prove that the square root of two is irrational")
    spend_already(0.6)

    after = router.chat("Please prove that the square root of two is irrational")

    assert header(before, "x-router-model") == "claude-sonnet"
    assert after["statusCode"] == 200
    assert header(after, "x-router-model") == "nova-micro"
    assert header(after, "x-router-rule") == "proofs-to-sonnet"
    assert router.metric_values("BudgetDegraded") == [1.0]


def test_refuse_policy_keeps_the_chosen_model_below_the_budget(router: Router) -> None:
    router.admin.put_raw("rule", PROOF_RULE)
    set_tenant(daily_budget_usd=1.0, on_exceed="refuse", soft_limit=0.5)
    spend_already(0.6)

    response = router.chat("Please prove that the square root of two is irrational")

    assert header(response, "x-router-model") == "claude-sonnet"


def test_a_route_can_degrade_for_tenants_that_do_not_say(router: Router) -> None:
    router.admin.put_raw("rule", PROOF_RULE)
    auto = router.admin.get("route", "auto")
    assert auto is not None
    router.admin.put_raw("route", {**auto, "on_budget_exceeded": "degrade"})
    set_tenant(daily_budget_usd=1.0)
    spend_already(0.9)

    response = router.chat("Please prove that the square root of two is irrational")

    assert header(response, "x-router-model") == "nova-micro"


def test_allow_list_skips_models_the_tenant_may_not_use(router: Router) -> None:
    set_tenant(models=["claude-haiku", "claude-sonnet"])

    response = router.chat("Hello!")

    assert response["statusCode"] == 200
    assert header(response, "x-router-model") == "claude-haiku"


def test_allow_list_that_leaves_no_model_is_a_403_saying_what_is_allowed(router: Router) -> None:
    set_tenant(models=["eu-nova-lite"])

    response = router.chat("Hello!")

    assert response["statusCode"] == 403
    error = router.json(response)["error"]
    assert error["code"] == "model_not_allowed"
    assert "nova-micro" in error["message"] and "may use: eu-nova-lite" in error["message"]
    assert router.metric_values("Requests") == []


def test_other_tenants_are_not_limited_by_one_tenants_budget(router: Router) -> None:
    set_tenant(daily_budget_usd=0.0)
    key, _ = router.keys.create("team-b")

    mine = router.chat("Hello!")
    theirs = router.call({"model": "auto", "messages": [{"role": "user", "content": "Hello!"}]}, key=key)

    assert mine["statusCode"] == 429
    assert theirs["statusCode"] == 200


def test_a_counter_that_cannot_be_written_does_not_fail_the_answer(router: Router) -> None:
    # The counters live in the State table, which this router cannot reach; the answer needs nothing else from it.
    router.env["STATE_TABLE_NAME"] = "no-such-table"
    router.build()

    response = router.chat("Hello!")

    assert response["statusCode"] == 200
    assert router.metric_values("UsageWriteFailed") == [1.0]


def test_broken_tenant_settings_are_skipped_not_fatal(router: Router) -> None:
    router.admin.put_raw("tenant", {"id": "local", "daily_budget_usd": "lots"})

    response = router.chat("Hello!")

    assert response["statusCode"] == 200
