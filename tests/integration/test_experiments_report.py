"""`llm-router experiments report` on outcome records of known content."""

from __future__ import annotations

import json
import time

import pytest

from llm_router.cli.main import main
from llm_router.stores.outcome_store import Feedback, OutcomeRecord
from llm_router.wiring import build_outcome_store
from tests.integration.conftest import Router


def put(router: Router, n: int, *, arm: int | None, model: str, cost: float, thumbs: float | None = None,
        shadow: float | None = None, days_ago: float = 0) -> None:  # fmt: skip
    now = time.time() - days_ago * 86_400
    record = OutcomeRecord(
        request_id=f"{n:032x}",
        tenant="local",
        route="learn",
        rule="ab" if arm is not None else "threshold",
        model=model,
        cost_usd=cost,
        created_at=now,
        features={"difficulty": 0.5},
        arm=arm,
        feedback=Feedback(thumbs, int(now)) if thumbs is not None else None,
        shadow={"status": "judged", "scores": {model: shadow, "other": 0.5}, "costs": {"other": 0.01}}
        if shadow is not None
        else None,
    )
    build_outcome_store(router.settings, router.clients).put(record)


@pytest.fixture
def known(router: Router) -> Router:
    # Arm 0: thumbs 1, 1, 0, 1 and shadow grades 0.9, 0.8, 0.7; arm 1: thumbs 0, 0, 1, 0 and grades 0.2, 0.3, 0.4
    for n, (thumbs, grade) in enumerate([(1.0, 0.9), (1.0, 0.8), (0.0, 0.7), (1.0, None)]):
        put(router, n, arm=0, model="small", cost=0.001, thumbs=thumbs, shadow=grade)
    for n, (thumbs, grade) in enumerate([(0.0, 0.2), (0.0, 0.3), (1.0, 0.4), (0.0, None)], start=10):
        put(router, n, arm=1, model="large", cost=0.01, thumbs=thumbs, shadow=grade)
    put(router, 20, arm=None, model="small", cost=0.002)
    put(router, 21, arm=None, model="small", cost=0.002, days_ago=10)  # before --since 3d
    return router


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["experiments", "report", "learn", *args])
    return code, capsys.readouterr().out


def test_the_report_gives_each_arm_its_numbers_and_tests_the_difference(
    known: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = report(capsys, "--since", "3d", "--json")
    assert code == 0
    data = json.loads(out)
    arms = {arm["arm"]: arm for arm in data["arms"]}
    assert set(arms) == {"ab#0", "ab#1", "threshold"}
    assert data["records"] == 9
    first, second = arms["ab#0"], arms["ab#1"]
    assert (first["requests"], first["cost_usd"], first["models"]) == (4, pytest.approx(0.004), {"small": 4})
    assert (second["requests"], second["cost_usd"]) == (4, pytest.approx(0.04))
    assert first["feedback"]["mean"] == 0.75 and first["feedback"]["interval"] == "wilson"
    assert first["shadow"]["n"] == 3 and first["shadow"]["mean"] == pytest.approx(0.8)
    # The t interval of 0.9, 0.8, 0.7: 0.8 +- t(0.975, 2) * 0.1 / sqrt(3)
    half = 4.302653 * 0.1 / 3**0.5
    assert first["shadow"]["ci95"] == [pytest.approx(0.8 - half, abs=1e-5), pytest.approx(0.8 + half, abs=1e-5)]
    tests = {c["metric"]: c for c in data["comparisons"]}
    # Thumbs 1/4 against 3/4: z = -0.5 / sqrt(0.25 * 0.5) = -1.414, p = 0.157, not significant
    assert tests["feedback"]["test"] == "two_proportion_z"
    assert tests["feedback"]["statistic"] == pytest.approx(-1.41421, abs=1e-4)
    assert tests["feedback"]["p_value"] == pytest.approx(0.1573, abs=1e-4)
    assert not tests["feedback"]["significant"]
    # Grades 0.3 +- 0.1 against 0.8 +- 0.1 (n = 3 each): Welch t = -6.124 on 4 df, p = 0.0036, significant
    assert tests["shadow"]["test"] == "welch_t"
    assert tests["shadow"]["statistic"] == pytest.approx(-6.1237, abs=1e-3)
    assert tests["shadow"]["p_value"] == pytest.approx(0.00361, abs=1e-4)
    assert tests["shadow"]["significant"]
    assert arms["threshold"]["requests"] == 1 and arms["threshold"]["feedback"]["mean"] is None


def test_the_report_as_text_names_the_test_and_the_verdict(known: Router, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = report(capsys)
    assert code == 0
    assert "10 outcome records" in out
    assert "ab#1 vs ab#0, shadow: difference -0.500 (welch_t, p=0.0036): significant at 5%" in out
    assert "ab#1 vs ab#0, feedback: difference -0.500 (two_proportion_z, p=0.1573): not significant at 5%" in out


def test_a_route_without_outcomes_says_so(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = report(capsys)
    assert code == 0 and "no outcomes recorded" in out
