"""Environment variable names, defined once, and one settings model per function, read once at cold start.

The stack (infra/) builds each function's environment from `Env` and the function's model, and an infra test
holds the two together: a variable the stack forgets fails the deploy's tests, not the first request. A model
without a table name or queue URL it needs raises `SettingsError` naming the variable, instead of querying a
default table that does not exist in the account.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

METRICS_NAMESPACE = "LlmRouter"
SERVICE_NAME = "llm-router"
# The table names local mode and the CLI use when nothing else is given (never a deployed function's default).
DEFAULT_CONFIG_TABLE = "llm-router-config"
DEFAULT_STATE_TABLE = "llm-router-state"


class Env(StrEnum):
    """Every environment variable the stack sets or the code reads (provider keys named in the catalog aside)."""

    CONFIG_TABLE_NAME = "CONFIG_TABLE_NAME"
    STATE_TABLE_NAME = "STATE_TABLE_NAME"
    FALLBACK_QUEUE_URL = "FALLBACK_QUEUE_URL"
    PROVIDER_KEYS_SECRET_ID = "PROVIDER_KEYS_SECRET_ID"  # noqa: S105 - a variable name, not a secret
    PROVIDER_KEYS_MAX_AGE_SECONDS = "PROVIDER_KEYS_MAX_AGE_SECONDS"
    RULES_TTL_SECONDS = "RULES_TTL_SECONDS"
    MAX_BODY_BYTES = "MAX_BODY_BYTES"
    CORS_ALLOWED_ORIGINS = "CORS_ALLOWED_ORIGINS"
    REQUEST_TIMEOUT_SECONDS = "REQUEST_TIMEOUT_SECONDS"
    DEADLINE_MARGIN_SECONDS = "DEADLINE_MARGIN_SECONDS"
    MAX_RECEIVE_COUNT = "MAX_RECEIVE_COUNT"
    REPLAY_BACKOFF_SECONDS = "REPLAY_BACKOFF_SECONDS"
    REQUEST_RESULT_TTL_SECONDS = "REQUEST_RESULT_TTL_SECONDS"
    IDEMPOTENCY_TTL_SECONDS = "IDEMPOTENCY_TTL_SECONDS"
    CIRCUIT_FAILURE_THRESHOLD = "CIRCUIT_FAILURE_THRESHOLD"
    CIRCUIT_COOLDOWN_SECONDS = "CIRCUIT_COOLDOWN_SECONDS"
    USAGE_FLUSH_SECONDS = "USAGE_FLUSH_SECONDS"
    OUTCOME_RETENTION_DAYS = "OUTCOME_RETENTION_DAYS"
    SIMULATE = "LLM_ROUTER_SIMULATE"
    METRICS_SINK = "LLM_ROUTER_METRICS_SINK"
    STREAMING_RESPONSES = "LLM_ROUTER_STREAMING_RESPONSES"
    LOCAL_KEY = "LLM_ROUTER_LOCAL_KEY"
    # Set only by local mode (`llm-router serve`, tests): provider keys may come from LLM_ROUTER_KEY_* variables and
    # models may be reached over plain http on loopback. The stack never sets it.
    LOCAL_MODE = "LLM_ROUTER_LOCAL_MODE"
    REGEX_SCAN_CHARS = "REGEX_SCAN_CHARS"
    PORT = "PORT"
    # Read by Powertools itself, except the service name and the tracing switch, which the models read too.
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
    POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
    POWERTOOLS_LOGGER_LOG_EVENT = "POWERTOOLS_LOGGER_LOG_EVENT"
    POWERTOOLS_TRACE_ENABLED = "POWERTOOLS_TRACE_ENABLED"
    POWERTOOLS_TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"
    POWERTOOLS_TRACER_CAPTURE_RESPONSE = "POWERTOOLS_TRACER_CAPTURE_RESPONSE"
    # Set by Lambda (the runtime API) or by the stack for Lambda (a wrapper script run before the runtime).
    LAMBDA_RUNTIME_API = "AWS_LAMBDA_RUNTIME_API"
    EXEC_WRAPPER = "AWS_LAMBDA_EXEC_WRAPPER"


class SettingsError(Exception):
    """A function's environment lacks a variable it needs, or holds a value it cannot use."""

    def __init__(self, model: str, missing: list[str], invalid: list[str]) -> None:
        self.missing = missing
        self.invalid = invalid
        problems = []
        if missing:
            problems.append("missing environment variable(s) " + ", ".join(missing))
        if invalid:
            problems.append("invalid " + "; ".join(invalid))
        super().__init__(f"{model}: {'; '.join(problems)}")


class EnvSettings(BaseModel):
    """A model whose fields are environment variables (each field's alias is its `Env` name)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings in `environ` (default: the process environment); empty values count as unset."""
        source = os.environ if environ is None else environ
        values = {name: value for name in cls.variables() if (value := source.get(name))}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            missing = [str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing"]
            invalid = [f"{e['loc'][0]} ({e['msg']})" for e in exc.errors() if e["type"] != "missing"]
            raise SettingsError(cls.__name__, missing, invalid) from None

    @classmethod
    def variables(cls) -> frozenset[Env]:
        """Every variable this model reads."""
        return frozenset(Env(field.alias or name) for name, field in cls.model_fields.items())

    @classmethod
    def required_variables(cls) -> frozenset[Env]:
        """The variables without which this model refuses to load."""
        return frozenset(Env(field.alias or name) for name, field in cls.model_fields.items() if field.is_required())


class ObservabilitySettings(EnvSettings):
    """What observability.py needs, common to every function; never fails (everything has a default)."""

    service_name: str = Field(SERVICE_NAME, alias=Env.POWERTOOLS_SERVICE_NAME)
    tracing_enabled: bool = Field(False, alias=Env.POWERTOOLS_TRACE_ENABLED)


class GatewaySettings(ObservabilitySettings):
    """What the gateway reads: the router function runs it for live requests, the replay function for queued ones."""

    config_table_name: str = Field(alias=Env.CONFIG_TABLE_NAME)
    state_table_name: str = Field(alias=Env.STATE_TABLE_NAME)
    # The SQS fallback queue: requests that every candidate failed (and async requests) wait there for replay.
    # Without one, such requests are refused with 503 instead of queued.
    fallback_queue_url: str | None = Field(None, alias=Env.FALLBACK_QUEUE_URL)
    # How long rules and the model catalog are cached in memory before they are read again.
    rules_ttl_seconds: float = Field(30.0, ge=0, alias=Env.RULES_TTL_SECONDS)
    # The API Gateway integration timeout; each request's overall deadline is this minus the margin.
    request_timeout_seconds: float = Field(29.0, gt=0, alias=Env.REQUEST_TIMEOUT_SECONDS)
    deadline_margin_seconds: float = Field(1.5, ge=0, alias=Env.DEADLINE_MARGIN_SECONDS)
    # Answer every model with the simulated provider (local mode, demos, benchmarks).
    simulate_all: bool = Field(False, alias=Env.SIMULATE)
    # Where EMF metric lines go: "stdout" (Lambda, CloudWatch picks them up), "off", or a file path.
    metrics_sink: str = Field("stdout", alias=Env.METRICS_SINK)
    # Vendor API keys: one Secrets Manager secret holding a JSON map of key name -> key (see stores/secrets.py).
    provider_keys_secret_id: str | None = Field(None, alias=Env.PROVIDER_KEYS_SECRET_ID)
    provider_keys_max_age_seconds: float = Field(300.0, ge=0, alias=Env.PROVIDER_KEYS_MAX_AGE_SECONDS)
    # How long queued requests and their results can be read with GET /v1/requests/{id}.
    request_result_ttl_seconds: int = Field(86_400, gt=0, alias=Env.REQUEST_RESULT_TTL_SECONDS)
    # Circuit breaker per model and process: this many consecutive failures rest the model for the cooldown.
    circuit_failure_threshold: int = Field(5, ge=1, alias=Env.CIRCUIT_FAILURE_THRESHOLD)
    circuit_cooldown_seconds: float = Field(30.0, ge=0, alias=Env.CIRCUIT_COOLDOWN_SECONDS)
    # Usage counters of tenants without a budget are written at most this often (per tenant and day) instead of
    # with every answer; 0 writes them with every answer (stores/usage_buffer.py).
    usage_flush_seconds: float = Field(0.0, ge=0, alias=Env.USAGE_FLUSH_SECONDS)
    # How long routing outcomes (records of requests on routes with `learn.collect`, their feedback and shadow
    # judgements) are kept in the State table.
    outcome_retention_days: int = Field(90, ge=1, le=3650, alias=Env.OUTCOME_RETENTION_DAYS)
    local_mode: bool = Field(False, alias=Env.LOCAL_MODE)
    # How many characters of a request's text a `regex` condition searches (a bound on backtracking time).
    regex_scan_chars: int = Field(16_384, ge=1, alias=Env.REGEX_SCAN_CHARS)

    @property
    def deadline_seconds(self) -> float:
        """The overall time budget of one request, leaving room to answer before API Gateway gives up."""
        return max(1.0, self.request_timeout_seconds - self.deadline_margin_seconds)


class RouterSettings(GatewaySettings):
    """The router function (and local mode): the gateway behind the HTTP surface."""

    # Request bodies above this many bytes are refused with 400 before any parsing.
    max_body_bytes: int = Field(1_048_576, gt=0, alias=Env.MAX_BODY_BYTES)
    # How long an Idempotency-Key replays its first answer.
    idempotency_ttl_seconds: int = Field(3_600, gt=0, alias=Env.IDEMPOTENCY_TTL_SECONDS)
    # Browser origins allowed to call the API (comma-separated, `*` for any); empty turns CORS off.
    cors_allowed_origins: str = Field("", alias=Env.CORS_ALLOWED_ORIGINS)

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_allowed_origins.split(",") if o.strip())


class ReplaySettings(GatewaySettings):
    """The replay function: the gateway over the fallback queue, which it cannot work without."""

    fallback_queue_url: str = Field(alias=Env.FALLBACK_QUEUE_URL)
    # Must equal the queue's redrive maxReceiveCount: the replay that sees this count marks the request failed.
    max_receive_count: int = Field(5, ge=1, alias=Env.MAX_RECEIVE_COUNT)
    # First visibility back-off of a message whose replay failed; doubles with each receive (capped at 15 min).
    replay_backoff_seconds: float = Field(30.0, ge=0, alias=Env.REPLAY_BACKOFF_SECONDS)


class AdaptSettings(ObservabilitySettings):
    """The scheduled adapt function: it reads routes and outcomes, and writes adaptation versions."""

    config_table_name: str = Field(alias=Env.CONFIG_TABLE_NAME)
    state_table_name: str = Field(alias=Env.STATE_TABLE_NAME)
    # How far back outcome records are read (they expire after it anyway): the router's setting.
    outcome_retention_days: int = Field(90, ge=1, le=3650, alias=Env.OUTCOME_RETENTION_DAYS)


class AuthorizerSettings(ObservabilitySettings):
    """The authorizer function: it reads API key hashes from the Config table and nothing else."""

    config_table_name: str = Field(alias=Env.CONFIG_TABLE_NAME)


@cache
def get_settings() -> RouterSettings:
    """The process-wide router settings (cached; tests call `get_settings.cache_clear()` after changing the env)."""
    return RouterSettings.from_env()
