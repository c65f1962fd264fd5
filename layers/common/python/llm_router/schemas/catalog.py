"""The model catalog and routes: what `models` and `routes` entries of the config file (and table items) hold."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# `embeddings` marks an embedding model: it serves /v1/embeddings only, and chat never routes to it.
Capability = Literal["tools", "images", "json", "logprobs", "embeddings"]
ProviderName = Literal["openai", "anthropic", "bedrock", "simulated"]
FailureMode = Literal[
    "none", "timeout", "throttle", "server_error", "connection_error", "context_overflow", "interrupted"
]

# Headers that carry credentials; a model's `headers` may not set them.
AUTH_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"})

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"


class Price(BaseModel):
    """USD per million tokens. Cached-token prices apply only where the provider bills them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_read_per_mtok: float | None = Field(None, ge=0)
    cache_write_per_mtok: float | None = Field(None, ge=0)
    source: str | None = None
    as_of: str | None = None


class Simulation(BaseModel):
    """How the simulated provider behaves for this model: latency, streaming pace and an injected failure mode.

    Every failure happens before the answer starts, except `interrupted`: a stream breaks off after
    `failure_after_chunks` deltas (a connection error), and a complete answer fails as `server_error` does.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(0, ge=0)
    # Pause between streamed deltas (one word each), after the first.
    chunk_delay_ms: float = Field(0, ge=0)
    failure: FailureMode = "none"
    # Share of calls that fail with `failure` (deterministic per request id and model).
    failure_rate: float = Field(1.0, ge=0, le=1)
    failure_after_chunks: int = Field(3, ge=0)


class CacheSpec(BaseModel):
    """Exact response caching for a route or a model (off unless set).

    `ttl_seconds`: how long an answer is served again. `mode`: `deterministic` caches only requests whose answer
    does not depend on sampling (no `temperature` above 0, or a `seed`); `always` also caches sampled answers, so
    the same prompt keeps getting the same reply until the entry expires.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttl_seconds: int = Field(gt=0, le=30 * 86_400)
    mode: Literal["deterministic", "always"] = "deterministic"


class ModelSpec(BaseModel):
    """A model callers and rules can name, and how to reach it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    provider: ProviderName
    model_id: str = Field(min_length=1)
    description: str = ""
    base_url: str | None = None
    api_key_ref: str | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    region: str | None = None
    price: Price = Price(input_per_mtok=0, output_per_mtok=0)
    context_window: int = Field(128_000, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    capabilities: frozenset[Capability] = frozenset()
    # Models to try after this one when it is named directly (`model: "<id>"`).
    fallbacks: tuple[str, ...] = ()
    # Request fields beyond the standard allow-list this model's API receives (openai provider only), e.g.
    # `[store, service_tier]`: an explicit opt-in, since such fields change retention or cost upstream.
    forward_fields: tuple[str, ...] = ()
    simulate: Simulation | None = None
    # Caches answers to requests that name this model directly, or that a route without its own `cache` sends here.
    cache: CacheSpec | None = None

    @model_validator(mode="after")
    def _endpoint_for_http_providers(self) -> ModelSpec:
        if self.provider in ("openai", "anthropic") and not self.base_url:
            raise ValueError(f"provider {self.provider} needs base_url")
        # Only OpenAI-compatible APIs return log probabilities; claiming them elsewhere would drop them silently.
        if "logprobs" in self.capabilities and self.provider not in ("openai", "simulated"):
            raise ValueError(f"provider {self.provider} cannot return logprobs")
        if self.base_url is not None and urlsplit(self.base_url).scheme not in ("https", "http"):
            raise ValueError("base_url must be an https URL (plain http only to loopback, in local mode)")
        return self

    @field_validator("headers")
    @classmethod
    def _no_auth_headers(cls, value: dict[str, str]) -> dict[str, str]:
        # The key from `api_key_ref` is the only credential a model call carries: a header map cannot replace it.
        clashing = sorted(name for name in value if name.lower() in AUTH_HEADERS)
        if clashing:
            raise ValueError(f"headers may not set {', '.join(clashing)}: credentials come from api_key_ref only")
        return value

    @field_validator("api_key_ref")
    @classmethod
    def _not_aws(cls, value: str | None) -> str | None:
        if value is not None and value.upper().startswith("AWS_"):
            raise ValueError("api_key_ref may not start with AWS_: it names a key of the provider-keys secret")
        return value


class ThresholdStrategy(BaseModel):
    """Send a request to `strong` when its difficulty score is at least `threshold`, else to `weak`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Literal["threshold"] = "threshold"
    weak: str
    strong: str
    threshold: float = Field(ge=0, le=1)


class ShadowSpec(BaseModel):
    """Shadow evaluation of a route: a sample of its requests is also answered by another candidate, after the
    caller has its answer (through the fallback queue), and a judge model grades both answers.

    `rate`: the share of the route's requests sampled (deterministic by request id). `judge`: the catalog model
    that grades. `daily_budget_usd`: what shadow answers and judging may spend per UTC day on this route (further
    samples that day are skipped). `candidate`: the model to compare with; by default the route strategy's other
    model (`weak` when `strong` answered, `strong` otherwise)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: float = Field(gt=0, le=1)
    judge: str = Field(pattern=ID_PATTERN)
    daily_budget_usd: float = Field(gt=0)
    candidate: str | None = Field(None, pattern=ID_PATTERN)


class LearnSpec(BaseModel):
    """What a route learns from its own traffic (off when absent).

    `collect`: write an outcome record per answered request (prompt features, never the prompt unless
    `keep_prompts`; model, cost, rule, split arm) that feedback and shadow scores are added to. `target_quality` and
    `min_samples` are what `llm-router adapt` aims for and the fewest outcomes it promotes an adaptation on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collect: bool = False
    target_quality: float = Field(0.95, gt=0, le=1)
    min_samples: int = Field(200, ge=1)
    # Keep the last user message in the outcome record (off: only its features are kept).
    keep_prompts: bool = False
    shadow: ShadowSpec | None = None

    @model_validator(mode="after")
    def _shadow_needs_records(self) -> LearnSpec:
        if self.shadow is not None and not self.collect:
            raise ValueError("shadow needs collect: true (shadow scores are written into the outcome records)")
        if self.keep_prompts and not self.collect:
            raise ValueError("keep_prompts needs collect: true (prompts are kept in the outcome records)")
        return self

    def models(self) -> set[str]:
        """The catalog models this section names."""
        if self.shadow is None:
            return set()
        return {self.shadow.judge} | ({self.shadow.candidate} if self.shadow.candidate else set())


class RouteSpec(BaseModel):
    """A name callers put in `model` (e.g. `auto`): rules for it run first, then its strategy, then `default`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    description: str = ""
    default: tuple[str, ...] = Field(min_length=1)
    # What the caller would have paid without routing; SavedUSD is measured against it.
    baseline: str | None = None
    strategy: ThresholdStrategy | None = None
    # What a tenant over its budget's soft limit gets on this route, unless the tenant says otherwise:
    # `degrade` (the cheapest capable model of the chain) or `refuse` (only the budget itself refuses).
    on_budget_exceeded: Literal["refuse", "degrade"] | None = None
    # Caches answers to this route's requests (see CacheSpec).
    cache: CacheSpec | None = None
    # Outcome collection and shadow evaluation (see LearnSpec).
    learn: LearnSpec | None = None

    @model_validator(mode="after")
    def _shadow_has_a_candidate(self) -> RouteSpec:
        shadow = self.learn.shadow if self.learn is not None else None
        if shadow is not None and shadow.candidate is None and self.strategy is None:
            raise ValueError(
                "learn.shadow needs a candidate, or a threshold strategy whose weak and strong models it compares"
            )
        return self
