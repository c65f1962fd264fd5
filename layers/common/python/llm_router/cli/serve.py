"""`llm-router serve`: the router on 127.0.0.1 with emulated AWS services (what `make run` calls)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from llm_router.cli.common import CliError, read_document
from llm_router.cli.config import problems
from llm_router.settings import Env
from llm_router.stores.config_admin import validate_document


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("serve", help="serve the router locally with emulated AWS services")
    p.add_argument("--port", type=int, default=int(os.environ.get(Env.PORT, "8080")), help="HTTP port (default 8080)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--config", type=Path, help="config file to seed (default: the example config, all simulated)")
    p.add_argument("--simulate", action="store_true", help="answer every model with the simulated provider")
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:  # noqa: C901 - start-up steps in order, each with its own error
    from llm_router.local.runtime import DEFAULT_LOCAL_KEY, LocalStack
    from llm_router.local.server import LocalServer, UnsafeBindError, check_bind

    if args.config is not None and not args.config.exists():
        raise CliError(f"config file not found: {args.config}")
    if args.config is not None:
        # Before anything starts: an invalid file is reported exactly as `config validate` reports it.
        config = validate_document(read_document(str(args.config)))
        if not config.ok:
            for line in problems(config):
                print(line, file=sys.stderr)
            raise CliError(f"{args.config} is not a valid config; nothing started")
    try:
        check_bind(args.host, os.environ.get(Env.LOCAL_KEY) or DEFAULT_LOCAL_KEY, DEFAULT_LOCAL_KEY)
    except UnsafeBindError as exc:
        raise CliError(str(exc)) from None
    try:
        server = LocalServer(args.host, args.port, verbose=args.verbose)
    except OSError as exc:
        raise CliError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror} (set PORT=... to pick another)"
        ) from None
    stack = LocalStack(config_path=args.config, simulate=True if args.simulate else None)
    try:
        stack.start()
    except ValueError as exc:
        server.stop()
        stack.stop()  # the emulation's server thread would otherwise keep the process alive
        raise CliError(str(exc)) from None
    stop = threading.Event()
    # SIGTERM (kill, process managers, CI) cleans up like Ctrl-C: the endpoint file goes, the emulation stops. Set
    # before the server answers, so that a SIGTERM sent as soon as it does never meets the default action.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    replay = stack.start_replay()
    server.attach(stack.gateway()).start()
    base = server.base_url
    mode = "every model simulated" if stack.simulate else "models called through their providers"
    print(
        f"llm-router is serving on {base}  ({mode})\n"
        f"  OpenAI base URL : {base}/v1\n"
        f"  API key         : {stack.api_key}\n"
        f"  Emulated AWS    : {stack.endpoint}  (CLI: add --local, e.g. `llm-router rules list --local`)\n"
        f"  Try:\n"
        f"    curl -s {base}/v1/chat/completions -H 'Authorization: Bearer {stack.api_key}' "
        f"-H 'Content-Type: application/json' "
        f'-d \'{{"model": "auto", "messages": [{{"role": "user", "content": "Hello!"}}]}}\'\n'
        f"  Ctrl-C stops everything.",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if stop.is_set():
            print("\nstopping...", flush=True)
        server.stop()
        replay.stop()
        stack.stop()
    return 0
