"""The exact response cache: which requests may be answered from it, the key an answer is kept under, and the entry.

Caching is opt-in (`cache: {ttl_seconds, mode}` on a route or a model) and exact: the key is a SHA-256 of the
tenant, the routing decision's target and every request field that can change the answer, in canonical JSON.
Fields that cannot (`user`, `metadata`, `stream`, `stream_options`) are left out, so a streamed request is served
from a non-streamed one's answer and the other way round. The decision is part of the key: a rule, route or model
edit that sends the request elsewhere never serves an answer routed the old way.

What is never cached: requests matched by a rule with a `pii` condition or a `regions` restriction (personal data
and data-residency policies keep nothing beyond the answer itself) unless that rule says `cache: allow`, errors,
refusals (`content_filter`), queued requests and streams that broke off. Tenants never share entries: the tenant is
part of the key and is checked again on every read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from llm_router.providers.base import Usage
from llm_router.routing.engine import Decision, Plan
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import CacheSpec
from llm_router.schemas.openai import ChatCompletionRequest

# Bump when the key's inputs or the entry's shape change: old entries then simply miss and expire.
KEY_VERSION = 1
# Request fields that do not change the answer.
IGNORED_FIELDS = frozenset({"user", "metadata", "stream", "stream_options"})
# What `x-router-cache` says: answered from the cache, called a model and stored its answer (when it could be
# kept), or the caller's `Cache-Control` skipped the look-up.
CacheStatus = Literal["hit", "miss", "bypass"]
# Finish reasons whose answers are kept: a refusal (content_filter) is not.
CACHEABLE_FINISH = frozenset({"stop", "length", "tool_calls"})

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_FAST = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class CacheControl:
    """The caller's wishes for one request (`Cache-Control: no-cache` -> no look-up, `no-store` -> neither)."""

    lookup: bool = True
    store: bool = True


USE_CACHE = CacheControl()


@dataclass(frozen=True)
class CachedAnswer:
    """What is kept of an answer: enough to answer again as the model did, and what that answer cost."""

    tenant: str
    route: str
    model: str
    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    usage: Usage
    cost_usd: float
    simulated: bool
    created_at: int

    def to_json(self) -> bytes:
        # Written out rather than `dataclasses.asdict`, whose deep copies cost ten times as much on every miss.
        usage = self.usage
        document = {
            "tenant": self.tenant,
            "route": self.route,
            "model": self.model,
            "content": self.content,
            "tool_calls": self.tool_calls,
            "finish_reason": self.finish_reason,
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_tokens": usage.cache_read_tokens,
                "cache_write_tokens": usage.cache_write_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
                "estimated": usage.estimated,
            },
            "cost_usd": self.cost_usd,
            "simulated": self.simulated,
            "created_at": self.created_at,
        }
        return _FAST.encode(document).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CachedAnswer:
        raw = json.loads(data)
        return cls(**{**raw, "usage": Usage(**raw["usage"])})


class ResponseCache(Protocol):
    """Where cached answers live (the State table, see stores/response_cache.py). Both calls may raise; the gateway
    treats a failure as a miss, never as a failed request."""

    def get(self, key: str, tenant: str) -> CachedAnswer | None:
        """The unexpired entry under `key` if it belongs to `tenant`, else None."""
        ...

    def put(self, key: str, entry: CachedAnswer, ttl_seconds: int) -> None: ...


@dataclass(frozen=True)
class CachePlan:
    """How one request uses the cache: its key, the route's settings, and whether to look up and to store."""

    key: str
    spec: CacheSpec
    route: str
    lookup: bool
    store: bool

    @property
    def status(self) -> CacheStatus:
        return "miss" if self.lookup else "bypass"


def cache_spec(decision: Decision, chain: Plan, snapshot: ConfigSnapshot) -> CacheSpec | None:
    """The route's cache settings; for a named model, or a route without its own, the first candidate's."""
    route = snapshot.routes.get(decision.route) if decision.route else None
    if route is not None and route.cache is not None:
        return route.cache
    return chain.models[0].cache if chain.models else None


def not_cacheable(
    request: ChatCompletionRequest, decision: Decision, snapshot: ConfigSnapshot, spec: CacheSpec
) -> str | None:
    """Why this request's answer must not be cached, or None when it may be."""
    # The rule that decided, and every policy that held over the decision: a PII or residency rule that matched
    # keeps its data out of the cache, even when another rule picked the chain, unless it says `cache: allow`.
    matched = {decision.rule, *(p.rule for p in decision.policies)}
    deciding_allows = False
    for rule in snapshot.rules:
        if rule.id not in matched:
            continue
        if rule.keeps_out_of_cache:
            return "residency_policy" if rule.regions is not None else "pii_policy"
        deciding_allows = deciding_allows or (rule.id == decision.rule and rule.cache == "allow")
    if decision.regions is not None and not deciding_allows:
        return "residency_policy"
    if spec.mode == "deterministic" and (request.temperature or 0) > 0 and _seed(request) is None:
        return "sampled"
    return None


def _seed(request: ChatCompletionRequest) -> Any:
    return (request.model_extra or {}).get("seed")


def normalized(request: ChatCompletionRequest) -> dict[str, Any]:
    """The fields that can change the answer: messages, tools, response format, sampling parameters and any field
    the router passes on unread. Absent and null are the same; `model` is covered by the decision."""
    return request.model_dump(mode="json", exclude_none=True, exclude=set(IGNORED_FIELDS) | {"model"})


def cache_key(tenant: str, request: ChatCompletionRequest, decision: Decision, chain: Plan) -> str:
    """SHA-256 of the tenant, the decision's target and the normalized request, in canonical JSON."""
    document = {
        "v": KEY_VERSION,
        "tenant": tenant,
        "target": {
            "requested": decision.requested,
            "route": decision.route,
            "rule": decision.rule,
            "arm": decision.arm,
            # Catalog ids and what each points at: a model swapped under the same id is a new target.
            "models": [[m.id, m.provider, m.model_id] for m in chain.models],
        },
        "request": normalized(request),
    }
    return hashlib.sha256(_CANONICAL.encode(document).encode()).hexdigest()


def plan_cache(
    request: ChatCompletionRequest,
    tenant: str,
    decision: Decision,
    chain: Plan,
    snapshot: ConfigSnapshot,
    control: CacheControl,
) -> CachePlan | None:
    """None when the cache has no part in this request (not configured, or the answer must not be kept)."""
    spec = cache_spec(decision, chain, snapshot)
    if spec is None:
        return None
    if not_cacheable(request, decision, snapshot, spec) is not None:
        return None
    key = cache_key(tenant, request, decision, chain)
    return CachePlan(key, spec, decision.route or "pinned", control.lookup, control.store)
