"""Shared CLI plumbing: `--local` (talk to the emulated AWS of a running `llm-router serve`), files, output."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE, Env, get_settings

STATE_DIR = Path(".llm-router")
ENDPOINT_FILE = STATE_DIR / "local.json"
# The most recently started local server also leaves its endpoint here, so `--local` works from any directory.
USER_ENDPOINT_FILE = Path("~") / ENDPOINT_FILE


class CliError(Exception):
    """A user-facing error: printed without a stack trace, exit code 2."""


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """`--local` and the table names every data command accepts."""
    parser.add_argument(
        "--local",
        action="store_true",
        help="use the emulated AWS of the running `llm-router serve` (see .llm-router/local.json)",
    )
    parser.add_argument("--config-table", help="Config table name (default: $CONFIG_TABLE_NAME or llm-router-config)")
    parser.add_argument("--state-table", help="State table name (default: $STATE_TABLE_NAME or llm-router-state)")


def endpoint_file(base: Path | None = None) -> Path:
    """The endpoint file of the local server to use: the nearest in `base` (the working directory) or a parent,
    else the one the most recently started server left in the home directory."""
    start = (base or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / ENDPOINT_FILE).exists():
            return folder / ENDPOINT_FILE
    user = USER_ENDPOINT_FILE.expanduser()
    return user if user.exists() else start / ENDPOINT_FILE


def apply_target(args: argparse.Namespace) -> None:
    """Point boto3 at the local emulation (with --local) and apply table-name overrides, before any client exists."""
    if getattr(args, "local", False):
        path = endpoint_file()
        if not path.exists():
            raise CliError(
                f"no local server found ({path} is missing): start one with `make run` or `llm-router serve`"
            )
        info = json.loads(path.read_text())
        if not _listening(info["endpoint"]):
            raise CliError(
                f"the local server recorded in {path} is not running (pid {info.get('pid', '?')}); "
                "start it with `make run`, or delete the file"
            )
        os.environ.update(local_environment(info["endpoint"], info.get("region", "us-east-1")))
        os.environ[Env.CONFIG_TABLE_NAME] = info["config_table"]
        os.environ[Env.STATE_TABLE_NAME] = info["state_table"]
        if info.get("fallback_queue_url"):
            os.environ[Env.FALLBACK_QUEUE_URL] = info["fallback_queue_url"]
    if getattr(args, "config_table", None):
        os.environ[Env.CONFIG_TABLE_NAME] = args.config_table
    if getattr(args, "state_table", None):
        os.environ[Env.STATE_TABLE_NAME] = args.state_table
    # Without table names given, the command reads the tables of the names local mode creates.
    os.environ.setdefault(Env.CONFIG_TABLE_NAME, DEFAULT_CONFIG_TABLE)
    os.environ.setdefault(Env.STATE_TABLE_NAME, DEFAULT_STATE_TABLE)
    get_settings.cache_clear()


def _listening(endpoint: str) -> bool:
    """Whether something accepts connections at `endpoint` (a stale endpoint file outlives a killed server)."""
    parts = urlsplit(endpoint)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1):
            return True
    except OSError:
        return False


def local_environment(endpoint: str, region: str) -> dict[str, str]:
    """Environment that sends every boto3 call to the emulation, with throwaway credentials."""
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }
    for service in ("DYNAMODB", "SQS", "SECRETS_MANAGER", "S3", "CLOUDWATCH", "STS"):
        env[f"AWS_ENDPOINT_URL_{service}"] = endpoint
    env.pop("AWS_PROFILE", None)
    return env


def read_document(source: str) -> Any:
    """YAML or JSON from a file path, `-` (stdin), or inline text starting with `{` or `[`."""
    if source == "-":
        text = sys.stdin.read()
    elif source.lstrip().startswith(("{", "[")):
        text = source
    else:
        path = Path(source)
        if not path.exists():
            raise CliError(f"file not found: {source}")
        text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{source}: not valid YAML or JSON: {exc}") from None


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain aligned table; empty cells for missing values."""
    cells = [[str(row.get(c, "") if row.get(c) is not None else "") for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
