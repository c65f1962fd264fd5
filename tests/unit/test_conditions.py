"""Rule conditions: each kind, the combinators, and the reasons they give."""

from __future__ import annotations

from typing import Any

import pytest

from llm_router.routing.conditions import Condition, evaluate
from tests.helpers import features


def matches(when: dict[str, Any], content: str = "Hello!", **extra: Any) -> bool:
    return evaluate(Condition.model_validate(when), features(content, **extra))[0]


def test_keywords_match_whole_words_case_insensitively() -> None:
    assert matches({"keywords": ["python"]}, "Is PYTHON fast?")
    assert not matches({"keywords": ["python"]}, "a pythonic idea")
    assert not matches({"keywords": ["sql"]}, "sqlite only")


def test_keyword_phrases_allow_any_whitespace() -> None:
    assert matches({"keywords": ["stack trace"]}, "here is the stack\n  trace")
    assert not matches({"keywords": ["stack trace"]}, "stack of traces")


def test_regex_and_length_conditions() -> None:
    assert matches({"regex": r"def \w+\("}, "def main(): pass")
    assert matches({"min_chars": 5, "max_chars": 10}, "123456")
    assert not matches({"max_chars": 3}, "123456")
    assert matches({"min_tokens": 100}, "word " * 200)
    assert not matches({"max_tokens": 10}, "word " * 200)


def test_metadata_tenant_tools_and_images() -> None:
    assert matches({"metadata": {"team": ["search", "ads"]}}, metadata={"team": "ads"})
    assert not matches({"metadata": {"team": "search"}}, metadata={"team": "ads"})
    assert not matches({"metadata": {"team": "search"}})
    assert matches({"tenant": ["t1", "t2"]})
    assert not matches({"tenant": "other"})
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert matches({"has_tools": True}, tools=tools)
    assert not matches({"has_tools": True}, tools=tools, tool_choice="none")
    assert matches({"has_images": False})


def test_pii_condition_with_and_without_kinds() -> None:
    assert matches({"pii": True}, "mail a@b.io")
    assert matches({"pii": ["email"]}, "mail a@b.io")
    assert not matches({"pii": ["iban", "credit_card"]}, "mail a@b.io")
    assert matches({"pii": False}, "nothing personal here")


def test_combinators() -> None:
    assert matches({"any": [{"keywords": ["rust"]}, {"keywords": ["hello"]}]})
    assert not matches({"all": [{"keywords": ["hello"]}, {"keywords": ["rust"]}]})
    assert matches({"not": {"keywords": ["rust"]}})
    assert matches({"all": [{"any": [{"keywords": ["x"]}, {"min_chars": 1}]}, {"not": {"pii": True}}]})


def test_keys_in_one_condition_all_have_to_hold() -> None:
    assert matches({"keywords": ["hello"], "max_chars": 100})
    assert not matches({"keywords": ["hello"], "min_chars": 100})


def test_empty_condition_always_matches() -> None:
    ok, why = evaluate(Condition(), features())
    assert ok and "always" in why


def test_cheap_checks_run_before_pii_scanning() -> None:
    f = features("mail a@b.io", tenant="t1")
    ok, _ = evaluate(Condition.model_validate({"tenant": "other", "pii": True}), f)
    assert not ok
    assert f.computed == []


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ({"keywords": ["python"]}, "keyword 'Python' found"),
        ({"keywords": ["rust"]}, "none of the keywords ['rust'] found"),
        ({"pii": True}, "no PII found"),
    ],
)
def test_reasons_are_readable(when: dict[str, Any], reason: str) -> None:
    assert evaluate(Condition.model_validate(when), features("Python question"))[1] == reason
