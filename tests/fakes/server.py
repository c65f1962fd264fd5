"""The HTTP machinery the fake APIs share: a threaded server on a free loopback port, request recording,
and failure modes injected per request.

Modes (set `mode` for every request, or queue one-shot modes with `script(...)`):
ok, slow (answers after `slow_seconds`), throttle (429 + Retry-After), server_error (500), overloaded (the API's
"busy" status), drop (closes the connection without answering), malformed (200 with a body that is not JSON),
bad_request (a 400 caused by the request), auth (401), not_found (404 unknown model). Prompts longer than
the model's entry in `context_windows` (in tokens, about four characters each) get the API's real
context-overflow error.

A request that asks to stream gets the answer as the API's event stream (chunked, one event per chunk, one write
and flush per chunk): `stream_chunks` pieces of text or tool arguments, `stream_interval` seconds apart, framed by
the API's opening and closing events (usage last). Every mode above fails before the first byte; two more fail
during the stream: stream_cut (closes the connection after `stream_cut_after` chunks) and stream_error (sends
the API's error event after `stream_cut_after` chunks). `streams` records when each chunk was written.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

MODES = (
    *("ok", "slow", "throttle", "server_error", "overloaded"),
    *("drop", "malformed", "bad_request", "auth", "not_found"),
    *("stream_cut", "stream_error"),
)


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] | None = None
    # A streamed reply: one chunk per event, after `cut_after` of them either `closing` or a dropped connection.
    events: list[bytes] | None = None
    content_type: str = "application/json"
    cut_after: int | None = None
    closing: bytes | None = None


@dataclass
class StreamLog:
    """One streamed response as written: when each chunk left (time.monotonic()) and how the stream ended."""

    chunks: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    completed: bool = False  # the whole stream and its end were written
    aborted: bool = False  # a write failed: the client closed the connection


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class FakeAPI:
    """Base of the fake APIs: subclasses implement `answer` (a 200 body) and the error bodies."""

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.mode = "ok"
        self.slow_seconds = 5.0
        self.retry_after = "1"
        self.context_windows: dict[str, int] = {}
        self.tool_arguments: dict[str, Any] = {"location": "Paris"}
        self.cached_tokens = 0
        self.stream_chunks = 20
        self.stream_interval = 0.01
        self.stream_cut_after = 3
        self.streams: list[StreamLog] = []
        self.requests: list[Received] = []
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self.connections_seen = 0  # connections accepted: keep-alive reuse shows as fewer than requests
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), daemon=True, name=type(self).__name__
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like a killed process: the port closes and open keep-alive connections are cut."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def script(self, *modes: str) -> None:
        """Use these modes for the next requests, one each, before falling back to `mode`."""
        for mode in modes:
            assert mode in MODES, mode
        with self._lock:
            self._script.extend(modes)

    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def _next_mode(self) -> str:
        with self._lock:
            return self._script.popleft() if self._script else self.mode

    # -- the API ---------------------------------------------------------------------------------------------
    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply | None:
        """The reply for one request; None drops the connection."""
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError:
            body = None
        with self._lock:
            self.requests.append(Received(path, headers, body))
        mode = self._next_mode()
        if mode == "drop":
            return None
        if mode == "slow" and self._stopping.wait(self.slow_seconds):
            return None
        if mode == "malformed":
            return Reply(200, b'{"id": "broken", "choices": [', None)
        if mode == "throttle":
            return Reply(429, self.error_body(429, "rate_limit"), {"Retry-After": self.retry_after})
        if mode in ("server_error", "overloaded"):
            status = self.overloaded_status if mode == "overloaded" else 500
            return Reply(status, self.error_body(status, mode))
        if mode == "auth" or not self.authorized(headers):
            return Reply(401, self.error_body(401, "auth"))
        if mode == "not_found":
            return Reply(404, self.error_body(404, "not_found"))
        if mode == "bad_request":
            return Reply(400, self.error_body(400, "bad_request"))
        problem = self.validate(path, headers, body)
        if problem is not None:
            return Reply(400, self.error_body(400, "bad_request", problem))
        window = self.context_windows.get(str(body.get("model")))
        tokens = len(json.dumps(body.get("messages"))) // 4
        if window is not None and tokens > window:
            return Reply(400, self.overflow_body(tokens, window))
        if self.streaming(path, body):
            return self.streamed(body, mode)
        return Reply(200, self.answer(body))

    def streamed(self, body: dict[str, Any], mode: str) -> Reply:
        events = self.stream_events(body)
        cut_after = self.stream_cut_after if mode in ("stream_cut", "stream_error") else None
        closing = self.stream_error_event() if mode == "stream_error" else None
        return Reply(
            200, None, events=events, content_type=self.stream_content_type, cut_after=cut_after, closing=closing
        )

    overloaded_status = 503
    stream_content_type = "text/event-stream"

    def streaming(self, path: str, body: Any) -> bool:
        return isinstance(body, dict) and body.get("stream") is True

    def stream_events(self, body: dict[str, Any]) -> list[bytes]:
        raise NotImplementedError

    def stream_error_event(self) -> bytes:
        raise NotImplementedError

    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def validate(self, path: str, headers: dict[str, str], body: Any) -> str | None:
        raise NotImplementedError

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def error_body(self, status: int, kind: str, message: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def overflow_body(self, tokens: int, window: int) -> dict[str, Any]:
        raise NotImplementedError


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


def _handler_for(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # otherwise each loopback round trip waits for delayed ACKs
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with api._lock:
                api._connections.add(self.connection)
                api.connections_seen += 1

        def finish(self) -> None:
            with api._lock:
                api._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = api.handle(self.path, headers, raw)
            if reply is None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.events is not None:
                self._stream(reply)
                return
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (reply.headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, reply: Reply) -> None:
            assert reply.events is not None
            self.send_response(200)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            log = StreamLog()
            with api._lock:
                api.streams.append(log)
            count = len(reply.events) if reply.cut_after is None else min(reply.cut_after, len(reply.events))
            for i, event in enumerate(reply.events[:count]):
                if i and api.stream_interval and api._stopping.wait(api.stream_interval):
                    return
                if not self._chunk(event, log):
                    return
            if reply.cut_after is not None and reply.closing is None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.closing is not None and not self._chunk(reply.closing, log):
                return
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                log.aborted, self.close_connection = True, True
                return
            log.completed = True

        def _chunk(self, data: bytes, log: StreamLog) -> bool:
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            except OSError:
                log.aborted, self.close_connection = True, True
                return False
            log.chunks.append(data)
            log.times.append(time.monotonic())
            return True

    return Handler


def pieces(text: str, count: int) -> list[str]:
    """`text` cut into at most `count` non-empty pieces of nearly equal length."""
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return [p for p in out if p]


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: `data` as JSON (or as is, when a string)."""
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "").encode() + f"data: {text}\n\n".encode()


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last message with text in it (OpenAI string or parts, or Anthropic blocks)."""
    for message in reversed(messages):
        content = message.get("content")
        if isinstance(content, str) and content:
            return content
        if isinstance(content, list):
            texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            if any(texts):
                return " ".join(t for t in texts if t)
    return ""
