"""Logger, tracer and metrics in one place.

The tracer is created only when tracing is on: Powertools' Tracer imports the X-Ray SDK even when disabled,
which costs a large share of a cold start.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from llm_router.settings import ObservabilitySettings


@cache
def observability_settings() -> ObservabilitySettings:
    """The service name and tracing switch (every function's model includes them; they all have defaults)."""
    return ObservabilitySettings.from_env()


logger = Logger(service=observability_settings().service_name)


@cache
def tracer() -> Any | None:
    """The Powertools Tracer when POWERTOOLS_TRACE_ENABLED is true, else None."""
    if not observability_settings().tracing_enabled:
        return None
    from aws_lambda_powertools import Tracer

    return Tracer()
