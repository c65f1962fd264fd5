"""Vendor API keys: one Secrets Manager secret (a JSON map of key name -> key), cached with a max age.

A catalog model names its key with `api_key_ref`. In AWS the key comes from the secret and nowhere else: a
Config-table item must not be able to name an environment variable and have the function's own credentials
(`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) sent to a server of its choosing. Only local mode passes an
environment: there the variable `LLM_ROUTER_KEY_<api_key_ref>` is used when the secret has no entry of that name.
Keys are handed only to the adapter that puts them in a request header: they never reach logs, errors,
metrics or reprs (only key *names* do).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from llm_router.observability import logger
from llm_router.stores.aws import client

# Local mode reads `api_key_ref: OPENAI_API_KEY` from the variable LLM_ROUTER_KEY_OPENAI_API_KEY: a fixed prefix, so
# no ref reaches any other variable of the process.
ENV_KEY_PREFIX = "LLM_ROUTER_KEY_"


class ProviderKeys:
    """Resolves `api_key_ref` names to keys; thread-safe, reads the secret at most once per `max_age` seconds."""

    def __init__(
        self,
        secret_id: str | None = None,
        *,
        max_age: float = 300.0,
        secretsmanager: Any = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._client = secretsmanager
        # No environment unless one is given (local mode): on AWS keys come from the secret only.
        self._environ: Mapping[str, str] = environ if environ is not None else {}
        self._clock = clock
        self._keys: dict[str, str] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProviderKeys(secret_id={self._secret_id!r}, names={sorted(self._keys)!r})"

    def get(self, name: str) -> str | None:
        """The key stored under `name` (secret first, then LLM_ROUTER_KEY_<name> in local mode), or None."""
        key = self._secret_keys().get(name)
        if key:
            return key
        return self._environ.get(ENV_KEY_PREFIX + name) or None

    def invalidate(self) -> None:
        """Read the secret again on the next lookup (after a key was rotated)."""
        with self._lock:
            self._loaded_at = float("-inf")

    def _secret_keys(self) -> dict[str, str]:
        if self._secret_id is None:
            return {}
        if self._clock() - self._loaded_at < self._max_age:
            return self._keys
        with self._lock:
            if self._clock() - self._loaded_at < self._max_age:
                return self._keys
            try:
                self._keys = self._read_secret()
            except (BotoCoreError, ClientError, ValueError) as exc:
                # Keep the last good keys (or none) rather than failing every request; the secret's content
                # is never logged, only the kind of failure.
                logger.warning("provider_keys_unavailable", secret_id=self._secret_id, error=type(exc).__name__)
            self._loaded_at = self._clock()
            return self._keys

    def _read_secret(self) -> dict[str, str]:
        secrets = self._client or client("secretsmanager")
        value = secrets.get_secret_value(SecretId=self._secret_id)
        raw = value.get("SecretString")
        if raw is None:
            raise ValueError("the provider-keys secret has no SecretString")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            # The decoder's message quotes the text around the error, which could be part of a key.
            raise ValueError("the provider-keys secret is not a JSON object") from None
        if not isinstance(data, dict):
            raise ValueError("the provider-keys secret is not a JSON object")
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str | int) and str(v)}
