"""Conditions on the text of the request's messages: `keywords` and `regex`.

Both are ruled out by cheap checks before any scan, since most rules fail: a keyword matches only a text that
contains each of its words, and a regex only a text that contains one of its required literals. The same facts
are their index guards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from pydantic import ConfigDict, RootModel, field_validator

from llm_router.routing.conditions.registry import ConditionType, Cost, Guard, Rank, Result, register
from llm_router.routing.regex_literals import required_literals
from llm_router.routing.regex_safety import unsafe_reason

if TYPE_CHECKING:
    from llm_router.routing.features import Features  # annotations only: conditions load no request model

# A word as keyword patterns delimit it (`\w` runs); used to rule keywords out before scanning a text.
WORD = re.compile(r"\w+")


class Keywords(RootModel[tuple[str, ...]]):
    """Words or phrases, matched whole and case-insensitively; phrases allow any whitespace between words."""

    model_config = ConfigDict(frozen=True)

    @field_validator("root")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not k.strip() for k in value):
            raise ValueError("keywords must be a non-empty list of non-empty strings")
        return value

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """One case-insensitive pattern for all keywords, matching whole words and phrases only."""
        alternatives = "|".join(r"\s+".join(re.escape(w) for w in k.split()) for k in self.root)
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

    @cached_property
    def words(self) -> tuple[frozenset[str], ...] | None:
        """Per keyword, its lower-case words: a keyword can only match a text that contains every one of them.

        None when a keyword is not plain ASCII or has no word characters; then only `pattern` decides.
        """
        words = tuple(frozenset(WORD.findall(k.lower())) for k in self.root)
        if not all(k.isascii() for k in self.root) or not all(words):
            return None
        return words


class Regex(RootModel[str]):
    """A regular expression searched for in the text (case-sensitive unless it says `(?i)`)."""

    model_config = ConfigDict(frozen=True)

    @field_validator("root")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from None
        reason = unsafe_reason(value)
        if reason is not None:
            raise ValueError(
                f"regex can backtrack catastrophically ({reason}); rewrite it without that shape, e.g. a single "
                "character class under the quantifier, or an atomic group (?>...)"
            )
        return value

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.root)

    @cached_property
    def literals(self) -> tuple[str, ...] | None:
        """Strings of which a match contains at least one (see `required_literals`)."""
        return required_literals(self.root)


# Most rules fail, each with the same reason every time: formatted once per rule, not once per request.
@lru_cache(maxsize=4096)
def _no_keyword(keywords: tuple[str, ...]) -> str:
    return f"none of the keywords {list(keywords)} found"


@lru_cache(maxsize=4096)
def _no_regex_match(regex: str) -> str:
    return f"regex {regex!r} did not match"


def _keywords(keywords: Keywords, f: Features) -> Result:
    # A keyword whose words are not all among the text's words cannot match: with many keyword rules, set
    # look-ups rule most of them out without scanning the text (or compiling a pattern) once per rule. Exact for
    # ASCII text and keywords (IGNORECASE then equals lower-casing); anything else goes straight to the pattern.
    words, wanted = f.words, keywords.words
    if words is not None and wanted is not None and not any(w <= words for w in wanted):
        return False, _no_keyword(keywords.root)
    match = keywords.pattern.search(f.text)
    if match:
        return True, f"keyword {match.group()!r} found"
    return False, _no_keyword(keywords.root)


def _keywords_guard(keywords: Keywords, rank: Rank) -> Guard | None:
    # One word per keyword: the text of an ASCII request must contain it. Texts beyond ASCII have no word set,
    # so the index keeps every word-guarded rule a candidate for them.
    if keywords.words is None:
        return None
    return frozenset(("word", min(words, key=rank)) for words in keywords.words)


def _keywords_words(keywords: Keywords) -> Iterable[str]:
    for words in keywords.words or ():
        yield from words


def _regex(regex: Regex, f: Features) -> Result:
    # Only a bounded prefix of the text is searched (`Features.regex_text`): what backtracking remains possible
    # after validation (polynomial shapes such as `.*a.*b`) stays bounded however long the prompt is.
    text = f.regex_text
    # A text without any string every match must contain cannot match: `in` rules it out without a regex scan.
    literals = regex.literals
    if literals is not None and not any(literal in text for literal in literals):
        return False, _no_regex_match(regex.root)
    match = regex.pattern.search(text)
    if match:
        return True, f"regex {regex.root!r} matched {match.group()[:40]!r}"
    return False, _no_regex_match(regex.root)


def _regex_guard(regex: Regex, rank: Rank) -> Guard | None:
    literals = regex.literals
    return frozenset(("lit", literal) for literal in literals) if literals is not None else None


register(
    ConditionType(
        "keywords",
        Keywords,
        Cost.SCAN,
        _keywords,
        _keywords_guard,
        example=["refund", "money back"],
        words=_keywords_words,
    )
)
register(ConditionType("regex", Regex, Cost.SCAN, _regex, _regex_guard, example=r"\bORD-\d{6}\b"))
