"""Referential integrity of the configuration: files, single-item edits and deletes, `rules list`, run time."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_router.cli.main import main as cli
from llm_router.local.runtime import example_config
from llm_router.stores.config_admin import validate_document
from tests.helpers import header
from tests.integration.conftest import Router

GREETING = {
    "id": "greetings-to-sonnet",
    "route": "auto",
    "priority": 1,
    "when": {"keywords": ["hello"]},
    "then": {"targets": ["claude-sonnet"]},
}


def with_rule(**rule: Any) -> dict[str, Any]:
    doc = copy.deepcopy(example_config())
    doc["rules"].append({**GREETING, **rule})
    return doc


def errors_of(doc: dict[str, Any]) -> list[str]:
    return validate_document(doc).errors


def test_the_example_config_is_valid() -> None:
    assert errors_of(example_config()) == []


def test_a_rule_naming_a_missing_route_is_refused() -> None:
    assert errors_of(with_rule(route="autp")) == [
        "rule greetings-to-sonnet: unknown route 'autp' (the rule would never be used)"
    ]


def test_priority_ties_within_a_route_are_refused() -> None:
    tie = errors_of(with_rule(priority=10))  # code-to-haiku has priority 10 on auto
    assert len(tie) == 1 and "ties with rule code-to-haiku" in tie[0] and tie[0].startswith("rule greetings")
    assert len(errors_of(with_rule(priority=10, route=None))) == 1  # a rule of every route ties with each
    assert errors_of(with_rule(priority=10, enabled=False)) == []  # a disabled rule is never evaluated
    assert errors_of(with_rule(priority=11)) == []


def test_regions_that_exclude_every_target_are_refused() -> None:
    errors = errors_of(with_rule(regions=["ap-*"]))
    assert len(errors) == 1 and "exclude every target (claude-sonnet)" in errors[0]
    assert errors_of(with_rule(regions=["us-*"])) == []
    split = {"split": [{"targets": ["eu-nova-lite"], "weight": 1}, {"targets": ["claude-sonnet"], "weight": 1}]}
    errors = errors_of(with_rule(regions=["eu-*"], then=split))
    assert len(errors) == 1 and "(claude-sonnet)" in errors[0]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_deleting_a_model_or_route_in_use_is_refused_unless_forced(
    router: Router, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = run(["routes", "delete", "auto"], capsys)
    assert code != 0 and "route auto is in use" in out and "rule code-to-haiku" in out
    assert router.admin.get("route", "auto") is not None

    code, out = run(["models", "delete", "claude-haiku"], capsys)
    assert code != 0 and "route auto" in out and "rule code-to-haiku" in out
    assert router.admin.get("model", "claude-haiku") is not None

    code, out = run(["routes", "delete", "auto", "--force"], capsys)
    assert code == 0 and "now invalid: rule code-to-haiku: unknown route 'auto'" in out
    assert router.admin.get("route", "auto") is None

    exported = tmp_path / "config.yaml"
    assert run(["config", "export", str(exported)], capsys)[0] == 0
    code, out = run(["config", "validate", str(exported)], capsys)
    assert code == 1 and "unknown route 'auto'" in out


def test_a_model_nobody_uses_is_deleted(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    spare = router.admin.get("model", "nova-micro")
    assert spare is not None
    router.admin.put_raw("model", {**spare, "id": "spare"})
    code, out = run(["models", "delete", "spare"], capsys)
    assert code == 0, out
    assert router.admin.get("model", "spare") is None


def test_put_refuses_an_item_that_breaks_the_table(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["rules", "put", json.dumps({**GREETING, "priority": 10})], capsys)
    assert code != 0 and "ties with rule code-to-haiku" in out
    code, out = run(["rules", "put", json.dumps({**GREETING, "route": "nowhere"})], capsys)
    assert code != 0 and "unknown route 'nowhere'" in out
    code, out = run(["rules", "put", json.dumps({**GREETING, "regions": ["ap-*"]})], capsys)
    assert code != 0 and "exclude every target" in out
    # A model moved out of the region its rule requires breaks that rule.
    eu = router.admin.get("model", "eu-nova-lite")
    assert eu is not None
    code, out = run(["models", "put", json.dumps({**eu, "region": "us-east-1"})], capsys)
    assert code != 0 and "rule pii-stays-in-eu" in out
    assert router.admin.get("rule", GREETING["id"]) is None
    code, out = run(["rules", "put", json.dumps(GREETING)], capsys)
    assert code == 0, out


def test_config_import_refuses_integrity_errors(
    router: Router, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(with_rule(route="autp")))
    code, out = run(["config", "import", str(path)], capsys)
    assert code != 0 and "unknown route 'autp'" in out
    assert router.admin.get("rule", GREETING["id"]) is None


def test_rules_list_marks_broken_rules_invalid(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    router.admin.put_raw("rule", {**GREETING, "route": "nowhere"})
    router.admin.put_raw("rule", {"id": "typo", "priority": 2, "when": {"keywrds": ["x"]}, "then": {}})
    code, out = run(["rules", "list"], capsys)
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}

    assert code == 0
    assert "INVALID: unknown route 'nowhere'" in lines["greetings-to-sonnet"]
    assert "INVALID" in lines["typo"] and "True" not in lines["typo"]
    assert "INVALID" not in lines["code-to-haiku"] and lines["code-to-haiku"].rstrip().endswith("ok")


def test_an_item_edited_into_an_invalid_state_keeps_its_last_valid_version(router: Router) -> None:
    router.admin.put_raw("rule", GREETING)
    assert header(router.chat("Hello!"), "x-router-rule") == "greetings-to-sonnet"
    router.admin.put_raw("rule", {**GREETING, "when": {"keywrds": ["hello"]}})  # a typo in an edit

    response = router.chat("Hello!")

    assert header(response, "x-router-rule") == "greetings-to-sonnet"
    assert header(response, "x-router-model") == "claude-sonnet"
    assert router.metric_values("InvalidConfigItems") == [1.0]
