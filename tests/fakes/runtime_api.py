"""A fake Lambda Runtime API on 127.0.0.1: serves queued invocations and records every POST byte for byte.

`BaseHTTPRequestHandler` does not decode chunked bodies, so the fake reads the chunk framing itself, keeping the
raw bytes, each chunk as it arrived and the trailers: what Lambda would see of a streamed response.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Post:
    """One POST as received: `raw` is the body exactly as it came over the wire (chunk framing included)."""

    path: str
    headers: list[tuple[str, str]]
    raw: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    complete: bool = False

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class QueuedInvocation:
    request_id: str
    event: Any
    headers: dict[str, str]


class FakeRuntimeAPI:
    """Start with `with FakeRuntimeAPI() as api:`; `api.address` is what AWS_LAMBDA_RUNTIME_API holds."""

    def __init__(self, response_status: int = 202) -> None:
        self.response_status = response_status
        self.posts: list[Post] = []
        self.next_requests = 0
        self._invocations: queue.Queue[QueuedInvocation] = queue.Queue()
        self._changed = threading.Condition()
        self._closed = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def __enter__(self) -> FakeRuntimeAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, request_id: str, event: Any, deadline_ms: int | None = None, **headers: str) -> None:
        """Queue an invocation; extra headers by Runtime API name, e.g. trace_id="Root=..." (see HEADER_NAMES)."""
        wire = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms or int(time.time() * 1000) + 60_000),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:router",
        }
        wire.update({HEADER_NAMES[name]: value for name, value in headers.items()})
        self._invocations.put(QueuedInvocation(request_id, event, wire))

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Post]:
        """Block until `count` POSTs have completed (generous bound: it only guards against a hung test)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(p.complete for p in self.posts) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{count} POSTs expected, got {[p.path for p in self.posts]}")
                self._changed.wait(remaining)
            return [p for p in self.posts if p.complete]

    def wait_for_chunks(self, count: int, timeout: float = 20.0) -> Post:
        """Block until the POST in progress has delivered `count` chunks: proof they left without buffering."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self.posts or len(self.posts[-1].chunks) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{count} chunks expected, got {self.posts[-1].chunks if self.posts else []}")
                self._changed.wait(remaining)
            return self.posts[-1]

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self._answer(404, b'{"errorMessage":"not found"}')
                    return
                api.next_requests += 1
                while not api._closed:
                    try:
                        invocation = api._invocations.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    body = json.dumps(invocation.event).encode()
                    self.send_response(200)
                    for name, value in invocation.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return

            def do_POST(self) -> None:
                post = Post(self.path, list(self.headers.items()))
                with api._changed:
                    api.posts.append(post)
                if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
                    self._read_chunked(post)
                else:
                    post.raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    post.chunks.append(post.raw)
                with api._changed:
                    post.complete = True
                    api._changed.notify_all()
                self._answer(api.response_status, b'{"status":"OK"}')

            def _read_chunked(self, post: Post) -> None:
                while True:
                    size_line = self.rfile.readline()
                    post.raw += size_line
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        break
                    data = self.rfile.read(size)
                    ending = self.rfile.readline()
                    post.raw += data + ending
                    assert ending == b"\r\n", f"chunk of {size} bytes not followed by CRLF: {ending!r}"
                    with api._changed:
                        post.chunks.append(data)
                        api._changed.notify_all()
                while True:
                    line = self.rfile.readline()
                    post.raw += line
                    if line in (b"\r\n", b""):
                        return
                    name, _, value = line.decode("latin-1").partition(":")
                    post.trailers[name.strip()] = value.strip()

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


HEADER_NAMES = {
    "trace_id": "Lambda-Runtime-Trace-Id",
    "client_context": "Lambda-Runtime-Client-Context",
    "cognito_identity": "Lambda-Runtime-Cognito-Identity",
    "function_arn": "Lambda-Runtime-Invoked-Function-Arn",
}
