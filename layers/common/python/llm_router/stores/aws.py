"""AWS clients. The functions get theirs from `wiring.AwsClients`; `client()` serves the CLI, one per service.

Plain botocore clients: boto3's session adds nothing the router uses, and importing it (with s3transfer) would
add tens of milliseconds to every cold start.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from botocore.config import Config

# The router owns fallback, so the SDK retries little and gives up quickly on connection problems.
# Parameters are built by this package, not by callers, and the service validates them again: client-side
# validation would cost ~15% of every call's CPU (the usage counters make several calls per request).
AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5, parameter_validation=False
)


_creating = threading.Lock()


@cache
def client(service: str, region: str | None = None) -> Any:
    """A shared client for `service` (and `region`, default from the environment)."""
    return new_client(service, region_name=region, config=AWS_CONFIG)


def new_client(service: str, **kwargs: Any) -> Any:
    """A new botocore client from the process's session (a session is not thread-safe: one client at a time)."""
    with _creating:
        return session().create_client(service, **kwargs)


@cache
def session() -> Any:
    """One botocore session per process: its loader reads the endpoint and service data files (tens of
    milliseconds of JSON) once, not once per client. `reset()` forgets it with the clients."""
    import botocore.session

    return botocore.session.get_session()


def reset() -> None:
    """Forget every client and the session (tests and local mode, after changing the environment)."""
    client.cache_clear()
    session.cache_clear()
