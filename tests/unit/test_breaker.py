"""The circuit breaker: every trial ends, only the provider's failures count, and no state outlives a cooldown."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_router.breaker import CircuitBreaker
from llm_router.errors import AllModelsFailedError, InvalidRequestError
from llm_router.gateway import Gateway, RequestContext
from llm_router.metrics import MetricsRecorder
from llm_router.providers.base import (
    ContentFiltered,
    ContextWindowExceeded,
    InvalidRequest,
    ProviderAuthError,
    ProviderError,
    ProviderResponse,
    RetryableError,
    Usage,
)
from llm_router.schemas.catalog import RouteSpec
from tests.helpers import chat, model, snapshot

COOLDOWN = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Config:
    def __init__(self, models: list[Any]) -> None:
        self._snapshot = snapshot(models=models, routes=[RouteSpec(id="auto", default=tuple(m.id for m in models))])

    def snapshot(self) -> Any:
        return self._snapshot


class Scripted:
    """A provider whose next outcome the test sets: an exception to raise, or None to answer."""

    def __init__(self) -> None:
        self.outcome: BaseException | None = None
        self.calls = 0

    def for_model(self, _: Any) -> Scripted:
        return self

    def complete(self, *_: Any) -> ProviderResponse:
        self.calls += 1
        if self.outcome is not None:
            raise self.outcome
        return ProviderResponse(content="ok", finish_reason="stop", usage=Usage(input_tokens=1, output_tokens=1))


def breaker_gateway(
    provider: Scripted, breaker: CircuitBreaker, *, deadline: float = 5.0, models: list[Any] | None = None
) -> Gateway:
    return Gateway(
        Config(models or [model("m")]),  # type: ignore[arg-type]
        provider,  # type: ignore[arg-type]
        MetricsRecorder(None),
        breaker=breaker,
        sleep=lambda _: None,
        deadline_seconds=deadline,
    )


def open_breaker(provider: Scripted, breaker: CircuitBreaker, clock: Clock) -> None:
    """Fail the model until the breaker opens, then let the cooldown pass: the next request is its trial."""
    provider.outcome = RetryableError("down", status=503)
    with pytest.raises(AllModelsFailedError):
        breaker_gateway(provider, breaker).complete(chat(), RequestContext(tenant="t"))
    assert not breaker.allow("m")
    clock.now += COOLDOWN + 0.1


@pytest.mark.parametrize(
    "trial_error",
    [
        ContextWindowExceeded("too long"),
        ProviderAuthError("bad key", status=401),
        InvalidRequest("bad field", status=400),
        ContentFiltered("filtered", status=400),
        ValueError("a bug in a provider adapter"),
    ],
    ids=["context_overflow", "auth", "invalid_request", "content_filter", "unexpected"],
)
def test_every_end_of_a_half_open_trial_releases_it(trial_error: BaseException) -> None:
    clock, provider = Clock(), Scripted()
    breaker = CircuitBreaker(threshold=1, cooldown=COOLDOWN, clock=clock)
    open_breaker(provider, breaker, clock)
    provider.outcome = trial_error
    with pytest.raises((AllModelsFailedError, InvalidRequestError, ValueError)):
        breaker_gateway(provider, breaker).complete(chat(), RequestContext(tenant="t"))
    provider.outcome = None
    answer = breaker_gateway(provider, breaker).complete(chat(), RequestContext(tenant="t"))
    assert answer.model.id == "m"


def test_a_trial_cut_short_by_the_deadline_releases_it() -> None:
    clock, provider = Clock(), Scripted()
    breaker = CircuitBreaker(threshold=1, cooldown=COOLDOWN, clock=clock)
    open_breaker(provider, breaker, clock)
    calls = provider.calls
    with pytest.raises(AllModelsFailedError):  # no time for even one call: the trial never reaches the model
        breaker_gateway(provider, breaker, deadline=0.1).complete(chat(), RequestContext(tenant="t"))
    assert provider.calls == calls
    provider.outcome = None
    assert breaker_gateway(provider, breaker).complete(chat(), RequestContext(tenant="t")).model.id == "m"


@pytest.mark.parametrize(
    "request_side",
    [ContextWindowExceeded("too long"), InvalidRequest("bad", status=400), ContentFiltered("no", status=400)],
    ids=["context_overflow", "invalid_request", "content_filter"],
)
def test_request_side_failures_never_open_the_breaker(request_side: ProviderError) -> None:
    """One tenant's bad requests must not take a model away from every other tenant."""
    provider = Scripted()
    breaker = CircuitBreaker(threshold=2, cooldown=COOLDOWN, clock=Clock())
    provider.outcome = request_side
    for _ in range(10):
        with pytest.raises((AllModelsFailedError, InvalidRequestError)):
            breaker_gateway(provider, breaker).complete(chat(), RequestContext(tenant="careless"))
    assert breaker.allow("m")
    provider.outcome = None
    assert breaker_gateway(provider, breaker).complete(chat(), RequestContext(tenant="other")).model.id == "m"


@pytest.mark.parametrize(
    "provider_side",
    [
        RetryableError("503", status=503),
        RetryableError("429", status=429),
        RetryableError("timed out", kind="timeout"),
        RetryableError("refused", kind="connection_error"),
    ],
    ids=["5xx", "429", "timeout", "connection"],
)
def test_provider_side_failures_open_the_breaker(provider_side: RetryableError) -> None:
    provider = Scripted()
    breaker = CircuitBreaker(threshold=2, cooldown=COOLDOWN, clock=Clock())
    provider.outcome = provider_side
    with pytest.raises(AllModelsFailedError):  # a try and its retry: two failures
        breaker_gateway(provider, breaker).complete(chat(), RequestContext(tenant="t"))
    assert not breaker.allow("m")


def test_failures_must_be_consecutive_and_success_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=COOLDOWN, clock=Clock())
    for _ in range(5):
        breaker.failure("m")
        breaker.failure("m")
        breaker.success("m")
    assert breaker.allow("m")
    breaker.failure("m")
    breaker.failure("m")
    assert breaker.allow("m")
    breaker.failure("m")
    assert not breaker.allow("m")
    assert breaker.allow("other")


def test_a_failed_trial_rests_the_model_for_another_full_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=COOLDOWN, clock=clock)
    for _ in range(3):
        breaker.failure("m")
    clock.now = COOLDOWN  # the cooldown ends exactly now
    assert breaker.allow("m")
    breaker.failure("m")  # one failed trial reopens it, whatever the threshold
    assert not breaker.allow("m")
    clock.now = 2 * COOLDOWN - 0.01
    assert not breaker.allow("m")
    clock.now = 2 * COOLDOWN
    assert breaker.allow("m")
    assert not breaker.allow("m")
    breaker.success("m")
    assert breaker.allow("m") and breaker.allow("m")


def test_rest_skips_the_model_until_the_time_named_then_allows_one_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=COOLDOWN, clock=clock)
    breaker.rest("m", 60)
    clock.now = 59.9
    assert not breaker.allow("m")
    breaker.rest("m", 0.05)  # a shorter rest never shortens a longer one
    clock.now = 59.95
    assert not breaker.allow("m")
    clock.now = 60
    assert breaker.allow("m")
    assert not breaker.allow("m")
    breaker.rest("m", 1)  # rest during a trial ends the trial: one more after the rest
    clock.now = 61
    assert breaker.allow("m")


def test_release_ends_a_trial_without_a_verdict() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=COOLDOWN, clock=clock)
    breaker.failure("m")
    clock.now = COOLDOWN
    assert breaker.allow("m")
    breaker.release("m")
    assert breaker.allow("m")  # the next request is the new trial
    assert not breaker.allow("m")


# -- properties over sequences of outcomes and clock steps ------------------------------------------------------
OUTCOMES = ("success", "failure", "release", "rest")
step = st.one_of(
    st.tuples(st.just("start"), st.just(0), st.just(0.0)),
    st.tuples(st.just("end"), st.integers(0, 5), st.sampled_from(OUTCOMES)),
    st.tuples(st.just("tick"), st.just(0), st.floats(0, 2 * COOLDOWN, allow_nan=False)),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step, max_size=40), threshold=st.integers(1, 4), rest_for=st.floats(0.1, 3 * COOLDOWN))
def test_no_state_sticks_and_a_healthy_model_is_tried_within_one_cooldown(
    steps: list[tuple[str, int, Any]], threshold: int, rest_for: float
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=threshold, cooldown=COOLDOWN, clock=clock)
    in_flight = 0

    def end(outcome: str) -> None:
        if outcome == "success":
            breaker.success("m")
        elif outcome == "failure":
            breaker.failure("m")
        elif outcome == "rest":
            breaker.rest("m", rest_for)
        else:
            breaker.release("m")

    for kind, _, value in steps:
        if kind == "start" and breaker.allow("m"):
            in_flight += 1
        elif kind == "end" and in_flight:
            in_flight -= 1
            end(value)
        elif kind == "tick":
            clock.now += value
    # Every call under way ends, however: then, within one cooldown (or the longest rest), the model is tried again.
    for _ in range(in_flight):
        end("release")
    clock.now += max(COOLDOWN, rest_for)
    assert breaker.allow("m"), "the model stayed skipped after its calls ended and a cooldown passed"
    breaker.success("m")  # the trial succeeded: closed, for every request
    assert all(breaker.allow("m") for _ in range(3))


def test_a_model_resting_is_passed_over_and_every_later_candidate_still_tried() -> None:
    """A skipped model must not end the chain: the candidates after it are tried in order."""
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=COOLDOWN, clock=clock)
    breaker.failure("a")

    class ByModel(Scripted):
        def complete(self, request: Any, model: Any, deadline: Any) -> ProviderResponse:
            self.calls += 1
            if model.id == "b":
                raise RetryableError("b is down", status=503)
            return super().complete(request, model, deadline)

    provider = ByModel()
    gateway = breaker_gateway(provider, breaker, models=[model("a"), model("b"), model("c")])
    answer = gateway.complete(chat(), RequestContext(tenant="t"))

    assert answer.model.id == "c"
    assert [(a.model, a.kind) for a in answer.attempts] == [
        ("a", "circuit_open"),
        ("b", "retryable"),  # one failure opens it (threshold 1): no retry on a model now resting
        ("c", None),
    ]
