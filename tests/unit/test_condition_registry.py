"""Every condition type is one registered unit: schema, evaluation and index guard, reachable by its key."""

from __future__ import annotations

import pkgutil
from typing import Any

import pytest
from pydantic import ValidationError

import llm_router.routing.conditions as conditions_package
from llm_router.routing.conditions import CONDITION_TYPES, Condition, ConditionType, Cost, evaluate, guard_of, register
from llm_router.schemas.records import dump_entry
from llm_router.schemas.rules import Rule
from tests.helpers import features

# The keys rules in config files use today: none may disappear.
DOCUMENTED_KEYS = {
    "keywords",
    "regex",
    "min_chars",
    "max_chars",
    "min_tokens",
    "max_tokens",
    "metadata",
    "tenant",
    "has_tools",
    "has_images",
    "pii",
    "domain",
    "classifier",
    "difficulty",
    "all",
    "any",
    "not",
}


def test_every_documented_key_is_registered() -> None:
    assert set(CONDITION_TYPES) == DOCUMENTED_KEYS


def test_every_family_module_registers_a_condition() -> None:
    families = {m.name for m in pkgutil.iter_modules(conditions_package.__path__)} - {"registry"}
    registered_by = {t.evaluate.__module__.rsplit(".", 1)[-1] for t in CONDITION_TYPES.values()}

    assert registered_by == families


@pytest.mark.parametrize("key", sorted(CONDITION_TYPES))
def test_each_type_validates_evaluates_guards_and_round_trips_its_example(key: str) -> None:
    condition_type = CONDITION_TYPES[key]
    assert condition_type.key == key
    assert callable(condition_type.evaluate) and callable(condition_type.guard)

    condition = Condition.model_validate({key: condition_type.example})
    ok, why = evaluate(condition, features("I need a refund for order ORD-123456", tools=None))
    guard = guard_of(condition)

    assert isinstance(ok, bool) and why
    assert guard is None or (isinstance(guard, frozenset) and guard)
    assert condition.model_dump(mode="json", by_alias=True, exclude_defaults=True) == {key: condition_type.example}
    assert Condition.model_validate(condition.model_dump(mode="json", by_alias=True)) == condition


def test_an_unknown_condition_key_is_a_validation_error_naming_it() -> None:
    with pytest.raises(ValidationError) as info:
        Rule.model_validate({"id": "r", "when": {"keywrds": ["refund"]}, "then": {"targets": ["a"]}})

    (error,) = info.value.errors()
    assert error["loc"] == ("when", "keywrds")
    assert "unknown condition 'keywrds'" in error["msg"]


def test_an_unknown_key_inside_a_combinator_is_located_where_it_is() -> None:
    with pytest.raises(ValidationError) as info:
        Condition.model_validate({"any": [{"keywords": ["a"]}, {"not": {"tenants": "acme"}}]})

    assert [e["loc"] for e in info.value.errors()] == [("any", 1, "not", "tenants")]


def test_an_invalid_value_is_located_under_its_key() -> None:
    with pytest.raises(ValidationError) as info:
        Condition.model_validate({"min_chars": -1, "domain": {"in": []}})

    assert [e["loc"] for e in info.value.errors()] == [("min_chars",), ("domain", "in")]


def test_checks_run_cheapest_first_whatever_order_they_are_written_in() -> None:
    condition = Condition.model_validate({"pii": True, "keywords": ["a"], "min_chars": 1, "tenant": "t1"})

    assert [part.type.key for part in condition.parts] == ["tenant", "min_chars", "keywords", "pii"]
    costs = [part.type.cost for part in condition.parts]
    assert costs == sorted(costs)


def test_a_rule_is_dumped_in_the_config_file_shape() -> None:
    rule = Rule.model_validate(
        {
            "id": "r",
            "when": {"not": {"pii": True}, "domain": {"in": ["code"]}, "all": [{"regex": "ORD-"}]},
            "then": {"targets": ["a"]},
        }
    )

    assert dump_entry(rule) == {
        "id": "r",
        "when": {"all": [{"regex": "ORD-"}], "not": {"pii": True}, "domain": {"in": ["code"]}},
        "then": {"targets": ["a"]},
    }
    assert "when" not in dump_entry(Rule.model_validate({"id": "r", "then": {"targets": ["a"]}}))


def test_a_key_is_registered_once() -> None:
    def never(value: Any, f: Any) -> tuple[bool, str]:
        return False, "never"

    with pytest.raises(ValueError, match="registered twice"):
        register(ConditionType("tenant", str, Cost.LOOKUP, never, lambda v, r: None, example="x"))
