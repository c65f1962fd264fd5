"""One settings model per process, read from the environment once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_CONFIG_TABLE = "llm-router-config"
DEFAULT_STATE_TABLE = "llm-router-state"
METRICS_NAMESPACE = "LlmRouter"


class RouterSettings(BaseModel):
    """What the router function reads from its environment (names are the upper-case field names)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    config_table_name: str = Field(DEFAULT_CONFIG_TABLE, alias="CONFIG_TABLE_NAME")
    state_table_name: str = Field(DEFAULT_STATE_TABLE, alias="STATE_TABLE_NAME")
    # How long rules and the model catalog are cached in memory before they are read again.
    rules_ttl_seconds: float = Field(30.0, ge=0, alias="RULES_TTL_SECONDS")
    # Request bodies above this many bytes are refused with 400 before any parsing.
    max_body_bytes: int = Field(1_048_576, gt=0, alias="MAX_BODY_BYTES")
    # The API Gateway integration timeout; each request's overall deadline is this minus the margin.
    request_timeout_seconds: float = Field(29.0, gt=0, alias="REQUEST_TIMEOUT_SECONDS")
    deadline_margin_seconds: float = Field(1.5, ge=0, alias="DEADLINE_MARGIN_SECONDS")
    # Answer every model with the simulated provider (local mode, demos, benchmarks).
    simulate_all: bool = Field(False, alias="LLM_ROUTER_SIMULATE")
    # Where EMF metric lines go: "stdout" (Lambda, CloudWatch picks them up), "off", or a file path.
    metrics_sink: str = Field("stdout", alias="LLM_ROUTER_METRICS_SINK")
    # Vendor API keys: one Secrets Manager secret holding a JSON map of key name -> key (see stores/secrets.py).
    provider_keys_secret_id: str | None = Field(None, alias="PROVIDER_KEYS_SECRET_ID")
    provider_keys_max_age_seconds: float = Field(300.0, ge=0, alias="PROVIDER_KEYS_MAX_AGE_SECONDS")
    # The SQS fallback queue: requests that every candidate failed (and async requests) wait there for replay.
    fallback_queue_url: str | None = Field(None, alias="FALLBACK_QUEUE_URL")
    # Must equal the queue's redrive maxReceiveCount: the replay that sees this count marks the request failed.
    max_receive_count: int = Field(5, ge=1, alias="MAX_RECEIVE_COUNT")
    # First visibility back-off of a message whose replay failed; doubles with each receive (capped at 15 min).
    replay_backoff_seconds: float = Field(30.0, ge=0, alias="REPLAY_BACKOFF_SECONDS")
    # Bodies above this size travel in the State table (compressed chunks) with a pointer in the message.
    queue_inline_limit_bytes: int = Field(192_000, gt=0, alias="QUEUE_INLINE_LIMIT_BYTES")
    # How long queued requests and their results can be read with GET /v1/requests/{id}.
    request_result_ttl_seconds: int = Field(86_400, gt=0, alias="REQUEST_RESULT_TTL_SECONDS")
    # How long an Idempotency-Key replays its first answer.
    idempotency_ttl_seconds: int = Field(3_600, gt=0, alias="IDEMPOTENCY_TTL_SECONDS")
    # Circuit breaker per model and process: this many consecutive failures rest the model for the cooldown.
    circuit_failure_threshold: int = Field(5, ge=1, alias="CIRCUIT_FAILURE_THRESHOLD")
    circuit_cooldown_seconds: float = Field(30.0, ge=0, alias="CIRCUIT_COOLDOWN_SECONDS")
    # Usage counters of tenants without a budget are written at most this often (per tenant and day) instead of
    # with every answer; 0 writes them with every answer (stores/usage_buffer.py).
    usage_flush_seconds: float = Field(0.0, ge=0, alias="USAGE_FLUSH_SECONDS")
    tracing_enabled: bool = Field(False, alias="POWERTOOLS_TRACE_ENABLED")
    service_name: str = Field("llm-router", alias="POWERTOOLS_SERVICE_NAME")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RouterSettings:
        """Settings from the environment (the process's own by default)."""
        return cls.model_validate(dict(os.environ if environ is None else environ))

    @property
    def deadline_seconds(self) -> float:
        """The overall time budget of one request, leaving room to answer before API Gateway gives up."""
        return max(1.0, self.request_timeout_seconds - self.deadline_margin_seconds)


@cache
def get_settings() -> RouterSettings:
    """The process-wide settings (cached; tests call `get_settings.cache_clear()` after changing the environment)."""
    return RouterSettings.model_validate(dict(os.environ))
