"""The circuit breaker: a model that keeps failing rests for a while instead of spending every request's deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Per model, per process: after `threshold` consecutive retryable failures the model rests for `cooldown`
    seconds; then one trial request decides whether it closes again."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._trial: set[str] = set()
        self._lock = threading.Lock()

    def allow(self, model_id: str) -> bool:
        with self._lock:
            until = self._open_until.get(model_id)
            if until is None:
                return True
            if self._clock() < until or model_id in self._trial:
                return False
            self._trial.add(model_id)  # half-open: exactly one trial request
            return True

    def success(self, model_id: str) -> None:
        with self._lock:
            self._failures.pop(model_id, None)
            self._open_until.pop(model_id, None)
            self._trial.discard(model_id)

    def failure(self, model_id: str) -> None:
        with self._lock:
            count = self._failures.get(model_id, 0) + 1
            self._failures[model_id] = count
            if model_id in self._trial or count >= self.threshold:
                self._open_until[model_id] = self._clock() + self.cooldown
                self._trial.discard(model_id)

    def rest(self, model_id: str, seconds: float) -> None:
        """Skip the model for `seconds` (a provider's Retry-After), then allow one trial request."""
        with self._lock:
            until = self._clock() + seconds
            self._open_until[model_id] = max(until, self._open_until.get(model_id, until))
            self._trial.discard(model_id)

    def release(self, model_id: str) -> None:
        """End a half-open trial that said nothing about the model's health (the request was at fault, or the
        prompt did not fit): the next request may try the model again."""
        with self._lock:
            self._trial.discard(model_id)
