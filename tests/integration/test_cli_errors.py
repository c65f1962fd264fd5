"""The CLI explains AWS and local-server problems in one line, without a stack trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto import mock_aws

from llm_router.cli.main import main as cli


def test_stale_local_endpoint_file_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / ".llm-router"
    state.mkdir()
    endpoint = {"endpoint": "http://127.0.0.1:9", "region": "us-east-1", "config_table": "c", "state_table": "s"}
    (state / "local.json").write_text(json.dumps({**endpoint, "pid": 4242}))
    monkeypatch.chdir(tmp_path)

    code = cli(["rules", "list", "--local"])

    assert code == 2
    assert "is not running (pid 4242)" in capsys.readouterr().err


def test_missing_table_is_an_aws_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        code = cli(["rules", "list", "--config-table", "no-such-table"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: AWS ResourceNotFoundException")
    assert "Traceback" not in err
