"""Small DynamoDB helpers shared by the stores: plain items and paginated partition queries."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from llm_router.schemas.records import from_dynamo

_deserializer = TypeDeserializer()


def plain_item(raw: dict[str, Any]) -> dict[str, Any]:
    """A low-level client item as plain Python (numbers as int/float, no Decimal)."""
    plain: dict[str, Any] = from_dynamo({k: _deserializer.deserialize(v) for k, v in raw.items()})
    return plain


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
