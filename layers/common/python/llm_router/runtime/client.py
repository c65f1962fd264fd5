"""The Lambda Runtime API over plain HTTP/1.1, including the streamed response no AWS Python client offers.

A new connection per request keeps failure handling simple: the Runtime API is on the same host, so a connection
costs far less than anything the handler does. The streamed response is written on a raw socket because
`http.client` cannot send trailers, and Lambda reports an error that happens mid-stream only in trailers.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
# API Gateway's and function URLs' framing of a streamed HTTP response: JSON prelude, 8 NUL bytes, raw body.
HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_DELIMITER = b"\x00" * 8


class RuntimeApiError(Exception):
    """The Runtime API refused a request or could not be reached; `status` is 0 when no answer came."""

    def __init__(self, path: str, status: int, body: bytes = b"") -> None:
        super().__init__(f"Runtime API {path} answered {status}: {body[:200]!r}")
        self.path = path
        self.status = status


@dataclass(frozen=True)
class Invocation:
    """One event from `/invocation/next` with the headers that describe it."""

    request_id: str
    body: bytes
    content_type: str
    deadline_ms: int
    invoked_function_arn: str
    trace_id: str | None
    client_context: str | None
    cognito_identity: str | None
    tenant_id: str | None


def encode_chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk; never called with empty data, whose chunk would end the body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def header_safe(value: str) -> str:
    """A header or trailer value cannot carry line breaks; an error type with one would break the framing."""
    return value.replace("\r", " ").replace("\n", " ")


def error_trailers(error_type: str, error_message: str) -> dict[str, str]:
    """The trailers that tell Lambda a streamed response failed after its first byte."""
    body = json.dumps({"errorMessage": error_message, "errorType": error_type}, ensure_ascii=False)
    return {
        ERROR_TYPE_HEADER: header_safe(error_type),
        ERROR_BODY_TRAILER: base64.b64encode(body.encode("utf-8")).decode("ascii"),
    }


class ResponseStream:
    """A streamed `/response` POST in flight: each `write` leaves at once as its own chunk.

    A write to a Runtime API that went away (the invocation timed out, the response grew too large) raises
    `RuntimeApiError` with status 0; `finish` then reads whatever answer the Runtime API left.
    """

    def __init__(self, sock: socket.socket, path: str) -> None:
        self._sock = sock
        self._path = path
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self._sock.sendall(encode_chunk(data))
        except OSError as error:
            raise RuntimeApiError(self._path, 0, str(error).encode()) from error
        self.bytes_written += len(data)

    def finish(self, trailers: dict[str, str] | None = None) -> None:
        """End the body (with trailers when the response failed) and check the Runtime API accepted it."""
        ending = b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in (trailers or {}).items()) + b"\r\n"
        with contextlib.suppress(OSError):  # the answer below, if one came, says why the Runtime API stopped reading
            self._sock.sendall(ending)
        try:
            response = http.client.HTTPResponse(self._sock, method="POST")
            response.begin()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise RuntimeApiError(self._path, 0, str(error).encode()) from error
        finally:
            self._sock.close()
        if response.status != http.client.ACCEPTED:
            raise RuntimeApiError(self._path, response.status, body)

    def abort(self) -> None:
        self._sock.close()


class RuntimeApiClient:
    """Talks to `AWS_LAMBDA_RUNTIME_API` (host:port)."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._host = host or address
        self._port = int(port) if host else 80
        self.address = address

    def next_invocation(self) -> Invocation:
        """Long-poll for the next event: blocks (no timeout) while the environment is frozen or idle."""
        path = f"{API_PREFIX}/invocation/next"
        connection = http.client.HTTPConnection(self._host, self._port)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise RuntimeApiError(path, 0, str(error).encode()) from error
        finally:
            connection.close()
        if response.status != http.client.OK:
            raise RuntimeApiError(path, response.status, body)
        headers = response.headers
        return Invocation(
            request_id=headers.get("Lambda-Runtime-Aws-Request-Id", ""),
            body=body,
            content_type=headers.get("Content-Type", "application/json"),
            deadline_ms=int(headers.get("Lambda-Runtime-Deadline-Ms") or 0),
            invoked_function_arn=headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
            trace_id=headers.get("Lambda-Runtime-Trace-Id"),
            client_context=headers.get("Lambda-Runtime-Client-Context"),
            cognito_identity=headers.get("Lambda-Runtime-Cognito-Identity"),
            tenant_id=headers.get("Lambda-Runtime-Aws-Tenant-Id"),
        )

    def post_response(self, request_id: str, body: bytes, content_type: str = "application/json") -> None:
        self._post(
            f"{API_PREFIX}/invocation/{quote(request_id, safe='')}/response", body, {"Content-Type": content_type}
        )

    def post_error(self, request_id: str, error: dict[str, Any]) -> None:
        path = f"{API_PREFIX}/invocation/{quote(request_id, safe='')}/error"
        self._post_error(path, error)

    def post_init_error(self, error: dict[str, Any]) -> None:
        self._post_error(f"{API_PREFIX}/init/error", error)

    def open_stream(self, request_id: str, content_type: str = HTTP_INTEGRATION_CONTENT_TYPE) -> ResponseStream:
        """Start a streamed `/response`: headers now, body chunks as they are written."""
        path = f"{API_PREFIX}/invocation/{quote(request_id, safe='')}/response"
        head = (
            f"POST {path} HTTP/1.1\r\n"
            f"Host: {self.address}\r\n"
            f"{RESPONSE_MODE_HEADER}: streaming\r\n"
            "Transfer-Encoding: chunked\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Trailer: {ERROR_TYPE_HEADER}, {ERROR_BODY_TRAILER}\r\n"
            "\r\n"
        )
        try:
            sock = socket.create_connection((self._host, self._port))
            # Chunks are small (a token or two each): Nagle's algorithm would hold them back for the previous ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(head.encode("latin-1"))
        except OSError as error:
            raise RuntimeApiError(path, 0, str(error).encode()) from error
        return ResponseStream(sock, path)

    def _post_error(self, path: str, error: dict[str, Any]) -> None:
        body = json.dumps(error, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", ERROR_TYPE_HEADER: header_safe(str(error.get("errorType", "")))}
        self._post(path, body, headers)

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        connection = http.client.HTTPConnection(self._host, self._port)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise RuntimeApiError(path, 0, str(error).encode()) from error
        finally:
            connection.close()
        if response.status != http.client.ACCEPTED:
            raise RuntimeApiError(path, response.status, answer)
