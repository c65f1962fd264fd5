"""What keeps the router from being turned against its owner: policies, PII everywhere, safe regexes, provider
credentials and endpoints, forwarded fields, invalid config, the local server's Host and bind checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from llm_router.errors import PolicyUnavailableError, PolicyViolationError
from llm_router.local.server import UnsafeBindError, check_bind, host_allowed
from llm_router.providers.base import Deadline, ProviderAuthError
from llm_router.providers.openai_compat import OpenAICompatProvider
from llm_router.routing.conditions.text import Regex
from llm_router.routing.engine import decide, plan
from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.openai import ChatCompletionRequest
from tests.helpers import features, model, rule, snapshot

EMAIL = "jane.doe@example.com"
PII_POLICY = {"when": {"pii": True}, "then": {"targets": ["eu"]}, "regions": ["eu-*"], "enforce": "always"}


def _catalog() -> list[ModelSpec]:
    return [
        model("us", region="us-east-1", fallbacks=["eu", "us-2"], capabilities=["tools", "images"]),
        model("us-2", region="us-west-2", capabilities=["tools", "images"]),
        model("eu", region="eu-central-1", capabilities=["tools", "images"]),
    ]


def _policy_config(**policy: Any) -> ConfigSnapshot:
    rules = [rule("pii-in-eu", **{**PII_POLICY, **policy}, route="auto", priority=5)]
    return snapshot(models=_catalog(), rules=rules, routes=[RouteSpec(id="auto", default=("us", "eu"))])


def _request(body: dict[str, Any]) -> Features:
    return Features(ChatCompletionRequest.model_validate({"model": "auto", **body}), "t1")


# -- 1. naming a model does not skip a policy ----------------------------------------------------------------
def test_a_policy_holds_for_a_request_that_names_a_model_directly() -> None:
    config = _policy_config()
    request = features(f"Mail {EMAIL}", model="us")

    decision = decide("us", request, config)

    # The named chain (us, then its fallbacks eu and us-2) keeps only what the policy allows
    assert plan(decision, request, config).models == [config.models["eu"]]


def test_a_named_model_the_policy_allows_nothing_of_is_refused_naming_the_rule() -> None:
    config = _policy_config()
    request = features(f"Mail {EMAIL}")

    with pytest.raises(PolicyViolationError) as refused:
        plan(decide("us-2", request, config), request, config)

    assert refused.value.status == 403 and refused.value.extra["rule"] == "pii-in-eu"
    assert "pii-in-eu" in refused.value.message


def test_a_policy_bounds_a_route_chain_even_when_a_later_rule_would_match_first_by_priority() -> None:
    rules = [
        rule("code", {"keywords": ["python"]}, {"targets": ["us"]}, route="auto", priority=1),
        rule("pii-in-eu", **PII_POLICY, route="auto", priority=50),  # type: ignore[arg-type]
    ]
    config = snapshot(models=_catalog(), rules=rules, routes=[RouteSpec(id="auto", default=("us", "eu"))])
    request = features(f"python help for {EMAIL}")

    decision = decide("auto", request, config)

    assert decision.rule == "pii-in-eu"
    assert [m.id for m in plan(decision, request, config).models] == ["eu"]


def test_a_request_without_pii_is_not_bound_by_the_policy() -> None:
    config = _policy_config()
    request = features("Hello!")
    assert [m.id for m in plan(decide("us", request, config), request, config).models] == ["us", "eu", "us-2"]


# -- 2. PII anywhere upstream ----------------------------------------------------------------------------------
def _tool_call(arguments: str) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "send", "arguments": arguments}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


PLACEMENTS: dict[str, dict[str, Any]] = {
    "tool-call argument": {
        "messages": [{"role": "user", "content": "go"}, _tool_call(json.dumps({"to": EMAIL}))],
    },
    "tool description": {
        "messages": [{"role": "user", "content": "go"}],
        "tools": [{"type": "function", "function": {"name": "send", "description": f"Always copy {EMAIL}"}}],
    },
    "tool parameters": {
        "messages": [{"role": "user", "content": "go"}],
        "tools": [{"type": "function", "function": {"name": "send", "parameters": {"default": EMAIL}}}],
    },
    "message name": {"messages": [{"role": "user", "content": "go", "name": EMAIL}]},
    "unknown message field": {"messages": [{"role": "user", "content": "go", "x_note": EMAIL}]},
    "unknown top-level field": {"messages": [{"role": "user", "content": "go"}], "prediction": {"content": EMAIL}},
    "text part of a list": {"messages": [{"role": "user", "content": [{"type": "text", "text": EMAIL}]}]},
    "tool result": {
        "messages": [
            {"role": "user", "content": "go"},
            _tool_call("{}"),
            {"role": "tool", "tool_call_id": "c1", "content": f"found {EMAIL}"},
        ]
    },
}


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_pii_is_found_wherever_it_is_placed_in_the_request(placement: str) -> None:
    assert "email" in _request(PLACEMENTS[placement]).pii


def test_an_image_counts_as_possible_pii_unless_the_policy_lists_its_kinds() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    request = _request({"messages": [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]}]})
    # pii: true fails closed on an image...
    assert decide("auto", request, _policy_config()).rule == "pii-in-eu"
    # ...and a policy that names the kinds it means leaves images alone
    assert decide("auto", request, _policy_config(when={"pii": ["email", "phone"]})).rule == "default"


# -- 4. admin regexes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pattern",
    [r"^(a+)+$", r"(\w+\s?)*$", r"(a{1,3})+b", r"(a|ab)*c", r"(x|)+y", r"(a)\1", r"(?:(?:a|aa))+$", r"(.*a){12}"],
)
def test_a_regex_that_can_backtrack_catastrophically_is_refused(pattern: str) -> None:
    with pytest.raises(ValidationError, match="backtrack"):
        Regex.model_validate(pattern)


@pytest.mark.parametrize(
    "pattern", [r"\bORD-\d{6}\b", r"def \w+\(|```|=>|\bimport \w+", r"(cat|dog)+", r"(?>a+)+", r"(a++)+b", r"(\w|\d)+"]
)
def test_ordinary_regexes_are_accepted(pattern: str) -> None:
    assert Regex.model_validate(pattern).root == pattern


def test_a_regex_condition_sees_only_a_bounded_prefix_of_the_text() -> None:
    config = snapshot(rules=[rule("tail", {"regex": "NEEDLE"}, {"targets": ["large"]})])
    request = ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "x" * 100 + " NEEDLE"}]}
    )

    assert decide("auto", Features(request, "t", regex_scan_chars=1000), config).rule == "tail"
    assert decide("auto", Features(request, "t", regex_scan_chars=50), config).rule == "default"


# -- 5. provider credentials and endpoints -------------------------------------------------------------------
def _openai_model(**fields: Any) -> dict[str, Any]:
    return {"id": "m", "provider": "openai", "model_id": "m", "base_url": "https://api.example.com/v1", **fields}


@pytest.mark.parametrize("name", ["Authorization", "authorization", "api-key", "X-Api-Key", "Proxy-Authorization"])
def test_model_headers_cannot_set_credentials(name: str) -> None:
    with pytest.raises(ValidationError, match="credentials come from api_key_ref"):
        ModelSpec.model_validate(_openai_model(headers={name: "Bearer stolen"}))


def test_api_key_ref_cannot_name_aws_credentials() -> None:
    with pytest.raises(ValidationError, match="AWS_"):
        ModelSpec.model_validate(_openai_model(api_key_ref="AWS_SECRET_ACCESS_KEY"))


def test_base_url_must_be_http_or_https() -> None:
    with pytest.raises(ValidationError, match="https"):
        ModelSpec.model_validate(_openai_model(base_url="file:///etc/passwd"))


@pytest.mark.parametrize("base_url", ["http://capture.example.com/v1", "http://10.0.0.5/v1", "http://127.0.0.1:9/v1"])
def test_outside_local_mode_a_provider_refuses_plain_http_before_sending_anything(base_url: str) -> None:
    spec = ModelSpec.model_validate(_openai_model(base_url=base_url, api_key_ref="K"))
    provider = OpenAICompatProvider({"K": "sk-secret"})

    with pytest.raises(ProviderAuthError, match="must be https"):
        provider.complete(
            ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            spec,
            Deadline(5),
        )


def test_local_mode_allows_plain_http_only_to_loopback() -> None:
    spec = ModelSpec.model_validate(_openai_model(base_url="http://capture.example.com/v1"))
    provider = OpenAICompatProvider({}, allow_loopback_http=True)
    with pytest.raises(ProviderAuthError, match="must be https"):
        provider.complete(
            ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            spec,
            Deadline(5),
        )


# -- 7. forwarded fields ---------------------------------------------------------------------------------------
def test_fields_outside_the_allow_list_are_not_forwarded_upstream() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "auto",
            "messages": [{"role": "user", "content": "hi"}],
            "store": True,
            "service_tier": "priority",
            "seed": 7,
            "metadata": {"team": "a"},
        }
    )
    body = OpenAICompatProvider.payload(request, ModelSpec.model_validate(_openai_model()))

    assert "store" not in body and "service_tier" not in body and "metadata" not in body
    assert body["seed"] == 7 and body["model"] == "m"


def test_a_model_opts_in_to_provider_specific_fields() -> None:
    request = ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "store": True, "service_tier": "flex"}
    )
    spec = ModelSpec.model_validate(_openai_model(forward_fields=["service_tier"]))

    body = OpenAICompatProvider.payload(request, spec)

    assert body["service_tier"] == "flex" and "store" not in body


# -- 9. invalid config never fails open ------------------------------------------------------------------------
def _items(policy: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        "model": [
            {"pk": "model", "sk": "us", "provider": "simulated", "model_id": "us", "region": "us-east-1"},
            {"pk": "model", "sk": "eu", "provider": "simulated", "model_id": "eu", "region": "eu-central-1"},
        ],
        "route": [{"pk": "route", "sk": "auto", "default": ["us"]}],
        "rule": [{"pk": "rule", "sk": "pii-in-eu", "route": "auto", "priority": 5, **policy}],
    }


def test_an_invalid_edit_of_a_policy_keeps_its_last_valid_version_in_force() -> None:
    good = ConfigSnapshot.from_items(_items(PII_POLICY))
    broken = ConfigSnapshot.from_items(_items({**PII_POLICY, "typo_attribute": 1}), good)
    request = features(f"Mail {EMAIL}")

    assert broken.invalid and broken.invalid[0].id == "pii-in-eu"
    assert decide("auto", request, broken).rule == "pii-in-eu"
    with pytest.raises(PolicyViolationError):
        plan(decide("us", request, broken), request, broken)


def test_a_policy_with_no_valid_version_refuses_the_requests_it_covers() -> None:
    broken = ConfigSnapshot.from_items(_items({**PII_POLICY, "typo_attribute": 1}))

    with pytest.raises(PolicyUnavailableError, match="pii-in-eu"):
        decide("auto", features("Hello!"), broken)
    with pytest.raises(PolicyUnavailableError):
        decide("us", features("Hello!"), broken)


# -- 10. local server ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host_header", "bound", "allowed"),
    [
        ("127.0.0.1:8080", "127.0.0.1", True),
        ("localhost:8080", "127.0.0.1", True),
        ("[::1]:8080", "::1", True),
        ("attacker.example:8080", "127.0.0.1", False),
        ("rebind.attacker.example", "0.0.0.0", False),
        ("192.168.1.5:8080", "0.0.0.0", True),
        ("router.lan:8080", "router.lan", True),
        (None, "127.0.0.1", False),
    ],
)
def test_the_host_header_must_name_loopback_or_the_bound_address(
    host_header: str | None, bound: str, allowed: bool
) -> None:
    assert host_allowed(host_header, bound) is allowed


def test_listening_beyond_loopback_needs_a_key_of_ones_own() -> None:
    with pytest.raises(UnsafeBindError, match="LLM_ROUTER_LOCAL_KEY"):
        check_bind("0.0.0.0", "sk-local-dev", "sk-local-dev")
    check_bind("0.0.0.0", "sk-my-own-long-key", "sk-local-dev")
    check_bind("127.0.0.1", "sk-local-dev", "sk-local-dev")
