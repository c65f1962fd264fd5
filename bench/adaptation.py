"""What deciding with a route's adaptation costs at serve time, against the shipped score alone.

Each request gets fresh features (as a live request does) and one `decide` on a route whose threshold strategy uses
the shipped difficulty, then on the same route with an active adaptation of every feature `fit` may use. Pure
routing, no I/O: `.venv/bin/python bench/adaptation.py` (reports, never fails on timing).
"""

from __future__ import annotations

import gc
import random
import time

from llm_router.ml.adapt import ADJUSTED_FEATURES
from llm_router.routing.adaptation import Adaptation
from llm_router.routing.classifier import default_classifier
from llm_router.routing.engine import decide
from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.openai import ChatCompletionRequest

REQUESTS = 3000
ROUNDS = 3
MODELS = [{"pk": "model", "sk": m, "provider": "simulated", "model_id": m} for m in ("small", "large")]
ROUTE = {
    "pk": "route",
    "sk": "auto",
    "default": ["small", "large"],
    "strategy": {"strategy": "threshold", "weak": "small", "strong": "large", "threshold": 0.5},
}


def _snapshots(rng: random.Random) -> tuple[ConfigSnapshot, ConfigSnapshot]:
    coef = {name: rng.uniform(-0.5, 0.5) for name in ADJUSTED_FEATURES}
    adaptation = Adaptation("auto", "small", "large", "v1", 0.5, 0.1, coef, 0.9, {})
    items = [
        {"pk": "adaptation", "sk": "auto#v1", **adaptation.to_dict()},
        {"pk": "adaptation", "sk": "auto", "active": "v1"},
    ]
    shipped = ConfigSnapshot.from_items({"model": MODELS, "route": [ROUTE]})
    adapted = ConfigSnapshot.from_items({"model": MODELS, "route": [ROUTE], "adaptation": items})
    assert adapted.adaptations, adapted.invalid
    return shipped, adapted


def _requests(rng: random.Random) -> list[ChatCompletionRequest]:
    words = "the of a model answer question explain step result check value number table".split()
    out = []
    for i in range(REQUESTS):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 120)))
        text += f" What is {rng.randint(1, 10**6)} times {rng.randint(1, 999)}?"
        out.append(
            ChatCompletionRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": text}]})
        )
        if i % 7 == 0:
            out[-1] = ChatCompletionRequest.model_validate(
                {"model": "auto", "messages": [{"role": "user", "content": text * 10}]}
            )
    return out


def _timings(requests: list[ChatCompletionRequest], config: ConfigSnapshot, classifier: object) -> list[float]:
    times = []
    for request in requests:
        start = time.perf_counter()
        decide("auto", Features(request, "t", classifier=classifier), config)
        times.append(time.perf_counter() - start)
    return sorted(times)


def main() -> None:
    rng = random.Random(0)
    classifier = default_classifier()
    if classifier is None:
        raise SystemExit("no classifier weights installed")
    shipped, adapted = _snapshots(rng)
    requests = _requests(rng)
    gc.disable()
    results: dict[str, list[float]] = {"shipped": [], "adapted": []}
    for _ in range(ROUNDS):
        for name, config in (("shipped", shipped), ("adapted", adapted)):
            results[name] += _timings(requests, config, classifier)
    gc.enable()
    print(f"{REQUESTS} requests x {ROUNDS} rounds, one decide() each (features computed per request)")
    for name, times in results.items():
        times.sort()
        p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
        print(f"{name:8} p50 {p50 * 1e6:7.1f} us   p99 {p99 * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
