"""The streaming benchmark's upstream: an OpenAI-compatible `POST /v1/chat/completions` on loopback that answers
`stream: true` with a fixed number of content chunks at a fixed interval, each stamped with the moment it was sent.

It runs in the parent process (bench/run.py), apart from the worker that measures both gateways, so that neither
gateway shares its interpreter lock with the upstream. Each content chunk carries its send time (`time.monotonic_ns`,
CLOCK_MONOTONIC on Linux: one clock for every process of the machine) in its text, so a worker learns when the
upstream sent a chunk from the chunk itself, whichever gateway passed it on.

Standard library only, like workload.py.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNKS = 64
INTERVAL_MS = 5.0
MODEL_PREFIX = "upstream-"
# A content chunk's text: "<index>@<send time in ns> ", e.g. "7@81234567890123 ".
_STAMP = re.compile(r"(\d+)@(\d+) ")


def stamps(text: str) -> list[tuple[int, int]]:
    """(chunk index, upstream send time in ns) of every stamp in `text`."""
    return [(int(index), int(ns)) for index, ns in _STAMP.findall(text)]


class StreamingUpstream:
    """`ThreadingHTTPServer` on 127.0.0.1; every request is answered as a stream, whatever it asks for."""

    def __init__(self, *, chunks: int = CHUNKS, interval_ms: float = INTERVAL_MS) -> None:
        self.chunks = chunks
        self.interval_s = interval_ms / 1000
        self.streams = 0
        self.usage_requested = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bench-upstream", daemon=True)

    @property
    def base_url(self) -> str:
        """The API root an OpenAI client is given (`/chat/completions` is appended to it)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> StreamingUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # each chunk leaves at once, as a model server's would

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                with upstream._lock:
                    upstream.streams += 1
                    upstream.usage_requested += include_usage
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                self._events(str(body.get("model") or "upstream"), include_usage)

            def handle(self) -> None:
                # A worker that exits closes its kept-alive connection.
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def _events(self, model: str, include_usage: bool) -> None:
                base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time())}
                base["model"] = model
                # Every event serialised up front with a place for its stamp, so that a chunk leaves within
                # microseconds of being stamped.
                templates = []
                for index in range(upstream.chunks):
                    delta: dict[str, Any] = {"content": f"{index}@STAMP "}
                    if index == 0:
                        delta = {"role": "assistant", **delta}
                    event = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    templates.append(_sse(event).replace(b"%", b"%%").replace(b"STAMP", b"%d"))
                began = time.monotonic()
                for index, template in enumerate(templates):
                    # A fixed schedule from the request's arrival: the first chunk one interval in, like a first token.
                    pause = began + (index + 1) * upstream.interval_s - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    self._write(template % time.monotonic_ns())
                self._write(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
                if include_usage:
                    # Roughly what a tokenizer would count for the stamps: three tokens a chunk.
                    usage = {"prompt_tokens": 20, "completion_tokens": 3 * upstream.chunks}
                    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                    self._write(_sse({**base, "choices": [], "usage": usage}))
                self._write(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _write(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def stream_config(rules: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The benchmark's config with every model an OpenAI-compatible model at the upstream (no simulation)."""
    models = []
    for model in rules["models"]:
        entry = {k: v for k, v in model.items() if k not in ("provider", "model_id")}
        models.append({**entry, "provider": "openai", "model_id": MODEL_PREFIX + model["id"], "base_url": base_url})
    return {**rules, "models": models}


def _variant(rules: dict[str, Any], variant: str) -> dict[str, Any]:
    """The benchmark's rules (`bench`), the same with its PII rule made a policy (`pii-policy`: evaluated for every
    request, before any other rule), or with no rule that needs PII detection (`plain`)."""
    if variant == "bench":
        return rules
    kept = []
    for rule in rules["rules"]:
        if rule["id"] == "pii-stays-in-eu":
            if variant == "plain":
                continue
            rule = {**rule, "enforce": "always"}
        kept.append(rule)
    return {**rules, "rules": kept}


def main() -> None:
    """The streaming measurement alone, repeated: `.venv-bench/bin/python bench/streaming.py --runs 5`.

    Each run is one worker process (bench/workers.py `stream`), as in `make bench`; the medians over the runs are
    printed last. Imports of the benchmark's other modules stay here: the workers import this module."""
    import argparse
    import statistics
    import tempfile
    from pathlib import Path

    import run
    import workload

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--streams", type=int, default=100, help="streams per gateway and run")
    parser.add_argument("--interval-ms", type=float, default=INTERVAL_MS)
    parser.add_argument("--variant", choices=("bench", "plain", "pii-policy"), default="bench")
    args = parser.parse_args()

    from llm_router.local.runtime import LocalStack
    from llm_router.stores.config_admin import ConfigAdmin, validate_document
    from llm_router.stores.tables import table_definition

    workdir = Path(tempfile.mkdtemp(prefix="llm-router-stream-"))
    stack = LocalStack(config_path=workload.CONFIG_PATH, simulate=True, project_dir=workdir, write_endpoint_file=False)
    stack.start()
    upstream = StreamingUpstream(interval_ms=args.interval_ms).start()
    rows: list[dict[str, float]] = []
    try:
        runner = run.Runner(workdir, run.child_environment(stack))
        config = validate_document(_variant(stream_config(workload.rules_config(), upstream.base_url), args.variant))
        if not config.ok:
            raise SystemExit("streaming config is invalid: " + "; ".join(config.errors))
        ddb = stack.clients.get("dynamodb")
        ddb.create_table(**table_definition(run.STREAM_CONFIG_TABLE))
        ConfigAdmin(run.STREAM_CONFIG_TABLE, dynamodb=ddb).apply(config)
        env = {**runner.env, "CONFIG_TABLE_NAME": run.STREAM_CONFIG_TABLE, "LLM_ROUTER_SIMULATE": "false"}
        for index in range(args.runs):
            result = runner.run(
                "stream", "--requests", str(args.streams), "--warmup", "5", "--upstream", upstream.base_url, env=env
            )
            if result is None:
                raise SystemExit("; ".join(runner.errors))
            ours, theirs = result["ours"], result["litellm"]
            row = {
                "ours_p50": ours["ttfb_overhead"]["p50_ms"],
                "ours_p99": ours["ttfb_overhead"]["p99_ms"],
                "litellm_p50": theirs["ttfb_overhead"]["p50_ms"],
                "litellm_p99": theirs["ttfb_overhead"]["p99_ms"],
                "chunk_p50_us": ours["chunk_overhead_us"]["p50_us"],
                "litellm_chunk_p50_us": theirs["chunk_overhead_us"]["p50_us"],
                "direct_p50": result["direct"]["ttfb_overhead"]["p50_ms"],
            }
            row["ratio_p50"] = row["ours_p50"] / row["litellm_p50"]
            row["ratio_p99"] = row["ours_p99"] / row["litellm_p99"]
            rows.append(row)
            print(f"run {index + 1}: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    finally:
        upstream.stop()
        stack.stop()
    print("median: " + "  ".join(f"{k} {statistics.median(r[k] for r in rows):.3f}" for k in rows[0]))


if __name__ == "__main__":
    main()
