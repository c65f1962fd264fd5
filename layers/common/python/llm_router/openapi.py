"""The OpenAPI 3.1 document served at `/openapi.json`, generated from the same pydantic models that validate the
requests, so it cannot drift from what the router accepts."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from llm_router import __version__
from llm_router.schemas.anthropic import MessagesRequest
from llm_router.schemas.feedback import FeedbackRequest
from llm_router.schemas.openai import ChatCompletion, ChatCompletionRequest, EmbeddingRequest
from llm_router.schemas.responses import ResponsesRequest

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(summary: str, body: str | None, answer: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _json(answer, "The answer")}
    if stream:
        responses["200"]["content"]["text/event-stream"] = {"schema": {"type": "string"}}
    responses["default"] = _json(_ref("Error"), "An error in OpenAI's format")
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return operation


@cache
def document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [
        (ChatCompletionRequest, "validation"),
        (ChatCompletion, "serialization"),
        (MessagesRequest, "validation"),
        (EmbeddingRequest, "validation"),
        (ResponsesRequest, "validation"),
        (FeedbackRequest, "validation"),
    ]
    _, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")
    components = {**schemas.get("$defs", {}), "Error": ERROR, "Model": MODEL}
    model_list = {
        "type": "object",
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}},
    }
    paths = {
        "/v1/chat/completions": {
            "post": _operation(
                "Route and answer a chat completion", "ChatCompletionRequest", _ref("ChatCompletion"), stream=True
            )
        },
        "/v1/messages": {
            "post": _operation(
                "Anthropic's Messages API, routed like chat", "MessagesRequest", {"type": "object"}, stream=True
            )
        },
        "/v1/embeddings": {
            "post": _operation(
                "Embeddings, routed like chat to embedding models", "EmbeddingRequest", {"type": "object"}
            )
        },
        "/v1/responses": {
            "post": _operation(
                "OpenAI's Responses API, routed like chat", "ResponsesRequest", {"type": "object"}, stream=True
            )
        },
        "/v1/models": {"get": _operation("The routes and models the key may use", None, model_list)},
        "/v1/models/{model}": {
            "get": {
                **_operation("One route or model", None, _ref("Model")),
                "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
            }
        },
        "/v1/requests/{request_id}": {
            "get": {
                **_operation("A queued request and, once answered, its result", None, {"type": "object"}),
                "parameters": [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            }
        },
        "/v1/feedback": {
            "post": _operation(
                "Rate one of your answers (routes with learn.collect); repeating a rating changes nothing, a "
                "different one replaces it",
                "FeedbackRequest",
                {"type": "object"},
            )
        },
        "/v1/route": {
            "post": _operation(
                "Dry run: the routing decision, no model called", "ChatCompletionRequest", {"type": "object"}
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "llm-router", "version": __version__},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
    }
