"""A value read from DynamoDB on first use and again once older than a TTL, shared by the router's config caches."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from llm_router.errors import RouterError
from llm_router.observability import logger

T = TypeVar("T")


class ConfigUnavailableError(RouterError):
    status = 503
    type = "server_error"
    code = "config_unavailable"


class TtlCache(Generic[T]):
    """Loads lazily, reloads after `ttl` seconds; a failed reload keeps serving the last good value."""

    def __init__(self, load: Callable[[], T], *, ttl: float, what: str, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._load = load
        self._what = what
        self._clock = clock
        self._value: T | None = None
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is not None and self._clock() - self._loaded_at < self.ttl:
            return value
        with self._lock:
            if self._value is not None and self._clock() - self._loaded_at < self.ttl:
                return self._value
            try:
                value = self._load()
            except Exception as exc:
                # Keep routing on the last good value rather than failing every request while the table is away.
                if self._value is None:
                    logger.exception("config_load_failed", what=self._what)
                    raise ConfigUnavailableError(f"The {self._what} could not be loaded.") from exc
                logger.warning("config_refresh_failed", what=self._what, error=type(exc).__name__)
                self._loaded_at = self._clock()
                return self._value
            self._value, self._loaded_at = value, self._clock()
            return value

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")
