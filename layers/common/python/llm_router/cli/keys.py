"""`llm-router keys create|list|revoke`: API keys, stored only as SHA-256 hashes with their tenant."""

from __future__ import annotations

import argparse

from llm_router.cli.common import CliError, add_target_options, apply_target, print_table
from llm_router.settings import get_settings
from llm_router.stores.key_store import AmbiguousKeyError, KeyStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("keys", help="create, list or revoke API keys")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a key for a tenant (printed once, stored as a hash)")
    create.add_argument("--tenant", required=True)
    create.add_argument(
        "--admin", action="store_true", help="admin scope: /v1/route also shows the reasons of routing decisions"
    )
    ls = sub.add_parser("list", help="list keys (prefix, tenant, created)")
    revoke = sub.add_parser("revoke", help="revoke a key by its prefix or hash")
    revoke.add_argument("key_id", metavar="PREFIX_OR_HASH")
    for action, handler in ((create, create_), (ls, list_), (revoke, revoke_)):
        add_target_options(action)
        action.set_defaults(handler=handler)


def _store(args: argparse.Namespace) -> KeyStore:
    apply_target(args)
    return KeyStore(get_settings().config_table_name)


def create_(args: argparse.Namespace) -> int:
    if not args.tenant.strip():
        raise CliError("--tenant must not be empty")
    key, record = _store(args).create(args.tenant.strip(), admin=args.admin)
    print(key)
    print(
        f"created {record.scope} key {record.prefix}... for tenant {record.tenant}: store it now, it is not shown again"
    )
    return 0


def list_(args: argparse.Namespace) -> int:
    rows = [
        {"prefix": r.prefix + "...", "tenant": r.tenant, "scope": r.scope, "created": r.created_at, "hash": r.sk[:16]}
        for r in _store(args).all()
    ]
    print_table(rows, ["prefix", "tenant", "scope", "created", "hash"])
    return 0


def revoke_(args: argparse.Namespace) -> int:
    key_id = args.key_id.removesuffix("...")
    try:
        revoked = _store(args).revoke(key_id)
    except AmbiguousKeyError as exc:
        raise CliError(f"{exc}; give more of the hash") from None
    if not revoked:
        raise CliError(f"no key with prefix or hash {key_id!r}")
    for record in revoked:
        print(f"revoked {record.prefix}... (tenant {record.tenant})")
    return 0
