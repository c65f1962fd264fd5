"""A loopback proxy in front of moto that answers repeated DynamoDB reads from its first answer.

The cold-start runs all read the same config (three Config-table partitions, 200 rules) and tenant. moto builds
each answer in Python, which takes it far longer than DynamoDB (hundreds of milliseconds for the 200-item query),
and that time would be counted as the router's. Through this proxy the first run's reads go to moto and are
recorded; later runs get the recorded bytes at once, so what a cold start measures is the router's own work, as
the simulated model and the zero-latency writes do for warm requests. Writes always go through to moto. The
number of AWS calls and the time spent waiting for them are reported next to the cold start.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# Operations whose answer depends only on the request and the (unchanging) config.
READS = frozenset(f"DynamoDB_20120810.{op}" for op in ("Query", "GetItem", "BatchGetItem", "Scan", "DescribeTable"))


class ReadCache:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._answers: dict[tuple[str, bytes], tuple[int, list[tuple[str, str]], bytes]] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ReadCache:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return (
                response.status,
                [(k, v) for k, v in response.getheaders() if k.lower() != "transfer-encoding"],
                (response.read()),
            )
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cache = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target") or ""
                key = (target, body)
                with cache._lock:
                    answer = cache._answers.get(key) if target in READS else None
                if answer is None:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    answer = cache._forward("POST", self.path, headers, body)
                    with cache._lock:
                        cache.misses += 1
                        if target in READS and answer[0] == 200:
                            cache._answers[key] = answer
                else:
                    with cache._lock:
                        cache.hits += 1
                status, headers, payload = answer
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
