"""Shutdown: SIGTERM runs the hooks (held usage is written), and the layer's extension makes Lambda send it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "layers" / "common" / "extensions" / "llm-router-shutdown"


def test_sigterm_runs_the_shutdown_hooks_then_exits(tmp_path: Path) -> None:
    marker = tmp_path / "flushed"
    script = textwrap.dedent(
        f"""
        import sys, time
        from llm_router.lifecycle import on_shutdown
        on_shutdown(lambda: open({str(marker)!r}, "w").write("written"))
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"

    child.send_signal(signal.SIGTERM)

    assert child.wait(timeout=20) == 0
    assert marker.read_text() == "written"


def test_hooks_run_at_exit_once(tmp_path: Path) -> None:
    marker = tmp_path / "flushed"
    script = textwrap.dedent(
        f"""
        from llm_router.lifecycle import on_shutdown, run_hooks
        on_shutdown(lambda: open({str(marker)!r}, "a").write("x"))
        run_hooks()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=20)

    assert marker.read_text() == "x"


class _RuntimeApi(BaseHTTPRequestHandler):
    """The Extensions API of a Lambda execution environment: register, then events (here at once SHUTDOWN)."""

    disable_nagle_algorithm = True
    calls: list[tuple[str, str, dict[str, str], Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(("POST", self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Lambda-Extension-Identifier", "ext-123")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path, dict(self.headers), None))
        payload = json.dumps({"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_extension_registers_for_shutdown_only_and_exits_on_it() -> None:
    assert os.access(EXTENSION, os.X_OK), "the extension must be executable (Lambda runs it as a program)"
    _RuntimeApi.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        }
        done = subprocess.run([str(EXTENSION)], env=env, timeout=30, capture_output=True, text=True)
    finally:
        server.shutdown()

    assert done.returncode == 0, done.stderr
    method, path, headers, body = _RuntimeApi.calls[0]
    assert (method, path, body) == ("POST", "/2020-01-01/extension/register", {"events": ["SHUTDOWN"]})
    assert headers["Lambda-Extension-Name"] == "llm-router-shutdown"  # must equal the file name
    method, path, headers, _ = _RuntimeApi.calls[1]
    assert (method, path) == ("GET", "/2020-01-01/extension/event/next")
    assert headers["Lambda-Extension-Identifier"] == "ext-123"
    assert len(_RuntimeApi.calls) == 2
