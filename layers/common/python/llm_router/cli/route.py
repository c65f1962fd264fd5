"""`llm-router route "prompt"`: the routing decision and its trace, without calling a model."""

from __future__ import annotations

import argparse

from llm_router.cli.common import CliError, add_target_options, apply_target, print_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("route", help="dry-run routing for a prompt and print the trace")
    p.add_argument("prompt")
    p.add_argument("--route", default="auto", help="route or model id to request (default: auto)")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="request metadata (repeatable)")
    p.add_argument("--tenant", default="cli", help="tenant to evaluate tenant conditions against")
    p.add_argument("--user", help="the request's `user` (split rules are sticky per tenant and user)")
    add_target_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    apply_target(args)
    from llm_router.errors import RouterError
    from llm_router.gateway import RequestContext
    from llm_router.schemas.openai import ChatCompletionRequest, Message
    from llm_router.settings import GatewaySettings
    from llm_router.wiring import build_gateway

    metadata = {}
    for pair in args.metadata:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--metadata wants KEY=VALUE, got {pair!r}")
        metadata[key] = value
    request = ChatCompletionRequest(
        model=args.route,
        messages=[Message(role="user", content=args.prompt)],
        metadata=metadata or None,
        user=args.user,
    )
    try:
        gateway = build_gateway(GatewaySettings.from_env(), accounting=False)
        print_json(gateway.explain(request, RequestContext(tenant=args.tenant)))
    except RouterError as exc:
        raise CliError(exc.message) from None
    return 0
