"""boto3 clients, created lazily and once per process (warm starts reuse them; tests set up moto first)."""

from __future__ import annotations

from functools import cache
from typing import Any

from botocore.config import Config

# The router owns fallback, so the SDK retries little and gives up quickly on connection problems.
# Parameters are built by this package, not by callers, and the service validates them again: client-side
# validation would cost ~15% of every call's CPU (the usage counters make several calls per request).
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5, parameter_validation=False
)


@cache
def client(service: str, region: str | None = None) -> Any:
    """A shared boto3 client for `service` (and `region`, default from the environment)."""
    import boto3

    return boto3.session.Session().client(service, region_name=region, config=_CONFIG)
