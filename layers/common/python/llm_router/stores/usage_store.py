"""Usage counters in the State table: what each tenant spent per UTC day and month, by model and by route.

Items (updated with DynamoDB `ADD`, which is atomic, so concurrent answers never lose an increment):

| pk                | sk                      | what                                                              |
|-------------------|-------------------------|-------------------------------------------------------------------|
| `usage#{tenant}`  | `day#{YYYY-MM-DD}`      | the tenant's day: totals, plus `model|{id}|{counter}` and          |
|                   |                         | `route|{id}|{counter}` attributes for the breakdowns               |
| `usage-tenants`   | `{YYYY-MM-DD}#{tenant}` | which tenants had usage that day (for reports)                    |

One item per tenant and day means one `UpdateItem` per answer (one round trip on the request path). The month
total is the sum of the month's day items, read with one query when a monthly budget needs it.
One partition per tenant keeps a busy tenant's writes away from the others'. Counters expire
`USAGE_RETENTION_DAYS` after their period ends (TTL attribute `expires_at`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from llm_router.schemas.tenants import UsageAmounts
from llm_router.stores.aws import client
from llm_router.stores.dynamo import query_partition
from llm_router.stores.tables import TTL_ATTRIBUTE

USAGE_RETENTION_DAYS = 400
INDEX_PARTITION = "usage-tenants"
# Sorts right after "#": `BETWEEN "day#D1" AND "day#D2$"` takes every key of days D1..D2 and their breakdowns.
_AFTER_HASH = "$"


def day_key(day: date) -> str:
    return f"day#{day.isoformat()}"


def next_day(day: date) -> datetime:
    """When the UTC day of `day` ends (a daily budget resets)."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def next_month(day: date) -> datetime:
    """When the UTC calendar month of `day` ends (a monthly budget resets)."""
    first = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return datetime.combine(first, time(), tzinfo=UTC)


def _number(value: float | int) -> Decimal:
    # Twelve decimal places (a millionth of a cent) keep sums exact in DynamoDB's decimal arithmetic.
    return Decimal(str(round(value, 12))) if isinstance(value, float) else Decimal(value)


@dataclass(frozen=True)
class Spend:
    """What a tenant has spent in the current UTC day and month (None when not read)."""

    day_usd: float | None = None
    month_usd: float | None = None


@dataclass
class DayUsage:
    """What one or more answers of a tenant added in one UTC day: totals and the model and route breakdowns."""

    total: UsageAmounts = field(default_factory=UsageAmounts)
    models: dict[str, UsageAmounts] = field(default_factory=dict)
    routes: dict[str, UsageAmounts] = field(default_factory=dict)

    @classmethod
    def of(cls, model: str, route: str, amounts: UsageAmounts) -> DayUsage:
        return cls(amounts, {model: amounts}, {route: amounts})

    def merge(self, other: DayUsage) -> None:
        self.total = self.total + other.total
        for mine, theirs in ((self.models, other.models), (self.routes, other.routes)):
            for name, amounts in theirs.items():
                mine[name] = mine[name] + amounts if name in mine else amounts


@dataclass
class UsageReport:
    """Counters summed over a range of days, by tenant, by (tenant, model) and by (tenant, route)."""

    since: date
    until: date
    tenants: dict[str, UsageAmounts] = field(default_factory=dict)
    models: dict[tuple[str, str], UsageAmounts] = field(default_factory=dict)
    routes: dict[tuple[str, str], UsageAmounts] = field(default_factory=dict)

    @property
    def total(self) -> UsageAmounts:
        return sum(self.tenants.values(), UsageAmounts())


class UsageStore:
    """Writes the counters after each answer and reads them for budgets and `llm-router usage`."""

    def __init__(self, table_name: str, *, dynamodb: Any = None, retention_days: int = USAGE_RETENTION_DAYS) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._retention = timedelta(days=retention_days)
        # (day, tenant) pairs this process has already put in the index: one write per tenant per day.
        self._indexed: set[tuple[date, str]] = set()
        self._lock = threading.Lock()

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    # -- writing ----------------------------------------------------------------------------------------
    def add(self, tenant: str, *, model: str, route: str, amounts: UsageAmounts, when: datetime) -> None:
        """Add one answer's amounts to the tenant's day totals and its model and route breakdowns, in one call."""
        day = when.astimezone(UTC).date()
        self.add_day(tenant, day, DayUsage.of(model, route, amounts))

    def add_day(self, tenant: str, day: date, usage: DayUsage) -> None:
        """Add the sums of one or more answers of one tenant and UTC day, in one `UpdateItem`."""
        expires_at = int((next_day(day) + self._retention).timestamp())
        names: dict[str, str] = {"#t": "tenant", "#p": "period", "#exp": TTL_ATTRIBUTE}
        values: dict[str, Any] = {
            ":t": {"S": tenant},
            ":p": {"S": day.isoformat()},
            ":exp": {"N": str(expires_at)},
        }
        adds: list[str] = []
        counters = [("", usage.total)]
        counters += [(f"model|{model}|", amounts) for model, amounts in usage.models.items()]
        counters += [(f"route|{route}|", amounts) for route, amounts in usage.routes.items()]
        for prefix, amounts in counters:
            for name in UsageAmounts.names():
                value = getattr(amounts, name)
                if not value and name != "requests":
                    continue
                number = len(adds)
                names[f"#a{number}"] = prefix + name
                # Fixed-point: a tiny cost (2E-8) in exponent notation breaks moto's ADD, and reads worse.
                values[f":a{number}"] = {"N": format(_number(value), "f")}
                adds.append(f"#a{number} :a{number}")
        self._ddb.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"usage#{tenant}"}, "sk": {"S": day_key(day)}},
            UpdateExpression=f"ADD {', '.join(adds)} SET #t = :t, #p = :p, #exp = if_not_exists(#exp, :exp)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        self._index(day, tenant, expires_at)

    def _index(self, day: date, tenant: str, expires_at: int) -> None:
        with self._lock:
            if (day, tenant) in self._indexed:
                return
        self._ddb.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": INDEX_PARTITION},
                "sk": {"S": f"{day.isoformat()}#{tenant}"},
                "tenant": {"S": tenant},
                TTL_ATTRIBUTE: {"N": str(expires_at)},
            },
        )
        with self._lock:
            if len(self._indexed) > 10_000:  # a long-lived process must not grow without bound
                self._indexed.clear()
            self._indexed.add((day, tenant))

    # -- reading ----------------------------------------------------------------------------------------
    def spend(self, tenant: str, when: datetime, *, day: bool = True, month: bool = True) -> Spend:
        """The tenant's day and/or month totals, read with strong consistency (budgets act on the latest)."""
        today = when.astimezone(UTC).date()
        if not (day or month):
            return Spend()
        first = today.replace(day=1) if month else today
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"usage#{tenant}"},
                ":low": {"S": day_key(first)},
                ":high": {"S": day_key(today)},
            },
            "ProjectionExpression": "sk, cost_usd",
            "ConsistentRead": True,
        }
        costs: dict[str, float] = {}
        while True:
            page = self._ddb.query(**kwargs)
            for item in page["Items"]:
                costs[item["sk"]["S"]] = float(item.get("cost_usd", {}).get("N", "0"))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return Spend(
            day_usd=costs.get(day_key(today), 0.0) if day else None,
            month_usd=sum(costs.values()) if month else None,
        )

    def tenants(self, since: date, until: date) -> list[str]:
        """Tenants with usage on any day from `since` to `until` (inclusive)."""
        items = self._query(INDEX_PARTITION, since.isoformat(), until.isoformat() + _AFTER_HASH)
        return sorted({str(item["tenant"]) for item in items})

    def report(self, since: date, until: date, tenant: str | None = None) -> UsageReport:
        """Counters from `since` to `until` (inclusive, UTC days), for one tenant or every tenant with usage."""
        report = UsageReport(since, until)
        for name in [tenant] if tenant else self.tenants(since, until):
            items = self._query(f"usage#{name}", day_key(since), day_key(until) + _AFTER_HASH)
            self._fold(report, name, items)
        return report

    @staticmethod
    def _fold(report: UsageReport, tenant: str, items: Iterable[dict[str, Any]]) -> None:
        for item in items:
            report.tenants[tenant] = report.tenants.get(tenant, UsageAmounts()) + UsageAmounts.from_item(item)
            parts: dict[tuple[str, str], dict[str, Any]] = {}
            for attribute, value in item.items():
                kind, sep, rest = str(attribute).partition("|")
                if sep and kind in ("model", "route"):
                    name, _, counter = rest.rpartition("|")
                    parts.setdefault((kind, name), {})[counter] = value
            for (kind, name), counters in parts.items():
                target = report.models if kind == "model" else report.routes
                target[(tenant, name)] = target.get((tenant, name), UsageAmounts()) + UsageAmounts.from_item(counters)

    def _query(self, pk: str, low: str, high: str) -> list[dict[str, Any]]:
        return query_partition(self._ddb, self._table, pk, sk_between=(low, high))
