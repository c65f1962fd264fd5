"""Adaptations in a deployment under moto: versions in the Config table, `llm-router adapt ROUTE` from collected
outcomes (promote and refuse), rollback, and the router serving whatever the active pointer names."""

from __future__ import annotations

import importlib.util
import json
import random
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from llm_router.cli.main import main as cli
from llm_router.routing.adaptation import Adaptation
from llm_router.routing.engine import decide
from llm_router.routing.features import Features
from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE
from llm_router.stores.adaptation_store import AdaptationError, AdaptationStore
from llm_router.stores.config_store import ConfigStore
from llm_router.stores.outcome_store import OutcomeRecord, OutcomeStore
from tests.fakes.outcomes import ARITHMETIC, STRONG, WEAK
from tests.fakes.outcomes import seed_outcomes as seed_learned_outcomes
from tests.helpers import chat, header
from tests.integration.conftest import Router

ROOT = Path(__file__).resolve().parents[2]
# A route of its own: the example rules (all on `auto`) do not run before its threshold strategy.
LEARNED_ROUTE = {
    "id": "learned",
    "default": [WEAK, STRONG],
    "strategy": {"strategy": "threshold", "weak": WEAK, "strong": STRONG, "threshold": 0.58},
    "learn": {"collect": True, "target_quality": 0.95, "min_samples": 200},
}


def seed_outcomes(router: Router, n: int, *, seed: int = 1) -> None:
    """`n` judged outcome records of the learned route, as shadow evaluation leaves them."""
    seed_learned_outcomes(router.clients.get("dynamodb"), DEFAULT_STATE_TABLE, "learned", n, seed=seed)


@pytest.fixture
def learned(router: Router) -> Router:
    router.admin.put_raw("route", LEARNED_ROUTE)
    return router


def adaptations(router: Router) -> AdaptationStore:
    return AdaptationStore(DEFAULT_CONFIG_TABLE, dynamodb=router.clients.get("dynamodb"))


def fitted(version: str = "candidate", threshold: float = 0.5) -> Adaptation:
    return Adaptation("learned", WEAK, STRONG, version, threshold, 0.0, {"log_digits": 1.0}, 1.0, {"samples": 300})


def ask(router: Router, content: str) -> dict[str, Any]:
    """A chat on the learned route; its outcome record (the route collects) is written before this returns."""
    response = router.call({"model": "learned", "messages": [{"role": "user", "content": content}]})
    assert router.gateway.outcomes is not None and router.gateway.outcomes.flush()
    return response


# -- the store -------------------------------------------------------------------------------------------------


def test_versions_are_numbered_per_route_and_never_overwritten(learned: Router) -> None:
    store = adaptations(learned)
    first = store.save(fitted(threshold=0.4), "learned")
    second = store.save(fitted(threshold=0.6), "learned")
    other = store.save(fitted(), "auto")

    assert (first.version, second.version, other.version) == ("v1", "v2", "v1")
    assert [v.version for v in store.versions("learned")] == ["v1", "v2"]
    assert store.get("learned", "v1") == first and store.get("learned", "v1").threshold == 0.4  # type: ignore[union-attr]
    # Saving does not activate: the route keeps serving the shipped model until a version is promoted.
    assert store.active("learned") is None


def test_a_save_that_loses_the_race_for_a_number_takes_the_next(learned: Router) -> None:
    store = adaptations(learned)
    ddb = learned.clients.get("dynamodb")
    # Another run claims v1 between this run's listing and its write.
    listed: list[int] = []

    class RacingStore(AdaptationStore):
        def versions(self, route: str) -> list[Any]:
            found = super().versions(route)
            if not listed:
                AdaptationStore(DEFAULT_CONFIG_TABLE, dynamodb=ddb).save(fitted(threshold=0.1), route)
            listed.append(len(found))
            return found

    saved = RacingStore(DEFAULT_CONFIG_TABLE, dynamodb=ddb).save(fitted(threshold=0.9), "learned")

    assert saved.version == "v2" and listed == [0, 1]
    assert store.get("learned", "v1").threshold == 0.1  # type: ignore[union-attr]
    assert store.get("learned", "v2").threshold == 0.9  # type: ignore[union-attr]


def test_rollback_steps_back_one_version_at_a_time_then_to_the_shipped_model(learned: Router) -> None:
    store = adaptations(learned)
    for _ in range(3):
        store.activate("learned", store.save(fitted(), "learned").version)

    assert store.active_version("learned") == "v3"
    assert store.rollback("learned") == ("v3", "v2")
    assert store.rollback("learned") == ("v2", "v1")
    assert store.rollback("learned") == ("v1", None)
    assert store.active("learned") is None
    with pytest.raises(AdaptationError, match="no active adaptation"):
        store.rollback("learned")
    # Every version is still there to go back to.
    assert store.rollback("learned", "v3") == (None, "v3")
    assert [(v.version, v.active) for v in store.versions("learned")] == [("v1", False), ("v2", False), ("v3", True)]
    assert store.rollback("learned", "shipped") == ("v3", None)
    with pytest.raises(AdaptationError, match="already serves the shipped model"):
        store.rollback("learned", "none")


def test_a_rollback_holds_the_route_until_a_promotion(learned: Router) -> None:
    store = adaptations(learned)
    store.activate("learned", store.save(fitted(), "learned").version)
    store.activate("learned", store.save(fitted(), "learned").version)
    assert not store.held("learned")

    store.rollback("learned")
    assert store.held("learned") and store.active_version("learned") == "v1"
    store.rollback("learned")
    assert store.held("learned") and store.active_version("learned") is None
    # The routers serve the shipped model: a pointer without a version is no broken item.
    snapshot = ConfigStore(DEFAULT_CONFIG_TABLE, ttl_seconds=0, dynamodb=learned.clients.get("dynamodb")).snapshot()
    assert "learned" not in snapshot.adaptations and snapshot.invalid == ()

    store.activate("learned", store.save(fitted(), "learned").version)
    assert not store.held("learned") and store.active_version("learned") == "v3"


def test_rollback_to_a_version_that_does_not_exist_changes_nothing(learned: Router) -> None:
    store = adaptations(learned)
    store.activate("learned", store.save(fitted(), "learned").version)

    with pytest.raises(AdaptationError, match="no adaptation 'v7'"):
        store.rollback("learned", "v7")
    with pytest.raises(AdaptationError, match="a version such as v2"):
        store.rollback("learned", "latest")
    assert store.active_version("learned") == "v1"


# -- serving ---------------------------------------------------------------------------------------------------


def test_a_rollback_takes_effect_on_the_next_decision_after_the_config_ttl(learned: Router) -> None:
    store = adaptations(learned)
    store.activate("learned", store.save(fitted(), "learned").version)
    store.activate("learned", store.save(fitted(threshold=0.99), "learned").version)
    now = [1000.0]
    config = ConfigStore(
        DEFAULT_CONFIG_TABLE, ttl_seconds=30, dynamodb=learned.clients.get("dynamodb"), clock=lambda: now[0]
    )

    def served() -> str | None:
        return decide("learned", Features(chat(ARITHMETIC, model="learned"), "t1"), config.snapshot()).adaptation

    assert served() == "v2"
    store.rollback("learned")
    now[0] += 29
    assert served() == "v2"  # still cached
    now[0] += 2
    assert served() == "v1"  # the next decision after the TTL: no redeploy, no restart


def test_a_broken_version_item_keeps_the_router_on_its_last_valid_version(learned: Router) -> None:
    store = adaptations(learned)
    store.activate("learned", store.save(fitted(), "learned").version)
    config = ConfigStore(DEFAULT_CONFIG_TABLE, ttl_seconds=0, dynamodb=learned.clients.get("dynamodb"))
    assert config.snapshot().adaptations["learned"].version == "v1"

    # Someone edits the artifact in the console and breaks it.
    learned.clients.get("dynamodb").update_item(
        TableName=DEFAULT_CONFIG_TABLE,
        Key={"pk": {"S": "adaptation"}, "sk": {"S": "learned#v1"}},
        UpdateExpression="SET threshold = :t",
        ExpressionAttributeValues={":t": {"S": "high"}},
    )
    snapshot = config.snapshot()

    assert snapshot.adaptations["learned"].version == "v1"
    assert snapshot.adaptations["learned"].threshold == 0.5
    assert [(bad.kind, bad.id) for bad in snapshot.invalid] == [("adaptation", "learned#v1")]


def test_the_answer_names_the_adaptation_that_decided(learned: Router) -> None:
    before = ask(learned, ARITHMETIC)
    store = adaptations(learned)
    store.activate("learned", store.save(fitted(threshold=0.0), "learned").version)  # everything to the strong model

    after = ask(learned, ARITHMETIC)
    explained = learned.call(
        {"model": "learned", "messages": [{"role": "user", "content": ARITHMETIC}]}, path="/v1/route"
    )

    assert before["statusCode"] == after["statusCode"] == 200
    assert header(before, "x-router-adaptation") is None
    assert header(after, "x-router-adaptation") == "v1"
    assert header(after, "x-router-rule") == "threshold" and header(after, "x-router-model") == STRONG
    body = json.loads(explained["body"])
    assert body["adaptation"] == "v1"
    assert "(adaptation v1)" in body["trace"][-1]["why"]
    routed = [doc for doc in learned.emitted if doc.get("message") == "routed"]
    assert routed[-1]["adaptation"] == "v1"
    # The route collects: each answer's outcome record names the version that decided it.
    records = OutcomeStore(DEFAULT_STATE_TABLE, dynamodb=learned.clients.get("dynamodb")).records("learned")
    assert [r.adaptation for r in records] == [None, "v1"]


def test_a_queued_request_record_names_the_adaptation_that_decided(learned: Router) -> None:
    store = adaptations(learned)
    store.activate("learned", store.save(fitted(), "learned").version)
    learned.set_models(failure="throttle")

    queued = ask(learned, ARITHMETIC)

    assert queued["statusCode"] == 503
    record = learned.requests.get(learned.json(queued)["error"]["request_id"])
    assert record is not None and [d["adaptation"] for d in record.decisions] == ["v1"]


# -- llm-router adapt ROUTE | rollback | list -------------------------------------------------------------------


def test_adapt_promotes_from_collected_outcomes_and_rollback_undoes_it(
    learned: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_outcomes(learned, 300)
    shipped = ask(learned, ARITHMETIC)

    code = cli(["adapt", "learned"])
    out = capsys.readouterr().out

    assert code == 0, out
    assert "promoted and activated v1 (was the shipped model)" in out
    assert adaptations(learned).active_version("learned") == "v1"
    adapted = ask(learned, ARITHMETIC)
    # The shipped score sends the arithmetic to the weak model; the adaptation learned it needs the strong one.
    assert header(shipped, "x-router-model") == WEAK and header(shipped, "x-router-adaptation") is None
    assert header(adapted, "x-router-model") == STRONG and header(adapted, "x-router-adaptation") == "v1"

    assert cli(["adapt", "list", "learned", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["active"], v["samples"]) for v in listed] == [("v1", True, 300)]

    assert cli(["adapt", "rollback", "learned"]) == 0
    assert "now serving the shipped model (was v1)" in capsys.readouterr().out
    assert cli(["adapt", "list", "learned"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["VERSION", "ACTIVE", "WEAK"]
    assert table.splitlines()[1].split()[:2] == ["v1", WEAK]  # no longer active
    assert "held at the shipped model by a rollback" in table
    rolled_back = ask(learned, ARITHMETIC)
    assert header(rolled_back, "x-router-model") == WEAK and header(rolled_back, "x-router-adaptation") is None


def test_adapt_refuses_to_promote_below_the_routes_min_samples(
    learned: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_outcomes(learned, 120)

    code = cli(["adapt", "learned", "--json"])
    report = json.loads(capsys.readouterr().out)

    assert code == 0
    assert report["promoted"] is False and report["activated"] is None
    assert "fewer than the 200 required" in report["reason"]
    assert adaptations(learned).versions("learned") == []


def test_adapt_dry_run_fits_but_stores_nothing(learned: Router, capsys: pytest.CaptureFixture[str]) -> None:
    seed_outcomes(learned, 300)

    assert cli(["adapt", "learned", "--dry-run"]) == 0

    assert "would promote a new version (dry run" in capsys.readouterr().out
    assert adaptations(learned).versions("learned") == []


def test_adapt_does_not_promote_a_version_that_ranks_worse_than_the_active_one(
    learned: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    # The active version ranks by a signal (`oracle`) that decides every outcome and that fitting does not use, so
    # whatever a new fit learns from the other features ranks worse on the same outcomes.
    store = adaptations(learned)
    oracle = Adaptation("learned", WEAK, STRONG, "x", 0.5, 0.0, {"oracle": 8.0}, 0.0, {})
    store.activate("learned", store.save(oracle, "learned").version)
    outcomes = OutcomeStore(DEFAULT_STATE_TABLE, dynamodb=learned.clients.get("dynamodb"))
    rng = random.Random(3)
    now = time.time()
    for i in range(300):
        signal = rng.uniform(-1, 1)
        features = {
            "difficulty": 0.5,
            "oracle": signal,
            "log_chars": rng.uniform(2, 6),
            "log_digits": rng.uniform(0, 3),
        }
        grades = {WEAK: 0.0 if signal > 0 else 1.0, STRONG: 1.0}
        shadow = {"scores": grades, "costs": {STRONG: 0.002}}
        outcomes.put(
            OutcomeRecord(
                f"req-{i}", "local", "learned", "threshold", WEAK, 0.0001, now - 3600 + i, features, shadow=shadow
            )
        )

    assert cli(["adapt", "learned", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["current"] == "v1" and report["report"]["current"]["version"] == "v1"
    assert report["promoted"] is False and report["activated"] is None
    assert "below v1's" in report["reason"]
    assert store.active_version("learned") == "v1" and [v.version for v in store.versions("learned")] == ["v1"]


def test_an_active_version_for_other_models_is_not_the_one_to_beat(
    learned: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    # The route's strategy was edited to other models after v1 was fitted: v1 no longer decides anything.
    store = adaptations(learned)
    other = Adaptation("learned", "claude-haiku", STRONG, "x", 0.5, 0.0, {}, 1.0, {})
    store.activate("learned", store.save(other, "learned").version)
    seed_outcomes(learned, 300)

    assert cli(["adapt", "learned", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["current"] == "v1" and report["report"]["current"]["version"] == "shipped"
    assert report["promoted"] is True and report["activated"] == "v2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["adapt"], "adapt needs a route, or --data"),
        (["adapt", "auto"], "route 'auto' has no `learn` settings"),
        (["adapt", "nope"], "route 'nope' does not exist"),
        (["adapt", "rollback", "learned"], "route 'learned' has no active adaptation to roll back"),
        (["adapt", "rollback"], "unexpected arguments"),
        (["adapt", "learned", "--to", "v1"], "--to applies to `adapt rollback ROUTE` only"),
        (["adapt", "rollback", "learned", "--dry-run"], "--dry-run and --since apply to `adapt ROUTE` only"),
        (["adapt", "learned", "--since", "yesterday"], "--since wants an ISO date/time"),
        (["adapt", "learned", "--weak", "x", "--out", "a.json"], "--weak, --out belong to the offline form"),
        (["adapt", "learned", "--data", "outcomes.jsonl"], "the offline form: it takes no route"),
    ],
)
def test_adapt_mistakes_are_one_line_errors(
    learned: Router, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = cli(argv)
    err = capsys.readouterr().err

    assert code == 2
    assert message in err and "Traceback" not in err


# -- the scheduled function ------------------------------------------------------------------------------------


def _adapt_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("adapt_handler", ROOT / "functions/adapt/handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Context:
    function_name = "adapt"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:adapt"
    aws_request_id = "req-1"


def test_the_scheduled_function_adapts_every_route_that_learns(learned: Router) -> None:
    seed_outcomes(learned, 300)
    # A second learning route without outcomes: not promoted, and it does not stop the first.
    learned.admin.put_raw("route", {**LEARNED_ROUTE, "id": "quiet"})

    result = _adapt_handler().lambda_handler({}, _Context())

    assert json.loads(json.dumps(result)) == result  # what Lambda returns must be JSON
    by_route = {run["route"]: run for run in result["routes"]}
    assert sorted(by_route) == ["learned", "quiet"] and result["failed"] == {}
    assert by_route["learned"]["activated"] == "v1"
    assert by_route["quiet"]["promoted"] is False and by_route["quiet"]["activated"] is None
    assert adaptations(learned).active_version("learned") == "v1"
    assert header(ask(learned, ARITHMETIC), "x-router-adaptation") == "v1"


def test_the_scheduled_function_leaves_a_rolled_back_route_to_the_operator(
    learned: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_outcomes(learned, 300)
    assert cli(["adapt", "learned"]) == 0
    assert cli(["adapt", "rollback", "learned"]) == 0
    assert "leaves the route as it is until `llm-router adapt learned` runs" in capsys.readouterr().out

    result = _adapt_handler().lambda_handler({}, _Context())

    (run,) = result["routes"]
    assert run["promoted"] is False and run["activated"] is None
    assert "held at the shipped model by a rollback" in run["reason"]
    assert adaptations(learned).versions("learned")[-1].version == "v1"  # nothing fitted, nothing stored
    # A person adapting the route again lifts the hold.
    assert cli(["adapt", "learned"]) == 0
    assert adaptations(learned).active_version("learned") == "v2" and not adaptations(learned).held("learned")
