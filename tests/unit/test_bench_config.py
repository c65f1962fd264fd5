"""The benchmark's 200-rule config stays valid and in step with its generator as the schemas evolve."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import yaml

from llm_router.routing.engine import decide
from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.schemas.rules import Rule
from llm_router.stores.config_admin import validate_document

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _workload() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_workload", BENCH / "workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_config_is_a_valid_config_with_200_rules() -> None:
    config = validate_document(_workload().rules_config())

    assert config.ok, config.errors
    assert len(config.entries["rule"]) == 200


def test_checked_in_bench_config_matches_its_generator() -> None:
    workload = _workload()

    assert yaml.safe_load(workload.CONFIG_PATH.read_text()) == workload.rules_config()


def test_bench_messages_go_past_at_least_197_rules_before_a_decision() -> None:
    workload = _workload()
    doc = workload.rules_config()
    snapshot = ConfigSnapshot.build(
        [ModelSpec.model_validate(m) for m in doc["models"]],
        [RouteSpec.model_validate(r) for r in doc["routes"]],
        [Rule.model_validate(r) for r in doc["rules"]],
    )
    decided, served = {}, {}

    for index, (name, _) in enumerate(workload.MESSAGES):
        request = ChatCompletionRequest.model_validate(workload.chat_body(index))
        decision = decide(request.model, Features(request, workload.TENANT), snapshot, explain=True)
        decided[name] = (decision.rule, sum(1 for step in decision.trace if not step.matched))
        fast = decide(request.model, Features(request, workload.TENANT), snapshot)
        served[name] = (fast.rule, len(fast.trace))

    assert decided == {
        "short": ("default", 200),
        "system+question": ("default", 200),
        "code": ("code-to-code-model", 197),
        "long": ("long-to-strong", 198),
    }
    # Serving decides the same, evaluating only the rules the index could not rule out (the PII rule, the
    # rules a word of the message points at, the decisive rule), plus the default step.
    assert {name: rule for name, (rule, _) in served.items()} == {name: r for name, (r, _) in decided.items()}
    assert all(steps <= 5 for _, steps in served.values()), served
