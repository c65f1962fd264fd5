"""Judged outcomes of a route, as shadow evaluation leaves them: arithmetic the weak model usually gets wrong (the
shipped classifier calls it easy) and poems both models write equally well."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from llm_router.routing.adaptation import outcome_features
from llm_router.routing.classifier import default_classifier
from llm_router.stores.outcome_store import OutcomeRecord, OutcomeStore

WEAK, STRONG = "nova-micro", "claude-sonnet"
WORDS = ("cat", "river", "autumn", "city", "friendship", "ocean", "mountain", "coffee", "train", "garden")
# The shipped classifier scores this arithmetic as easy (below the example threshold 0.58); the outcomes say otherwise.
ARITHMETIC = "Compute 123456 * 789 + 12, then divide by 7."


def prompts(n: int, rng: random.Random) -> Iterator[tuple[str, bool]]:
    """(prompt, whether the weak model tends to fail it)."""
    for i in range(n):
        if i % 2:
            a, b, c, d = rng.randint(1000, 99999), rng.randint(100, 9999), rng.randint(10, 999), rng.randint(2, 97)
            yield f"Compute {a} * {b} + {c}, then divide by {d}.", True
        else:
            yield f"Write a short poem about the {rng.choice(WORDS)} and the {rng.choice(WORDS)}.", False


def seed_outcomes(dynamodb: Any, state_table: str, route: str, n: int, *, seed: int = 1) -> None:
    """`n` judged outcome records of `route` in the last hour."""
    classifier = default_classifier()
    assert classifier is not None
    store = OutcomeStore(state_table, dynamodb=dynamodb)
    rng = random.Random(seed)
    now = time.time()
    for i, (text, hard) in enumerate(prompts(n, rng)):
        weak_score = 0.0 if hard and rng.random() < 0.8 else 1.0
        store.put(
            OutcomeRecord(
                request_id=f"req-{seed}-{i}",
                tenant="local",
                route=route,
                rule="threshold",
                model=WEAK,
                cost_usd=0.0001,
                created_at=now - 3600 + i,
                features=outcome_features(text, classifier),
                shadow={"scores": {WEAK: weak_score, STRONG: 1.0}, "costs": {STRONG: 0.002}},
            )
        )
