"""Rules live in DynamoDB: edits take effect after the cache TTL, broken items never break routing."""

from __future__ import annotations

from typing import Any

from llm_router.schemas.rules import Rule
from llm_router.settings import DEFAULT_CONFIG_TABLE
from llm_router.stores.config_store import ConfigStore
from tests.helpers import header
from tests.integration.conftest import Router

GREETING_TO_SONNET = {
    "id": "greetings-to-sonnet",
    "route": "auto",
    "priority": 1,
    "when": {"keywords": ["hello"]},
    "then": {"targets": ["claude-sonnet"]},
}


def test_rule_edit_changes_routing_without_restart(router: Router) -> None:
    before = router.chat("Hello!")
    router.admin.put("rule", Rule.model_validate(GREETING_TO_SONNET))
    after = router.chat("Hello!")

    assert header(before, "x-router-model") == "nova-micro"
    assert header(after, "x-router-model") == "claude-sonnet"
    assert header(after, "x-router-rule") == "greetings-to-sonnet"


def test_invalid_rule_item_is_skipped_and_counted(router: Router) -> None:
    router.admin.put_raw("rule", {"id": "broken", "priority": 0, "when": {"keywrds": ["x"]}, "then": {}})
    router.admin.put_raw("model", {"id": "half-a-model", "provider": "nope"})

    response = router.chat("Why does my Python script fail?")

    assert response["statusCode"] == 200
    assert header(response, "x-router-rule") == "code-to-haiku"
    assert router.metric_values("InvalidConfigItems") == [2.0]


def test_snapshot_is_cached_until_the_ttl_passes(router: Router) -> None:
    now = [1000.0]
    store = ConfigStore(DEFAULT_CONFIG_TABLE, ttl_seconds=30, clock=lambda: now[0])
    first = store.snapshot()
    router.admin.put("rule", Rule.model_validate(GREETING_TO_SONNET))

    now[0] += 29
    cached = store.snapshot()
    now[0] += 2
    refreshed = store.snapshot()

    assert cached is first
    assert "greetings-to-sonnet" not in {r.id for r in cached.rules}
    assert "greetings-to-sonnet" in {r.id for r in refreshed.rules}


def test_last_good_config_is_kept_when_the_table_is_unreachable(router: Router) -> None:
    now = [0.0]

    class Flaky:
        """The real client until the endpoint goes down."""

        def __init__(self, dynamodb: Any) -> None:
            self.dynamodb, self.down = dynamodb, False

        def query(self, **kwargs: Any) -> Any:
            if self.down:
                raise ConnectionError("endpoint down")
            return self.dynamodb.query(**kwargs)

    dynamodb = Flaky(router.clients.get("dynamodb"))
    store = ConfigStore(DEFAULT_CONFIG_TABLE, ttl_seconds=1, clock=lambda: now[0], dynamodb=dynamodb)
    good = store.snapshot()
    dynamodb.down = True
    now[0] += 5

    assert store.snapshot() is good


def test_split_rule_is_sticky_per_user(router: Router) -> None:
    split = {
        "id": "ab-test",
        "route": "auto",
        "priority": 1,
        "when": {},
        "then": {"split": [{"targets": ["claude-haiku"], "weight": 1}, {"targets": ["claude-sonnet"], "weight": 1}]},
    }
    router.admin.put("rule", Rule.model_validate(split))

    first = [header(router.chat("hi", user=f"user-{i}"), "x-router-model") for i in range(20)]
    again = [header(router.chat("hi", user=f"user-{i}"), "x-router-model") for i in range(20)]

    assert first == again
    assert set(first) == {"claude-haiku", "claude-sonnet"}


def test_reject_rule_answers_with_its_status_and_message(router: Router) -> None:
    reject = {
        "id": "no-secrets",
        "priority": 1,
        "when": {"keywords": ["password dump"]},
        "then": {"reject": {"status": 403, "message": "Requests for credential dumps are not allowed."}},
    }
    router.admin.put("rule", Rule.model_validate(reject))

    response = router.chat("give me the password dump")

    assert response["statusCode"] == 403
    assert router.json(response)["error"]["message"] == "Requests for credential dumps are not allowed."
