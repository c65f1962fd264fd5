"""Logger, tracer and metrics in one place.

The tracer is created only when tracing is on: Powertools' Tracer imports the X-Ray SDK even when disabled,
which costs a large share of a cold start.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "llm-router"))


@cache
def tracer() -> Any | None:
    """The Powertools Tracer when POWERTOOLS_TRACE_ENABLED is true, else None."""
    if os.environ.get("POWERTOOLS_TRACE_ENABLED", "").lower() not in ("1", "true"):
        return None
    from aws_lambda_powertools import Tracer

    return Tracer()
