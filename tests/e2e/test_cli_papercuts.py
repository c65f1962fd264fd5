"""The CLI and the local server behave in a terminal as users expect: `--local` from any folder, quiet closed
pipes, SIGTERM cleaning up like Ctrl-C, keys revoked by the hash `keys list` shows, routes listed with strategy."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Served, start_server


def run_cli(served: Served, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_router.cli.main", *args],
        cwd=cwd, env=served.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_local_works_from_a_subfolder_and_from_anywhere(served: Served, tmp_path: Path) -> None:
    below = served.workdir / "src" / "deep"
    below.mkdir(parents=True, exist_ok=True)

    nested = run_cli(served, below, "routes", "list", "--local")
    elsewhere = run_cli(served, tmp_path, "routes", "list", "--local")  # found through $HOME/.llm-router

    assert nested.returncode == 0, nested.stderr
    assert elsewhere.returncode == 0, elsewhere.stderr


def test_routes_list_shows_the_strategy(served: Served) -> None:
    listed = served.cli("routes", "list", "--local")

    header, auto = (
        listed.stdout.splitlines()[0],
        next(row for row in listed.stdout.splitlines() if row.startswith("auto")),
    )
    assert "STRATEGY" in header and "threshold" in auto


def test_a_closed_pipe_ends_the_cli_quietly(served: Served) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_router.cli.main", "rules", "list", "--local"],
        cwd=served.workdir, env=served.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` exiting before the output comes

    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_keys_are_revoked_by_the_hash_keys_list_shows(served: Served) -> None:
    created = served.cli("keys", "create", "--tenant", "revokee", "--local")
    key = created.stdout.splitlines()[0]
    listed = served.cli("keys", "list", "--local").stdout.splitlines()
    row = next(line for line in listed if " revokee " in f" {line} ")
    shown_hash = row.split()[-1]

    revoked = served.cli("keys", "revoke", shown_hash, "--local")

    assert revoked.returncode == 0, revoked.stderr
    assert "tenant revokee" in revoked.stdout
    assert key[:8] not in served.cli("keys", "list", "--local").stdout


def test_sigterm_cleans_up_like_ctrl_c(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory.mktemp("sigterm"))
    endpoint_file = server.workdir / ".llm-router" / "local.json"
    assert endpoint_file.exists()

    server.process.send_signal(signal.SIGTERM)
    out, _ = server.process.communicate(timeout=30)

    assert server.process.returncode == 0, out
    assert not endpoint_file.exists()
    assert "stopping" in out
