"""Tenant settings (Config table, partition `tenant`) and usage counters (State table), as stored.

A tenant is what an API key belongs to (`llm-router keys create --tenant T`). Its settings are plain attributes
of one Config table item, `{"pk": "tenant", "sk": T, ...}`, so they read well in the console; the domain model
below is the item without `pk`, with `id` in place of `sk`, like every config entry.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The partition of tenant settings in the Config table.
TENANT_PARTITION = "tenant"

OnExceed = Literal["refuse", "degrade"]


class TenantSpec(BaseModel):
    """Budgets and model allow-list of one tenant; everything optional (no item = no limits).

    - `daily_budget_usd` / `monthly_budget_usd`: at or over either (UTC day, UTC calendar month), requests are
      refused with 429 `budget_exceeded` before any model is called.
    - `models`: when set, only these catalog models may answer; the rest of a route's chain is skipped.
    - `on_exceed`: `degrade` sends requests to the cheapest capable model of their chain once spend passes
      `soft_limit` x budget (the budget itself still refuses); `refuse` only refuses. Unset: the route's
      `on_budget_exceeded`, else `refuse`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    daily_budget_usd: float | None = Field(None, ge=0)
    monthly_budget_usd: float | None = Field(None, ge=0)
    models: tuple[str, ...] | None = None
    on_exceed: OnExceed | None = None
    soft_limit: float = Field(0.8, gt=0, le=1)
    description: str = ""

    @property
    def has_budget(self) -> bool:
        return self.daily_budget_usd is not None or self.monthly_budget_usd is not None


@dataclass(frozen=True)
class UsageAmounts:
    """What one or more answers added to a usage counter (the attribute names of a counter item).

    `baseline_cost_usd` and `saved_usd` sum only answers whose route names a baseline, so
    `saved_usd / baseline_cost_usd` is the share saved on those answers.
    """

    requests: int = 0
    cost_usd: float = 0.0
    baseline_cost_usd: float = 0.0
    saved_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated_requests: int = 0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return _AMOUNT_NAMES

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> UsageAmounts:
        """From a counter item as plain Python (missing attributes are zero)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = item.get(f.name, 0) or 0
            values[f.name] = float(raw) if f.type == "float" else int(raw)
        return cls(**values)

    def __add__(self, other: UsageAmounts) -> UsageAmounts:
        return UsageAmounts(*map(operator.add, astuple_shallow(self), astuple_shallow(other)))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(zip(_AMOUNT_NAMES, astuple_shallow(self), strict=True))
        for name in ("cost_usd", "baseline_cost_usd", "saved_usd"):
            out[name] = round(out[name], 9)
        out["saved_pct"] = round(100 * self.saved_usd / self.baseline_cost_usd, 1) if self.baseline_cost_usd else None
        return out


_AMOUNT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(UsageAmounts))
astuple_shallow = operator.attrgetter(*_AMOUNT_NAMES)  # the field values in order (no deep copy, unlike astuple)
