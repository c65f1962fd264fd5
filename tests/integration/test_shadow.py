"""Shadow evaluation end to end under moto: sampled after the answer, queued, answered again, judged, recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_router.providers.base import Deadline, ProviderResponse, Usage
from llm_router.providers.simulated import SimulatedProvider
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.shadow import RUBRIC, budget_tenant, routed_first
from llm_router.stores.outcome_store import OutcomeRecord
from llm_router.stores.usage_store import UsageStore
from llm_router.wiring import build_outcome_store
from tests.integration.conftest import Router
from tests.integration.test_outcomes import EASY, ask, learning_route

SHADOW = {"rate": 1.0, "judge": "claude-sonnet", "daily_budget_usd": 5.0}


class ScriptedJudge(SimulatedProvider):
    """Simulated models, except that the judge replies with a fixed verdict (and the calls are counted)."""

    def __init__(self, verdict: str) -> None:
        super().__init__(sleep=lambda seconds: None)
        self.verdict = verdict
        self.judged: list[str] = []
        self.models: list[str] = []

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        self.models.append(model.id)
        if request.messages[0].text() == RUBRIC:
            self.judged.append(request.messages[1].text())
            return ProviderResponse(self.verdict, "stop", Usage(400, 20), simulated=True)
        return super().complete(request, model, deadline)


def shadowing(router: Router, verdict: str = '{"answer_1": 9, "answer_2": 3}', **shadow: Any) -> ScriptedJudge:
    router.admin.put_raw("route", learning_route(shadow={**SHADOW, **shadow}))
    judge = ScriptedJudge(verdict)
    router.build(providers={"simulated": judge})
    return judge


def records(router: Router) -> list[OutcomeRecord]:
    return build_outcome_store(router.settings, router.clients).records("learn")


def shadow_metric(router: Router, name: str, reason: str | None = None) -> float:
    return sum(sum(doc.get(name, [])) for doc in router.emitted if reason is None or doc.get("Reason") == reason)


def test_a_sampled_request_is_queued_without_its_prompt_after_the_answer(router: Router) -> None:
    shadowing(router)
    # When a request on a route that samples every request is answered
    request_id = ask(router, "learn")
    # Then its record says the shadow evaluation is queued, with the other model and the judge
    (record,) = records(router)
    assert record.shadow is not None
    assert record.shadow["status"] == "queued" and record.shadow["judge"] == "claude-sonnet"
    assert {record.model, record.shadow["model"]} == {"nova-micro", "claude-sonnet"}
    # And the queue holds one shadow message that names the request and nothing else
    sqs = router.clients.get("sqs")
    (message,) = sqs.receive_message(QueueUrl=router.queue_url, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(message["Body"])
    assert body == {"v": 2, "kind": "shadow", "request_id": request_id}


def test_the_replay_worker_answers_with_the_other_model_judges_and_records_both(router: Router) -> None:
    judge = shadowing(router)
    request_id = ask(router, "learn")
    # When the replay worker takes the shadow message
    assert router.drain() == 1
    # Then the other model answered, the judge saw both answers, and both grades are in the record (1-10 -> 0-1)
    (record,) = records(router)
    assert record.shadow is not None and record.shadow["status"] == "judged", record.shadow
    other = record.shadow["model"]
    routed_grade, other_grade = (8 / 9, 2 / 9) if routed_first(request_id) else (2 / 9, 8 / 9)
    assert record.shadow["scores"] == {
        record.model: pytest.approx(routed_grade, abs=1e-4),
        other: pytest.approx(other_grade, abs=1e-4),
    }
    assert record.shadow["costs"][other] > 0 and record.shadow["judge_cost_usd"] > 0
    assert other in judge.models and len(judge.judged) == 1 and EASY in judge.judged[0]
    # And adaptation gets both scores and both costs
    (sample,) = build_outcome_store(router.settings, router.clients).samples("learn")
    assert set(sample.scores) == set(sample.costs) == {"nova-micro", "claude-sonnet"}
    # And the spend is counted under the route's shadow budget, and as a metric
    spend = UsageStore(router.settings.state_table_name, dynamodb=router.clients.get("dynamodb"))
    report = spend.report(record.day, record.day, tenant=budget_tenant("learn"))
    total = record.shadow["costs"][other] + record.shadow["judge_cost_usd"]
    assert report.total.cost_usd == pytest.approx(total, rel=1e-6)
    assert report.total.requests == 2
    assert shadow_metric(router, "ShadowEvaluations") == 1
    assert shadow_metric(router, "ShadowCostUSD") == pytest.approx(total, rel=1e-6)
    # And the prompt and answer kept for the evaluation are gone, and the queue is empty
    assert router.queue_depth(router.queue_url) == 0
    items = router.clients.get("dynamodb").scan(TableName=router.settings.state_table_name)["Items"]
    assert not [i for i in items if i["pk"]["S"].startswith("payload#shadow")]


def test_the_sample_is_deterministic_by_request_id_and_follows_the_rate(router: Router) -> None:
    shadowing(router, rate=0.5)
    for n in range(16):
        ask(router, "learn", content=f"Question number {n}?")
    from llm_router.outcomes import shadow_sampled

    found = records(router)
    sampled = [r for r in found if r.shadow is not None]
    assert all(shadow_sampled(r.request_id, 0.5) == (r.shadow is not None) for r in found)
    assert 0 < len(sampled) < 16


def test_the_daily_budget_stops_further_evaluations(router: Router) -> None:
    # Given a budget that the first evaluation uses up
    shadowing(router, daily_budget_usd=1e-9)
    ask(router, "learn")
    ask(router, "learn", content="Name a prime number.")
    # When the worker takes both shadow messages
    assert router.drain() == 2
    # Then one was judged and the other skipped for the budget, and counted so
    shadows = [r.shadow or {} for r in records(router)]
    statuses = sorted(f"{s.get('status', '')}:{s.get('reason', '')}" for s in shadows)
    assert statuses == ["judged:", "skipped:budget"]
    assert shadow_metric(router, "ShadowSkipped", reason="budget") == 1


def test_a_request_under_a_residency_policy_never_reaches_models_outside_its_regions(router: Router) -> None:
    # Given the example's policy that keeps personal data in the EU, on the learning route too
    judge = shadowing(router)
    router.admin.put_raw(
        "rule",
        {
            "id": "pii-in-eu",
            "route": "learn",
            "priority": 1,
            "enforce": "always",
            "when": {"pii": True},
            "then": {"targets": ["eu-nova-lite"]},
            "regions": ["eu-*"],
        },
    )
    # When a request with personal data is answered in the EU
    ask(router, "learn", content="Email jane.doe@example.com about her invoice.")
    # Then no shadow evaluation is queued (the other model and the judge run in the US), and the skip is counted
    (record,) = records(router)
    assert record.model == "eu-nova-lite"
    assert record.shadow == {"status": "skipped", "reason": "residency"}
    assert router.queue_depth(router.queue_url) == 0
    assert shadow_metric(router, "ShadowSkipped", reason="residency") == 1
    assert router.drain() == 0
    assert judge.judged == [] and judge.models == ["eu-nova-lite"]


def test_an_unreadable_verdict_is_counted_and_never_dead_lettered(router: Router) -> None:
    shadowing(router, verdict="Both answers are fine, I suppose.")
    response = router.chat("hello")  # the example route: no record, no shadow
    assert response["statusCode"] == 200
    ask(router, "learn")
    assert router.drain() == 1
    (record,) = records(router)
    assert record.shadow is not None and record.shadow["status"] == "failed"
    assert record.shadow["reason"] == "judge_unreadable"
    assert shadow_metric(router, "ShadowFailed", reason="judge_unreadable") == 1
    assert router.queue_depth(router.queue_url) == 0
    assert router.queue_depth(router.dead_letter_queue_url) == 0


def test_a_failing_shadow_model_never_affects_the_caller(router: Router) -> None:
    # Given a route whose shadow candidate always fails
    shadowing(router, candidate="claude-haiku")
    haiku = router.admin.get("model", "claude-haiku")
    assert haiku is not None
    router.admin.put_raw("model", {**haiku, "simulate": {"failure": "server_error"}})
    # When a request is answered and its shadow evaluation runs
    request_id = ask(router, "learn")
    assert router.drain() == 1
    # Then the caller had its answer; the evaluation failed quietly and the message did not go to the DLQ
    (record,) = records(router)
    assert record.request_id == request_id
    assert record.shadow is not None and record.shadow["status"] == "failed"
    assert router.queue_depth(router.dead_letter_queue_url) == 0
    assert shadow_metric(router, "ShadowFailed") == 1


def test_a_forged_shadow_message_for_an_unknown_request_does_nothing(router: Router) -> None:
    shadowing(router)
    router.clients.get("sqs").send_message(
        QueueUrl=router.queue_url, MessageBody=json.dumps({"v": 2, "kind": "shadow", "request_id": "f" * 32})
    )
    assert router.drain() == 1
    assert records(router) == []
    assert router.queue_depth(router.dead_letter_queue_url) == 0


def test_a_tenant_limited_to_some_models_gets_no_shadow_outside_them(router: Router) -> None:
    # Given a tenant whose allow-list holds the route's models but not the judge's
    from llm_router.schemas.tenants import TenantSpec
    from llm_router.settings import DEFAULT_CONFIG_TABLE
    from llm_router.stores.tenant_store import TenantStore

    judge = shadowing(router, judge="claude-haiku")
    tenants = TenantStore(DEFAULT_CONFIG_TABLE, dynamodb=router.clients.get("dynamodb"))
    tenants.put(TenantSpec(id="local", models=["nova-micro", "claude-sonnet"]))
    # When one of its requests is answered
    ask(router, "learn")
    # Then no shadow evaluation is queued, and the skip is counted
    (record,) = records(router)
    assert record.shadow == {"status": "skipped", "reason": "tenant_models"}
    assert router.queue_depth(router.queue_url) == 0
    assert shadow_metric(router, "ShadowSkipped", reason="tenant_models") == 1
    assert judge.judged == []
