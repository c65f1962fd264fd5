"""HTTP on 127.0.0.1 in front of the real handlers: each request becomes an API Gateway REST proxy event,
goes through the authorizer code first (as API Gateway would), then the router's API.

Requests are served concurrently, one thread each; a streamed answer is written with chunked transfer encoding,
each chunk as soon as the model produced it.

A page in a browser must not be able to reach it through DNS rebinding: a request whose Host header names neither
a loopback address nor the address the server was started on is refused. Listening beyond loopback needs a key
of the operator's own (LLM_ROUTER_LOCAL_KEY), never the well-known development key."""

from __future__ import annotations

import base64
import ipaddress
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from llm_router.api import UNAUTHORIZED, Response, RouterApi, error_envelope, error_response, json_response
from llm_router.authorizer import KeyLookup, Unauthorized, authorize
from llm_router.providers.http import is_loopback_host
from llm_router.runtime import StreamingResponse

PUBLIC_PATHS = ("/health", "/openapi.json")


class UnsafeBindError(ValueError):
    """Listening beyond loopback with the development key, which anyone who read the README knows."""


def check_bind(host: str, api_key: str, dev_key: str) -> None:
    """Refuse to serve a non-loopback address unless the operator chose a key of their own."""
    if not is_loopback_host(host) and api_key == dev_key:
        raise UnsafeBindError(
            f"listening on {host} needs a key of your own: set LLM_ROUTER_LOCAL_KEY (the development key "
            f"{dev_key!r} is public)"
        )


def host_allowed(host_header: str | None, bound_host: str) -> bool:
    """Whether a Host header names loopback or the address the server listens on (DNS rebinding guard).

    Bound to every interface (0.0.0.0, ::), any IP address is accepted: rebinding needs a DNS name, and a page
    whose origin is an IP address can only be talking to that address."""
    if not host_header:
        return False
    host = (urlsplit(f"//{host_header.strip()}").hostname or "").lower()
    if is_loopback_host(host) or host == bound_host.lower():
        return True
    return _is_ip(host) and _is_ip(bound_host) and ipaddress.ip_address(bound_host).is_unspecified


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def proxy_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, client_ip: str) -> dict[str, Any]:
    """The API Gateway REST (v1) proxy event API Gateway would send for this request."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    path = parts.path
    resource = "/health" if path == "/health" else "/v1/{proxy+}" if path.startswith("/v1/") else "/{proxy+}"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.removeprefix("/v1/")} if resource == "/v1/{proxy+}" else None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "local",
            "httpMethod": method,
            "path": path,
            "resourcePath": resource,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": client_ip},
        },
        "body": text or None,
        "isBase64Encoded": is_b64,
    }


@dataclass(frozen=True)
class LocalGateway:
    """What API Gateway does in front of the router: the authorizer, then the router's API."""

    api: RouterApi
    keys: KeyLookup

    def invoke(self, event: dict[str, Any]) -> Response:
        """Authorize (except public paths) and call the router, like API Gateway does."""
        # Browsers send CORS preflights without credentials; API Gateway's OPTIONS method has no authorizer either.
        if event["path"] not in PUBLIC_PATHS and event["httpMethod"] != "OPTIONS":
            try:
                event["methodArn"] = (
                    f"arn:aws:execute-api:local:000000000000:local/local/{event['httpMethod']}{event['path']}"
                )
                result = authorize(event, self.keys)
            except Unauthorized:
                return error_response(UNAUTHORIZED)
            event["requestContext"]["authorizer"] = {"principalId": result["principalId"], **result["context"]}
            event.pop("methodArn", None)
        return self.api.handle(event, None)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.verbose = verbose
        self.gateway: LocalGateway | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (a timed-out probe, a closed tab) is not the server's failure: no
        trace for it. Anything else is printed as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # otherwise every loopback round trip waits for delayed ACKs
    protocol_version = "HTTP/1.1"
    server_version = "llm-router-local"

    def log_message(self, format: str, *args: Any) -> None:
        if isinstance(self.server, _HttpServer) and self.server.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        assert isinstance(self.server, _HttpServer) and self.server.gateway is not None
        gateway = self.server.gateway
        address = self.server.server_address
        bound = str(address[0]) if isinstance(address, tuple) else "127.0.0.1"
        if not host_allowed(self.headers.get("Host"), bound):
            message = "The Host header must name this server (a loopback address or the address it listens on)."
            response: Response = json_response(
                421, error_envelope(message, "invalid_request_error", "host_not_allowed")
            )
        else:
            response = gateway.invoke(proxy_event(self.command, self.path, headers, body, self.client_address[0]))
        if isinstance(response, StreamingResponse):
            self._stream(response)
            return
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        self._head(int(response["statusCode"]), response.get("headers"), response.get("multiValueHeaders"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _head(self, status: int, headers: dict[str, str] | None, multi: dict[str, list[str]] | None) -> None:
        self.send_response(status)
        merged: dict[str, list[str]] = {k: [v] for k, v in (headers or {}).items()}
        for name, values in (multi or {}).items():
            merged[name] = list(values)
        for name, values in merged.items():
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            for value in values:
                self.send_header(name, str(value))

    def _stream(self, response: StreamingResponse) -> None:
        """Chunked transfer encoding, one HTTP chunk per piece the API produced, flushed at once."""
        body = iter(response.body)
        try:
            self._head(response.status_code, response.headers, response.multi_value_headers)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for piece in body:
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client went away; closing the body below still accounts the stream
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve


class LocalServer:
    """The local HTTP front end; `port=0` picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, *, verbose: bool = False) -> None:
        self._httpd = _HttpServer((host, port), verbose=verbose)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def attach(self, gateway: LocalGateway) -> LocalServer:
        """What answers the requests (the socket can be bound before the emulated services start)."""
        self._httpd.gateway = gateway
        return self

    def start(self) -> LocalServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="llm-router-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
