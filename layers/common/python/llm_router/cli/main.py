"""`llm-router`: serve locally, edit rules/models/keys in DynamoDB, dry-run routing, train and evaluate routers.

Each command group lives in its own module exposing `register(subparsers)`; handlers return a process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from llm_router.cli.common import CliError
from llm_router.settings import SettingsError

# Modules under llm_router.cli that add commands, in help order.
COMMAND_MODULES = (
    "serve",
    "config",
    "items",
    "route",
    "keys",
    "tenants",
    "prices",
    "usage",
    "experiments",
    "dlq",
    "cache",
    "simulate",
    "ml",
    "doctor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-router", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"llm_router.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"llm_router.cli.{name}":
                continue  # an optional command group that is not installed
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return int(args.handler(args) or 0)
    except (CliError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        # AWS said no (missing table, access denied, ...): its message says what, no stack trace needed.
        error = exc.response.get("Error", {})
        print(f"error: AWS {error.get('Code', 'error')}: {error.get('Message', exc)}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:  # no credentials, endpoint unreachable, ...
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`llm-router rules list | head`): nothing left to say, and nothing to say it to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
