"""Start `llm-router serve` as a user would (a subprocess on a free port) and drive it over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    base_url: str
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `llm-router ARGS` in the server's project folder (so `--local` finds it)."""
        return subprocess.run(
            [sys.executable, "-m", "llm_router.cli.main", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


def start_server(workdir: Path, *args: str, env_extra: dict[str, str] | None = None) -> Served:
    port = free_port()
    # HOME in the work folder: the server leaves its endpoint there too, and must not touch the user's.
    env = {**os.environ, "HOME": str(workdir), "RULES_TTL_SECONDS": "1", "LLM_ROUTER_METRICS_SINK": "off",
           **(env_extra or {})}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_router.cli.main", "serve", "--port", str(port), *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stdout.read() if process.stdout else ''}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1) as response:
                if response.status == 200 and (workdir / ".llm-router" / "local.json").exists():
                    return Served(base, workdir, env, process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start within 60 s")


def stop_server(served: Served) -> str:
    served.process.send_signal(2)  # Ctrl-C
    try:
        out, _ = served.process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        served.process.kill()
        out, _ = served.process.communicate()
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start_server(tmp_path_factory.mktemp("serve"))
    yield server
    stop_server(server)
