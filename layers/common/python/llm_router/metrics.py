"""CloudWatch metrics as EMF (CloudWatch's embedded metric format), in the shape Powertools writes.

One EMF document per event, with the dimension sets `[Model]`, `[Route]`, `[Provider]` kept apart (never
crossed), so the number of custom metrics stays small. Tenant, request id and rule go into metadata.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, TextIO

from llm_router.settings import METRICS_NAMESPACE, SERVICE_NAME

Emitter = Callable[[dict[str, Any]], None]


class Metric(StrEnum):
    """Every metric the router emits; the dashboard and the alarms (infra/constructs/monitoring.py) read these."""

    REQUESTS = "Requests"
    INPUT_TOKENS = "InputTokens"
    OUTPUT_TOKENS = "OutputTokens"
    COST_USD = "CostUSD"
    BASELINE_COST_USD = "BaselineCostUSD"
    SAVED_USD = "SavedUSD"
    LATENCY_MS = "LatencyMs"
    ROUTER_OVERHEAD_MS = "RouterOverheadMs"
    FALLBACKS = "Fallbacks"
    PROVIDER_ERRORS = "ProviderErrors"
    QUEUED = "Queued"
    QUEUE_WRITE_FAILED = "QueueWriteFailed"
    INVALID_CONFIG_ITEMS = "InvalidConfigItems"
    BUDGET_CHECK_FAILED = "BudgetCheckFailed"
    BUDGET_EXCEEDED = "BudgetExceeded"
    BUDGET_DEGRADED = "BudgetDegraded"
    USAGE_WRITE_FAILED = "UsageWriteFailed"
    # A streamed answer that ended before its last chunk (the caller went away or the model stopped).
    STREAM_INTERRUPTED = "StreamInterrupted"
    # Answered from the response cache, without calling a model (under the [Route] dimension).
    CACHE_HITS = "CacheHits"
    # Outcome records (routes with `learn.collect`) that could not be written; the answers were not affected.
    OUTCOME_WRITE_FAILED = "OutcomeWriteFailed"
    # Shadow evaluation (routes with `learn.shadow`), under [Route]: requests judged, requests sampled but skipped
    # (also under [Reason]: budget, residency, tenant_models, no_candidate, no_text, unknown_model, not_queued),
    # evaluations that failed (also under [Reason]), and what shadow answers and judging cost.
    SHADOW_EVALUATIONS = "ShadowEvaluations"
    SHADOW_SKIPPED = "ShadowSkipped"
    SHADOW_FAILED = "ShadowFailed"
    SHADOW_COST_USD = "ShadowCostUSD"


class Dimension(StrEnum):
    """Dimension names: each is a dimension set of its own, never crossed with another."""

    SERVICE = "service"
    MODEL = "Model"
    ROUTE = "Route"
    PROVIDER = "Provider"
    ERROR_KIND = "ErrorKind"
    REASON = "Reason"


# CloudWatch's unit names (as Powertools' MetricUnit values).
COUNT = "Count"
MS = "Milliseconds"
NONE = "None"


# One encoder for every document: `json.dumps` with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def stdout_emitter(stream: TextIO | None = None) -> Emitter:
    """Write each EMF document as one line (Lambda sends stdout to CloudWatch Logs, which extracts metrics)."""

    def emit(document: dict[str, Any]) -> None:
        (stream or sys.stdout).write(_ENCODER.encode(document) + "\n")

    return emit


def file_emitter(path: str) -> Emitter:
    lock = threading.Lock()

    def emit(document: dict[str, Any]) -> None:
        line = _ENCODER.encode(document) + "\n"
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
    """Builds and emits one EMF document per call; thread-safe (nothing shared between calls).

    The document is the one Powertools' `EphemeralMetrics` serializes (a `[service]` dimension set first, then
    one set per dimension, values as lists), written directly: the metric names and units are the router's own,
    so Powertools' per-call validation and bookkeeping would cost more than the rest of a warm request's metrics.
    """

    def __init__(self, emitter: Emitter | None, service: str = SERVICE_NAME) -> None:
        self._emit = emitter
        self._service = service

    def record(
        self,
        values: Sequence[tuple[str, float, str]],
        *,
        dimensions: Mapping[str, str],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Emit `values` (metric name, as `Metric`; value; unit) once under each of `dimensions` (one set each)."""
        if self._emit is None or not values:
            return
        directive = {
            "Namespace": METRICS_NAMESPACE,
            "Dimensions": [[Dimension.SERVICE], *([name] for name in dimensions)],
            "Metrics": [{"Name": name, "Unit": unit} for name, _, unit in values],
        }
        document: dict[str, Any] = {
            "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [directive]},
            Dimension.SERVICE: self._service,
            **dimensions,
        }
        if metadata:
            document.update(metadata)
        for name, value, _ in values:
            document[name] = [float(value)]
        self._emit(document)
