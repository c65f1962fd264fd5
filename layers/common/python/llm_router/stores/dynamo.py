"""Small DynamoDB helpers shared by the stores: attribute values, plain items and paginated partition queries.

The conversions are boto3's `TypeSerializer`/`TypeDeserializer` for the types the router stores, written here so
that the functions need only botocore (boto3 would add its import, and s3transfer's, to every cold start).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# JSON documents above this size are kept zlib-compressed in a binary attribute.
COMPRESS_ABOVE_BYTES = 2048
# An item holds at most 400 KB; a document that does not fit even compressed is not stored.
MAX_STORED_BYTES = 350_000


def attribute(value: Any) -> dict[str, Any]:
    """A DynamoDB attribute value for a plain Python value (as `TypeSerializer`, and floats are accepted)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": str(Decimal(str(value)))}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): attribute(v) for k, v in value.items()}}
    if isinstance(value, set | frozenset):
        return _set_attribute(value)
    if isinstance(value, list | tuple):
        return {"L": [attribute(v) for v in value]}
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def _set_attribute(value: set[Any] | frozenset[Any]) -> dict[str, Any]:
    """A string, number or binary set: DynamoDB has no set of mixed types."""
    if all(isinstance(v, str) for v in value):
        return {"SS": sorted(value)}
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in value):
        return {"NS": [attribute(v)["N"] for v in value]}
    if all(isinstance(v, bytes) for v in value):
        return {"BS": list(value)}
    raise TypeError(f"a set of mixed types cannot be stored: {value!r}")


def item(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A low-level client item from plain Python values."""
    return {k: attribute(v) for k, v in values.items()}


def _number(text: str) -> int | float:
    if text.lstrip("-").isdigit():
        return int(text)
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def plain_value(value: dict[str, Any]) -> Any:
    """Plain Python from an attribute value: numbers as int/float (never Decimal), sets as lists."""
    (kind, data), *_ = value.items()
    if kind == "S":
        return data
    if kind == "N":
        return _number(data)
    if kind == "BOOL":
        return bool(data)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: plain_value(v) for k, v in data.items()}
    if kind == "L":
        return [plain_value(v) for v in data]
    if kind == "SS" or kind == "BS":
        return list(data)
    if kind == "NS":
        return [_number(v) for v in data]
    if kind == "B":
        return bytes(data)
    raise TypeError(f"unknown DynamoDB attribute type {kind!r}")


def plain_item(raw: dict[str, Any]) -> dict[str, Any]:
    """A low-level client item as plain Python (numbers as int/float, no Decimal)."""
    return {k: plain_value(v) for k, v in raw.items()}


def query_partition(
    ddb: Any, table: str, pk: str, *, sk_between: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every item of partition `pk` (optionally with `low <= sk <= high`), following pagination."""
    kwargs: dict[str, Any] = {"TableName": table}
    if sk_between is None:
        kwargs["KeyConditionExpression"] = "pk = :pk"
        kwargs["ExpressionAttributeValues"] = {":pk": {"S": pk}}
    else:
        kwargs["KeyConditionExpression"] = "pk = :pk AND sk BETWEEN :low AND :high"
        kwargs["ExpressionAttributeValues"] = {
            ":pk": {"S": pk},
            ":low": {"S": sk_between[0]},
            ":high": {"S": sk_between[1]},
        }
    items: list[dict[str, Any]] = []
    while True:
        page = ddb.query(**kwargs)
        items.extend(plain_item(raw) for raw in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def document_attributes(data: bytes, name: str, too_large: type[ValueError]) -> dict[str, Any]:
    """A JSON document as one attribute: text under `name`, or above `COMPRESS_ABOVE_BYTES` zlib under `name_z`;
    `too_large` is raised when even the compressed form would not fit in an item."""
    if len(data) <= COMPRESS_ABOVE_BYTES:
        return {name: {"S": data.decode()}}
    packed = zlib.compress(data, 6)
    if len(packed) > MAX_STORED_BYTES:
        raise too_large(f"{len(packed)} bytes compressed")
    return {name + "_z": {"B": packed}}


def document_bytes(raw: Mapping[str, Any], name: str) -> bytes:
    """The document `document_attributes` stored under `name`, as bytes."""
    compressed = raw.get(name + "_z")
    return zlib.decompress(compressed["B"]) if compressed is not None else str(raw[name]["S"]).encode()
