"""CloudWatch metrics as EMF through Powertools.

One EMF document per event, with the dimension sets `[Model]`, `[Route]`, `[Provider]` kept apart (never
crossed), so the number of custom metrics stays small. Tenant, request id and rule go into metadata.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from llm_router.settings import METRICS_NAMESPACE

Emitter = Callable[[dict[str, Any]], None]

COUNT = MetricUnit.Count
MS = MetricUnit.Milliseconds
NONE = MetricUnit.NoUnit


def stdout_emitter(stream: TextIO | None = None) -> Emitter:
    """Write each EMF document as one line (Lambda sends stdout to CloudWatch Logs, which extracts metrics)."""

    def emit(document: dict[str, Any]) -> None:
        (stream or sys.stdout).write(json.dumps(document, separators=(",", ":")) + "\n")

    return emit


def file_emitter(path: str) -> Emitter:
    lock = threading.Lock()

    def emit(document: dict[str, Any]) -> None:
        line = json.dumps(document, separators=(",", ":")) + "\n"
        with lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(line)

    return emit


def emitter_for(sink: str) -> Emitter | None:
    """`stdout`, `off`, or a file path (local mode keeps the terminal readable)."""
    if sink == "off":
        return None
    if sink == "stdout":
        return stdout_emitter()
    return file_emitter(sink)


class MetricsRecorder:
    """Builds and emits one EMF document per call; thread-safe (a new EphemeralMetrics each time)."""

    def __init__(self, emitter: Emitter | None, service: str = "llm-router") -> None:
        self._emit = emitter
        self._service = service

    def record(
        self,
        values: list[tuple[str, float, MetricUnit]],
        *,
        dimensions: dict[str, str],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Emit `values` once under each dimension in `dimensions` (one set each)."""
        if self._emit is None or not values:
            return
        metrics = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=self._service)
        for name, value in dimensions.items():
            metrics.add_dimensions(**{name: value})
        for metric_name, metric_value, unit in values:
            metrics.add_metric(name=metric_name, unit=unit, value=metric_value)
        for key, item in (metadata or {}).items():
            metrics.add_metadata(key=key, value=item)
        self._emit(dict(metrics.serialize_metric_set()))
