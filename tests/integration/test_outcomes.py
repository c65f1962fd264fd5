"""Outcome records and POST /v1/feedback, through the real handlers under moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_router.stores.outcome_store import OutcomeRecord, OutcomeStore
from llm_router.wiring import build_outcome_store
from tests.helpers import header
from tests.integration.conftest import Router

OTHER_KEY = "sk-other-tenant"
EASY = "What is the capital of France?"


def learning_route(**learn: Any) -> dict[str, Any]:
    return {
        "id": "learn",
        "default": ["nova-micro", "claude-sonnet"],
        "baseline": "claude-sonnet",
        "strategy": {"strategy": "threshold", "weak": "nova-micro", "strong": "claude-sonnet", "threshold": 0.58},
        "learn": {"collect": True, **learn},
    }


@pytest.fixture
def learning(router: Router) -> Router:
    """The example config plus a route `learn` that collects outcomes, and a second tenant's key."""
    router.admin.put_raw("route", learning_route())
    router.keys.create("other", OTHER_KEY)
    return router


def store(router: Router) -> OutcomeStore:
    return build_outcome_store(router.settings, router.clients)


def ask(router: Router, model: str, content: str = EASY, **extra: Any) -> str:
    """Send a chat request, wait for the writer, return the request id."""
    response = router.call({"model": model, "messages": [{"role": "user", "content": content}], **extra})
    assert response["statusCode"] == 200, response["body"]
    assert router.gateway.outcomes is not None and router.gateway.outcomes.flush()
    request_id = header(response, "x-router-request-id")
    assert request_id
    return request_id


def feedback(router: Router, body: Any, key: str = "sk-local-dev") -> dict[str, Any]:
    return router.call(body, path="/v1/feedback", key=key)


def outcome_items(router: Router) -> list[dict[str, Any]]:
    ddb = router.clients.get("dynamodb")
    items = ddb.scan(TableName=router.settings.state_table_name)["Items"]
    return [i for i in items if i["pk"]["S"].startswith(("outcome#", "outcomes#"))]


# -- records ---------------------------------------------------------------------------------------------------
def test_a_collecting_route_writes_one_record_with_features_and_no_prompt(learning: Router) -> None:
    # When a request on the collecting route is answered
    request_id = ask(learning, "learn")
    # Then its record holds tenant, route, rule, model, cost and the prompt's features, and not the prompt
    (record,) = store(learning).records("learn")
    assert record.request_id == request_id
    assert (record.tenant, record.route, record.rule) == ("local", "learn", "threshold")
    assert record.model in ("nova-micro", "claude-sonnet")
    assert record.cost_usd > 0
    assert "difficulty" in record.features and len(record.features) > 5
    assert record.prompt is None
    assert all(EASY not in json.dumps(item) for item in outcome_items(learning))


def test_routes_without_learn_write_nothing(learning: Router) -> None:
    # When requests go to the example route (no learn) and to a model named directly
    ask(learning, "auto")
    ask(learning, "nova-micro")
    # Then no outcome item exists at all
    assert outcome_items(learning) == []


def test_keep_prompts_keeps_the_last_user_message(learning: Router) -> None:
    learning.admin.put_raw("route", learning_route(keep_prompts=True))
    ask(learning, "learn")
    (record,) = store(learning).records("learn")
    assert record.prompt == EASY


def test_keep_prompts_never_keeps_a_request_a_policy_held(learning: Router) -> None:
    learning.admin.put_raw("route", learning_route(keep_prompts=True))
    learning.admin.put_raw(
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
    ask(learning, "learn", content="Write to jane.doe@example.com about the invoice.")
    ask(learning, "learn")
    prompts = {r.model: r.prompt for r in store(learning).records("learn")}
    assert prompts["eu-nova-lite"] is None
    assert EASY in prompts.values()


def test_a_streamed_answer_is_recorded_at_its_end(learning: Router) -> None:
    request_id = ask(learning, "learn", stream=True)
    (record,) = store(learning).records("learn")
    assert (record.request_id, record.streamed) == (request_id, True)


def test_the_split_arm_of_the_rule_is_recorded(learning: Router) -> None:
    # Given a rule on the route that splits traffic into two arms
    learning.admin.put_raw(
        "rule",
        {
            "id": "ab-test",
            "route": "learn",
            "priority": 1,
            "then": {"split": [{"targets": ["nova-micro"], "weight": 1}, {"targets": ["claude-sonnet"], "weight": 1}]},
        },
    )
    # When users of both arms are answered
    arms = set()
    for user in ("u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"):
        ask(learning, "learn", user=user)
    for record in store(learning).records("learn"):
        assert record.rule == "ab-test"
        assert record.model == ("nova-micro", "claude-sonnet")[record.arm or 0]
        arms.add(record.arm)
    assert arms == {0, 1}


# -- feedback ----------------------------------------------------------------------------------------------------
def test_feedback_on_an_own_answer_is_recorded(learning: Router) -> None:
    request_id = ask(learning, "learn")
    response = feedback(learning, {"request_id": request_id, "score": 0.75, "comment": "close enough"})
    assert response["statusCode"] == 200, response["body"]
    body = Router.json(response)
    assert (body["object"], body["request_id"], body["score"], body["comment"]) == (
        "feedback",
        request_id,
        0.75,
        "close enough",
    )
    (record,) = store(learning).records("learn")
    assert record.feedback is not None and record.feedback.score == 0.75
    assert record.scores() == {record.model: 0.75}


def test_thumbs_count_as_one_and_zero_and_the_completion_id_is_accepted(learning: Router) -> None:
    up, down = ask(learning, "learn"), ask(learning, "learn", content="Name a prime number.")
    assert Router.json(feedback(learning, {"request_id": f"chatcmpl-{up}", "thumbs": "up"}))["score"] == 1.0
    assert Router.json(feedback(learning, {"request_id": down, "thumbs": "down"}))["score"] == 0.0
    scores = {r.request_id: r.feedback.score for r in store(learning).records("learn") if r.feedback}
    assert scores == {up: 1.0, down: 0.0}


def test_repeating_feedback_gives_the_same_result_and_a_new_rating_replaces_it(learning: Router) -> None:
    request_id = ask(learning, "learn")
    first = feedback(learning, {"request_id": request_id, "thumbs": "up"})
    again = feedback(learning, {"request_id": request_id, "thumbs": "up"})
    # Then the repeat answers exactly as the first did
    assert (first["statusCode"], first["body"]) == (again["statusCode"], again["body"])
    # And a different rating replaces it: the latest counts
    changed = feedback(learning, {"request_id": request_id, "thumbs": "down"})
    assert changed["statusCode"] == 200 and Router.json(changed)["score"] == 0.0
    (record,) = store(learning).records("learn")
    assert record.feedback is not None and (record.feedback.score, record.feedback.thumbs) == (0.0, "down")


def test_another_tenants_answer_cannot_be_rated_and_looks_missing(learning: Router) -> None:
    request_id = ask(learning, "learn")
    foreign = feedback(learning, {"request_id": request_id, "score": 0.0}, key=OTHER_KEY)
    missing = feedback(learning, {"request_id": "0" * 32, "score": 0.0}, key=OTHER_KEY)
    assert foreign["statusCode"] == missing["statusCode"] == 404
    assert Router.json(foreign)["error"]["code"] == "request_not_found"
    assert Router.json(foreign)["error"]["message"].replace(request_id, "X") == Router.json(missing)["error"][
        "message"
    ].replace("0" * 32, "X")
    # And the owner's record is untouched
    (record,) = store(learning).records("learn")
    assert record.feedback is None


def test_an_answer_on_a_route_that_does_not_collect_cannot_be_rated(learning: Router) -> None:
    request_id = ask(learning, "auto")
    response = feedback(learning, {"request_id": request_id, "thumbs": "up"})
    assert response["statusCode"] == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"request_id": "abc"}, None),
        ({"request_id": "abc", "score": 0.5, "thumbs": "up"}, None),
        ({"request_id": "abc", "score": 1.5}, "score"),
        ({"request_id": "abc", "score": -0.1}, "score"),
        ({"request_id": "abc", "score": True}, "score"),
        ({"request_id": "abc", "score": "0.5"}, "score"),
        ({"request_id": "abc", "thumbs": "sideways"}, "thumbs"),
        ({"score": 0.5}, "request_id"),
        ({"request_id": "../etc", "score": 0.5}, "request_id"),
        ({"request_id": "abc", "score": 0.5, "rating": 3}, "rating"),
        ({"request_id": "abc", "score": 0.5, "comment": "x" * 2001}, "comment"),
        ([1, 2], None),
        ("not json", None),
    ],
)
def test_bad_feedback_is_a_clear_400(learning: Router, body: Any, param: str | None) -> None:
    response = feedback(learning, body)
    assert response["statusCode"] == 400, response["body"]
    error = Router.json(response)["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param is not None:
        assert error["param"] == param


def test_feedback_needs_a_key(learning: Router) -> None:
    response = learning.call({"request_id": "abc", "score": 1}, path="/v1/feedback", key=None)
    assert response["statusCode"] == 401


def test_an_expired_record_cannot_be_rated(learning: Router) -> None:
    request_id = ask(learning, "learn")
    (record,) = store(learning).records("learn")
    later = OutcomeStore(
        learning.settings.state_table_name,
        dynamodb=learning.clients.get("dynamodb"),
        clock=lambda: record.created_at + 91 * 86_400,
    )
    assert later.set_feedback(request_id, "local", 1.0, None, None) is None
    assert later.records("learn") == []


def test_samples_carry_features_scores_and_costs(learning: Router) -> None:
    request_id = ask(learning, "learn")
    feedback(learning, {"request_id": request_id, "score": 0.5})
    (sample,) = store(learning).samples("learn")
    (record,) = store(learning).records("learn")
    assert sample.features == record.features
    assert sample.scores == {record.model: 0.5}
    assert sample.costs == {record.model: pytest.approx(record.cost_usd)}


def test_records_round_trip_through_the_table() -> None:
    record = OutcomeRecord(
        "abc",
        "t",
        "r",
        "rule",
        "m",
        0.001,
        1_700_000_000.5,
        {"difficulty": 0.5},
        arm=1,
        adaptation="v3",
        shadow={"status": "judged", "scores": {"m": 0.5, "n": 1.0}, "costs": {"n": 0.01}},
    )
    from llm_router.stores.dynamo import plain_item

    back = OutcomeRecord.from_plain(plain_item(record.to_item(1)))
    assert back == record
    assert back.scores() == {"m": 0.5, "n": 1.0}
    assert back.costs() == {"m": 0.001, "n": 0.01}


def test_the_answer_does_not_wait_for_the_outcome_write(learning: Router) -> None:
    # Given a State table whose outcome writes hang until released
    import threading

    from llm_router.metrics import MetricsRecorder
    from llm_router.outcomes import OutcomeRecorder

    release = threading.Event()

    class Slow:
        def __init__(self, inner: OutcomeStore) -> None:
            self.inner = inner

        def put(self, record: OutcomeRecord) -> None:
            assert release.wait(10)
            self.inner.put(record)

        def set_shadow(self, record: OutcomeRecord, shadow: dict[str, Any]) -> None:
            self.inner.set_shadow(record, shadow)

    recorder = OutcomeRecorder(Slow(store(learning)), MetricsRecorder(None))
    learning.build(outcomes=recorder)
    # When a request on the collecting route is answered (streamed and not)
    plain = learning.call({"model": "learn", "messages": [{"role": "user", "content": EASY}]})
    streamed = learning.call({"model": "learn", "messages": [{"role": "user", "content": EASY}], "stream": True})
    # Then both answers are complete while the writes still wait
    assert plain["statusCode"] == streamed["statusCode"] == 200
    assert "[DONE]" in streamed["body"]
    assert store(learning).records("learn") == []
    # And once the table answers, both records are written
    release.set()
    assert recorder.flush()
    assert len(store(learning).records("learn")) == 2


def test_a_failed_outcome_write_is_counted_and_the_answer_stands(learning: Router) -> None:
    from llm_router.metrics import MetricsRecorder
    from llm_router.outcomes import OutcomeRecorder

    class Broken:
        def put(self, record: OutcomeRecord) -> None:
            raise RuntimeError("table unavailable")

        def set_shadow(self, record: OutcomeRecord, shadow: dict[str, Any]) -> None:
            raise RuntimeError("table unavailable")

    emitted: list[dict[str, Any]] = []
    recorder = OutcomeRecorder(Broken(), MetricsRecorder(emitted.append))
    learning.build(outcomes=recorder)
    response = learning.call({"model": "learn", "messages": [{"role": "user", "content": EASY}]})
    assert response["statusCode"] == 200
    assert recorder.flush()
    assert [d["OutcomeWriteFailed"] for d in emitted if "OutcomeWriteFailed" in d] == [[1.0]]


def test_the_router_functions_after_response_hook_writes_the_outcome_records(learning: Router) -> None:
    # Given the router function's handler module, built from its environment as Lambda builds it
    import importlib.util
    from pathlib import Path

    from llm_router.runtime import AFTER_RESPONSE_HOOK
    from llm_router.runtime.loop import after_response

    path = Path(__file__).resolve().parents[2] / "functions" / "router" / "handler.py"
    spec = importlib.util.spec_from_file_location("router_handler", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.lambda_handler
    assert callable(getattr(handler, AFTER_RESPONSE_HOOK))

    class Context:
        function_name = "router"
        memory_limit_in_mb = 1024
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:router"
        aws_request_id = "req-1"

    # When it answers a request of the collecting route (the key checked as API Gateway's authorizer would)
    from tests.helpers import api_event

    event = api_event({"model": "learn", "messages": [{"role": "user", "content": EASY}]})
    event["requestContext"]["authorizer"] = {"tenant": "local", "scope": "user"}
    response = handler(event, Context())
    assert response["statusCode"] == 200
    # And the runtime loop runs the hook once the response is out
    after_response(handler, "req-1")
    # Then the record is written by then
    (record,) = store(learning).records("learn")
    assert record.tenant == "local" and record.route == "learn"
