"""Keyword and regex rules are ruled out by cheap checks before any text scan; outcomes must equal the pattern's."""

from __future__ import annotations

import random
import re

import pytest

from llm_router.routing.conditions import Condition, evaluate
from llm_router.routing.conditions.text import Keywords
from llm_router.routing.regex_literals import required_literals
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
    condition = Condition.model_validate({"keywords": keywords})
    pattern = Keywords.model_validate(keywords).pattern
    for text in TEXTS:
        expected = pattern.search(text) is not None

        matched, _ = evaluate(condition, features(text or " "))

        assert matched is expected, (keywords, text)


def test_keywords_without_word_characters_or_beyond_ascii_are_left_to_the_pattern() -> None:
    assert Keywords.model_validate(["=>"]).words is None
    assert Keywords.model_validate(["Straße"]).words is None
    assert Keywords.model_validate(["stack trace", "c++"]).words == (
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
    condition = Condition.model_validate({"regex": regex})
    for text in REGEX_TEXTS:
        expected = re.search(regex, text) is not None

        matched, _ = evaluate(condition, features(text))

        assert matched is expected, (regex, text)


def test_required_literals_are_read_from_the_pattern() -> None:
    assert required_literals(r"def \w+\(|```|=>|\bimport \w+") == ("def ", "```", "=>", "import ")
    assert required_literals(r"\b(?:ORD|TCK)-002\d{4}\b") == ("-002",)
    assert required_literals(r"(?i)abc") is None
    assert required_literals(r"\d+|abc") is None


@pytest.mark.parametrize(
    "pattern",
    [r"(?x) a b c", r"abc(?i)", r"\x41BC", r"\N{EM DASH}", r"[abc]+", r"a*", r".", r"(?:abc)?"],
)
def test_no_literal_is_named_where_the_parser_cannot_be_sure(pattern: str) -> None:
    assert required_literals(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        (r"a{2}b", ("b",)),  # a quantified character is not a literal, nor is its count
        (r"ab\.c\(", ("ab.c(",)),
        (r"[]x|]yz", ("yz",)),  # a `]` first in a class, and a `|` inside one, belong to the class
        (r"(a|b)cd|ef", ("cd", "ef")),
        (r"x\N{EM DASH}yz", ("yz",)),
        (r"ab+cd", ("cd",)),
        (r"abc+?d", ("ab",)),
    ],
)
def test_literals_of_escapes_classes_groups_and_quantifiers(pattern: str, literals: tuple[str, ...]) -> None:
    assert required_literals(pattern) == literals


# Pieces of generated patterns: plain characters, escapes, classes, groups, anchors and quantifiers.
PIECES = ["a", "b", "c", "-", "ab", "\\.", "\\d", "\\w", "\\b", "[ab]", "[^c]", "(a|bc)", "(?:b)", "(?=a)", ".", "^"]
QUANTIFIERS = ["", "", "", "?", "*", "+", "{2}", "{1,2}", "??"]


def _pattern(rng: random.Random) -> str:
    branches = [
        "".join(rng.choice(PIECES) + rng.choice(QUANTIFIERS) for _ in range(rng.randint(1, 5)))
        for _ in range(rng.choice([1, 1, 2, 3]))
    ]
    return "|".join(branches)


@pytest.mark.parametrize("seed", range(20))
def test_every_match_of_a_generated_pattern_contains_a_required_literal(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        pattern = _pattern(rng)
        try:
            compiled = re.compile(pattern)
        except re.error:
            continue  # such as a quantified anchor; rules with these never validate
        literals = required_literals(pattern)
        if literals is None:
            continue
        for _ in range(40):
            text = "".join(rng.choice("abc-.1 x") for _ in range(rng.randint(0, 12)))
            match = compiled.search(text)
            if match:
                assert any(literal in match.group() for literal in literals), (pattern, text, literals)
