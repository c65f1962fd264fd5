"""The one composition root: every store, provider and client the functions use is built here, from settings.

The Lambda handlers, the replay worker and local mode call these builders; tests pass fakes through their keyword
arguments instead of patching attributes. Nothing is cached at module level: each build owns what it creates (a
Lambda handler builds once per cold start and keeps the result).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from llm_router.accounting import UsageAccounting
from llm_router.api import Result, RouterApi
from llm_router.breaker import CircuitBreaker
from llm_router.cache import ResponseCache
from llm_router.gateway import Gateway
from llm_router.metrics import COUNT, Emitter, Metric, MetricsRecorder, emitter_for
from llm_router.outcomes import OutcomeRecorder
from llm_router.providers.base import Deadline, Provider, ProviderResponse
from llm_router.providers.registry import ProviderRegistry
from llm_router.routing.snapshot import InvalidItem
from llm_router.schemas.catalog import ModelSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.settings import AdaptSettings, AuthorizerSettings, GatewaySettings, ReplaySettings, RouterSettings
from llm_router.stores.aws import AWS_CONFIG, new_client
from llm_router.stores.config_store import ConfigStore
from llm_router.stores.fallback_queue import FallbackQueue
from llm_router.stores.key_store import KeyStore
from llm_router.stores.outcome_store import OutcomeStore
from llm_router.stores.payload_store import PayloadStore
from llm_router.stores.request_store import RequestStore
from llm_router.stores.response_cache import DynamoResponseCache
from llm_router.stores.secrets import ProviderKeys
from llm_router.stores.tenant_store import TenantStore
from llm_router.stores.usage_store import UsageStore

if TYPE_CHECKING:
    from llm_router.adapting import Adapter, OutcomeSource
    from llm_router.idempotency import IdempotentRunner
    from llm_router.replay import Replayer
    from llm_router.stores.adaptation_store import AdaptationStore

_UNSET: Any = object()


class AwsClients:
    """The AWS clients of one composition, each created on first use (a cold start creates only what it calls).

    `endpoint_url` and `credentials` point every client somewhere other than AWS (local mode's emulated services);
    left out, botocore's own resolution applies (the function's role, `AWS_ENDPOINT_URL_*`)."""

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self._kwargs: dict[str, Any] = {"region_name": region, "config": AWS_CONFIG}
        if endpoint_url:
            self._kwargs["endpoint_url"] = endpoint_url
        self._kwargs.update(credentials or {})
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    client = self._clients[service] = new_client(service, **self._kwargs)
        return client


def provider_factories(
    settings: GatewaySettings, clients: AwsClients, key_environ: Mapping[str, str] | None = None
) -> dict[str, Callable[[], Provider]]:
    """Adapters for the real APIs, each created when a model of its kind is first called; they share one
    provider-keys cache: the secret, and in local mode only, `key_environ` (the process environment by default)."""
    local = settings.local_mode
    environ = (key_environ if key_environ is not None else os.environ) if local else {}
    keys_lock = threading.Lock()
    keys: list[ProviderKeys] = []

    def provider_keys() -> ProviderKeys:
        with keys_lock:
            if not keys:
                secretsmanager = clients.get("secretsmanager") if settings.provider_keys_secret_id else None
                keys.append(
                    ProviderKeys(
                        settings.provider_keys_secret_id,
                        max_age=settings.provider_keys_max_age_seconds,
                        secretsmanager=secretsmanager,
                        environ=environ,
                    )
                )
            return keys[0]

    def openai_provider() -> Provider:
        from llm_router.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(provider_keys(), allow_loopback_http=local)

    def anthropic_provider() -> Provider:
        from llm_router.providers.anthropic import AnthropicProvider

        return AnthropicProvider(provider_keys(), allow_loopback_http=local)

    def bedrock_provider() -> Provider:
        from llm_router.providers.bedrock import BedrockProvider

        return BedrockProvider()

    return {"openai": openai_provider, "anthropic": anthropic_provider, "bedrock": bedrock_provider}


def build_gateway(
    settings: GatewaySettings,
    *,
    clients: AwsClients | None = None,
    emit: Emitter | None = _UNSET,
    providers: dict[str, Provider] | None = None,
    breaker: CircuitBreaker | None = None,
    sleep: Callable[[float], None] = time.sleep,
    accounting: bool = True,
    key_environ: Mapping[str, str] | None = None,
    cache: ResponseCache | None = _UNSET,
    shadow: bool = True,
    outcomes: OutcomeRecorder | None = _UNSET,
) -> Gateway:
    """The gateway and everything it calls. `emit` receives each EMF document (default: the settings' sink);
    `providers` replaces adapters by provider name (`simulated`, `openai`, `bedrock`, ...); `cache` replaces the
    response cache in the State table (None: no caching, whatever the config says); `shadow` False leaves
    shadow evaluation out (the replay function, which may not send to the queue); `outcomes` replaces the
    recorder of routing outcomes."""
    clients = clients or AwsClients()
    ddb = clients.get("dynamodb")
    metrics = MetricsRecorder(emitter_for(settings.metrics_sink) if emit is _UNSET else emit, settings.service_name)

    def count_invalid(items: tuple[InvalidItem, ...]) -> None:
        metrics.record([(Metric.INVALID_CONFIG_ITEMS, len(items), COUNT)], dimensions={})

    config = ConfigStore(
        settings.config_table_name, ttl_seconds=settings.rules_ttl_seconds, on_invalid=count_invalid, dynamodb=ddb
    )
    registry = ProviderRegistry(
        simulate_all=settings.simulate_all, factories=provider_factories(settings, clients, key_environ)
    )
    for name, provider in (providers or {}).items():
        registry.register(name, provider)
    queue = requests = None
    if settings.fallback_queue_url:
        queue = build_fallback_queue(settings, settings.fallback_queue_url, clients)
        requests = build_request_store(settings, clients)
    usage_accounting = None
    if accounting:
        tenants = TenantStore(settings.config_table_name, ttl_seconds=settings.rules_ttl_seconds, dynamodb=ddb)
        usage = UsageStore(settings.state_table_name, dynamodb=ddb)
        usage_accounting = UsageAccounting(tenants, usage, metrics, buffer_seconds=settings.usage_flush_seconds)
    if outcomes is _UNSET:
        outcomes = OutcomeRecorder(
            build_outcome_store(settings, clients),
            metrics,
            queue=queue if shadow and queue is not None else None,
            permitted=usage_accounting.permitted_models if usage_accounting is not None else None,
        )
    return Gateway(
        config,
        registry,
        metrics,
        deadline_seconds=settings.deadline_seconds,
        breaker=breaker or CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_cooldown_seconds),
        sleep=sleep,
        queue=queue,
        requests=requests,
        accounting=usage_accounting,
        regex_scan_chars=settings.regex_scan_chars,
        cache=DynamoResponseCache(settings.state_table_name, dynamodb=ddb) if cache is _UNSET else cache,
        outcomes=outcomes,
    )


def build_outcome_store(settings: GatewaySettings | AdaptSettings, clients: AwsClients) -> OutcomeStore:
    """Routing outcomes in the State table, kept for the configured retention."""
    return OutcomeStore(
        settings.state_table_name, retention_days=settings.outcome_retention_days, dynamodb=clients.get("dynamodb")
    )


def build_fallback_queue(settings: GatewaySettings, queue_url: str, clients: AwsClients) -> FallbackQueue:
    """The queue the gateway writes and the replay worker reads: a message carries only the request id; the body
    and the tenant wait in the State table, written by the router."""
    payloads = PayloadStore(settings.state_table_name, dynamodb=clients.get("dynamodb"))
    return FallbackQueue(queue_url, payloads, sqs=clients.get("sqs"))


def build_request_store(settings: GatewaySettings, clients: AwsClients) -> RequestStore:
    return RequestStore(
        settings.state_table_name, ttl_seconds=settings.request_result_ttl_seconds, dynamodb=clients.get("dynamodb")
    )


def build_router_api(
    settings: RouterSettings, *, clients: AwsClients | None = None, gateway: Gateway | None = None, **overrides: Any
) -> RouterApi:
    """The router function's HTTP surface: the gateway, idempotency and request records."""
    from llm_router.idempotency import IdempotentRunner

    clients = clients or AwsClients()
    gateway = gateway or build_gateway(settings, clients=clients, **overrides)
    return RouterApi(
        gateway,
        max_body_bytes=settings.max_body_bytes,
        idempotency=LazyIdempotency(
            lambda: IdempotentRunner(
                settings.state_table_name, settings.idempotency_ttl_seconds, dynamodb=clients.get("dynamodb")
            )
        ),
        requests=build_request_store(settings, clients),
        cors_origins=settings.cors_origins,
        feedback=build_outcome_store(settings, clients),
    )


class LazyIdempotency:
    """Builds the idempotency runner on the first request that sends an `Idempotency-Key`: Powertools'
    idempotency utility is a large import that most requests never need."""

    def __init__(self, build: Callable[[], IdempotentRunner]) -> None:
        self._build = build
        self._runner: IdempotentRunner | None = None
        self._lock = threading.Lock()

    def run(
        self, tenant: str, idempotency_key: str, body: bytes, work: Callable[[], Result], context: Any = None
    ) -> Result:
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    self._runner = self._build()
        return self._runner.run(tenant, idempotency_key, body, work, context)


def build_replayer(settings: ReplaySettings, *, clients: AwsClients | None = None, **overrides: Any) -> Replayer:
    """The replay worker over the fallback queue (the same gateway logic as a live request)."""
    from llm_router.replay import Replayer
    from llm_router.shadow import ShadowEvaluator

    clients = clients or AwsClients()
    gateway = build_gateway(settings, clients=clients, shadow=False, **overrides)
    queue = build_fallback_queue(settings, settings.fallback_queue_url, clients)
    shadow = ShadowEvaluator(
        build_outcome_store(settings, clients),
        queue,
        GatewayModels(gateway),
        UsageStore(settings.state_table_name, dynamodb=clients.get("dynamodb")),
        gateway.metrics,
        budget_usd=GatewayModels(gateway).shadow_budget,
        deadline_seconds=settings.deadline_seconds / 2,
    )
    return Replayer(
        gateway,
        queue,
        build_request_store(settings, clients),
        max_receive_count=settings.max_receive_count,
        backoff_seconds=settings.replay_backoff_seconds,
        sqs=clients.get("sqs"),
        shadow=shadow,
    )


class GatewayModels:
    """The catalog and providers of a gateway, as shadow evaluation calls them: one model, no routing."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def snapshot_models(self) -> dict[str, ModelSpec]:
        return self._gateway.config.snapshot().models

    def shadow_budget(self, route_id: str) -> float | None:
        """The route's daily shadow budget, or None when the route no longer evaluates in shadow."""
        route = self._gateway.config.snapshot().routes.get(route_id)
        shadow = route.learn.shadow if route is not None and route.learn is not None else None
        return shadow.daily_budget_usd if shadow is not None else None

    def complete(self, request: ChatCompletionRequest, model: ModelSpec, deadline: Deadline) -> ProviderResponse:
        return self._gateway.providers.for_model(model).complete(request, model, deadline)


def build_key_store(settings: AuthorizerSettings | GatewaySettings, *, clients: AwsClients | None = None) -> KeyStore:
    """What the authorizer checks keys against."""
    return KeyStore(settings.config_table_name, dynamodb=(clients or AwsClients()).get("dynamodb"))


def build_adaptation_store(
    settings: AdaptSettings | GatewaySettings, *, clients: AwsClients | None = None
) -> AdaptationStore:
    """The versioned adaptations of routes in the Config table (`adapt list`, `adapt rollback`)."""
    from llm_router.stores.adaptation_store import AdaptationStore

    return AdaptationStore(settings.config_table_name, dynamodb=(clients or AwsClients()).get("dynamodb"))


def build_adapter(
    settings: AdaptSettings | GatewaySettings,
    *,
    clients: AwsClients | None = None,
    outcomes: OutcomeSource | None = None,
    seed: int = 0,
) -> Adapter:
    """Online adaptation (`llm-router adapt ROUTE`, the scheduled adapt function): the routes as the router reads
    them (uncached), the outcome records collected in the State table (`outcomes` replaces them) and the
    adaptation versions."""
    from llm_router.adapting import Adapter

    clients = clients or AwsClients()
    ddb = clients.get("dynamodb")
    if outcomes is None:
        outcomes = build_outcome_store(settings, clients)
    config = ConfigStore(settings.config_table_name, ttl_seconds=0, dynamodb=ddb)
    return Adapter(config.snapshot, build_adaptation_store(settings, clients=clients), outcomes, seed=seed)
