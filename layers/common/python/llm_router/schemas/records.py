"""DynamoDB items of the Config table, and their conversion to and from the config-file shape.

A config-file entry is the table item without `pk`, with `id` in place of `sk`. Numbers come back from DynamoDB
as strings; `stores.dynamo.plain_item` turns them into int/float before validation.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.rules import Rule

ConfigKind = Literal["model", "route", "rule"]
KeyScope = Literal["user", "admin"]
CONFIG_KINDS: tuple[ConfigKind, ...] = ("model", "route", "rule")
# The partition key of API keys in the Config table (only the authorizer may read it).
KEY_PARTITION = "apikey"
# The Config-table partition of route adaptations: `<route>#<version>` items hold the versioned artifacts, the
# `<route>` item names the active one (stores/adaptation_store.py).
ADAPTATION_PARTITION = "adaptation"

SCHEMAS: dict[str, type[BaseModel]] = {"model": ModelSpec, "route": RouteSpec, "rule": Rule}


def to_dynamo(value: Any) -> Any:
    """Values as config items store them: None dropped from maps, sequences and sets as lists (empty strings kept;
    `stores.dynamo.attribute` turns the result into attribute values)."""
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_dynamo(v) for v in value]
    return value


def entry_from_item(item: dict[str, Any]) -> dict[str, Any]:
    """Config-file entry from a plain table item."""
    entry = {k: v for k, v in item.items() if k not in ("pk", "sk")}
    return {"id": item["sk"], **entry}


def item_from_entry(kind: ConfigKind, entry: dict[str, Any]) -> dict[str, Any]:
    """Plain table item from a config-file entry."""
    body = {k: v for k, v in entry.items() if k != "id"}
    return {"pk": kind, "sk": entry["id"], **body}


def validate_entry(kind: ConfigKind, entry: dict[str, Any]) -> BaseModel:
    """Validate one config entry of `kind`; raises pydantic's ValidationError."""
    return SCHEMAS[kind].model_validate(entry)


def dump_entry(obj: BaseModel) -> dict[str, Any]:
    """The config-file shape of a validated object (defaults left out, so files stay short)."""
    data: dict[str, Any] = obj.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data["id"] = getattr(obj, "id")  # noqa: B009 - id is required on every config kind
    return data


def error_summary(exc: ValidationError) -> str:
    """A one-line reason naming each failing field, for logs and CLI output."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(item)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class ApiKeyItem(BaseModel):
    """An API key as stored: only its SHA-256 hash, never the key itself."""

    model_config = ConfigDict(extra="ignore")

    pk: str = KEY_PARTITION
    sk: str  # sha256 hex of the key
    tenant: str
    prefix: str  # first characters of the key, so people can tell keys apart
    created_at: str
    enabled: bool = True
    # `admin` keys also see how routing decided (`/v1/route` reasons: rule conditions, keywords, PII found);
    # `user` keys see only the decision. Keys stored before scopes existed are user keys.
    scope: KeyScope = "user"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
