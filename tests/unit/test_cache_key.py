"""The response cache's key and what may be cached: pure functions of the request, the decision and the config."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from llm_router.cache import USE_CACHE, CacheControl, cache_key, not_cacheable, plan_cache
from llm_router.routing.engine import Decision, PolicyHold, decide, plan
from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import CacheSpec, ModelSpec, RouteSpec
from llm_router.schemas.openai import ChatCompletionRequest
from tests.helpers import chat, model, rule, snapshot

CACHED = {"ttl_seconds": 60}


def cached_snapshot(rules: list[Any] | None = None, mode: str = "deterministic") -> ConfigSnapshot:
    route = RouteSpec(
        id="auto", default=("small", "large"), baseline="large", cache=CacheSpec(ttl_seconds=60, mode=mode)
    )
    return snapshot(routes=[route], rules=rules)


def key_of(request: ChatCompletionRequest, tenant: str = "t1", config: ConfigSnapshot | None = None) -> str:
    config = config or cached_snapshot()
    features = Features(request, tenant)
    decision = decide(request.model, features, config)
    return cache_key(tenant, request, decision, plan(decision, features, config))


@pytest.mark.parametrize(
    "extra",
    [
        {"user": "alice"},
        {"metadata": {"team": "search"}},
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"temperature": None},
    ],
)
def test_fields_that_do_not_change_the_answer_leave_the_key_alone(extra: dict[str, Any]) -> None:
    # Given the same prompt with and without a field that cannot change the answer
    # Then both have the same key
    assert key_of(chat("Hello!", **extra)) == key_of(chat("Hello!"))


@pytest.mark.parametrize(
    "extra",
    [
        {"temperature": 0.5},
        {"top_p": 0.9},
        {"max_tokens": 10},
        {"stop": ["\n"]},
        {"seed": 7},
        {"presence_penalty": 0.3},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]},
        {"tool_choice": "none"},
    ],
)
def test_fields_that_change_the_answer_change_the_key(extra: dict[str, Any]) -> None:
    assert key_of(chat("Hello!", **extra)) != key_of(chat("Hello!"))


def test_the_messages_change_the_key() -> None:
    assert key_of(chat("Hello!")) != key_of(chat("Hello?"))
    system = ChatCompletionRequest.model_validate(
        {
            "model": "auto",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}],
        }
    )
    assert key_of(system) != key_of(chat("Hello!"))


def test_the_key_is_canonical_whatever_the_order_of_fields() -> None:
    a = ChatCompletionRequest.model_validate_json(
        '{"model":"auto","temperature":0,"messages":[{"role":"user","content":"Hi"}]}'
    )
    b = ChatCompletionRequest.model_validate_json(
        '{"messages":[{"content":"Hi","role":"user"}],"temperature":0,"model":"auto"}'
    )
    assert key_of(a) == key_of(b)


def test_the_tenant_is_part_of_the_key() -> None:
    assert key_of(chat("Hello!"), tenant="acme") != key_of(chat("Hello!"), tenant="globex")


def test_a_rule_edit_that_changes_the_decision_changes_the_key() -> None:
    # Given a request routed by the default chain
    before = key_of(chat("Hello!"))
    # When a rule now sends it to another chain
    to_large = rule("hello-to-large", {"keywords": ["hello"]}, {"targets": ["large"]}, route="auto")
    after = key_of(chat("Hello!"), config=cached_snapshot([to_large]))
    # Then the old entry is not found under the new decision
    assert after != before


def test_a_model_swapped_under_the_same_id_changes_the_key() -> None:
    route = RouteSpec(id="auto", default=("small",), cache=CacheSpec(ttl_seconds=60))
    old = snapshot(models=[model("small")], routes=[route])
    new = snapshot(models=[ModelSpec(id="small", provider="simulated", model_id="small-v2")], routes=[route])
    assert key_of(chat("Hello!"), config=old) != key_of(chat("Hello!"), config=new)


def _plan(request: ChatCompletionRequest, config: ConfigSnapshot, control: CacheControl = USE_CACHE) -> Any:
    features = Features(request, "t1")
    decision = decide(request.model, features, config)
    return plan_cache(request, "t1", decision, plan(decision, features, config), config, control)


def test_caching_is_off_unless_the_route_or_model_opts_in() -> None:
    assert _plan(chat("Hello!"), snapshot()) is None
    assert _plan(chat("Hello!"), cached_snapshot()) is not None


def test_a_model_named_directly_caches_when_the_model_opts_in() -> None:
    config = snapshot(models=[model("small", cache=CACHED), model("large")])
    assert _plan(chat("Hello!", model="small"), config) is not None
    assert _plan(chat("Hello!", model="large"), config) is None


def test_sampled_requests_are_cached_only_when_the_route_says_so() -> None:
    sampled = chat("Hello!", temperature=0.7)
    assert _plan(sampled, cached_snapshot()) is None
    assert _plan(chat("Hello!", temperature=0.7, seed=3), cached_snapshot()) is not None
    assert _plan(chat("Hello!", temperature=0), cached_snapshot()) is not None
    assert _plan(sampled, cached_snapshot(mode="always")) is not None


@pytest.mark.parametrize(
    ("when", "fields", "content"),
    [
        ({"pii": True}, {}, "Send the invoice to jane@example.com"),
        ({"any": [{"keywords": ["refund"]}, {"pii": ["email"]}]}, {}, "Send the invoice to jane@example.com"),
        # A rule that looks at personal data at all is treated as a PII policy, whichever way it matched.
        ({"not": {"pii": True}}, {}, "Send the invoice"),
        ({"keywords": ["invoice"]}, {"regions": ["eu-*"]}, "Send the invoice"),
    ],
)
def test_requests_matched_by_a_pii_or_residency_rule_are_never_cached(
    when: dict[str, Any], fields: dict[str, Any], content: str
) -> None:
    models = [model("small", region="eu-central-1"), model("large", region="eu-central-1")]
    route = RouteSpec(id="auto", default=("small", "large"), cache=CacheSpec(ttl_seconds=60, mode="always"))
    policy = rule("policy", when, {"targets": ["small"]}, route="auto", **fields)
    config = snapshot(models=models, routes=[route], rules=[policy])
    request = chat(content)
    decision = decide("auto", Features(request, "t1"), config)
    assert decision.rule == "policy"
    assert route.cache is not None
    assert not_cacheable(request, decision, config, route.cache) in ("pii_policy", "residency_policy")
    assert _plan(request, config) is None


def test_cache_control_sets_lookup_and_store() -> None:
    no_cache = _plan(chat("Hello!"), cached_snapshot(), CacheControl(lookup=False, store=True))
    no_store = _plan(chat("Hello!"), cached_snapshot(), CacheControl(lookup=False, store=False))
    assert (no_cache.lookup, no_cache.store, no_cache.status) == (False, True, "bypass")
    assert (no_store.lookup, no_store.store, no_store.status) == (False, False, "bypass")


def test_a_decision_without_a_matching_rule_in_the_snapshot_is_still_cacheable() -> None:
    decision = Decision("auto", "auto", "default", ("small",))
    assert not_cacheable(chat("Hello!"), decision, cached_snapshot(), CacheSpec(ttl_seconds=1)) is None


def test_a_cached_answer_survives_its_json_with_every_field() -> None:
    from dataclasses import fields

    from llm_router.cache import CachedAnswer
    from llm_router.providers.base import Usage

    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    entry = CachedAnswer("t", "auto", "small", "héllo", calls, "tool_calls", Usage(3, 4, 1, 2, 5, True), 0.25, True, 9)
    assert CachedAnswer.from_json(entry.to_json()) == entry
    assert set(json.loads(entry.to_json())) == {f.name for f in fields(CachedAnswer)}
    assert set(json.loads(entry.to_json())["usage"]) == {f.name for f in fields(Usage)}


def test_a_cache_setting_in_the_config_file_is_validated() -> None:
    from llm_router.local.runtime import example_config
    from llm_router.stores.config_admin import validate_document

    doc = example_config()
    doc["routes"][0]["cache"] = {"ttl_seconds": 0}
    assert not validate_document(doc).ok
    doc["routes"][0]["cache"] = {"ttl_seconds": 60, "mode": "sometimes"}
    assert not validate_document(doc).ok
    doc["routes"][0]["cache"] = {"ttl_seconds": 60, "mode": "always"}
    doc["models"][0]["cache"] = {"ttl_seconds": 60}
    assert validate_document(doc).ok


def test_a_matching_pii_policy_keeps_the_request_out_of_the_cache_even_when_another_rule_decided() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Held:
        rule: str

    @dataclass(frozen=True)
    class WithPolicies(Decision):
        policies: tuple[Any, ...] = ()

    policy = rule("pii-policy", {"pii": True}, {"targets": ["small"]}, route="auto")
    config = cached_snapshot([policy])
    spec = CacheSpec(ttl_seconds=60)
    decided_elsewhere = WithPolicies("auto", "auto", "default", ("small",), policies=(Held("pii-policy"),))
    no_policy = WithPolicies("auto", "auto", "default", ("small",))

    assert not_cacheable(chat("Mail jane@example.com"), decided_elsewhere, config, spec) == "pii_policy"
    assert not_cacheable(chat("Mail jane@example.com"), no_policy, config, spec) is None


@pytest.mark.parametrize(
    ("header", "lookup", "store"),
    [
        ("", True, True),
        ("max-age=60", True, True),
        ("no-cache", False, True),
        ("No-Cache", False, True),
        ("no-store", False, False),
        ("no-cache, no-store", False, False),
        ("private, no-cache=set-cookie", False, True),
    ],
)
def test_cache_control_header(header: str, lookup: bool, store: bool) -> None:
    from llm_router.api import cache_control_of

    assert cache_control_of(header) == CacheControl(lookup=lookup, store=store)


@pytest.mark.parametrize(
    ("when", "fields", "content"),
    [
        ({"pii": True}, {}, "Mail jane@example.com"),
        ({"any": [{"keywords": ["refund"]}, {"pii": ["email"]}]}, {}, "Send the invoice to jane@example.com"),
        ({"keywords": ["invoice"]}, {"regions": ["eu-*"]}, "Send the invoice"),
        ({"pii": True}, {"regions": ["eu-*"], "enforce": "always"}, "Mail jane@example.com"),
    ],
)
def test_a_pii_or_residency_rule_that_says_cache_allow_lets_its_requests_be_cached(
    when: dict[str, Any], fields: dict[str, Any], content: str
) -> None:
    models = [model("small", region="eu-central-1"), model("large", region="eu-central-1")]
    route = RouteSpec(id="auto", default=("small", "large"), cache=CacheSpec(ttl_seconds=60, mode="always"))
    allowing = rule("policy", when, {"targets": ["small"]}, route="auto", cache="allow", **fields)
    config = snapshot(models=models, routes=[route], rules=[allowing])
    request = chat(content)
    decision = decide("auto", Features(request, "t1"), config)

    assert decision.rule == "policy" and route.cache is not None
    assert not_cacheable(request, decision, config, route.cache) is None
    assert _plan(request, config) is not None


def test_each_matching_data_rule_must_allow_caching() -> None:
    # Given a deciding rule that allows caching and a PII policy held over the decision that does not
    allowing = rule("eu-invoices", {"keywords": ["invoice"]}, {"targets": ["small"]}, regions=["*"], cache="allow")
    strict = rule("pii-policy", {"pii": True}, {"targets": ["small"]}, route="auto")
    config = cached_snapshot([allowing, strict])
    spec = CacheSpec(ttl_seconds=60)
    decision = Decision("auto", "auto", "eu-invoices", ("small",), regions=("*",))
    held = replace(decision, policies=(PolicyHold("pii-policy", None, None),))

    # Then the request is cached only while the strict policy does not hold
    assert not_cacheable(chat("Send the invoice"), decision, config, spec) is None
    assert not_cacheable(chat("Send the invoice to jane@example.com"), held, config, spec) == "pii_policy"


def test_cache_allow_is_accepted_only_on_rules_that_keep_data_out() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="cache: allow applies only"):
        rule("r", {"keywords": ["x"]}, {"targets": ["small"]}, cache="allow")
    with pytest.raises(ValidationError):
        rule("r", {"pii": True}, {"targets": ["small"]}, cache="always")
    assert rule("r", {"not": {"pii": True}}, {"targets": ["small"]}, cache="allow").keeps_out_of_cache is False
    assert rule("r", {"pii": True}, {"targets": ["small"]}).keeps_out_of_cache is True
