"""Routing rules: a condition (`when`, whose keys `routing.conditions` defines) and an action (`then`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_router.routing.conditions import Condition
from llm_router.schemas.catalog import ID_PATTERN


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
    # `always` makes the rule a policy: evaluated before every other rule, for every request of its route and for
    # every request that names a model directly; when it matches, its `regions` and `targets` bound the whole
    # chain, fallbacks included (see `routing.engine`).
    enforce: Literal["always"] | None = None
    # A rule with a `pii` condition or `regions` keeps the requests it matches out of the response cache (personal
    # or region-bound data is kept no longer than the answer); `allow` lets the route's or model's cache keep them.
    cache: Literal["allow"] | None = None

    @property
    def is_policy(self) -> bool:
        return self.enforce == "always"

    @property
    def keeps_out_of_cache(self) -> bool:
        """Whether the requests this rule matches stay out of the response cache."""
        return self.restricts_data and self.cache != "allow"

    @property
    def restricts_data(self) -> bool:
        """A PII or residency rule: a `pii` condition anywhere in `when`, or `regions`."""
        return self.regions is not None or mentions_pii(self.when)

    @model_validator(mode="after")
    def _cache_only_on_data_rules(self) -> Rule:
        if self.cache is not None and not self.restricts_data:
            raise ValueError(
                "cache: allow applies only to a rule with a pii condition or regions (only those keep requests out "
                "of the response cache); remove it"
            )
        return self


def mentions_pii(condition: Condition) -> bool:
    """Whether a `pii` condition appears anywhere in `condition`, nested ones included, whichever way it matches."""
    for part in condition.parts:
        if part.type.key == "pii":
            return True
        values = part.value if isinstance(part.value, tuple) else (part.value,)
        if any(isinstance(v, Condition) and mentions_pii(v) for v in values):
            return True
    return False
