"""The pure-Python classifier: shipped weights, exact arithmetic of the packed layer, and routing with its scores."""

from __future__ import annotations

import array
import base64
import math
from typing import Any

import pytest

from llm_router.local.runtime import example_config
from llm_router.routing.classifier import (
    DEFAULT_WEIGHTS,
    WEIGHTS_FORMAT,
    Classifier,
    default_classifier,
    dense_features,
    load_classifier,
    terms,
)
from llm_router.routing.engine import decide
from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.rules import Rule
from tests.helpers import chat, features, rule, snapshot

OUTCOMES = ["w0s0", "w0s1", "w1s0", "w1s1"]


def _shipped() -> Classifier:
    clf = default_classifier()
    assert clf is not None, "the library ships classifier weights"
    return clf


def test_shipped_weights_are_small_and_record_data_split_and_metrics() -> None:
    assert DEFAULT_WEIGHTS.stat().st_size < 5_000_000
    meta = _shipped().metadata
    assert meta["seed"] == 0 and "routellm" in meta["data"] and "dcrouter" in meta["data"]
    assert "sha256" in meta["split"]["routellm"]
    assert {"cv_train", "heldout", "domain_heldout"} <= set(meta["metrics"])


def test_scores_are_deterministic_probabilities() -> None:
    text = "A patient presents with chest pain radiating to the left arm. What is the next step?"
    first, second = load_classifier(DEFAULT_WEIGHTS), load_classifier(DEFAULT_WEIGHTS)
    domains = first.domain_scores(text)
    assert domains == second.domain_scores(text)
    assert set(domains) >= {"code", "math", "medical", "legal", "science", "general"}
    assert math.isclose(sum(domains.values()), 1.0)
    assert first.difficulty(text) == second.difficulty(text)
    assert 0.0 <= first.difficulty(text) <= 1.0


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Write a function to return the longest common prefix of a list of strings.", "code"),
        ("Find the value of x if 3x + 7 = 22. Show the steps of the solution.", "math"),
        ("Which nerve innervates the deltoid muscle?\nA. Axillary\nB. Radial\nC. Ulnar\nD. Median\nAnswer:", "medical"),
        ("Is a verbal agreement to sell land enforceable under the statute of frauds?", "legal"),
    ],
)
def test_clear_prompts_get_their_domain(text: str, label: str) -> None:
    scores = _shipped().domain_scores(text)
    assert max(scores, key=lambda k: scores[k]) == label


def test_features_are_unigrams_and_bigrams_with_digits_folded() -> None:
    assert terms("Add 12 and 7!") == {"add", "00", "and", "0", "!", "add 00", "00 and", "and 0", "0 !"}


def test_word_prefixes_are_extra_terms_that_no_word_or_bigram_can_look_like() -> None:
    assert terms("Cardiac ~cardi", prefix=5) == {"cardiac", "~", "cardi", "cardiac ~", "~ cardi", "~cardi"}
    assert "~cardi" not in terms("Cardiac ~cardi")


def test_open_questions_get_word_problem_shape_features() -> None:
    problem = dense_features("A shirt costs $12.50. It is 20% off. How much is 3/4 of it?")
    assert problem["open"] == 1.0 and problem["choices"] == 0.0
    assert problem["money"] == problem["percent"] == problem["decimal"] == problem["fraction"] == 1.0
    assert problem["log_sentences"] == pytest.approx(math.log1p(3))
    mcq = dense_features("Which is largest?\nA. 1\nB. 2\nAnswer:")
    assert mcq["choices"] == 1.0 and mcq["open"] == 0.0
    assert mcq["money"] == mcq["percent"] == mcq["decimal"] == mcq["fraction"] == 0.0


def _tiny_weights() -> dict[str, Any]:
    """Two terms, two domain outputs and one auxiliary output, quantised exactly."""
    vocab = ["python", "court"]
    # Per term: domain:code, domain:legal, aux, idf^2 (quantised units; stored with an offset of 2^15).
    rows = [[200, -100, 50, 400], [-300, 300, -20, 100]]
    data = array.array("H", [v + (1 << 15) for row in rows for v in row])
    return {
        "format": WEIGHTS_FORMAT,
        "metadata": {},
        "linear": {
            "outputs": ["domain:code", "domain:legal", "aux"],
            "scales": [0.01, 0.01, 0.1],
            "bias": [0.5, -0.5, 0.0],
            "norm_scale": 0.01,
            "vocab": "\n".join(vocab),
            "weights": base64.b64encode(data.tobytes()).decode(),
        },
        "domain": {"labels": ["code", "legal"], "outputs": ["domain:code", "domain:legal"]},
        "difficulty": {
            "inputs": ["aux", "aux*choices"],
            "mean": [0.0, 0.0],
            "std": [1.0, 1.0],
            "classes": OUTCOMES,
            "coef": [[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]],
            "intercept": [0.0, 0.0, 0.0, 0.0],
        },
    }


def test_packed_layer_equals_the_float_computation() -> None:
    clf = Classifier(_tiny_weights())
    out = clf.linear_outputs("python court")
    norm = math.sqrt((400 + 100) * 0.01)
    assert out["domain:code"] == pytest.approx((200 - 300) * 0.01 / norm + 0.5)
    assert out["domain:legal"] == pytest.approx((-100 + 300) * 0.01 / norm - 0.5)
    assert out["aux"] == pytest.approx((50 - 20) * 0.1 / norm)
    only_python = clf.linear_outputs("python")
    assert only_python["aux"] == pytest.approx(50 * 0.1 / math.sqrt(4.0))


def test_unknown_text_falls_back_to_the_biases_and_difficulty_is_the_strong_win_rate() -> None:
    clf = Classifier(_tiny_weights())
    scores = clf.domain_scores("nothing known here")
    assert scores["code"] == pytest.approx(1 / (1 + math.exp(-1.0)))
    # aux = 0: the head's four logits are equal, so P(w0s1) = P(w1s0) and the win rate is one half.
    assert clf.difficulty("nothing known here") == pytest.approx(0.5)
    # aux > 0 raises P(w0s1) over P(w1s0).
    assert clf.difficulty("python") > 0.5


def test_weights_with_word_prefixes_score_the_prefix_terms() -> None:
    weights = _tiny_weights()
    weights["linear"] = {**weights["linear"], "vocab": "~pytho\ncourt", "word_prefix": 5}
    clf = Classifier(weights)
    assert clf.linear_outputs("pythonic")["aux"] == pytest.approx(50 * 0.1 / math.sqrt(4.0))
    # Weights without `word_prefix` (older files) never look prefixes up.
    assert Classifier(_tiny_weights()).linear_outputs("pythonic")["aux"] == 0.0


def test_weights_of_another_format_are_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        Classifier({**_tiny_weights(), "format": "something-else/9"})


class FixedScores:
    """A stand-in classifier with chosen scores."""

    def __init__(self, domains: dict[str, float], difficulty: float) -> None:
        self._domains, self._difficulty = domains, difficulty

    def domain_scores(self, text: str) -> dict[str, float]:
        return self._domains

    def difficulty(self, text: str) -> float:
        return self._difficulty


THRESHOLD_ROUTE = RouteSpec.model_validate(
    {
        "id": "auto",
        "default": ["small", "large"],
        "strategy": {"strategy": "threshold", "weak": "small", "strong": "large", "threshold": 0.6},
    }
)


@pytest.mark.parametrize(("difficulty", "chain"), [(0.59, ("small", "large")), (0.6, ("large", "small"))])
def test_threshold_strategy_sends_hard_prompts_to_the_strong_model(difficulty: float, chain: tuple[str, ...]) -> None:
    f = Features(chat("anything"), "t1", classifier=FixedScores({"general": 1.0}, difficulty))
    decision = decide("auto", f, snapshot(routes=[THRESHOLD_ROUTE]))
    assert decision.rule == "threshold" and decision.candidates == chain
    assert f.scores() == {"difficulty": difficulty}


def test_domain_rule_runs_before_the_threshold_strategy() -> None:
    config = snapshot(
        routes=[THRESHOLD_ROUTE],
        rules=[rule("medical", {"domain": {"in": ["medical", "legal"], "min": 0.6}}, {"targets": ["large"]})],
    )
    f = Features(chat("my knee hurts"), "t1", classifier=FixedScores({"medical": 0.7, "general": 0.3}, 0.1))
    assert decide("auto", f, config).rule == "medical"
    f = Features(chat("my knee hurts"), "t1", classifier=FixedScores({"medical": 0.5, "general": 0.5}, 0.1))
    decision = decide("auto", f, config)
    assert decision.rule == "threshold" and decision.candidates == ("small", "large")


def test_difficulty_condition_with_a_range() -> None:
    config = snapshot(rules=[rule("hard", {"difficulty": {"min": 0.4, "max": 0.9}}, {"targets": ["large"]})])
    for score, expected in ((0.5, "hard"), (0.95, "default"), (0.3, "default")):
        f = Features(chat("x"), "t1", classifier=FixedScores({}, score))
        assert decide("auto", f, config).rule == expected


def _example_decision(text: str) -> tuple[str, tuple[str, ...], list[str]]:
    doc = example_config()
    config = ConfigSnapshot.build(
        [ModelSpec.model_validate(m) for m in doc["models"]],
        [RouteSpec.model_validate(r) for r in doc["routes"]],
        [Rule.model_validate(r) for r in doc["rules"]],
    )
    f = features(text)
    decision = decide("auto", f, config)
    return decision.rule, decision.candidates, f.computed


def test_example_config_is_hybrid_keyword_rules_pay_nothing_for_ml() -> None:
    rule_id, candidates, computed = _example_decision("Why does my python script raise a KeyError?")
    assert rule_id == "code-to-haiku" and candidates[0] == "claude-haiku"
    assert "domain" not in computed and "difficulty" not in computed


def test_example_config_sends_a_greeting_to_the_cheap_model_through_the_threshold() -> None:
    rule_id, candidates, computed = _example_decision("Hello!")
    assert rule_id == "threshold" and candidates[0] == "nova-micro"
    assert "domain" in computed and "difficulty" in computed


def test_example_config_sends_a_medical_question_to_the_specialist_rule() -> None:
    text = (
        "A 45-year-old man presents with crushing chest pain, diaphoresis and ST elevation in leads II, III and aVF. "
        "Which coronary artery is most likely occluded?"
    )
    rule_id, candidates, _ = _example_decision(text)
    assert rule_id == "medical-legal-to-sonnet" and candidates[0] == "claude-sonnet"


def test_threshold_fallbacks_follow_the_route_default_order() -> None:
    route = RouteSpec.model_validate(
        {
            "id": "auto",
            "default": ["small", "mid", "large"],
            "strategy": {"strategy": "threshold", "weak": "small", "strong": "large", "threshold": 0.5},
        }
    )
    chains = []
    for score in (0.2, 0.8):
        f = Features(chat("anything"), "t1", classifier=FixedScores({}, score))
        chains.append(decide("auto", f, snapshot(routes=[route])).candidates)
    assert chains == [("small", "mid", "large"), ("large", "small", "mid")]
