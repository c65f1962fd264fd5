"""Pricing, the simulated provider, fallbacks and the circuit breaker, without AWS."""

from __future__ import annotations

import pytest

from llm_router.breaker import CircuitBreaker
from llm_router.errors import AllModelsFailedError
from llm_router.gateway import Gateway, RequestContext
from llm_router.metrics import MetricsRecorder
from llm_router.pricing import cost_usd
from llm_router.providers.base import Deadline, RetryableError, Usage
from llm_router.providers.registry import ProviderRegistry
from llm_router.providers.simulated import SimulatedProvider
from llm_router.schemas.catalog import Price, RouteSpec
from tests.helpers import FixedConfig, chat, model, snapshot


def gateway(models: list, emitted: list | None = None) -> Gateway:
    config = snapshot(models=models, routes=[RouteSpec(id="auto", default=tuple(m.id for m in models))])
    metrics = MetricsRecorder(emitted.append if emitted is not None else None)
    return Gateway(FixedConfig(config), ProviderRegistry(), metrics, sleep=lambda s: None)


def test_cost_uses_input_output_and_cache_prices() -> None:
    price = Price(input_per_mtok=3, output_per_mtok=15, cache_read_per_mtok=0.3)
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=10_000, cache_write_tokens=100)
    assert cost_usd(usage, price) == pytest.approx((1000 * 3 + 100 * 15 + 10_000 * 0.3 + 100 * 3) / 1e6)


def test_simulated_answers_are_deterministic_and_flagged() -> None:
    provider, spec = SimulatedProvider(), model("m")
    first = provider.complete(chat("same prompt"), spec, Deadline(5))
    second = provider.complete(chat("same prompt"), spec, Deadline(5))
    assert first == second and first.simulated and first.usage is not None and first.usage.output_tokens > 0


def test_simulated_failure_modes_raise_typed_errors() -> None:
    spec = model("m", simulate={"failure": "throttle"})
    with pytest.raises(RetryableError) as info:
        SimulatedProvider().complete(chat(), spec, Deadline(5))
    assert info.value.status == 429


def test_retryable_failure_falls_back_to_the_next_candidate() -> None:
    emitted: list = []
    gw = gateway([model("a", simulate={"failure": "server_error"}), model("b")], emitted)
    answer = gw.complete(chat(), RequestContext(tenant="t"))
    assert answer.model.id == "b"
    assert [(a.model, a.ok) for a in answer.attempts] == [("a", False), ("a", False), ("b", True)]
    assert emitted[-1]["Fallbacks"] == [2.0]


def test_every_candidate_failing_is_a_503_with_the_trail() -> None:
    gw = gateway([model("a", simulate={"failure": "timeout"}), model("b", simulate={"failure": "connection_error"})])
    with pytest.raises(AllModelsFailedError) as info:
        gw.complete(chat(), RequestContext(tenant="t", request_id="r1"))
    assert info.value.status == 503
    assert info.value.extra["request_id"] == "r1"
    assert {a["model"] for a in info.value.extra["attempts"]} == {"a", "b"}


def test_circuit_opens_after_repeated_failures_and_allows_one_trial_after_cooldown() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=lambda: now[0])
    breaker.failure("m")
    assert breaker.allow("m")
    breaker.failure("m")
    assert not breaker.allow("m")
    now[0] = 11
    assert breaker.allow("m")
    assert not breaker.allow("m")  # only one trial while half-open
    breaker.success("m")
    assert breaker.allow("m")
