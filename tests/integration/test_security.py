"""The router as an attacker meets it, through the real authorizer and handler: policies for named models, PII
outside the message text, key scopes on /v1/route, tenant allow-lists on /v1/models, invalid policy edits."""

from __future__ import annotations

import json
from typing import Any

from llm_router.local.runtime import example_config
from llm_router.schemas.tenants import TenantSpec
from llm_router.settings import DEFAULT_CONFIG_TABLE
from llm_router.stores.tenant_store import TenantStore
from tests.helpers import header
from tests.integration.conftest import Router

CARD_AND_EMAIL = "Charge 4111 1111 1111 1111 and mail jane.doe@example.com"


def _pii_policy() -> dict[str, Any]:
    return next(dict(r) for r in example_config()["rules"] if r["id"] == "pii-stays-in-eu")


def test_naming_the_us_model_with_personal_data_is_refused_by_the_policy(router: Router) -> None:
    response = router.call({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": CARD_AND_EMAIL}]})

    assert response["statusCode"] == 403
    error = router.json(response)["error"]
    assert error["code"] == "policy_violation" and error["rule"] == "pii-stays-in-eu"
    assert router.metric_values("Requests") == []


def test_naming_a_model_whose_fallbacks_reach_the_eu_is_answered_there(router: Router) -> None:
    # nova-micro (us) falls back to claude-haiku, then claude-sonnet (us): no EU model in that chain
    response = router.call({"model": "nova-micro", "messages": [{"role": "user", "content": CARD_AND_EMAIL}]})
    assert response["statusCode"] == 403
    # eu-nova-lite named directly is allowed
    response = router.call({"model": "eu-nova-lite", "messages": [{"role": "user", "content": CARD_AND_EMAIL}]})
    assert response["statusCode"] == 200 and header(response, "x-router-model") == "eu-nova-lite"


def test_personal_data_in_an_unknown_top_level_field_keeps_the_request_in_the_eu(router: Router) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}], "x_notes": "jane.doe@example.com"}

    response = router.call(body)

    assert response["statusCode"] == 200
    assert header(response, "x-router-model") == "eu-nova-lite"


def test_route_reasons_are_shown_to_admin_keys_only(router: Router) -> None:
    user_key, _ = router.keys.create("team-a")
    admin_key, _ = router.keys.create("ops", admin=True)
    body = {"model": "auto", "messages": [{"role": "user", "content": "fix this python traceback"}]}

    as_user = router.json(router.call(body, path="/v1/route", key=user_key))
    as_admin = router.json(router.call(body, path="/v1/route", key=admin_key))

    assert as_user == {"request_id": as_user["request_id"], "rule": "code-to-haiku", "model": "claude-haiku"}
    assert "trace" in as_admin and "features" in as_admin and "scores" in as_admin
    serialized = json.dumps(as_user)
    assert "python" not in serialized and "pii" not in serialized


def test_models_lists_only_what_the_tenant_may_use(router: Router) -> None:
    TenantStore(DEFAULT_CONFIG_TABLE).put(TenantSpec(id="local", models=("nova-micro", "eu-nova-lite")))

    listed = router.json(router.call(None, path="/v1/models", method="GET"))

    ids = {entry["id"] for entry in listed["data"]}
    assert {"nova-micro", "eu-nova-lite", "auto"} <= ids
    assert "gpt-4o-mini" not in ids and "claude-sonnet" not in ids


def test_an_invalid_edit_of_the_pii_policy_does_not_let_personal_data_out(router: Router) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": CARD_AND_EMAIL}]}
    assert header(router.call(body), "x-router-model") == "eu-nova-lite"  # the valid version is loaded once

    router.admin.put_raw("rule", {**_pii_policy(), "unknown_attribute": True})
    kept = router.call(body)

    assert kept["statusCode"] == 200 and header(kept, "x-router-model") == "eu-nova-lite"
    assert router.metric_values("InvalidConfigItems")


def test_a_policy_that_was_never_valid_makes_its_route_refuse(router: Router) -> None:
    router.admin.put_raw("rule", {**_pii_policy(), "id": "new-policy", "when": {"pii": "yes please"}})
    router.build()  # a fresh function: no earlier valid version of the policy

    response = router.chat("Hello!")

    assert response["statusCode"] == 503
    error = router.json(response)["error"]
    assert error["code"] == "policy_unavailable" and error["rule"] == "new-policy"


def test_the_regex_window_is_a_setting(router: Router) -> None:
    router.admin.put_raw(
        "rule",
        {
            "id": "tail",
            "route": "auto",
            "priority": 1,
            "when": {"regex": "NEEDLE"},
            "then": {"targets": ["claude-sonnet"]},
        },
    )
    body = {"model": "auto", "messages": [{"role": "user", "content": "x" * 200 + " NEEDLE"}]}
    assert header(router.call(body), "x-router-rule") == "tail"

    router.env["REGEX_SCAN_CHARS"] = "100"
    router.build()

    assert header(router.call(body), "x-router-rule") != "tail"


def test_a_refusal_tells_a_user_key_the_rule_but_not_the_reasons(router: Router) -> None:
    key, _ = router.keys.create("team-a")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": CARD_AND_EMAIL}]}

    error = router.json(router.call(body, key=key))["error"]

    assert error["rule"] == "pii-stays-in-eu"
    assert "trace" not in error["decision"] and "PII found" not in json.dumps(error)
