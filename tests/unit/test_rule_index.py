"""The rule index only rules out rules that cannot match: serving decides exactly as evaluating every rule."""

from __future__ import annotations

import random
from typing import Any

import pytest

from llm_router.routing.conditions import Condition, guard_of
from llm_router.routing.engine import decide
from llm_router.routing.features import Features
from llm_router.routing.index import RuleIndex
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.schemas.rules import Rule

WORDS = ["refund", "mortgage", "python", "error", "region", "invoice", "prove", "déjà", "vu", "café", "stack", "trace"]
TENANTS = ["acme", "globex", "initech"]
TEAMS = ["search", "ads", "mobile"]


def _condition(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    kind = rng.choice(["keywords", "regex", "tenant", "metadata", "flag", "chars", "pii", "not", "all", "any", "empty"])
    if depth >= 2 and kind in ("not", "all", "any"):
        kind = "keywords"
    if kind == "keywords":
        keywords = [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.3:
            keywords.append(f"{rng.choice(WORDS)} {rng.choice(WORDS)}")  # a phrase
        if rng.random() < 0.2:
            keywords.append(f"{rng.choice(WORDS)}-{rng.randint(1, 3)}")
        return {"keywords": keywords}
    if kind == "regex":
        return {"regex": rng.choice([r"\b(?:ORD|TCK)-\d{3}\b", r"def \w+\(", r"ERR-[0-9]+", r"(?i)urgent", r"\d{4}"])}
    if kind == "tenant":
        return {"tenant": rng.sample(TENANTS, rng.randint(1, 2))}
    if kind == "metadata":
        return {"metadata": {"team": rng.choice([rng.choice(TEAMS), rng.sample(TEAMS, 2)])}}
    if kind == "flag":
        return {rng.choice(["has_tools", "has_images"]): rng.random() < 0.5}
    if kind == "chars":
        return {rng.choice(["min_chars", "max_chars"]): rng.randint(5, 60)}
    if kind == "pii":
        return {"pii": rng.random() < 0.5}
    if kind == "not":
        return {"not": _condition(rng, depth + 1)}
    if kind in ("all", "any"):
        return {kind: [_condition(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    return {}


def _prompt(rng: random.Random) -> dict[str, Any]:
    words = [
        rng.choice([*WORDS, "hello", "ORD-123", "ERR-42", "URGENT", "def f(", "mail me at a@b.io"]) for _ in range(6)
    ]
    separator = rng.choice([" ", "-", ", ", "\n"])
    messages: list[dict[str, Any]] = [{"role": "user", "content": separator.join(words)}]
    if rng.random() < 0.2:
        messages[0]["content"] = [
            {"type": "text", "text": messages[0]["content"]},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
    body: dict[str, Any] = {"model": "auto", "messages": messages}
    if rng.random() < 0.3:
        body["metadata"] = {"team": rng.choice(TEAMS)}
    if rng.random() < 0.2:
        body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    return body


def _snapshot(rules: list[dict[str, Any]]) -> ConfigSnapshot:
    models = [ModelSpec(id=m, provider="simulated", model_id=m, capabilities=("tools", "images")) for m in "ab"]
    return ConfigSnapshot.build(models, [RouteSpec(id="auto", default=("a",))], [Rule.model_validate(r) for r in rules])


@pytest.mark.parametrize("seed", range(40))
def test_serving_decides_as_the_full_evaluation_on_generated_rules_and_prompts(seed: int) -> None:
    rng = random.Random(seed)
    rules = [
        {
            "id": f"r{i:02d}",
            "route": "auto",
            "priority": rng.randint(1, 20),
            "enabled": rng.random() > 0.1,
            "when": _condition(rng),
            "then": {"targets": [rng.choice("ab")]},
        }
        for i in range(30)
    ]
    config = _snapshot(rules)
    for _ in range(25):
        request = ChatCompletionRequest.model_validate(_prompt(rng))
        tenant = rng.choice(TENANTS)
        full = decide("auto", Features(request, tenant), config, explain=True)
        served = decide("auto", Features(request, tenant), config)
        assert (served.rule, served.candidates) == (full.rule, full.candidates), (request, tenant)
        assert len(served.trace) <= len(full.trace)


def test_keyword_rules_are_found_by_one_word_of_each_keyword() -> None:
    config = _snapshot(
        [
            {
                "id": "loans",
                "priority": 1,
                "when": {"keywords": ["mortgage rate", "escrow"]},
                "then": {"targets": ["b"]},
            },
            {"id": "other", "priority": 2, "when": {"keywords": ["invoice"]}, "then": {"targets": ["b"]}},
        ]
    )
    index = config.index_for("auto")

    def candidates(text: str) -> list[str]:
        request = ChatCompletionRequest.model_validate(
            {"model": "auto", "messages": [{"role": "user", "content": text}]}
        )
        return [index.rules[p].id for p in index.candidates(Features(request, "acme"))]

    assert candidates("What is the escrow for my MORTGAGE?") == ["loans"]
    assert candidates("Hello there") == []
    # Non-ASCII text: words are not split, so every keyword rule stays a candidate (the patterns decide).
    assert candidates("Café: where is my invoice?") == ["loans", "other"]


def test_guards_of_each_condition_kind() -> None:
    def guard(when: dict[str, Any]) -> Any:
        return guard_of(Condition.model_validate(when))

    assert guard({"tenant": ["acme", "globex"]}) == {("tenant", "acme"), ("tenant", "globex")}
    assert guard({"metadata": {"team": ["ads", "search"]}}) == {("meta", "team", "ads"), ("meta", "team", "search")}
    assert guard({"has_tools": True}) == {("flag", "has_tools", True)}
    assert guard({"regex": r"\bORD-\d+"}) == {("lit", "ORD-")}
    # A look-up beats a substring scan: the tenant guards this rule, not its regex.
    assert guard({"all": [{"regex": "ORD-"}, {"tenant": "acme"}]}) == {("tenant", "acme")}
    assert guard({"any": [{"has_images": True}, {"keywords": ["refund"]}]}) == {
        ("flag", "has_images", True),
        ("word", "refund"),
    }
    # A part without a guard leaves `any` without one; `not`, PII, lengths and empty conditions have none.
    assert guard({"any": [{"pii": True}, {"keywords": ["refund"]}]}) is None
    for when in ({"not": {"keywords": ["refund"]}}, {"pii": True}, {"min_chars": 10}, {}, {"regex": "(?i)urgent"}):
        assert guard(when) is None, when


def test_a_word_many_rules_share_does_not_stand_for_a_keyword() -> None:
    rules = [
        Rule.model_validate({"id": f"r{i}", "when": {"keywords": [f"region-{i}"]}, "then": {"targets": ["a"]}})
        for i in range(5)
    ]
    index = RuleIndex.build(rules)

    assert set(index.by_word) == {str(i) for i in range(5)}
