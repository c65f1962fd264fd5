"""Routing rules: a condition (`when`) and an action (`then`), validated on write and on read."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm_router.schemas.catalog import ID_PATTERN

# A word as keyword patterns delimit it (`\w` runs); used to rule keywords out before scanning a text.
WORD = re.compile(r"\w+")

PiiKind = Literal["email", "phone", "credit_card", "iban", "ip_address"]


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """Strings of which every match of `pattern` contains at least one; None when that cannot be told.

    Read from the parsed pattern: the longest run of plain characters in its top-level sequence, or one such run
    from each branch of a top-level alternation. Checking them with `in` is far cheaper than a regex scan that
    fails, which is what most rules do. Case-insensitive patterns, and anything unexpected, get None.
    """
    try:
        from re import _constants as sre  # type: ignore[attr-defined]
        from re import _parser as sre_parse  # type: ignore[attr-defined]

        parsed = sre_parse.parse(pattern)
        if parsed.state.flags & re.IGNORECASE:
            return None

        def longest_run(sequence: Any) -> str:
            best, run = "", []
            for op, arg in sequence:
                if op == sre.LITERAL:
                    run.append(chr(arg))
                    continue
                best, run = max(best, "".join(run), key=len), []
            return max(best, "".join(run), key=len)

        items = list(parsed)
        run = longest_run(items)
        if run:
            return (run,)
        if len(items) == 1 and items[0][0] == sre.BRANCH:
            runs = tuple(longest_run(branch) for branch in items[0][1][1])
            return runs if all(runs) else None
    except Exception:  # noqa: BLE001 - the parser is internal to `re`: without it, the pattern alone decides
        return None
    return None


class DomainCondition(BaseModel):
    """The domain classifier gives one of `in` a probability of at least `min`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    in_: tuple[str, ...] = Field(alias="in", min_length=1)
    min: float = Field(0.5, ge=0, le=1)


class ClassifierCondition(BaseModel):
    """Single-label form of the domain condition: `{"label": "code", "min": 0.7}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    min: float = Field(0.5, ge=0, le=1)


class RangeCondition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float | None = Field(None, ge=0, le=1)
    max: float | None = Field(None, ge=0, le=1)


class Condition(BaseModel):
    """Every key present must hold (an implicit `all`); an empty condition always matches.

    Text conditions look at the text of every message in the request.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    keywords: tuple[str, ...] | None = None
    regex: str | None = None
    min_chars: int | None = Field(None, ge=0)
    max_chars: int | None = Field(None, ge=0)
    min_tokens: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)
    metadata: dict[str, str | tuple[str, ...]] | None = None
    tenant: str | tuple[str, ...] | None = None
    has_tools: bool | None = None
    has_images: bool | None = None
    pii: bool | tuple[PiiKind, ...] | None = None
    domain: DomainCondition | None = None
    classifier: ClassifierCondition | None = None
    difficulty: RangeCondition | None = None
    all: tuple[Condition, ...] | None = None
    any: tuple[Condition, ...] | None = None
    not_: Condition | None = Field(None, alias="not")

    @field_validator("keywords")
    @classmethod
    def _non_empty_keywords(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or any(not k.strip() for k in value)):
            raise ValueError("keywords must be a non-empty list of non-empty strings")
        return value

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return value

    @cached_property
    def checked_keys(self) -> frozenset[str]:
        """The keys this condition sets: evaluation runs their checks and skips the others without a look."""
        return frozenset(name for name in type(self).model_fields if getattr(self, name) is not None)

    @cached_property
    def keyword_pattern(self) -> re.Pattern[str] | None:
        """One case-insensitive pattern for all keywords, matching whole words and phrases only."""
        if not self.keywords:
            return None
        alternatives = "|".join(r"\s+".join(re.escape(w) for w in k.split()) for k in self.keywords)
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

    @cached_property
    def keyword_words(self) -> tuple[frozenset[str], ...] | None:
        """Per keyword, its lower-case words: a keyword can only match a text that contains every one of them.

        None when a keyword is not plain ASCII or has no word characters; then only `keyword_pattern` decides.
        """
        if not self.keywords:
            return None
        words = tuple(frozenset(WORD.findall(k.lower())) for k in self.keywords)
        if not all(k.isascii() for k in self.keywords) or not all(words):
            return None
        return words

    @cached_property
    def regex_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.regex) if self.regex is not None else None

    @cached_property
    def regex_literals(self) -> tuple[str, ...] | None:
        """Strings of which a match of `regex` contains at least one (see `required_literals`)."""
        return required_literals(self.regex) if self.regex is not None else None


class SplitArm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[str, ...] = Field(min_length=1)
    weight: float = Field(gt=0)


class Reject(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int = Field(400, ge=400, le=499)
    message: str = Field(min_length=1)


class Action(BaseModel):
    """Exactly one of: `targets` (ordered fallback chain), `split` (weighted A/B, sticky), `reject`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[str, ...] | None = Field(None, min_length=1)
    split: tuple[SplitArm, ...] | None = Field(None, min_length=1)
    reject: Reject | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        chosen = [name for name in ("targets", "split", "reject") if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError("then needs exactly one of targets, split, reject")
        return self

    def model_ids(self) -> set[str]:
        ids = set(self.targets or ())
        for arm in self.split or ():
            ids.update(arm.targets)
        return ids


class Rule(BaseModel):
    """A routing rule; lower `priority` runs first and the first enabled match wins."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    route: str | None = None  # None: the rule applies to every route
    priority: int = 100
    enabled: bool = True
    description: str = ""
    when: Condition = Condition()
    then: Action
    # Residency: candidates whose catalog region matches none of these patterns are never called.
    regions: tuple[str, ...] | None = None
