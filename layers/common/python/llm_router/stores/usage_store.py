"""Usage counters in the State table: what each tenant spent per UTC day and month, by model and by route.

Items (all updated with DynamoDB `ADD`, which is atomic, so concurrent answers never lose an increment):

| pk                | sk                                | what                                             |
|-------------------|-----------------------------------|--------------------------------------------------|
| `usage#{tenant}`  | `day#{YYYY-MM-DD}`                | the tenant's day total (read by the daily budget) |
| `usage#{tenant}`  | `month#{YYYY-MM}`                 | the month total (read by the monthly budget)     |
| `usage#{tenant}`  | `day#{YYYY-MM-DD}#model#{model}`  | the day's share of one model                     |
| `usage#{tenant}`  | `day#{YYYY-MM-DD}#route#{route}`  | the day's share of one route                     |
| `usage-tenants`   | `{YYYY-MM-DD}#{tenant}`           | which tenants had usage that day (for reports)   |

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


def month_key(day: date) -> str:
    return f"month#{day:%Y-%m}"


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
        """Add one answer's amounts to the tenant's day, month, model and route counters.

        The day and month totals go first: they are what budgets read, so a failure later in the sequence
        loses a breakdown, never an amount a budget depends on.
        """
        day = when.astimezone(UTC).date()
        pk = f"usage#{tenant}"
        day_expiry = int((next_day(day) + self._retention).timestamp())
        month_expiry = int((next_month(day) + self._retention).timestamp())
        on_day = {"tenant": tenant, "period": day.isoformat()}
        self._add(pk, day_key(day), amounts, day_expiry, on_day)
        self._add(pk, month_key(day), amounts, month_expiry, {"tenant": tenant, "period": f"{day:%Y-%m}"})
        self._add(pk, f"{day_key(day)}#model#{model}", amounts, day_expiry, {**on_day, "model": model})
        self._add(pk, f"{day_key(day)}#route#{route}", amounts, day_expiry, {**on_day, "route": route})
        self._index(day, tenant, day_expiry)

    def _add(self, pk: str, sk: str, amounts: UsageAmounts, expires_at: int, labels: dict[str, str]) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds, sets = [], []
        for i, name in enumerate(UsageAmounts.names()):
            value = getattr(amounts, name)
            if value or name == "requests":
                names[f"#a{i}"], values[f":a{i}"] = name, {"N": str(_number(value))}
                adds.append(f"#a{i} :a{i}")
        for i, (name, label) in enumerate(labels.items()):
            names[f"#l{i}"], values[f":l{i}"] = name, {"S": label}
            sets.append(f"#l{i} = :l{i}")
        names["#exp"], values[":exp"] = TTL_ATTRIBUTE, {"N": str(expires_at)}
        sets.append("#exp = if_not_exists(#exp, :exp)")
        self._ddb.update_item(
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            UpdateExpression=f"ADD {', '.join(adds)} SET {', '.join(sets)}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

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
        periods = ((day_key(today), "day", day), (month_key(today), "month", month))
        wanted = {key: name for key, name, on in periods if on}
        if not wanted:
            return Spend()
        found: dict[str, float] = {}
        keys = [{"pk": {"S": f"usage#{tenant}"}, "sk": {"S": sk}} for sk in wanted]
        request: dict[str, Any] = {
            self._table: {
                "Keys": keys,
                "ConsistentRead": True,
                "ProjectionExpression": "sk, cost_usd",
            }
        }
        for _ in range(5):
            page = self._ddb.batch_get_item(RequestItems=request)
            for item in page.get("Responses", {}).get(self._table, []):
                found[item["sk"]["S"]] = float(item.get("cost_usd", {}).get("N", "0"))
            request = page.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise RuntimeError("usage counters could not be read (unprocessed keys after retries)")
        values = {name: found.get(key, 0.0) for key, name in wanted.items()}
        return Spend(day_usd=values.get("day"), month_usd=values.get("month"))

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
            amounts = UsageAmounts.from_item(item)
            parts = str(item["sk"]).split("#", 3)
            if len(parts) == 2:
                report.tenants[tenant] = report.tenants.get(tenant, UsageAmounts()) + amounts
            elif parts[2] == "model":
                key = (tenant, parts[3])
                report.models[key] = report.models.get(key, UsageAmounts()) + amounts
            elif parts[2] == "route":
                key = (tenant, parts[3])
                report.routes[key] = report.routes.get(key, UsageAmounts()) + amounts

    def _query(self, pk: str, low: str, high: str) -> list[dict[str, Any]]:
        return query_partition(self._ddb, self._table, pk, sk_between=(low, high))
