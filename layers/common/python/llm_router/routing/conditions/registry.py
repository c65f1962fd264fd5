"""The registry of condition types, and the `Condition` (a rule's `when`) that dispatches through it.

A condition type is one key of `when`: its schema (what the value may be), its evaluation against the request's
features and its index guard, registered together by the module of its family (`text`, `request`, `length`,
`pii`, `scores`, `logic`). Validation, evaluation order, serialization and the rule index all read the registry,
so a new condition is one `register(ConditionType(...))` call in one module of this package.

A guard is a set of facts of which a request must show at least one for the condition to have any chance of
holding ("the text contains the word `mortgage`", "the tenant is `acme`"); see `routing.index`. A type whose
condition offers no such fact has the guard `no_guard`, and its rules are always candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    from llm_router.routing.features import Features  # annotations only: conditions load no request model


Result = tuple[bool, str]
# ("word", w) | ("tenant", t) | ("meta", key, value) | ("flag", name, bool) | ("lit", s)
Fact = tuple[str, ...] | tuple[str, str, bool]
Guard = frozenset[Fact]
# Orders a keyword's words for its guard: the first one stands for the keyword (see `routing.index`).
Rank = Callable[[str], Any]

V = TypeVar("V")


class Cost(IntEnum):
    """Evaluation order: a condition fails on cheap checks before paying for PII scanning or classifier scores."""

    LOOKUP = 0  # fields of the request: tenant, metadata, flags
    COUNT = 1  # lengths of the text
    SCAN = 2  # scans of the text: keywords, regex
    NESTED = 3  # all, any, not
    DETECT = 4  # PII detection
    CLASSIFY = 5  # classifier scores


def no_guard(value: Any, rank: Rank) -> Guard | None:
    """For conditions no request fact rules out (lengths, PII, classifier scores, `not`)."""
    return None


def no_words(value: Any) -> Iterable[str]:
    return ()


@dataclass(frozen=True, eq=False)
class ConditionType(Generic[V]):
    """One key of a rule's `when`: schema, evaluation and index guard together."""

    key: str
    schema: Any = field(repr=False)  # the type a value validates to (a pydantic model or an annotation)
    cost: Cost = field(repr=False)
    evaluate: Callable[[V, Features], Result] = field(repr=False)
    guard: Callable[[V, Rank], Guard | None] = field(repr=False)
    example: Any = field(repr=False)  # a valid value as written in a config file, for documentation and tests
    # The keyword words a condition names, itself and its parts: how many rules share a word ranks it.
    words: Callable[[V], Iterable[str]] = field(default=no_words, repr=False)

    @cached_property
    def adapter(self) -> TypeAdapter[V]:
        return TypeAdapter(self.schema)


CONDITION_TYPES: dict[str, ConditionType[Any]] = {}
# Evaluation order of each key: by cost, then, within one cost, in the order the types were registered.
_ORDER: dict[str, tuple[Cost, int]] = {}


def register(condition_type: ConditionType[V]) -> ConditionType[V]:
    """Make `condition_type.key` a condition key; each key is registered once."""
    if condition_type.key in CONDITION_TYPES:
        raise ValueError(f"condition {condition_type.key!r} is registered twice")
    CONDITION_TYPES[condition_type.key] = condition_type
    _ORDER[condition_type.key] = (condition_type.cost, len(_ORDER))
    return condition_type


class Part(NamedTuple):
    """One key of a condition with its validated value."""

    type: ConditionType[Any]
    value: Any


def _unknown(key: Any, raw: Any) -> InitErrorDetails:
    known = ", ".join(sorted(CONDITION_TYPES))
    message = "unknown condition '{key}'; known conditions: {known}"
    return {
        "type": PydanticCustomError("unknown_condition", message, {"key": str(key), "known": known}),
        "loc": (key,),
        "input": raw,
    }


def _under(key: str, exc: ValidationError) -> list[InitErrorDetails]:
    """The errors of a value, located under its key, each message as it was (a nested type may be our own)."""
    return [
        {"type": PydanticCustomError(error["type"], error["msg"]), "loc": (key, *error["loc"]), "input": error["input"]}
        for error in exc.errors(include_url=False)
    ]


def _validate_parts(data: dict[Any, Any]) -> tuple[Part, ...]:
    parts: list[Part] = []
    errors: list[InitErrorDetails] = []
    for key, raw in data.items():
        condition_type = CONDITION_TYPES.get(key)
        if condition_type is None:
            errors.append(_unknown(key, raw))
            continue
        try:
            parts.append(Part(condition_type, condition_type.adapter.validate_python(raw)))
        except ValidationError as exc:
            errors += _under(key, exc)
    if errors:
        raise ValidationError.from_exception_data("Condition", errors)
    return tuple(sorted(parts, key=lambda part: _ORDER[part.type.key]))


class Condition(BaseModel):
    """Every key present must hold (an implicit `all`); an empty condition always matches.

    Written as a mapping of condition keys (see `CONDITION_TYPES`) to values, as in a config file:
    `{"keywords": ["refund"], "tenant": "acme"}`. Text conditions look at the text of every message in the request.
    """

    model_config = ConfigDict(frozen=True)

    # Each a `Part`, cheapest check first. `Any` to pydantic: the parts are validated when built from the keys, and
    # a `ConditionType` is no value to validate.
    parts: tuple[Any, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _from_keys(cls, data: Any) -> Any:
        if isinstance(data, Condition):
            return data
        if not isinstance(data, dict):
            raise ValueError("a condition is a mapping of condition keys to values")
        return {"parts": _validate_parts(data)}

    @model_serializer(mode="wrap")
    def _to_keys(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        return {
            part.type.key: part.type.adapter.dump_python(
                part.value,
                mode="json" if info.mode_is_json() else "python",
                by_alias=info.by_alias,
                exclude_unset=info.exclude_unset,
                exclude_defaults=info.exclude_defaults,
                exclude_none=info.exclude_none,
            )
            for part in self.parts
        }


def evaluate(condition: Condition, features: Features) -> Result:
    """True when every key of `condition` holds; the reason names what decided it."""
    reasons = []
    for condition_type, value in condition.parts:
        ok, why = condition_type.evaluate(value, features)
        if not ok:
            return False, why
        reasons.append(why)
    return True, " and ".join(reasons) if reasons else "always (empty condition)"


def _guard_cost(guard: Guard) -> tuple[int, int]:
    """Prefer guards checked by look-up (words, tenant, metadata, flags) over substring scans, then fewer facts."""
    scans = sum(1 for fact in guard if fact[0] == "lit")
    return scans, len(guard)


def cheapest(guards: Iterable[Guard | None]) -> Guard | None:
    """The cheapest of the guards that exist: each belongs to a part that must hold, so any one of them will do."""
    found = [guard for guard in guards if guard is not None]
    return min(found, key=_guard_cost) if found else None


def guard_of(condition: Condition, rank: Rank = lambda word: -len(word)) -> Guard | None:
    """Facts of which a request must show one for `condition` to hold; None when no such set is known."""
    return cheapest(condition_type.guard(value, rank) for condition_type, value in condition.parts)


def condition_words(condition: Condition) -> Iterable[str]:
    """Every keyword word `condition` and its parts name."""
    for condition_type, value in condition.parts:
        yield from condition_type.words(value)
