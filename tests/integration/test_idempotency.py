"""`Idempotency-Key` keeps only final outcomes, and a function that dies mid-request frees its key in time."""

from __future__ import annotations

import time
from typing import Any

from llm_router.local.runtime import LOCAL_TENANT
from llm_router.providers.base import Deadline, ProviderResponse, Usage
from llm_router.providers.simulated import SimulatedProvider
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.stores.fallback_queue import FallbackQueue
from llm_router.stores.payload_store import PayloadStore
from tests.helpers import api_event, header
from tests.integration.conftest import Router
from tests.integration.test_chaos import BrokenSqs

HELLO = {"model": "auto", "messages": [{"role": "user", "content": "Hello!"}]}
KEY = {"Idempotency-Key": "k-1"}


def test_a_request_that_was_not_kept_is_not_replayed_under_its_key(router: Router) -> None:
    real_queue = router.gateway.queue
    payloads = PayloadStore(router.settings.state_table_name, dynamodb=router.clients.get("dynamodb"))
    router.gateway.queue = FallbackQueue(router.queue_url, payloads, sqs=BrokenSqs())
    router.set_models(failure="server_error")
    lost = router.call(HELLO, headers=KEY)
    router.gateway.queue = real_queue
    router.set_models(failure="none")
    retried = router.call(HELLO, headers=KEY)

    assert lost["statusCode"] == 503 and router.json(lost)["error"]["code"] == "queue_unavailable"
    assert header(lost, "x-should-retry") == "false" and header(lost, "Retry-After") == "5"
    assert retried["statusCode"] == 200, retried["body"]
    assert header(retried, "x-router-idempotent-replay") is None
    assert router.metric_values("Requests") == [1.0]


def test_a_queued_request_is_replayed_under_its_key_with_the_same_id(router: Router) -> None:
    router.set_models(failure="server_error")
    first = router.call(HELLO, headers=KEY)
    again = router.call(HELLO, headers=KEY)

    assert first["statusCode"] == again["statusCode"] == 503
    assert router.json(first) == router.json(again) and router.json(first)["error"]["queued"] is True
    assert header(again, "x-router-idempotent-replay") == "true"
    assert router.queue_depth(router.queue_url) == 1


def test_a_budget_refusal_is_not_replayed_after_the_budget_is_raised(router: Router) -> None:
    from llm_router.cli.main import main as cli

    assert cli(["tenants", "set", LOCAL_TENANT, "--daily-budget", "0"]) == 0
    refused = router.call(HELLO, headers=KEY)
    assert cli(["tenants", "set", LOCAL_TENANT, "--daily-budget", "100"]) == 0
    answered = router.call(HELLO, headers=KEY)

    assert refused["statusCode"] == 429 and header(refused, "x-should-retry") == "false"
    assert answered["statusCode"] == 200, answered["body"]


class Crashing(SimulatedProvider):
    """The first call kills the invocation (as a Lambda timeout or an out-of-memory would); later calls answer."""

    def __init__(self) -> None:
        super().__init__()
        self.crashed = False

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        if not self.crashed:
            self.crashed = True
            raise SystemExit("the function died mid-request")
        return ProviderResponse(content="ok", finish_reason="stop", usage=Usage(input_tokens=1, output_tokens=1))


class Context:
    """The Lambda context's part Powertools reads: little time left in the invocation."""

    def get_remaining_time_in_millis(self) -> int:
        return 50


def invoke(router: Router, context: Any) -> dict[str, Any]:
    event = api_event(HELLO, headers=KEY)
    event["requestContext"]["authorizer"] = {"tenant": LOCAL_TENANT}
    assert router.local is not None
    response = router.local.api.handle(event, context)
    assert isinstance(response, dict)
    return response


def test_a_crash_mid_request_frees_the_key_when_the_invocation_would_have_ended(router: Router) -> None:
    router.build(providers={"simulated": Crashing()})
    try:
        invoke(router, Context())
    except SystemExit:
        pass
    else:
        raise AssertionError("the provider should have killed the invocation")
    time.sleep(0.1)  # the invocation's remaining time has run out
    retried = invoke(router, Context())

    assert retried["statusCode"] == 200, retried["body"]
