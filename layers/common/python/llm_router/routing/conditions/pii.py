"""The `pii` condition: personal data found in the request (`true`), absent (`false`), or of given kinds.

Detection scans every string that goes upstream (message text, names, tool calls and definitions, forwarded
fields) with several patterns, so it runs after the cheaper checks; PII can be in any text, so it offers no index
guard. An image counts as the kind `image`: `true` matches it (fail closed); a list of kinds without `image`
ignores images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from llm_router.routing.conditions.registry import ConditionType, Cost, Result, no_guard, register

if TYPE_CHECKING:
    from llm_router.routing.features import Features  # annotations only: conditions load no request model

PiiKind = Literal["email", "phone", "credit_card", "iban", "ip_address", "image"]
PiiWanted = bool | tuple[PiiKind, ...]


def _pii(wanted: PiiWanted, f: Features) -> Result:
    found = f.pii
    if wanted is True:
        return bool(found), f"PII found: {sorted(found)}" if found else "no PII found"
    if wanted is False:
        return not found, "no PII found" if not found else f"PII found: {sorted(found)}"
    kinds = set(wanted)
    hits = sorted(found & kinds)
    return bool(hits), f"PII found: {hits}" if hits else f"no PII of kinds {sorted(kinds)}"


register(ConditionType("pii", PiiWanted, Cost.DETECT, _pii, no_guard, example=["email", "iban"]))
