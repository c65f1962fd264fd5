"""Keyword and regex rules are ruled out by cheap checks before any text scan; outcomes must equal the pattern's."""

from __future__ import annotations

import pytest

from llm_router.routing.conditions import evaluate
from llm_router.schemas.rules import Condition, required_literals
from tests.helpers import features

KEYWORDS = [
    ["python"],
    ["stack trace", "traceback"],
    ["c++", "c#"],
    ["project-7", "sku0042"],
    ["__init__"],
    ["3.14"],
    ["=>"],
    ["Straße"],
    ["kubernetes helm chart"],
]
TEXTS = [
    "Is PYTHON fast?",
    "a pythonic idea",
    "here is the stack\n  trace",
    "stack of traces",
    "I write C++ and c# daily",
    "c plus plus",
    "see PROJECT-7 and sku0042.",
    "project-77 and sku00421",
    "def __init__(self):",
    "pi is 3.14159",
    "pi is 3.14",
    "x => y",
    "in der Straße",
    "in der STRASSE",
    "Kubernetes   Helm\tChart values",
    "helm chart for kubernetes",
    "İstanbul python",
    "",
]


@pytest.mark.parametrize("keywords", KEYWORDS, ids=lambda k: ",".join(k))
def test_word_set_check_gives_the_same_outcome_as_the_pattern(keywords: list[str]) -> None:
    condition = Condition(keywords=tuple(keywords))
    assert condition.keyword_pattern is not None
    for text in TEXTS:
        expected = condition.keyword_pattern.search(text) is not None

        matched, _ = evaluate(condition, features(text or " "))

        assert matched is expected, (keywords, text)


def test_keywords_without_word_characters_or_beyond_ascii_are_left_to_the_pattern() -> None:
    assert Condition(keywords=("=>",)).keyword_words is None
    assert Condition(keywords=("Straße",)).keyword_words is None
    assert Condition(keywords=("stack trace", "c++")).keyword_words == (
        frozenset({"stack", "trace"}),
        frozenset({"c"}),
    )


def test_text_beyond_ascii_has_no_word_set() -> None:
    assert features("İstanbul").words is None
    assert features("Hello, World_2!").words == frozenset({"hello", "world_2"})


REGEXES = [
    r"def \w+\(|```|=>|\bimport \w+",
    r"\b(?:ORD|TCK)-002\d{4}\b",
    r"(?i)traceback",
    r"ab|ac",
    r"a?bc",
    r"x(?=abc)yz",
    r"\d{3}-\d{4}",
    r"(foo|bar)baz",
    r"^hello$",
    r"(?i:abc)d",
]
REGEX_TEXTS = [
    "def main(): pass",
    "import os",
    "a => b",
    "see ORD-0021234 and TCK-0029999",
    "ord-0021234",
    "TRACEBACK (most recent call last)",
    "ac",
    "bc",
    "xabcyz",
    "xyz",
    "call 555-1234",
    "barbaz",
    "hello",
    "ABCd",
    "abcD",
    "nothing here",
]


@pytest.mark.parametrize("regex", REGEXES)
def test_required_literal_check_gives_the_same_outcome_as_the_regex(regex: str) -> None:
    condition = Condition(regex=regex)
    assert condition.regex_pattern is not None
    for text in REGEX_TEXTS:
        expected = condition.regex_pattern.search(text) is not None

        matched, _ = evaluate(condition, features(text))

        assert matched is expected, (regex, text)


def test_required_literals_are_read_from_the_pattern() -> None:
    assert required_literals(r"def \w+\(|```|=>|\bimport \w+") == ("def ", "```", "=>", "import ")
    assert required_literals(r"\b(?:ORD|TCK)-002\d{4}\b") == ("-002",)
    assert required_literals(r"(?i)abc") is None
    assert required_literals(r"\d+|abc") is None
