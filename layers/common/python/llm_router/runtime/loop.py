"""The invocation loop: next event -> handler -> buffered or streamed response, as the managed runtime does it.

What differs from the managed runtime is the response: with streaming on, an API Gateway proxy result or a
`StreamingResponse` goes out as Lambda's HTTP integration stream (JSON prelude, 8 NUL bytes, body chunks as they
are produced). Errors keep the managed runtime's shape (`errorMessage`, `errorType`, `requestId`, `stackTrace`).
"""

from __future__ import annotations

import base64
import decimal
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from llm_router.runtime import AFTER_RESPONSE_HOOK, StreamingResponse
from llm_router.runtime.client import PRELUDE_DELIMITER, Invocation, RuntimeApiClient, RuntimeApiError, error_trailers
from llm_router.runtime.context import LambdaContext, parse_json_header

Handler = Callable[[Any, Any], Any]

STREAMING_ENV = "LLM_ROUTER_STREAMING_RESPONSES"
TRACE_ENV = "_X_AMZN_TRACE_ID"
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


class FaultError(Exception):
    """A failure the runtime names itself (bad handler string, unreadable event), as the managed runtime does."""

    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    MARSHAL_ERROR = "Runtime.MarshalError"
    CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


# --- errors -------------------------------------------------------------------------------------------------------


def make_error(message: str, error_type: str, stack_trace: list[str], request_id: str = "") -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack_trace}


def error_from_exception(error: BaseException, request_id: str = "") -> dict[str, Any]:
    """The error document for `/error` and `/init/error`; the stack starts at the user's frames."""
    if isinstance(error, FaultError):
        return make_error(error.message, error.error_type, error.trace, request_id)
    return make_error(str(error), type(error).__name__, _user_frames(error.__traceback__), request_id)


def _user_frames(tb: TracebackType | None) -> list[str]:
    frames = traceback.extract_tb(tb)
    first_user = next((i for i, f in enumerate(frames) if not f.filename.startswith(_RUNTIME_DIR)), len(frames))
    return traceback.format_list(frames[first_user:])


def log_error(error: dict[str, Any]) -> None:
    """One JSON line on stdout, which Lambda sends to the function's log group like any other output."""
    print(json.dumps({"level": "ERROR", "location": "llm_router.runtime", **error}, default=str), flush=True)


# --- the handler --------------------------------------------------------------------------------------------------


def import_path(task_root: str) -> list[str]:
    """The managed runtime's precedence: function code, then the layers' site-packages, then /opt/python."""
    layer_site = f"/opt/python/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    return [task_root] + [p for p in (layer_site, "/opt/python") if os.path.isdir(p)]


def load_handler(spec: str, task_root: str) -> Handler:
    """Resolve `_HANDLER` ("module.function", the module possibly in a package) against the function's code."""
    wanted = import_path(task_root)
    sys.path[:] = wanted + [p for p in sys.path if p not in wanted]
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise FaultError(FaultError.MALFORMED_HANDLER_NAME, f"Bad handler '{spec}': not enough values to unpack")
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise FaultError(
            FaultError.BUILT_IN_MODULE_CONFLICT, f"Cannot use built-in module {module_name} as a handler module"
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        raise FaultError(FaultError.IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {error}") from error
    except SyntaxError as error:
        trace = [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}']
        raise FaultError(
            FaultError.USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {error}", trace
        ) from error
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise FaultError(FaultError.HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


# --- one invocation -----------------------------------------------------------------------------------------------


def set_trace_id(trace_id: str | None) -> None:
    """X-Ray SDKs read the current trace from the environment, replaced for every invocation."""
    if trace_id:
        os.environ[TRACE_ENV] = trace_id
    else:
        os.environ.pop(TRACE_ENV, None)


def build_context(invocation: Invocation) -> LambdaContext:
    try:
        client_context = parse_json_header(invocation.client_context, "Client Context")
        cognito_identity = parse_json_header(invocation.cognito_identity, "Cognito Identity")
    except ValueError as error:
        raise FaultError(FaultError.CONTEXT_UNMARSHAL_ERROR, str(error)) from error
    return LambdaContext(
        invocation.request_id,
        invocation.deadline_ms,
        invocation.invoked_function_arn,
        client_context,
        cognito_identity,
        invocation.tenant_id,
    )


def decode_event(invocation: Invocation) -> Any:
    if invocation.content_type != "application/json":
        return invocation.body
    try:
        return json.loads(invocation.body)
    except ValueError as error:
        raise FaultError(FaultError.UNMARSHAL_ERROR, f"Unable to unmarshal input: {error}") from error


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_result(result: Any) -> tuple[bytes, str]:
    """A buffered result as the managed runtime sends it: bytes as they are, anything else as JSON."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return json.dumps(result, ensure_ascii=False, default=_json_default).encode("utf-8"), "application/json"
    except (TypeError, ValueError) as error:
        raise FaultError(FaultError.MARSHAL_ERROR, f"Unable to marshal response: {error}") from error


def _as_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"a streamed body yields bytes, not {type(chunk).__name__}")


def _chunks(body: Iterable[bytes]) -> Iterator[bytes]:
    """A body given whole (bytes, str) is one chunk: iterating bytes would give ints."""
    if isinstance(body, bytes | bytearray | str):
        return iter([_as_bytes(body)])
    return (_as_bytes(chunk) for chunk in body)


def _close(body: object) -> None:
    close = getattr(body, "close", None)
    if callable(close):
        close()


def proxy_prelude(result: dict[str, Any]) -> dict[str, Any]:
    prelude: dict[str, Any] = {
        "statusCode": int(result.get("statusCode", 200)),
        "headers": dict(result.get("headers") or {}),
        "multiValueHeaders": dict(result.get("multiValueHeaders") or {}),
    }
    if result.get("cookies"):
        prelude["cookies"] = list(result["cookies"])
    return prelude


def proxy_body(result: dict[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if result.get("isBase64Encoded"):
        return base64.b64decode(body)
    return _as_bytes(body)


def drain(response: StreamingResponse) -> dict[str, Any]:
    """A streamed response collected into an API Gateway proxy result, for when the response cannot stream."""
    try:
        data = b"".join(_chunks(response.body))
    finally:
        _close(response.body)
    try:
        text, encoded = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(data).decode("ascii"), True
    return {
        "statusCode": response.status_code,
        "headers": dict(response.headers),
        "multiValueHeaders": dict(response.multi_value_headers),
        "body": text,
        "isBase64Encoded": encoded,
    }


_END = object()


def stream_response(client: RuntimeApiClient, request_id: str, prelude: dict[str, Any], body: Iterable[bytes]) -> None:
    """Send prelude and body chunk by chunk; a failure before the first chunk is an ordinary `/error`.

    The first chunk is pulled before anything is sent, so a handler can still fail over (or fail) cleanly; after
    it, a failure can only end the stream with error trailers. `body.close()` runs however this ends.
    """
    try:
        chunks = _chunks(body)
        try:
            first: Any = next(chunks, _END)
        except Exception as error:  # noqa: BLE001 - any handler failure before the first byte is an invocation error
            _report(client, error_from_exception(error, request_id))
            return
        stream = client.open_stream(request_id)
        trailers = None
        try:
            stream.write(json.dumps(prelude, separators=(",", ":"), ensure_ascii=False).encode() + PRELUDE_DELIMITER)
            if first is not _END:
                stream.write(first)
                for chunk in chunks:
                    stream.write(chunk)
        except RuntimeApiError:
            stream.finish()  # raises with the Runtime API's own answer when it left one
            raise
        except Exception as error:  # noqa: BLE001 - after the first byte, only trailers can carry the failure
            failure = error_from_exception(error, request_id)
            log_error(failure)
            trailers = error_trailers(failure["errorType"], failure["errorMessage"])
        stream.finish(trailers)
    finally:
        _close(body)


def _report(client: RuntimeApiClient, error: dict[str, Any]) -> None:
    log_error(error)
    client.post_error(error["requestId"], error)


def respond(client: RuntimeApiClient, request_id: str, result: Any, streaming: bool) -> None:
    """Send a handler's result: streamed when streaming is on and it is an HTTP response, buffered otherwise."""
    if isinstance(result, StreamingResponse):
        prelude = {
            "statusCode": result.status_code,
            "headers": dict(result.headers),
            "multiValueHeaders": dict(result.multi_value_headers),
        }
        if streaming:
            stream_response(client, request_id, prelude, result.body)
            return
        result = drain(result)
    elif streaming and isinstance(result, dict):
        stream_response(client, request_id, proxy_prelude(result), [proxy_body(result)])
        return
    body, content_type = encode_result(result)
    client.post_response(request_id, body, content_type)


def handle_invocation(client: RuntimeApiClient, handler: Handler, invocation: Invocation, streaming: bool) -> None:
    request_id = invocation.request_id
    try:
        result = handler(decode_event(invocation), build_context(invocation))
        respond(client, request_id, result, streaming)
    except RuntimeApiError:
        raise
    except Exception as error:  # noqa: BLE001 - the handler's failure is the invocation's result, not the loop's
        _report(client, error_from_exception(error, request_id))
    finally:
        after_response(handler, request_id)


def after_response(handler: Handler, request_id: str) -> None:
    """The response is out: what the handler deferred runs now, before the environment can be frozen."""
    hook = getattr(handler, AFTER_RESPONSE_HOOK, None)
    if not callable(hook):
        return
    try:
        hook()
    except Exception as error:  # noqa: BLE001 - the response is already out; the loop goes on
        log_error(error_from_exception(error, request_id))


def run(client: RuntimeApiClient, handler: Handler, streaming: bool, max_invocations: int | None = None) -> None:
    """Serve invocations until the environment ends (or `max_invocations`, for tests)."""
    served = 0
    while max_invocations is None or served < max_invocations:
        invocation = client.next_invocation()
        set_trace_id(invocation.trace_id)
        try:
            handle_invocation(client, handler, invocation, streaming)
        except RuntimeApiError as error:
            # The Runtime API refusing one response (too large, invocation already timed out) ends that invocation,
            # not the environment; no answer at all means it is gone.
            if error.status == 0 or error.status >= 500:
                raise
            log_error(make_error(str(error), "Runtime.ResponseRejected", [], invocation.request_id))
        served += 1


def main() -> int:
    """`python -m llm_router.runtime`: what the exec wrapper starts instead of the managed runtime's bootstrap."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            reconfigure(line_buffering=True)  # a pipe is block-buffered: logs would lag or vanish in a crash
    client = RuntimeApiClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""), os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))
    except Exception as error:  # noqa: BLE001 - whatever importing user code raises is an init error
        failure = error_from_exception(error)
        log_error(failure)
        client.post_init_error(failure)
        return 1
    try:
        run(client, handler, streaming=os.environ.get(STREAMING_ENV) == "true")
    except RuntimeApiError as error:
        log_error(make_error(str(error), "Runtime.RuntimeApiError", []))
        return 1
    return 0
