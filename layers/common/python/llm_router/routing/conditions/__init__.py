"""Rule conditions: each type's schema, evaluation and index guard together, dispatched through `registry`.

Every other module of this package is a family of condition types and registers them when imported; importing
the package imports them all, so adding a condition touches only the module of its family.
"""

from __future__ import annotations

import importlib
import pkgutil

from llm_router.routing.conditions.registry import (
    CONDITION_TYPES,
    Condition,
    ConditionType,
    Cost,
    Fact,
    Guard,
    Result,
    condition_words,
    evaluate,
    guard_of,
    register,
)

for _family in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_family.name}")

__all__ = [
    "CONDITION_TYPES",
    "Condition",
    "ConditionType",
    "Cost",
    "Fact",
    "Guard",
    "Result",
    "condition_words",
    "evaluate",
    "guard_of",
    "register",
]
