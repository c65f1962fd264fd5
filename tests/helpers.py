"""Builders shared by the tests: requests, features, config snapshots, API Gateway events."""

from __future__ import annotations

import json
import uuid
from typing import Any

from llm_router.routing.features import Features
from llm_router.routing.snapshot import ConfigSnapshot
from llm_router.schemas.catalog import ModelSpec, RouteSpec
from llm_router.schemas.openai import ChatCompletionRequest
from llm_router.schemas.rules import Rule


def chat(content: str = "Hello!", **extra: Any) -> ChatCompletionRequest:
    body: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    return ChatCompletionRequest.model_validate(body)


def features(content: str = "Hello!", tenant: str = "t1", **extra: Any) -> Features:
    return Features(chat(content, **extra), tenant)


def model(model_id: str, **fields: Any) -> ModelSpec:
    return ModelSpec.model_validate({"id": model_id, "provider": "simulated", "model_id": model_id, **fields})


def rule(rule_id: str, when: dict[str, Any], then: dict[str, Any], **fields: Any) -> Rule:
    return Rule.model_validate({"id": rule_id, "when": when, "then": then, **fields})


def snapshot(
    models: list[ModelSpec] | None = None, rules: list[Rule] | None = None, routes: list[RouteSpec] | None = None
) -> ConfigSnapshot:
    models = models or [model("small"), model("large", capabilities=["tools", "images", "json"])]
    routes = routes or [RouteSpec(id="auto", default=("small", "large"), baseline="large")]
    return ConfigSnapshot.build(models, routes, rules or [])


class FixedConfig:
    """A config source that always serves the same snapshot (the gateway's `ConfigSource`)."""

    def __init__(self, config: ConfigSnapshot) -> None:
        self.config = config

    def snapshot(self) -> ConfigSnapshot:
        return self.config


def api_event(
    body: Any = None,
    *,
    path: str = "/v1/chat/completions",
    method: str = "POST",
    key: str | None = "sk-local-dev",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the local server builds it (before the authorizer runs)."""
    from llm_router.local.server import proxy_event

    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    raw = body if isinstance(body, str | bytes) else json.dumps(body) if body is not None else ""
    data = raw.encode() if isinstance(raw, str) else raw
    event = proxy_event(method, path, all_headers, data, "127.0.0.1")
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def header(response: dict[str, Any], name: str) -> str | None:
    """A response header whether the resolver put it in `headers` or `multiValueHeaders`."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return str(values[0])
    return None
