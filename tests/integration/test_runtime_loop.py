"""The runtime loop against a fake Runtime API on loopback: what goes over the wire, byte for byte."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger

import llm_router
from llm_router.runtime import StreamingResponse
from llm_router.runtime.client import RuntimeApiClient, RuntimeApiError
from llm_router.runtime.loop import Handler, run
from tests.fakes.runtime_api import FakeRuntimeAPI, Post

ROOT = Path(__file__).resolve().parents[2]
NUL8 = b"\x00" * 8
SSE_HEADERS = {"content-type": "text/event-stream"}
SSE_PRELUDE = b'{"statusCode":200,"headers":{"content-type":"text/event-stream"},"multiValueHeaders":{}}'
RESPONSE = "/2018-06-01/runtime/invocation/{}/response"
ERROR = "/2018-06-01/runtime/invocation/{}/error"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRuntimeAPI]:
    # The loop sets the trace id in this process's environment; monkeypatch puts it back afterwards.
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "before")
    with FakeRuntimeAPI() as fake:
        yield fake


def serve(api: FakeRuntimeAPI, handler: Handler, streaming: bool, invocations: int = 1) -> list[Post]:
    """Run the loop for a bounded number of invocations in this process, so the handler can watch the wire."""
    failures: list[BaseException] = []

    def loop() -> None:
        try:
            run(RuntimeApiClient(api.address), handler, streaming=streaming, max_invocations=invocations)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the loop did not finish its invocations"
    assert failures == []
    return api.wait_for(len(api.posts))


def chunked(*chunks: bytes, trailers: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailers + b"\r\n"


class Closing:
    """A body whose chunks come from a generator and which records that close() ran."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self.closed = True


# --- streamed responses -------------------------------------------------------------------------------------------


def test_streamed_response_sends_prelude_nuls_then_each_chunk_as_it_is_produced(api: FakeRuntimeAPI) -> None:
    # Given a handler whose body yields the next event only once the Runtime API has the previous one
    def events() -> Iterator[bytes]:
        yield b"data: one\n\n"
        api.wait_for_chunks(2)  # prelude + "one" arrived while the generator is still suspended
        yield b"data: two\n\n"
        api.wait_for_chunks(3)
        yield b"data: [DONE]\n\n"

    body = Closing(events())
    api.invoke("req-1", {"path": "/v1/chat/completions"})

    # When the loop serves it with streaming on
    [post] = serve(api, lambda event, context: StreamingResponse(200, SSE_HEADERS, body), streaming=True)

    # Then the wire holds the streaming headers, the prelude and NULs, and one HTTP chunk per event, in order
    assert post.path == RESPONSE.format("req-1")
    assert post.header("Lambda-Runtime-Function-Response-Mode") == "streaming"
    assert post.header("Transfer-Encoding") == "chunked"
    assert post.header("Content-Type") == "application/vnd.awslambda.http-integration-response"
    assert post.header("Trailer") == "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
    assert post.header("Content-Length") is None
    assert post.raw == chunked(SSE_PRELUDE + NUL8, b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n")
    assert post.trailers == {}
    assert body.closed


def test_error_after_the_first_byte_ends_the_stream_with_error_trailers(api: FakeRuntimeAPI) -> None:
    def events() -> Iterator[bytes]:
        yield b"data: one\n\n"
        raise ConnectionError("provider went away")

    body = Closing(events())
    api.invoke("req-2", {})

    [post] = serve(api, lambda event, context: StreamingResponse(200, SSE_HEADERS, body), streaming=True)

    error_body = base64.b64encode(b'{"errorMessage": "provider went away", "errorType": "ConnectionError"}')
    assert post.path == RESPONSE.format("req-2")
    assert post.raw == chunked(
        SSE_PRELUDE + NUL8,
        b"data: one\n\n",
        trailers=b"Lambda-Runtime-Function-Error-Type: ConnectionError\r\n"
        b"Lambda-Runtime-Function-Error-Body: " + error_body + b"\r\n",
    )
    assert post.trailers["Lambda-Runtime-Function-Error-Type"] == "ConnectionError"
    decoded = json.loads(base64.b64decode(post.trailers["Lambda-Runtime-Function-Error-Body"]))
    assert decoded == {"errorMessage": "provider went away", "errorType": "ConnectionError"}
    assert body.closed


def test_error_before_the_first_byte_is_an_invocation_error_not_a_stream(api: FakeRuntimeAPI) -> None:
    def events() -> Iterator[bytes]:
        raise ValueError("every candidate failed")
        yield b""  # pragma: no cover

    body = Closing(events())
    api.invoke("req-3", {})

    [post] = serve(api, lambda event, context: StreamingResponse(200, SSE_HEADERS, body), streaming=True)

    assert post.path == ERROR.format("req-3")
    assert post.header("Lambda-Runtime-Function-Error-Type") == "ValueError"
    assert post.header("Transfer-Encoding") is None
    error = post.json()
    assert error["errorMessage"] == "every candidate failed"
    assert error["errorType"] == "ValueError"
    assert error["requestId"] == "req-3"
    assert any("test_runtime_loop.py" in frame and "events" in frame for frame in error["stackTrace"])
    assert body.closed


def test_handler_exception_goes_to_the_error_endpoint(api: FakeRuntimeAPI) -> None:
    def handler(event: Any, context: Any) -> Any:
        raise KeyError("model")

    api.invoke("req-4", {})

    [post] = serve(api, handler, streaming=True)

    assert post.path == ERROR.format("req-4")
    assert post.json()["errorType"] == "KeyError"
    assert post.json()["errorMessage"] == "'model'"
    assert not any("llm_router/runtime" in frame for frame in post.json()["stackTrace"])


def test_empty_chunks_are_skipped_rather_than_ending_the_body_early(api: FakeRuntimeAPI) -> None:
    api.invoke("req-5", {})

    [post] = serve(
        api, lambda event, context: StreamingResponse(200, SSE_HEADERS, iter([b"a", b"", b"b"])), streaming=True
    )

    assert post.raw == chunked(SSE_PRELUDE + NUL8, b"a", b"b")


def test_streamed_proxy_result_sends_its_decoded_body_after_the_prelude(api: FakeRuntimeAPI) -> None:
    # Given an API Gateway proxy result with a base64 body and a multi-value header
    result = {
        "statusCode": 429,
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
        "body": base64.b64encode(b'{"error":{"type":"rate_limit"}}').decode(),
        "isBase64Encoded": True,
    }
    api.invoke("req-6", {})

    [post] = serve(api, lambda event, context: result, streaming=True)

    prelude = (
        b'{"statusCode":429,"headers":{"content-type":"application/json"},'
        b'"multiValueHeaders":{"set-cookie":["a=1","b=2"]}}'
    )
    assert post.path == RESPONSE.format("req-6")
    assert post.header("Lambda-Runtime-Function-Response-Mode") == "streaming"
    assert post.raw == chunked(prelude + NUL8, b'{"error":{"type":"rate_limit"}}')


def test_streamed_proxy_result_with_an_empty_body_sends_only_the_prelude(api: FakeRuntimeAPI) -> None:
    api.invoke("req-7", {})

    [post] = serve(api, lambda event, context: {"statusCode": 204, "headers": {}, "body": ""}, streaming=True)

    assert post.raw == chunked(b'{"statusCode":204,"headers":{},"multiValueHeaders":{}}' + NUL8)


def test_a_malformed_proxy_result_fails_before_the_first_byte(api: FakeRuntimeAPI) -> None:
    api.invoke("req-8", {})

    [post] = serve(api, lambda event, context: {"statusCode": "teapot", "body": ""}, streaming=True)

    assert post.path == ERROR.format("req-8")
    assert post.json()["errorType"] == "ValueError"


# --- buffered responses -------------------------------------------------------------------------------------------


def test_without_streaming_a_dict_result_is_posted_as_json(api: FakeRuntimeAPI) -> None:
    result = {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"ok":true}'}
    api.invoke("req-9", {"hello": "world"})

    [post] = serve(api, lambda event, context: {**result, "echo": event}, streaming=False)

    assert post.path == RESPONSE.format("req-9")
    assert post.header("Lambda-Runtime-Function-Response-Mode") is None
    assert post.header("Transfer-Encoding") is None
    assert post.header("Content-Type") == "application/json"
    assert post.header("Content-Length") == str(len(post.raw))
    assert post.raw == (
        b'{"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{\\"ok\\":true}", '
        b'"echo": {"hello": "world"}}'
    )


def test_without_streaming_a_streaming_response_is_drained_into_a_proxy_result(api: FakeRuntimeAPI) -> None:
    body = Closing(iter([b"data: one\n\n", b"data: [DONE]\n\n"]))
    api.invoke("req-10", {})

    [post] = serve(
        api,
        lambda event, context: StreamingResponse(200, SSE_HEADERS, body, {"x-router-model": ["m1"]}),
        streaming=False,
    )

    assert post.path == RESPONSE.format("req-10")
    assert post.json() == {
        "statusCode": 200,
        "headers": SSE_HEADERS,
        "multiValueHeaders": {"x-router-model": ["m1"]},
        "body": "data: one\n\ndata: [DONE]\n\n",
        "isBase64Encoded": False,
    }
    assert body.closed


def test_a_result_that_is_not_json_is_a_marshal_error(api: FakeRuntimeAPI) -> None:
    api.invoke("req-11", {})

    [post] = serve(api, lambda event, context: {"when": object()}, streaming=False)

    assert post.path == ERROR.format("req-11")
    assert post.json()["errorType"] == "Runtime.MarshalError"


# --- the loop and the context -------------------------------------------------------------------------------------


def test_the_loop_serves_invocations_in_turn_with_each_ones_trace_id(api: FakeRuntimeAPI) -> None:
    # Given three invocations, the second without a trace header
    seen: list[tuple[Any, str, str | None]] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        seen.append((event, context.aws_request_id, os.environ.get("_X_AMZN_TRACE_ID")))
        return {"statusCode": 200, "body": str(event["n"])}

    api.invoke("a", {"n": 1}, trace_id="Root=1-aaaa;Parent=1;Sampled=1")
    api.invoke("b", {"n": 2})
    api.invoke("c", {"n": 3}, trace_id="Root=1-cccc;Parent=3;Sampled=0")

    # When the loop serves all three
    posts = serve(api, handler, streaming=True, invocations=3)

    # Then each answer went to its own invocation, in order, and the trace id followed each invocation
    assert [p.path for p in posts] == [RESPONSE.format(i) for i in "abc"]
    assert [p.chunks[1] for p in posts] == [b"1", b"2", b"3"]
    assert seen == [
        ({"n": 1}, "a", "Root=1-aaaa;Parent=1;Sampled=1"),
        ({"n": 2}, "b", None),
        ({"n": 3}, "c", "Root=1-cccc;Parent=3;Sampled=0"),
    ]
    assert api.next_requests == 3


def test_context_carries_the_invocation_and_function_facts(
    api: FakeRuntimeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "router")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
    monkeypatch.setenv("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/router")
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]abc")
    seen: dict[str, Any] = {}

    def handler(event: Any, context: Any) -> dict[str, Any]:
        seen.update(
            remaining=context.get_remaining_time_in_millis(),
            names=(context.function_name, context.function_version, context.memory_limit_in_mb),
            logs=(context.log_group_name, context.log_stream_name),
            arn=context.invoked_function_arn,
            identity=(context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id),
            client=(context.client_context.custom, context.client_context.client.app_title),
        )
        return {"statusCode": 200}

    api.invoke(
        "ctx",
        {},
        deadline_ms=int(time.time() * 1000) + 5_000,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:router:live",
        cognito_identity='{"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}',
        client_context='{"custom": {"k": "v"}, "client": {"app_title": "app"}, "env": {}}',
    )

    serve(api, handler, streaming=False)

    assert 1_000 < seen["remaining"] <= 5_000  # deadline header minus the clock; the bound only allows slow CI
    assert seen["names"] == ("router", "$LATEST", "1024")
    assert seen["logs"] == ("/aws/lambda/router", "2026/01/01/[$LATEST]abc")
    assert seen["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:router:live"
    assert seen["identity"] == ("id-1", "pool-1")
    assert seen["client"] == ({"k": "v"}, "app")


def test_a_past_deadline_leaves_no_time(api: FakeRuntimeAPI) -> None:
    remaining: list[int] = []
    api.invoke("late", {}, deadline_ms=int(time.time() * 1000) - 10)

    serve(api, lambda event, context: remaining.append(context.get_remaining_time_in_millis()), streaming=False)

    assert remaining == [0]


def test_powertools_inject_lambda_context_works_with_the_context(
    api: FakeRuntimeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "router")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
    logger = Logger(service="runtime-test")
    keys: dict[str, Any] = {}

    @logger.inject_lambda_context
    def handler(event: Any, context: Any) -> dict[str, Any]:
        keys.update(logger.get_current_keys())
        return {"statusCode": 200}

    api.invoke("pt-1", {})

    [post] = serve(api, handler, streaming=False)

    assert post.path == RESPONSE.format("pt-1")
    assert keys["function_request_id"] == "pt-1"
    assert keys["function_name"] == "router"
    assert keys["function_memory_size"] == "1024"
    assert keys["function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:router"


def test_a_malformed_client_context_header_fails_only_that_invocation(api: FakeRuntimeAPI) -> None:
    api.invoke("bad-ctx", {}, client_context="{not json")
    api.invoke("good", {})

    posts = serve(api, lambda event, context: {"statusCode": 200}, streaming=False, invocations=2)

    assert [p.path for p in posts] == [ERROR.format("bad-ctx"), RESPONSE.format("good")]
    assert posts[0].json()["errorType"] == "Runtime.LambdaContextUnmarshalError"


# --- the process: python -m llm_router.runtime and the exec wrapper -----------------------------------------------

HANDLER_MODULE = """
from llm_router.runtime import StreamingResponse


def handler(event, context):
    def body():
        yield b"data: " + event["say"].encode() + b"\\n\\n"
        yield b"data: [DONE]\\n\\n"
    return StreamingResponse(200, {"content-type": "text/event-stream"}, body())
"""


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    (root / "app.py").write_text(HANDLER_MODULE)
    return root


def runtime_env(api: FakeRuntimeAPI, task_root: Path, handler: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_ROUTER_STREAMING_RESPONSES", "PYTHONPATH")}
    # Only the library on the path, as the layer puts it at /opt/python (an installed package needs nothing here).
    env["PYTHONPATH"] = str(Path(llm_router.__file__).resolve().parents[1])
    env.update(AWS_LAMBDA_RUNTIME_API=api.address, LAMBDA_TASK_ROOT=str(task_root), _HANDLER=handler, **extra)
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def test_module_entry_point_serves_with_streaming_when_the_variable_is_true(
    api: FakeRuntimeAPI, task_root: Path
) -> None:
    api.invoke("p-1", {"say": "hi"})
    env = runtime_env(api, task_root, "app.handler", LLM_ROUTER_STREAMING_RESPONSES="true")

    process = subprocess.Popen([sys.executable, "-m", "llm_router.runtime"], env=env, cwd=task_root)
    try:
        [post] = api.wait_for(1)
    finally:
        stop(process)

    assert post.path == RESPONSE.format("p-1")
    assert post.raw == chunked(SSE_PRELUDE + NUL8, b"data: hi\n\n", b"data: [DONE]\n\n")


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("missing_module.handler", "Runtime.ImportModuleError", "Unable to import module 'missing_module'"),
        ("app.nothing_here", "Runtime.HandlerNotFound", "Handler 'nothing_here' missing on module 'app'"),
        ("nodot", "Runtime.MalformedHandlerName", "Bad handler 'nodot'"),
    ],
)
def test_a_bad_handler_is_an_init_error_and_the_process_exits(
    api: FakeRuntimeAPI, task_root: Path, handler: str, error_type: str, message: str
) -> None:
    env = runtime_env(api, task_root, handler, LLM_ROUTER_STREAMING_RESPONSES="true")

    result = subprocess.run([sys.executable, "-m", "llm_router.runtime"], env=env, timeout=60, capture_output=True)

    assert result.returncode == 1
    [post] = api.wait_for(1)
    assert post.path == "/2018-06-01/runtime/init/error"
    assert post.header("Lambda-Runtime-Function-Error-Type") == error_type
    assert post.json()["errorType"] == error_type
    assert post.json()["errorMessage"].startswith(message)
    assert api.next_requests == 0


def test_an_exception_while_importing_the_handler_is_an_init_error(api: FakeRuntimeAPI, task_root: Path) -> None:
    (task_root / "broken.py").write_text("raise RuntimeError('no config')\n")
    env = runtime_env(api, task_root, "broken.handler")

    result = subprocess.run([sys.executable, "-m", "llm_router.runtime"], env=env, timeout=60, capture_output=True)

    assert result.returncode == 1
    [post] = api.wait_for(1)
    assert post.path == "/2018-06-01/runtime/init/error"
    assert post.json()["errorType"] == "RuntimeError"
    assert post.json()["errorMessage"] == "no config"


WRAPPER = ROOT / "layers" / "common" / "llm-router-runtime"
RECORDING_PYTHON = """#!/bin/sh
printf '%s\\n' "$@" > "$RECORD_TO"
printf 'PYTHONPATH=%s\\n' "$PYTHONPATH" >> "$RECORD_TO"
"""


@pytest.fixture
def recording_python(tmp_path: Path) -> Path:
    """Stands in for the managed runtime's interpreter: records how it was started."""
    script = tmp_path / "python3.12"
    script.write_text(RECORDING_PYTHON)
    script.chmod(0o755)
    return script


def run_wrapper(*args: str, **env: str) -> list[str]:
    record = Path(env["RECORD_TO"])
    base = {k: v for k, v in os.environ.items() if k not in ("LLM_ROUTER_STREAMING_RESPONSES", "PYTHONPATH")}
    subprocess.run([str(WRAPPER), *args], env={**base, **env}, timeout=30, check=True)
    return record.read_text().splitlines()


def test_wrapper_falls_through_to_the_managed_runtime_without_streaming(recording_python: Path, tmp_path: Path) -> None:
    record = str(tmp_path / "record")

    started = run_wrapper(str(recording_python), "/var/runtime/bootstrap.py", RECORD_TO=record)

    assert started == ["/var/runtime/bootstrap.py", "PYTHONPATH="]


def test_wrapper_falls_through_when_streaming_is_anything_but_true(recording_python: Path, tmp_path: Path) -> None:
    record = str(tmp_path / "record")

    started = run_wrapper(
        str(recording_python), "/var/runtime/bootstrap.py", RECORD_TO=record, LLM_ROUTER_STREAMING_RESPONSES="1"
    )

    assert started[0] == "/var/runtime/bootstrap.py"


def test_wrapper_starts_the_loop_on_the_same_interpreter_with_code_and_layer_importable(
    recording_python: Path, tmp_path: Path
) -> None:
    record = str(tmp_path / "record")

    started = run_wrapper(
        str(recording_python),
        "/var/runtime/bootstrap.py",
        RECORD_TO=record,
        LLM_ROUTER_STREAMING_RESPONSES="true",
        LAMBDA_TASK_ROOT="/var/task",
        PYTHONPATH="/var/runtime",
    )

    assert started == ["-m", "llm_router.runtime", "PYTHONPATH=/var/task:/opt/python:/var/runtime"]


def test_wrapper_execs_a_loop_that_serves_invocations(api: FakeRuntimeAPI, task_root: Path) -> None:
    api.invoke("w-1", {"say": "wrapped"})
    env = runtime_env(api, task_root, "app.handler", LLM_ROUTER_STREAMING_RESPONSES="true")

    process = subprocess.Popen([str(WRAPPER), sys.executable, "/var/runtime/bootstrap.py"], env=env, cwd=task_root)
    try:
        [post] = api.wait_for(1)
    finally:
        stop(process)

    assert post.raw == chunked(SSE_PRELUDE + NUL8, b"data: wrapped\n\n", b"data: [DONE]\n\n")


def test_a_rejected_response_ends_that_invocation_and_the_loop_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a Runtime API that refuses responses as too large
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "before")
    with FakeRuntimeAPI(response_status=413) as api:
        api.invoke("big-1", {})
        api.invoke("big-2", {})

        # When the loop serves both, streamed
        posts = serve(api, lambda event, context: {"statusCode": 200, "body": "x"}, streaming=True, invocations=2)

    # Then both were answered (and refused) and the loop did not stop at the first refusal
    assert [p.path for p in posts] == [RESPONSE.format("big-1"), RESPONSE.format("big-2")]


def test_a_failing_runtime_api_stops_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "before")
    with FakeRuntimeAPI(response_status=500) as api:
        api.invoke("broken", {})

        with pytest.raises(RuntimeApiError) as raised:
            run(RuntimeApiClient(api.address), lambda event, context: {"statusCode": 200}, True, max_invocations=1)

    assert raised.value.status == 500


def test_the_router_handlers_hook_runs_after_each_response_and_before_the_next_invocation(
    api: FakeRuntimeAPI,
) -> None:
    # Given a handler with an `after_response` hook (as the router function writes outcome records there)
    from llm_router.runtime import AFTER_RESPONSE_HOOK

    seen: list[tuple[int, int]] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {}, "body": "ok"}

    setattr(handler, AFTER_RESPONSE_HOOK, lambda: seen.append((len(api.posts), api.next_requests)))
    api.invoke("req-a", {})
    api.invoke("req-b", {})
    serve(api, handler, streaming=True, invocations=2)
    # Then it ran once per invocation, each time after that invocation's response and before the next poll
    assert seen == [(1, 1), (2, 2)]
