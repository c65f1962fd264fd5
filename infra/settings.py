"""What a deployment can tune, read once from CDK context: `cdk.json` or `cdk deploy -c key=value`.

Each field names its context key; the README (Deploy to AWS) lists them with their defaults. Values given with
`-c` arrive as strings, so every value is coerced to its field's type here and checked before any construct sees it.
"""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Node

# The retention periods CloudWatch Logs accepts, by their names in CDK.
LOG_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}
# Lambda gives log lines without a level (the EMF metric documents) the level INFO: a stricter application log
# level would drop every metric, so only these two are offered.
LOG_LEVELS = ("DEBUG", "INFO")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_PRODUCT_ID = re.compile(r"^prod-[a-z0-9]+$")
_SCHEDULE = re.compile(r"^(rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$")
POWERTOOLS_LAYERS = ("managed", "bundled")
# A streamed REST API response may last 15 minutes; a Lambda function may run as long, and the router needs
# its margin on top.
MAX_INTEGRATION_TIMEOUT_SECONDS = 890


def _key(name: str, default: Any = MISSING, **kwargs: Any) -> Any:
    if default is MISSING:
        return field(metadata={"key": name}, **kwargs)
    return field(default=default, metadata={"key": name}, **kwargs)


@dataclass(frozen=True)
class StackSettings:
    """Every deploy-time setting of the router stack (context key in each field's metadata)."""

    stack_name: str = _key("stackName", "LlmRouter")
    stage_name: str = _key("stageName", "prod")
    # API Gateway waits this long for the router (responses are streamed, so a regional REST API may wait up to
    # 15 minutes without a quota increase); the router's own deadline, its function timeout and the replay
    # worker's timing are derived from it.
    integration_timeout_seconds: int = _key("integrationTimeoutSeconds", 300)
    # How long API Gateway caches the authorizer's answer per key (0 turns caching off); also how long a
    # revoked key keeps working.
    authorizer_cache_ttl_seconds: int = _key("authorizerCacheTtlSeconds", 60)
    # Requests per second for the whole stage. A new account may have a Lambda concurrency quota as low as 10,
    # and each streamed answer holds one router instance for its whole duration: keep rate x typical answer
    # seconds under the quota (`llm-router doctor` compares them).
    throttle_rate_limit: int = _key("throttleRateLimit", 10)
    throttle_burst_limit: int = _key("throttleBurstLimit", 20)
    # GET /health is answered by API Gateway itself (no Lambda); this caps it separately from the API.
    health_throttle_rate_limit: int = _key("healthThrottleRateLimit", 5)
    max_request_bytes: int = _key("maxRequestBytes", 1_048_576)
    # Browser origins that may call the API (`["*"]` for any); empty turns CORS off and leaves OPTIONS out.
    cors_allowed_origins: tuple[str, ...] = _key("corsAllowedOrigins", ())
    waf_enabled: bool = _key("wafEnabled", False)
    waf_rate_limit_per_5_minutes: int = _key("wafRateLimitPer5Minutes", 2000)
    log_retention_days: int = _key("logRetentionDays", 30)
    log_level: str = _key("logLevel", "INFO")
    tracing_enabled: bool = _key("tracingEnabled", False)
    router_memory_mb: int = _key("routerMemoryMb", 1024)
    rules_ttl_seconds: int = _key("rulesTtlSeconds", 30)
    # Usage counters of tenants without a budget are written at most this often per tenant and day (0: with
    # every answer); budgets always see every answer.
    usage_flush_seconds: int = _key("usageFlushSeconds", 5)
    # How long routing outcomes (routes with `learn.collect`: records, feedback, shadow judgements) are kept.
    outcome_retention_days: int = _key("outcomeRetentionDays", 90)
    bedrock_model_arns: tuple[str, ...] = _key("bedrockModelArns", ())
    # Besides the router's role, the only principals the fallback queue's policy lets send: roles operators use to
    # re-drive dead-lettered requests (`llm-router dlq replay`). Messages name only a request the router recorded.
    queue_operator_role_arns: tuple[str, ...] = _key("queueOperatorRoleArns", ())
    # Third-party Bedrock models (Anthropic, Meta, Mistral...) are subscribed through AWS Marketplace on their
    # first call, with the caller's rights: the router may subscribe (Subscribe, Unsubscribe, ViewSubscriptions),
    # limited to these Marketplace product ids when any are listed.
    bedrock_marketplace_subscribe: bool = _key("bedrockMarketplaceSubscribe", True)
    bedrock_marketplace_product_ids: tuple[str, ...] = _key("bedrockMarketplaceProductIds", ())
    powertools_version: str = _key("powertoolsVersion", "3.37.0")
    # managed: AWS's Powertools layer, found through its public SSM parameter (about 30 commercial regions);
    # bundled: the pinned packages of infra/powertools-requirements.txt, built for the Lambda platform at synth
    # time (any region and partition, needs PyPI access where `cdk synth` runs).
    powertools_layer: str = _key("powertoolsLayer", "managed")
    # The account-wide role API Gateway writes logs with (AWS::ApiGateway::Account): without it the stage's
    # access logs fail to create. Turn off when the account and region already have one.
    api_gateway_cloudwatch_role: bool = _key("apiGatewayCloudWatchRole", True)
    # How many replay workers the fallback queue may run at once (SQS event source maximum concurrency, 2..1000).
    replay_max_concurrency: int = _key("replayMaxConcurrency", 2)
    # Reserved concurrency, opt-in: it is taken from the account's unreserved pool, which must keep 10, so it
    # fails to deploy in new accounts with a low quota. None leaves the function unreserved.
    router_reserved_concurrency: int | None = _key("routerReservedConcurrency", None)
    replay_reserved_concurrency: int | None = _key("replayReservedConcurrency", None)
    alarm_email: str = _key("alarmEmail", "")
    cost_per_hour_alarm_usd: float = _key("costPerHourAlarmUsd", 5.0)
    error_5xx_rate_alarm_percent: float = _key("error5xxRateAlarmPercent", 5.0)
    fallback_max_receive_count: int = _key("fallbackMaxReceiveCount", 5)
    # Opt-in: an EventBridge schedule expression (`rate(1 day)`, `cron(0 3 * * ? *)`) on which a function re-fits
    # every route with `learn` settings from its outcomes and promotes what beats the version in service. Empty:
    # no function and no schedule (`llm-router adapt ROUTE` still works from a laptop).
    adapt_schedule: str = _key("adaptSchedule", "")

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid cdk.json context: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        checks = [
            (re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", self.stack_name), "stackName: letters, digits and '-'"),
            (re.fullmatch(r"[A-Za-z0-9_]{1,128}", self.stage_name), "stageName: letters, digits and '_'"),
            # A streamed response may last 15 minutes, which is also Lambda's longest timeout; the router needs a
            # few seconds beyond the integration timeout.
            (
                1 <= self.integration_timeout_seconds <= MAX_INTEGRATION_TIMEOUT_SECONDS,
                f"integrationTimeoutSeconds: 1..{MAX_INTEGRATION_TIMEOUT_SECONDS}",
            ),
            (0 <= self.authorizer_cache_ttl_seconds <= 3600, "authorizerCacheTtlSeconds: 0..3600"),
            (self.throttle_rate_limit > 0, "throttleRateLimit: > 0"),
            (self.throttle_burst_limit > 0, "throttleBurstLimit: > 0"),
            (self.health_throttle_rate_limit > 0, "healthThrottleRateLimit: > 0"),
            # Lambda's synchronous payload limit is 6 MB, base64 encoding included.
            (1024 <= self.max_request_bytes <= 4_194_304, "maxRequestBytes: 1024..4194304"),
            (100 <= self.waf_rate_limit_per_5_minutes <= 2_000_000_000, "wafRateLimitPer5Minutes: >= 100"),
            (self.log_retention_days in LOG_RETENTION, f"logRetentionDays: one of {tuple(LOG_RETENTION)}"),
            (self.log_level in LOG_LEVELS, f"logLevel: one of {LOG_LEVELS}"),
            (128 <= self.router_memory_mb <= 10240, "routerMemoryMb: 128..10240"),
            (self.rules_ttl_seconds >= 0, "rulesTtlSeconds: >= 0"),
            (0 <= self.usage_flush_seconds <= 300, "usageFlushSeconds: 0..300"),
            (1 <= self.outcome_retention_days <= 3650, "outcomeRetentionDays: 1..3650"),
            (_SEMVER.match(self.powertools_version), "powertoolsVersion: a release such as 3.37.0"),
            (self.powertools_layer in POWERTOOLS_LAYERS, f"powertoolsLayer: one of {POWERTOOLS_LAYERS}"),
            (
                all(_PRODUCT_ID.match(p) for p in self.bedrock_marketplace_product_ids),
                "bedrockMarketplaceProductIds: Marketplace product ids (prod-...)",
            ),
            (2 <= self.replay_max_concurrency <= 1000, "replayMaxConcurrency: 2..1000"),
            (
                self.router_reserved_concurrency is None or self.router_reserved_concurrency >= 1,
                "routerReservedConcurrency: >= 1 or null",
            ),
            (
                self.replay_reserved_concurrency is None
                or self.replay_reserved_concurrency >= self.replay_max_concurrency,
                "replayReservedConcurrency: >= replayMaxConcurrency or null",
            ),
            (self.alarm_email == "" or _EMAIL.match(self.alarm_email), "alarmEmail: an email address or empty"),
            (self.cost_per_hour_alarm_usd > 0, "costPerHourAlarmUsd: > 0"),
            (0 < self.error_5xx_rate_alarm_percent <= 100, "error5xxRateAlarmPercent: 0..100"),
            (1 <= self.fallback_max_receive_count <= 1000, "fallbackMaxReceiveCount: 1..1000"),
            (
                self.adapt_schedule == "" or _SCHEDULE.match(self.adapt_schedule),
                "adaptSchedule: empty, or an EventBridge schedule such as rate(1 day) or cron(0 3 * * ? *)",
            ),
        ]
        return [message for ok, message in checks if not ok]

    @property
    def log_retention(self) -> logs.RetentionDays:
        return logs.RetentionDays[LOG_RETENTION[self.log_retention_days]]

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        """The settings from `node`'s context; a key that is absent (or null) keeps its default."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = node.try_get_context(item.metadata["key"])
            if raw is not None:
                values[item.name] = _coerce(item.metadata["key"], raw, item.default)
        return cls(**values)


def _coerce(key: str, raw: Any, default: Any) -> Any:
    """`raw` as the type of `default` (strings from `-c key=value` included)."""
    try:
        if isinstance(default, bool):
            if isinstance(raw, str):
                if raw.lower() not in ("true", "false"):
                    raise ValueError(raw)
                return raw.lower() == "true"
            return bool(raw)
        if isinstance(default, tuple):
            items = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(raw)
            return tuple(items)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, int) or default is None:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        return str(raw)
    except (TypeError, ValueError, json.JSONDecodeError):
        raise ValueError(f"invalid cdk.json context: {key}={raw!r}") from None
