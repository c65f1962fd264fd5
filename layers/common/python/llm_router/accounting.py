"""Spend control around each call: allow-lists and budgets before a model is called, usage counters after.

The gateway calls `before_call` once the chain of candidate models is known and `after_answer` once a model
answered (see `gateway.Accounting`). Tenant settings come from the Config table (partition `tenant`, cached
like rules); spend comes from the State table's usage counters (stores/usage_store.py).

How far a budget can be overshot
--------------------------------
The check is "read, then add": before calling a model the gateway reads the tenant's day and month totals
with a strongly consistent read and refuses (429 `budget_exceeded`) when either is at or over its budget;
after the answer it adds the answer's cost with DynamoDB `ADD`, which is atomic, so no increment is lost.

Every admitted request saw a total below the budget. Once the total reaches the budget, every later check
refuses. So the only requests that can push spend past the budget are those already between their check and
their `ADD` when the total crossed it, and each adds its own cost once:

    overshoot  <=  sum of the costs of the requests in flight when the budget was crossed
               <=  (number of concurrent requests) x (cost of the most expensive one)

That is, each concurrent request overshoots by at most its own cost; a tenant sending one request at a time
overshoots by at most the cost of the request that crossed the budget.

Why not reserve an estimate before the call (a conditional `ADD` of the request's maximum cost)? It would
bound the overshoot independently of concurrency only if the estimate were an upper bound, which needs the
output length before the model has written it; and a function that times out between reserving and settling
leaves the reservation behind, blocking the tenant until the period ends. Read-then-add leaves nothing behind.

Tenants without a budget: their counters are written behind the answers (`USAGE_FLUSH_SECONDS` > 0, see
stores/usage_buffer.py), since no check reads them; a tenant with a budget is written with every answer.

When the counters cannot be read (DynamoDB unavailable), the request goes through and `BudgetCheckFailed` is
counted: answering beats refusing every tenant while a read fails, and the next successful check catches up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from llm_router.errors import BudgetExceededError, ModelNotAllowedError
from llm_router.lifecycle import on_shutdown
from llm_router.metrics import COUNT, Dimension, Metric, MetricsRecorder
from llm_router.observability import logger
from llm_router.routing.engine import Decision, Plan
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, Price
from llm_router.schemas.tenants import TenantSpec, UsageAmounts
from llm_router.stores.tenant_store import TenantStore
from llm_router.stores.usage_buffer import UsageBuffer
from llm_router.stores.usage_store import Spend, UsageStore, next_day, next_month

if TYPE_CHECKING:
    from llm_router.gateway import Answer, RequestContext
    from llm_router.settings import GatewaySettings

# The route name of requests that named a model directly (as in the gateway's metrics).
PINNED_ROUTE = "pinned"


@dataclass(frozen=True)
class BudgetPeriod:
    """One budget of a tenant and what has been spent against it."""

    name: str  # "daily" or "monthly"
    limit_usd: float
    spent_usd: float
    resets_at: datetime

    @property
    def exceeded(self) -> bool:
        return self.spent_usd >= self.limit_usd


def budget_periods(spec: TenantSpec, spend: Spend, today: date) -> list[BudgetPeriod]:
    """The tenant's budgets with their spend (only the budgets it has)."""
    periods = []
    if spec.daily_budget_usd is not None:
        periods.append(BudgetPeriod("daily", spec.daily_budget_usd, spend.day_usd or 0.0, next_day(today)))
    if spec.monthly_budget_usd is not None:
        periods.append(BudgetPeriod("monthly", spec.monthly_budget_usd, spend.month_usd or 0.0, next_month(today)))
    return periods


def over_soft_limit(spec: TenantSpec, periods: list[BudgetPeriod]) -> BudgetPeriod | None:
    """The first budget whose spend has reached `soft_limit` of it, or None."""
    return next((p for p in periods if p.spent_usd >= spec.soft_limit * p.limit_usd), None)


def list_price(price: Price) -> float:
    """USD for a million input plus a million output tokens: how models are ranked from cheap to dear."""
    return price.input_per_mtok + price.output_per_mtok


def cheapest_first(chain: Plan) -> Plan:
    """The same capable models, cheapest first (ties keep their order); the rest stay as fallbacks."""
    ordered = sorted(chain.models, key=lambda m: list_price(m.price))
    return Plan(models=ordered, skipped=list(chain.skipped))


def allowed(spec: TenantSpec, chain: Plan) -> Plan:
    """The chain without the models the tenant may not use; 403 when none is left."""
    if spec.models is None:
        return chain
    permitted = set(spec.models)
    kept: list[ModelSpec] = [m for m in chain.models if m.id in permitted]
    if not kept:
        wanted = ", ".join(m.id for m in chain.models)
        may = ", ".join(spec.models) or "none"
        raise ModelNotAllowedError(
            f"Tenant {spec.id!r} may not use the models this request would go to ({wanted}); it may use: {may}.",
            param="model",
        )
    skipped = [(m.id, f"not allowed for tenant {spec.id!r}") for m in chain.models if m.id not in permitted]
    return Plan(models=kept, skipped=[*chain.skipped, *skipped])


class UsageAccounting:
    """The gateway's `Accounting`: allow-lists, budgets (refuse or degrade) and usage counters per tenant."""

    def __init__(
        self,
        tenants: TenantStore,
        usage: UsageStore,
        metrics: MetricsRecorder | None = None,
        *,
        buffer_seconds: float = 0.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tenants = tenants
        self.usage = usage
        self.metrics = metrics or MetricsRecorder(None)
        self._clock = clock
        # Counters of tenants without a budget are written behind the answers when buffer_seconds > 0.
        self.buffer: UsageBuffer | None = None
        if buffer_seconds > 0:
            self.buffer = UsageBuffer(usage, buffer_seconds, on_error=self._buffer_write_failed)
            on_shutdown(self.buffer.flush)

    @classmethod
    def from_settings(cls, settings: GatewaySettings, metrics: MetricsRecorder) -> UsageAccounting:
        """Tenant settings from the Config table (cached like rules), counters in the State table."""
        tenants = TenantStore(settings.config_table_name, ttl_seconds=settings.rules_ttl_seconds)
        usage = UsageStore(settings.state_table_name)
        return cls(tenants, usage, metrics, buffer_seconds=settings.usage_flush_seconds)

    # -- before the call --------------------------------------------------------------------------------
    def before_call(self, ctx: RequestContext, decision: Decision, chain: Plan, config: ConfigSnapshot) -> Plan:
        """The chain to try: filtered by the allow-list, reordered when degraded; 429 or 403 when refused."""
        spec = self.tenants.get(ctx.tenant)
        if spec is None:
            return chain
        chain = allowed(spec, chain)
        if not spec.has_budget:
            return chain
        now = self._clock()
        try:
            spend = self.usage.spend(
                ctx.tenant,
                now,
                day=spec.daily_budget_usd is not None,
                month=spec.monthly_budget_usd is not None,
            )
        except Exception as exc:  # noqa: BLE001 - any read failure: answer rather than refuse (see module docstring)
            logger.warning("budget_check_failed", tenant=ctx.tenant, error=type(exc).__name__)
            self._count(Metric.BUDGET_CHECK_FAILED, ctx, decision)
            return chain
        periods = budget_periods(spec, spend, now.astimezone(UTC).date())
        exceeded = next((p for p in periods if p.exceeded), None)
        if exceeded is not None:
            self._count(Metric.BUDGET_EXCEEDED, ctx, decision, period=exceeded.name)
            raise self._refusal(spec, exceeded, now)
        soft = over_soft_limit(spec, periods)
        if soft is not None and self._policy(spec, decision, config) == "degrade":
            degraded = cheapest_first(chain)
            logger.info(
                "budget_degraded",
                tenant=ctx.tenant,
                request_id=ctx.request_id,
                period=soft.name,
                spent_usd=soft.spent_usd,
                limit_usd=soft.limit_usd,
                model=degraded.models[0].id,
            )
            self._count(Metric.BUDGET_DEGRADED, ctx, decision, period=soft.name)
            return degraded
        return chain

    @staticmethod
    def _policy(spec: TenantSpec, decision: Decision, config: ConfigSnapshot) -> str:
        if spec.on_exceed is not None:
            return spec.on_exceed
        route = config.routes.get(decision.route) if decision.route else None
        return (route.on_budget_exceeded if route is not None else None) or "refuse"

    @staticmethod
    def _refusal(spec: TenantSpec, period: BudgetPeriod, now: datetime) -> BudgetExceededError:
        resets = period.resets_at.strftime("%Y-%m-%dT%H:%MZ")
        return BudgetExceededError(
            f"Tenant {spec.id!r} has spent ${period.spent_usd:.6f} of its {period.name} budget of "
            f"${period.limit_usd:.6f}; requests are refused until it resets at {resets} "
            f"or an operator raises it (`llm-router tenants set`).",
            # No automatic SDK retry: the budget resets hours from now, not within an SDK's back-off.
            headers={
                "Retry-After": str(max(1, math.ceil((period.resets_at - now).total_seconds()))),
                "x-should-retry": "false",
            },
            extra={
                "budget": {
                    "period": period.name,
                    "limit_usd": period.limit_usd,
                    "spent_usd": round(period.spent_usd, 9),
                    "resets_at": period.resets_at.isoformat(),
                }
            },
        )

    # -- after the answer -------------------------------------------------------------------------------
    def after_answer(self, ctx: RequestContext, answer: Answer) -> None:
        """Add the answer's cost, savings and tokens to the tenant's counters; never fails the answer."""
        usage = answer.usage
        amounts = UsageAmounts(
            requests=1,
            cost_usd=answer.cost_usd,
            baseline_cost_usd=answer.baseline_cost_usd or 0.0,
            saved_usd=answer.saved_usd or 0.0,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            estimated_requests=int(usage.estimated),
        )
        route = answer.decision.route or PINNED_ROUTE
        if self.buffer is not None:
            spec = self.tenants.get(ctx.tenant)
            if spec is None or not spec.has_budget:
                # Nobody checks this tenant's spend before its next request: written behind (usage_buffer.py).
                self.buffer.add(ctx.tenant, model=answer.model.id, route=route, amounts=amounts, when=self._clock())
                return
        try:
            self.usage.add(ctx.tenant, model=answer.model.id, route=route, amounts=amounts, when=self._clock())
        except Exception as exc:  # noqa: BLE001 - the caller already has the answer; losing a count beats failing it
            logger.warning("usage_write_failed", tenant=ctx.tenant, request_id=ctx.request_id, error=type(exc).__name__)
            self._count(Metric.USAGE_WRITE_FAILED, ctx, answer.decision)

    def _buffer_write_failed(self, tenant: str, exc: Exception) -> None:
        logger.warning("usage_write_failed", tenant=tenant, error=type(exc).__name__, buffered=True)
        self.metrics.record([(Metric.USAGE_WRITE_FAILED, 1, COUNT)], dimensions={}, metadata={"tenant": tenant})

    def _count(self, metric: Metric, ctx: RequestContext, decision: Decision, **metadata: str) -> None:
        self.metrics.record(
            [(metric, 1, COUNT)],
            dimensions={Dimension.ROUTE: decision.route or PINNED_ROUTE},
            metadata={"tenant": ctx.tenant, "request_id": ctx.request_id, **metadata},
        )
