"""HTTP on 127.0.0.1 in front of the real handlers: each request becomes an API Gateway REST proxy event,
goes through the authorizer code first (as API Gateway would), then the router handler."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from llm_router.authorizer import Unauthorized, authorize

UNAUTHORIZED_BODY = {
    "error": {
        "message": "Missing or invalid API key. Send it as 'Authorization: Bearer <key>'.",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
PUBLIC_PATHS = ("/health",)
# Powertools' resolver keeps the current event on a class attribute, so two threads must never run it at once.
# One request at a time is also what one Lambda instance does; the HTTP threads only parse and write sockets.
_HANDLER_LOCK = threading.Lock()


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


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    """Authorize (except public paths) and call the router handler, like API Gateway does."""
    from llm_router.api import handle

    if event["path"] not in PUBLIC_PATHS:
        try:
            event["methodArn"] = (
                f"arn:aws:execute-api:local:000000000000:local/local/{event['httpMethod']}{event['path']}"
            )
            result = authorize(event)
        except Unauthorized:
            return {
                "statusCode": 401,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps(UNAUTHORIZED_BODY),
            }
        event["requestContext"]["authorizer"] = {"principalId": result["principalId"], **result["context"]}
        event.pop("methodArn", None)
    with _HANDLER_LOCK:
        return handle(event, None)


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # otherwise every loopback round trip waits for delayed ACKs
    protocol_version = "HTTP/1.1"
    server_version = "llm-router-local"

    def log_message(self, format: str, *args: Any) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        response = invoke(proxy_event(self.command, self.path, headers, body, self.client_address[0]))
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        self.send_response(int(response["statusCode"]))
        merged: dict[str, list[str]] = {k: [v] for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            merged[name] = list(values)
        for name, values in merged.items():
            if name.lower() in ("content-length", "connection"):
                continue
            for value in values:
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class LocalServer:
    """The local HTTP front end; `port=0` picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, *, verbose: bool = False) -> None:
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.verbose = verbose  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

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
