"""`llm-router dlq list|replay|purge`: inspect and re-drive requests that exhausted their replays."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from llm_router.cli.common import CliError, add_target_options, apply_target, print_json, print_table
from llm_router.settings import Env, get_settings
from llm_router.stores.aws import client


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("dlq", help="list, re-drive or purge the fallback dead-letter queue")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="show the dead-lettered requests (they stay in the queue)")
    ls.add_argument("--json", action="store_true")
    replay = sub.add_parser("replay", help="move dead-lettered requests back to the fallback queue")
    replay.add_argument("request_ids", nargs="*", metavar="REQUEST_ID", help="only these (default: all)")
    purge = sub.add_parser("purge", help="delete every dead-lettered request")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for action, handler in ((ls, list_), (replay, replay_), (purge, purge_)):
        add_target_options(action)
        action.add_argument("--queue-url", help="fallback queue URL (default: $FALLBACK_QUEUE_URL)")
        action.set_defaults(handler=handler)


def _queues(args: argparse.Namespace) -> tuple[Any, str, str]:
    apply_target(args)
    url = args.queue_url or get_settings().fallback_queue_url or os.environ.get(Env.FALLBACK_QUEUE_URL)
    if not url:
        raise CliError("no fallback queue: pass --queue-url or set FALLBACK_QUEUE_URL (the stack outputs it)")
    sqs = client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    if "RedrivePolicy" not in attributes:
        raise CliError(f"{url} has no dead-letter queue")
    dlq_name = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].split(":")[-1]
    return sqs, url, sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]


def _peek(sqs: Any, dlq_url: str, visibility: int) -> list[dict[str, Any]]:
    """Receive everything currently visible, hiding it for `visibility` seconds (0: leave it visible)."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(100):
        batch = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, AttributeNames=["All"]
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        seen.update({m["MessageId"]: m for m in fresh})
    return list(seen.values())


def _summary(message: dict[str, Any]) -> dict[str, Any]:
    """A dead-lettered request as its record in the State table describes it (the message names only its id)."""
    from llm_router.stores.request_store import RequestStore

    request_id = json.loads(message["Body"]).get("request_id")
    settings = get_settings()
    record = RequestStore(settings.state_table_name).get(request_id) if isinstance(request_id, str) else None
    errors = record.errors if record is not None else []
    decision = record.decisions[0] if record is not None and record.decisions else {}
    return {
        "request_id": request_id,
        "tenant": record.tenant if record is not None else None,
        "mode": record.mode if record is not None else None,
        "requested": decision.get("requested"),
        "last_error": (errors[-1].get("error") if errors else None),
    }


def list_(args: argparse.Namespace) -> int:
    sqs, _, dlq_url = _queues(args)
    rows = [_summary(m) for m in _peek(sqs, dlq_url, visibility=0)]
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["request_id", "tenant", "mode", "requested", "last_error"])
        print(f"{len(rows)} dead-lettered request(s)")
    return 0


def replay_(args: argparse.Namespace) -> int:
    from llm_router.stores.request_store import RequestStore

    sqs, url, dlq_url = _queues(args)
    wanted = set(args.request_ids)
    requests = RequestStore(get_settings().state_table_name, ttl_seconds=get_settings().request_result_ttl_seconds)
    moved = 0
    for message in _peek(sqs, dlq_url, visibility=30):
        request_id = _summary(message)["request_id"]
        if wanted and request_id not in wanted:
            sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            continue
        # The record goes back to `queued` first, so the replay worker does not treat it as finished.
        if requests.get(request_id) is not None:
            requests.mark_queued_again(request_id, [{"error": "re-driven from the dead-letter queue"}], None)
        sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        moved += 1
        print(f"re-driven {request_id}")
    print(f"{moved} request(s) moved back to the fallback queue")
    return 0


def purge_(args: argparse.Namespace) -> int:
    sqs, _, dlq_url = _queues(args)
    if not args.yes:
        answer = input(f"Delete every message in {dlq_url}? [y/N] ")
        if answer.strip().lower() != "y":
            print("nothing deleted")
            return 1
    sqs.purge_queue(QueueUrl=dlq_url)
    print("dead-letter queue purged")
    return 0
