"""The endpoints beside chat: model lookup, Anthropic's Messages API, the OpenAPI document, CORS and OPTIONS."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from llm_router.schemas.tenants import TenantSpec
from llm_router.settings import DEFAULT_CONFIG_TABLE
from llm_router.stores.tenant_store import TenantStore
from tests.integration.conftest import Router
from tests.integration.test_openai_conformance import REQUESTS
from tests.openai_schema import violations


def events_of(body: str) -> list[tuple[str, dict[str, Any]]]:
    """An Anthropic event stream as (event name, data) pairs."""
    out = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def allow_only(router: Router, *models: str) -> None:
    TenantStore(DEFAULT_CONFIG_TABLE, dynamodb=router.clients.get("dynamodb")).put(
        TenantSpec(id="local", models=models)
    )
    router.build()


# -- models ------------------------------------------------------------------------------------------------
def test_a_model_can_be_retrieved(router: Router) -> None:
    response = router.call(method="GET", path="/v1/models/claude-haiku")

    assert response["statusCode"] == 200
    model = router.json(response)
    assert model["id"] == "claude-haiku" and model["owned_by"] == "llm-router:bedrock"
    assert violations("Model", model) == []


def test_an_unknown_model_is_a_404_in_openai_format(router: Router) -> None:
    response = router.call(method="GET", path="/v1/models/nope")

    assert response["statusCode"] == 404
    assert router.json(response)["error"]["code"] == "model_not_found"


def test_the_model_list_shows_only_what_the_tenant_may_use(router: Router) -> None:
    allow_only(router, "nova-micro")

    ids = {m["id"] for m in router.json(router.call(method="GET", path="/v1/models"))["data"]}
    hidden = router.call(method="GET", path="/v1/models/claude-sonnet")

    assert ids == {"auto", "nova-micro"}
    assert hidden["statusCode"] == 404


def test_legacy_completions_get_a_clear_error(router: Router) -> None:
    response = router.call({"model": "auto", "prompt": "Hello"}, path="/v1/completions")

    assert response["statusCode"] == 404
    error = router.json(response)["error"]
    assert error["code"] == "unsupported_endpoint" and "/v1/chat/completions" in error["message"]


# -- Anthropic's Messages API --------------------------------------------------------------------------------
def anthropic_headers() -> dict[str, str]:
    return {"x-api-key": "sk-local-dev", "anthropic-version": "2023-06-01"}


def test_messages_are_answered_in_anthropic_format_with_router_headers(router: Router) -> None:
    body = {"model": "auto", "max_tokens": 100, "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}]}

    response = router.call(body, path="/v1/messages", key=None, headers=anthropic_headers())

    assert response["statusCode"] == 200, response["body"]
    message = router.json(response)
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"][0]["type"] == "text" and message["content"][0]["text"]
    assert message["stop_reason"] == "end_turn"
    assert message["model"] == response["headers"]["x-router-model"]
    assert float(response["headers"]["x-router-cost-usd"]) > 0
    assert router.metric_values("Requests")


def test_messages_with_tools_round_trip(router: Router) -> None:
    tool = {
        "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    first = router.json(
        router.call(
            {"model": "auto", "max_tokens": 100, "tools": [tool], "messages": [{"role": "user", "content": "Paris?"}]},
            path="/v1/messages",
        )
    )
    use = first["content"][-1]
    history = [
        {"role": "user", "content": "Paris?"},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "18C"}]},
    ]
    second = router.json(
        router.call({"model": "auto", "max_tokens": 100, "tools": [tool], "messages": history}, path="/v1/messages")
    )

    assert first["stop_reason"] == "tool_use"
    assert use["type"] == "tool_use" and use["input"] == {"city": "simulated"}
    assert second["stop_reason"] == "end_turn" and second["content"][0]["type"] == "text"


def test_messages_stream_as_anthropic_events(router: Router) -> None:
    body = {"model": "auto", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}

    response = router.call(body, path="/v1/messages")

    events = events_of(response["body"])
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text.startswith("[simulated ")
    assert events[-2][1]["usage"]["output_tokens"] > 0


def test_messages_errors_are_in_anthropic_format(router: Router) -> None:
    response = router.call({"model": "auto", "messages": [{"role": "user", "content": "Hi"}]}, path="/v1/messages")

    assert response["statusCode"] == 400
    body = router.json(response)
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


def test_a_key_in_x_api_key_is_accepted_by_chat_too(router: Router) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "Hi"}]}

    assert router.call(body, key=None, headers={"x-api-key": "sk-local-dev"})["statusCode"] == 200
    assert router.call(body, key=None, headers={"x-api-key": "sk-wrong"})["statusCode"] == 401


# -- OpenAPI, CORS, OPTIONS -----------------------------------------------------------------------------------
def test_the_openapi_document_describes_what_the_router_accepts(router: Router) -> None:
    response = router.call(method="GET", path="/openapi.json", key=None)

    assert response["statusCode"] == 200
    document = router.json(response)
    assert document["openapi"] == "3.1.0"
    assert {"/v1/chat/completions", "/v1/messages", "/v1/models/{model}"} <= set(document["paths"])
    request_schema = {**document, "$ref": "#/components/schemas/ChatCompletionRequest"}
    Draft202012Validator.check_schema(request_schema)
    validator = Draft202012Validator(request_schema)
    for shape in REQUESTS.values():
        assert list(validator.iter_errors({"model": "auto", **shape})) == []
    assert list(validator.iter_errors({"model": "auto"}))  # messages are required


def test_options_is_answered_without_cors_by_default(router: Router) -> None:
    response = router.call(method="OPTIONS", path="/v1/chat/completions", key=None, headers={"Origin": "https://a.io"})

    assert response["statusCode"] == 204
    assert "POST" in response["headers"]["Allow"]
    assert "Access-Control-Allow-Origin" not in response["headers"]


def test_cors_headers_for_a_configured_origin(router: Router) -> None:
    router.env["CORS_ALLOWED_ORIGINS"] = "https://app.example.com"
    router.build()
    origin = {"Origin": "https://app.example.com"}

    preflight = router.call(method="OPTIONS", path="/v1/chat/completions", key=None, headers=origin)
    answer = router.call({"model": "auto", "messages": [{"role": "user", "content": "Hi"}]}, headers=origin)
    other = router.call(
        {"model": "auto", "messages": [{"role": "user", "content": "Hi"}]}, headers={"Origin": "https://evil.example"}
    )

    assert preflight["statusCode"] == 204
    assert "authorization" in preflight["headers"]["Access-Control-Allow-Headers"].lower()
    assert answer["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Origin" not in other["headers"]


# -- embeddings ----------------------------------------------------------------------------------------------
def test_embeddings_conform_and_are_accounted(router: Router) -> None:
    body = {"model": "titan-embed", "input": ["The cat sat.", "A dog ran."]}
    assert violations("CreateEmbeddingRequest", body) == []

    response = router.call(body, path="/v1/embeddings")

    assert response["statusCode"] == 200, response["body"]
    answer = router.json(response)
    assert violations("CreateEmbeddingResponse", answer) == []
    assert [d["index"] for d in answer["data"]] == [0, 1]
    assert answer["data"][0]["embedding"] != answer["data"][1]["embedding"]
    assert response["headers"]["x-router-model"] == "titan-embed"
    assert float(response["headers"]["x-router-cost-usd"]) > 0
    assert router.metric_values("InputTokens") == [answer["usage"]["prompt_tokens"]]


def test_embeddings_are_deterministic_and_base64_is_packed_float32(router: Router) -> None:
    import base64
    import struct

    floats = router.json(router.call({"model": "titan-embed", "input": "same"}, path="/v1/embeddings"))
    packed = router.json(
        router.call({"model": "titan-embed", "input": "same", "encoding_format": "base64"}, path="/v1/embeddings")
    )

    raw = base64.b64decode(packed["data"][0]["embedding"])
    unpacked = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(unpacked) == len(floats["data"][0]["embedding"])
    assert all(abs(a - b) < 1e-6 for a, b in zip(unpacked, floats["data"][0]["embedding"], strict=True))


def test_chat_models_do_not_embed_and_embedding_models_do_not_chat(router: Router) -> None:
    embed = router.call({"model": "claude-haiku", "input": "x"}, path="/v1/embeddings")
    chat = router.call({"model": "titan-embed", "messages": [{"role": "user", "content": "Hi"}]})

    assert embed["statusCode"] == 400 and router.json(embed)["error"]["code"] == "no_capable_model"
    assert chat["statusCode"] == 400 and "embedding model" in router.json(chat)["error"]["message"]


def test_token_arrays_are_refused_clearly(router: Router) -> None:
    response = router.call({"model": "titan-embed", "input": [[1, 2, 3]]}, path="/v1/embeddings")

    assert response["statusCode"] == 400
    assert router.json(response)["error"]["param"] == "input"


# -- the Responses API -----------------------------------------------------------------------------------------
RESPONSES_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}


def test_responses_answer_text_conforming_to_openai(router: Router) -> None:
    body = {"model": "auto", "instructions": "Be brief.", "input": "Hello!", "max_output_tokens": 300}
    assert violations("CreateResponse", body) == []

    response = router.call(body, path="/v1/responses")

    assert response["statusCode"] == 200, response["body"]
    answer = router.json(response)
    assert violations("Response", answer) == []
    assert answer["status"] == "completed" and answer["output"][0]["content"][0]["text"].startswith("[simulated ")
    assert answer["model"] == response["headers"]["x-router-model"]
    assert answer["usage"]["output_tokens"] > 0


def test_responses_tools_round_trip(router: Router) -> None:
    first = router.json(
        router.call({"model": "auto", "input": "Weather in Paris?", "tools": [RESPONSES_TOOL]}, path="/v1/responses")
    )
    call = first["output"][0]
    follow_up = [
        {"role": "user", "content": "Weather in Paris?"},
        call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "18C"},
    ]
    second = router.json(
        router.call({"model": "auto", "input": follow_up, "tools": [RESPONSES_TOOL]}, path="/v1/responses")
    )

    assert violations("Response", first) == [] and violations("Response", second) == []
    assert call["type"] == "function_call" and json.loads(call["arguments"]) == {"city": "simulated"}
    assert second["output"][0]["type"] == "message"


def test_responses_stream_events_conform(router: Router) -> None:
    body = {"model": "auto", "input": "Hello!", "stream": True}

    response = router.call(body, path="/v1/responses")

    events = [data for _, data in events_of(response["body"])]
    assert [line for e in events for line in violations("ResponseStreamEvent", e)] == []
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == text


def test_a_stored_response_is_continued_by_previous_response_id_and_can_be_read_back(router: Router) -> None:
    # Given a response created with store: true
    first = router.call({"model": "auto", "input": "Name three rivers in France.", "store": True}, path="/v1/responses")
    assert first["statusCode"] == 200, first["body"]
    stored = router.json(first)

    # When a follow-up names it, and the same follow-up is sent alone
    body = {"model": "auto", "input": "Which one is the longest?"}
    follow = router.call({**body, "previous_response_id": stored["id"]}, path="/v1/responses")
    alone = router.json(router.call(body, path="/v1/responses"))

    # Then the follow-up was answered with the earlier conversation before it (the model read more tokens) and
    # says what it continues; the stored response reads back as it was answered
    assert follow["statusCode"] == 200, follow["body"]
    continued = router.json(follow)
    assert violations("Response", continued) == []
    assert continued["previous_response_id"] == stored["id"]
    first_turn = stored["usage"]["input_tokens"] + stored["usage"]["output_tokens"]
    assert continued["usage"]["input_tokens"] >= alone["usage"]["input_tokens"] + first_turn
    read = router.call(method="GET", path=f"/v1/responses/{stored['id']}")
    assert read["statusCode"] == 200 and router.json(read) == stored
    # And a response created without store: true was not kept (OpenAI keeps it by default; the router does not)
    assert router.call(method="GET", path=f"/v1/responses/{alone['id']}")["statusCode"] == 404


def test_a_stored_function_call_is_continued_with_its_output(router: Router) -> None:
    # Given a stored response that called a function
    tools = [RESPONSES_TOOL]
    first = router.json(
        router.call(
            {"model": "auto", "input": "Weather in Paris?", "tools": tools, "store": True}, path="/v1/responses"
        )
    )
    call = first["output"][0]
    assert call["type"] == "function_call"

    # When the follow-up sends only the function's output, by previous_response_id, and keeps that one too
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "18C"}
    body = {"model": "auto", "input": [output], "tools": tools, "previous_response_id": first["id"], "store": True}
    second = router.call(body, path="/v1/responses")

    # Then the model got the call before its output (a tool result without its call would be refused upstream)
    assert second["statusCode"] == 200, second["body"]
    assert router.json(second)["output"][0]["type"] == "message"
    # And the chain goes on from the second response
    third = router.call(
        {"model": "auto", "input": "Thanks!", "previous_response_id": router.json(second)["id"]}, path="/v1/responses"
    )
    assert third["statusCode"] == 200, third["body"]


def test_stored_responses_belong_to_their_tenant_and_can_be_deleted(router: Router) -> None:
    stored = router.json(router.call({"model": "auto", "input": "Hi", "store": True}, path="/v1/responses"))
    router.keys.create("other", "sk-other-tenant")
    path = f"/v1/responses/{stored['id']}"

    # Another tenant can neither read it nor continue it nor delete it: it is missing to them
    assert router.call(method="GET", path=path, key="sk-other-tenant")["statusCode"] == 404
    theirs = router.call(
        {"model": "auto", "input": "More", "previous_response_id": stored["id"]}, path="/v1/responses",
        key="sk-other-tenant",
    )  # fmt: skip
    assert theirs["statusCode"] == 404
    assert router.json(theirs)["error"]["code"] == "previous_response_not_found"
    assert router.json(theirs)["error"]["param"] == "previous_response_id"
    assert router.call(method="DELETE", path=path, key="sk-other-tenant")["statusCode"] == 404
    # Its own tenant deletes it, and then it is gone
    deleted = router.call(method="DELETE", path=path)
    assert deleted["statusCode"] == 200
    assert router.json(deleted) == {"id": stored["id"], "object": "response.deleted", "deleted": True}
    assert router.call(method="GET", path=path)["statusCode"] == 404
    # And an id that cannot name a response is simply missing
    for odd in ("/v1/responses/resp_1/input_items", "/v1/responses/x%23y", "/v1/responses/" + "9" * 300):
        assert router.call(method="GET", path=odd)["statusCode"] == 404


def test_an_unknown_or_malformed_previous_response_id_is_a_clear_error(router: Router) -> None:
    missing = router.call({"model": "auto", "input": "Hi", "previous_response_id": "resp_1"}, path="/v1/responses")
    malformed = router.call({"model": "auto", "input": "Hi", "previous_response_id": "x#1"}, path="/v1/responses")

    assert missing["statusCode"] == 404
    assert "store: true" in router.json(missing)["error"]["message"]
    assert malformed["statusCode"] == 400
    assert router.json(malformed)["error"]["param"] == "previous_response_id"


def test_a_streamed_response_with_store_is_kept_when_it_completes(router: Router) -> None:
    response = router.call({"model": "auto", "input": "Hello!", "stream": True, "store": True}, path="/v1/responses")
    final = [data for _, data in events_of(response["body"])][-1]
    assert final["type"] == "response.completed"

    read = router.call(method="GET", path=f"/v1/responses/{final['response']['id']}")

    assert read["statusCode"] == 200 and router.json(read) == final["response"]


def test_an_idempotency_key_replays_responses_and_messages_instead_of_paying_twice(router: Router) -> None:
    calls = [
        ({"model": "auto", "input": "Hello!"}, "/v1/responses"),
        ({"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}, "/v1/messages"),
    ]
    for number, (body, path) in enumerate(calls):
        key = {"Idempotency-Key": f"retry-{number}"}
        first = router.call(body, path=path, headers=key)
        again = router.call(body, path=path, headers=key)

        assert first["statusCode"] == again["statusCode"] == 200, again["body"]
        assert router.json(again)["id"] == router.json(first)["id"]
        assert again["headers"]["x-router-idempotent-replay"] == "true"
    assert len(router.metric_values("Requests")) == 2


def test_respond_async_is_refused_clearly_where_a_queued_result_could_not_be_read(router: Router) -> None:
    # Given requests to the endpoints beside chat, each asking not to wait
    prefer = {"Prefer": "respond-async"}
    calls = [
        ({"model": "titan-embed", "input": "x"}, "/v1/embeddings"),
        ({"model": "auto", "input": "Hello!"}, "/v1/responses"),
        ({"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}, "/v1/messages"),
    ]
    for body, path in calls:
        # When sent with Prefer: respond-async
        response = router.call(body, path=path, headers=prefer)
        # Then each gets a 400 naming the reason (in Anthropic's format on /v1/messages), nothing is queued or paid
        assert response["statusCode"] == 400, (path, response["body"])
        error = router.json(response)["error"]
        assert "respond-async is not supported on POST " + path in error["message"]
        assert "chat completion" in error["message"]
        if path == "/v1/messages":
            assert error["type"] == "invalid_request_error" and router.json(response)["type"] == "error"
        else:
            assert error["code"] == "async_unsupported"
    assert router.metric_values("Requests") == []
    # And chat still queues it: 202 and the request id, its result fetchable
    accepted = router.call({"model": "auto", "messages": [{"role": "user", "content": "Hi"}]}, headers=prefer)
    assert accepted["statusCode"] == 202
    request_id = router.json(accepted)["id"]
    assert router.call(method="GET", path=f"/v1/requests/{request_id}")["statusCode"] == 200
