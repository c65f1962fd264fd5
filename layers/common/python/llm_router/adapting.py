"""Online adaptation: fit a route's correction from its collected outcomes, and promote it only when it is better.

One run for a route reads its `learn` settings (`target_quality`, `min_samples`) and its threshold strategy's two
models from the configuration, takes the outcomes collected for it, fits with `ml.adapt.fit` against the version the
route serves now, and stores and activates a new version only when `fit` promotes it. `llm-router adapt ROUTE` and
the scheduled adapt function both run this; rollback is the store's (stores/adaptation_store.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from llm_router.observability import logger
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import RouteSpec

if TYPE_CHECKING:
    from llm_router.ml.adapt import AdaptResult, Sample
    from llm_router.routing.adaptation import Adaptation
    from llm_router.stores.adaptation_store import AdaptationStore


class OutcomeSource(Protocol):
    """Where a route's graded outcomes come from (the State table's outcome records in a deployment)."""

    def samples(self, route: str, since: datetime | None = None) -> list[Sample]: ...


class CannotAdaptError(Exception):
    """The route cannot be adapted as configured (no such route, no `learn`, no threshold strategy)."""


class AdaptFailedError(Exception):
    """Some routes could not be adapted (the scheduled run's failure, after every route was tried)."""

    def __init__(self, failed: dict[str, str]) -> None:
        super().__init__("adapting failed for " + "; ".join(f"{route}: {why}" for route, why in sorted(failed.items())))
        self.failed = failed


@dataclass(frozen=True)
class AdaptRun:
    """What one run did for one route: the fit's verdict, and the version it stored and activated, if any."""

    route: str
    result: AdaptResult
    current: str | None  # the version the route served before the run (None: the shipped model)
    saved: Adaptation | None = None  # the new version, stored and active (None: nothing promoted, or a dry run)
    dry_run: bool = False

    @property
    def promoted(self) -> bool:
        return self.result.promoted

    def report(self) -> dict[str, Any]:
        """What the CLI prints and the scheduled function logs."""
        return {
            "route": self.route,
            "promoted": self.result.promoted,
            "reason": self.result.reason,
            "current": self.current,
            "activated": self.saved.version if self.saved is not None else None,
            "dry_run": self.dry_run,
            "report": self.result.report,
        }


def learn_settings(route: RouteSpec) -> tuple[float, int]:
    """(target_quality, min_samples) of a route that learns; CannotAdaptError when it has no `learn` settings."""
    if route.learn is None:
        raise CannotAdaptError(f"route {route.id!r} has no `learn` settings: no outcomes are collected to adapt on")
    return route.learn.target_quality, route.learn.min_samples


class Adapter:
    """Runs adaptation for routes of the configuration `snapshot()` returns."""

    def __init__(
        self,
        snapshot: Callable[[], ConfigSnapshot],
        adaptations: AdaptationStore,
        outcomes: OutcomeSource,
        *,
        seed: int = 0,
    ) -> None:
        self._snapshot = snapshot
        self.adaptations = adaptations
        self._outcomes = outcomes
        self._seed = seed

    def learning_routes(self) -> list[str]:
        """The routes the scheduled run adapts: those with `learn` settings and a threshold strategy."""
        routes = self._snapshot().routes.values()
        return sorted(r.id for r in routes if r.learn is not None and r.strategy is not None)

    def run(
        self, route_id: str, *, dry_run: bool = False, since: datetime | None = None, respect_hold: bool = False
    ) -> AdaptRun:
        """Fit `route_id` on its outcomes; store and activate the result only when `fit` promotes it (which also
        lifts a rollback's hold). With `respect_hold` (the scheduled run), a route an operator rolled back is left
        as it is."""
        from llm_router.ml.adapt import AdaptResult, fit

        if respect_hold and self.adaptations.held(route_id):
            held = self.adaptations.active_version(route_id)
            reason = (
                f"held at {held or 'the shipped model'} by a rollback: not adapted on a schedule until "
                f"`llm-router adapt {route_id}` runs"
            )
            return AdaptRun(route_id, AdaptResult(None, False, reason, {}), held, None, dry_run)

        route = self._snapshot().routes.get(route_id)
        if route is None:
            raise CannotAdaptError(f"route {route_id!r} does not exist (or its config item is invalid)")
        target_quality, min_samples = learn_settings(route)
        strategy = route.strategy
        if strategy is None:
            raise CannotAdaptError(
                f"route {route_id!r} has no threshold strategy (weak/strong models): there is nothing to adapt"
            )
        current = self.adaptations.active(route_id)
        if current is not None and (current.weak, current.strong) != (strategy.weak, strategy.strong):
            current = None  # fitted for other models: the route serves the shipped model, compare against that
        samples = self._outcomes.samples(route_id, since)
        result = fit(
            samples,
            weak=strategy.weak,
            strong=strategy.strong,
            target_quality=target_quality,
            current=current,
            min_samples=min_samples,
            seed=self._seed,
            route=route_id,
        )
        current_version = self.adaptations.active_version(route_id)
        saved = None
        if result.promoted and result.adaptation is not None and not dry_run:
            saved = self.adaptations.save(result.adaptation, route_id)
            self.adaptations.activate(route_id, saved.version)
        run = AdaptRun(route_id, result, current_version, saved, dry_run)
        logger.info(
            "adapt_run",
            route=route_id,
            promoted=result.promoted,
            reason=result.reason,
            activated=saved.version if saved is not None else None,
            samples=len(samples),
            dry_run=dry_run,
        )
        return run

    def run_all(self, *, dry_run: bool = False) -> tuple[list[AdaptRun], dict[str, str]]:
        """Every learning route in turn: the runs, and the routes that failed with the reason. A route that fails
        (bad data, throttling) is logged and does not stop the others."""
        runs: list[AdaptRun] = []
        failed: dict[str, str] = {}
        for route_id in self.learning_routes():
            try:
                runs.append(self.run(route_id, dry_run=dry_run, respect_hold=True))
            except Exception as exc:  # noqa: BLE001 - reported per route; the other routes still adapt
                logger.exception("adapt_failed", route=route_id)
                failed[route_id] = f"{type(exc).__name__}: {exc}"
        return runs, failed
