"""Tenant settings in the Config table (partition `tenant`): cached for the router, read and written by the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from llm_router.observability import logger
from llm_router.schemas.records import entry_from_item, error_summary, to_dynamo
from llm_router.schemas.tenants import TENANT_PARTITION, TenantSpec
from llm_router.stores.aws import client
from llm_router.stores.cache import TtlCache
from llm_router.stores.dynamo import item as dynamo_item
from llm_router.stores.dynamo import plain_item, query_partition


class TenantStore:
    """Every tenant's settings, read as one partition and cached like rules (`RULES_TTL_SECONDS`).

    A tenant without an item has no limits. An item that fails validation is skipped and logged; the tenant
    then has no limits either, which `llm-router tenants list` makes visible.
    """

    def __init__(
        self,
        table_name: str,
        *,
        ttl_seconds: float = 30.0,
        dynamodb: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self.cache = TtlCache(self._load, ttl=ttl_seconds, what="tenant settings", clock=clock)

    @property
    def _ddb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def get(self, tenant: str) -> TenantSpec | None:
        """The tenant's settings from the cache (re-read once older than the TTL), or None."""
        return self.cache.get().get(tenant)

    def _load(self) -> dict[str, TenantSpec]:
        # Keeping the last good settings when a reload fails (TtlCache) keeps limits enforced.
        specs, invalid = self._read()
        for tenant, reason in invalid:
            logger.warning("invalid_tenant_settings", tenant=tenant, reason=reason)
        return {spec.id: spec for spec in specs}

    def _read(self) -> tuple[list[TenantSpec], list[tuple[str, str]]]:
        specs: list[TenantSpec] = []
        invalid: list[tuple[str, str]] = []
        for item in self.items():
            try:
                specs.append(TenantSpec.model_validate(entry_from_item(item)))
            except ValidationError as exc:
                invalid.append((str(item.get("sk", "?")), error_summary(exc)))
        return specs, invalid

    def items(self) -> list[dict[str, Any]]:
        """Every raw tenant item as plain Python (valid or not), read now."""
        return query_partition(self._ddb, self._table, TENANT_PARTITION)

    def all(self) -> list[TenantSpec]:
        """Every valid tenant's settings, read now (for the CLI), sorted by tenant."""
        return sorted(self._read()[0], key=lambda s: s.id)

    def read(self, tenant: str) -> TenantSpec | None:
        """One tenant's settings, read now (for the CLI)."""
        item = self._ddb.get_item(
            TableName=self._table, Key={"pk": {"S": TENANT_PARTITION}, "sk": {"S": tenant}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return TenantSpec.model_validate(entry_from_item(plain_item(item)))

    def put(self, spec: TenantSpec) -> None:
        body = spec.model_dump(mode="json", exclude_defaults=True, exclude={"id"})
        item = to_dynamo({"pk": TENANT_PARTITION, "sk": spec.id, **body})
        self._ddb.put_item(TableName=self._table, Item=dynamo_item(item))
        self.invalidate()

    def delete(self, tenant: str) -> bool:
        old = self._ddb.delete_item(
            TableName=self._table, Key={"pk": {"S": TENANT_PARTITION}, "sk": {"S": tenant}}, ReturnValues="ALL_OLD"
        )
        self.invalidate()
        return "Attributes" in old

    def invalidate(self) -> None:
        self.cache.invalidate()
