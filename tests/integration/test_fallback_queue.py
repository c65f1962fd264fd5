"""No request is lost: queued when every model fails, replayed later, dead-lettered with a record when hopeless."""

from __future__ import annotations

import json

import pytest

from llm_router.cli.main import main as cli
from tests.helpers import header
from tests.integration.conftest import Router

HELLO = {"model": "auto", "messages": [{"role": "user", "content": "Hello!"}]}


def get_request(router: Router, request_id: str, key: str | None = "sk-local-dev") -> dict:
    return router.call(None, path=f"/v1/requests/{request_id}", method="GET", key=key)


def test_request_is_queued_when_every_model_fails_and_answered_after_recovery(router: Router) -> None:
    router.set_models(failure="server_error")
    failed = router.call(HELLO)
    error = router.json(failed)["error"]
    request_id = error["request_id"]
    pending = router.json(get_request(router, request_id))

    router.set_models(failure="none")
    handled = router.drain()
    done = router.json(get_request(router, request_id))

    assert failed["statusCode"] == 503
    assert error["queued"] is True and error["code"] == "all_models_failed"
    assert header(failed, "Retry-After") == "30"
    assert header(failed, "Location") == f"/v1/requests/{request_id}"
    assert pending["status"] == "queued"
    assert handled == 1
    assert done["status"] == "done"
    assert done["result"]["object"] == "chat.completion"
    assert done["result"]["model"] == "nova-micro"
    assert done["result"]["choices"][0]["message"]["content"].startswith("[simulated nova-micro]")
    assert router.metric_values("Queued") == [1.0]


def test_replay_uses_the_rules_in_force_and_records_both_decisions(router: Router) -> None:
    router.set_models(failure="throttle")
    request_id = router.json(router.call(HELLO))["error"]["request_id"]
    router.set_models(failure="none")
    router.admin.put_raw(
        "rule",
        {
            "id": "hello-to-sonnet",
            "priority": 1,
            "when": {"keywords": ["hello"]},
            "then": {"targets": ["claude-sonnet"]},
        },
    )

    router.drain()

    record = router.requests.get(request_id)
    assert record is not None and record.status == "done"
    assert [d["rule"] for d in record.decisions] == ["threshold", "hello-to-sonnet"]
    assert record.result is not None and record.result["model"] == "claude-sonnet"


def test_queue_write_failure_tells_the_caller_it_was_not_kept(router: Router) -> None:
    from llm_router.stores.aws import client

    router.set_models(failure="connection_error")
    client("sqs").delete_queue(QueueUrl=router.queue_url)

    response = router.call(HELLO)

    error = router.json(response)["error"]
    assert response["statusCode"] == 503
    assert error["queued"] is False and error["code"] == "queue_unavailable"
    assert router.metric_values("QueueWriteFailed") == [1.0]


def test_async_request_is_accepted_then_answered(router: Router) -> None:
    accepted = router.call(HELLO, headers={"Prefer": "respond-async"})
    body = router.json(accepted)

    router.drain()
    done = router.json(get_request(router, body["id"]))

    assert accepted["statusCode"] == 202
    assert body["status"] == "queued"
    assert header(accepted, "Location") == f"/v1/requests/{body['id']}"
    assert done["status"] == "done" and done["result"]["model"] == "nova-micro"


def test_async_request_for_an_unknown_model_is_refused_up_front(router: Router) -> None:
    response = router.call({**HELLO, "model": "nope"}, headers={"Prefer": "respond-async"})

    assert response["statusCode"] == 404
    assert router.queue_depth(router.queue_url) == 0


def test_only_the_requesting_tenant_can_read_a_request(router: Router) -> None:
    request_id = router.json(router.call(HELLO, headers={"Prefer": "respond-async"}))["id"]
    other_key, _ = router.keys.create("someone-else")

    theirs = get_request(router, request_id, key=other_key)
    unknown = get_request(router, "0" * 32)

    assert theirs["statusCode"] == unknown["statusCode"] == 404
    assert router.json(theirs)["error"]["code"] == router.json(unknown)["error"]["code"] == "request_not_found"
    assert get_request(router, request_id)["statusCode"] == 200


def test_hopeless_request_ends_in_the_dead_letter_queue_with_a_failed_record(router: Router) -> None:
    router.set_models(failure="server_error")
    request_id = router.json(router.call(HELLO))["error"]["request_id"]

    router.drain(rounds=10)
    record = router.json(get_request(router, request_id))

    assert record["status"] == "failed"
    assert len(record["errors"]) > 3  # the first attempt's trail plus each replay's
    assert router.queue_depth(router.queue_url) == 0
    assert router.queue_depth(router.dead_letter_queue_url) == 1


def test_dlq_cli_lists_and_redrives(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    router.set_models(failure="server_error")
    request_id = router.json(router.call(HELLO))["error"]["request_id"]
    router.drain(rounds=10)

    assert cli(["dlq", "list", "--queue-url", router.queue_url]) == 0
    listed = capsys.readouterr().out
    router.set_models(failure="none")
    assert cli(["dlq", "replay", "--queue-url", router.queue_url]) == 0
    router.drain()

    assert request_id in listed and "1 dead-lettered request(s)" in listed
    assert router.json(get_request(router, request_id))["status"] == "done"
    assert router.queue_depth(router.dead_letter_queue_url) == 0


def test_a_queue_message_names_only_the_request_and_the_body_travels_through_the_state_table(router: Router) -> None:
    big = {"model": "auto", "messages": [{"role": "user", "content": "long story " * 2000}]}

    request_id = router.json(router.call(big, headers={"Prefer": "respond-async"}))["id"]
    from llm_router.stores.aws import client

    message = client("sqs").receive_message(QueueUrl=router.queue_url, VisibilityTimeout=0)["Messages"][0]
    router.drain()

    # No prompt and no tenant in the queue (nor, after retries, in its dead-letter queue)
    assert json.loads(message["Body"]) == {"v": 2, "request_id": request_id}
    assert router.json(get_request(router, request_id))["status"] == "done"
    leftover = client("dynamodb").get_item(
        TableName="llm-router-state", Key={"pk": {"S": f"payload#{request_id}"}, "sk": {"S": "chunk#0000"}}
    )
    assert "Item" not in leftover


def test_a_message_sent_by_anyone_else_cannot_choose_the_tenant_it_runs_as(router: Router) -> None:
    # Given a request queued by tenant "local", and a forged message claiming another tenant for it
    from llm_router.stores.aws import client

    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    request_id = router.json(router.call(body, headers={"Prefer": "respond-async"}))["id"]
    forged = {"v": 1, "request_id": request_id, "tenant": "victim", "body": {"model": "auto", "messages": []}}
    client("sqs").send_message(QueueUrl=router.queue_url, MessageBody=json.dumps(forged))
    # and a message naming a request the router never wrote
    client("sqs").send_message(QueueUrl=router.queue_url, MessageBody=json.dumps({"request_id": "f" * 32}))

    router.drain()

    # Then the request ran once, as the tenant the router recorded, and the unknown id ran as nobody
    usage = [doc for doc in router.emitted if doc.get("request_id") == request_id and "Requests" in doc]
    assert [doc["tenant"] for doc in usage] == ["local"]
    assert router.metric_values("Requests") == [1]
    assert router.json(get_request(router, request_id))["status"] == "done"


def test_idempotent_retry_returns_the_first_answer_without_paying_twice(router: Router) -> None:
    first = router.call(HELLO, headers={"Idempotency-Key": "abc-123"})
    again = router.call(HELLO, headers={"Idempotency-Key": "abc-123"})
    other_body = router.call(
        {**HELLO, "messages": [{"role": "user", "content": "Bye"}]}, headers={"Idempotency-Key": "abc-123"}
    )

    assert router.json(first) == router.json(again)
    assert header(again, "x-router-idempotent-replay") == "true"
    assert header(first, "x-router-idempotent-replay") is None
    assert router.json(other_body)["id"] != router.json(first)["id"]
    assert router.metric_values("Requests") == [1.0, 1.0]


def test_idempotency_is_per_tenant(router: Router) -> None:
    other_key, _ = router.keys.create("team-b")
    mine = router.call(HELLO, headers={"Idempotency-Key": "same"})
    theirs = router.call(HELLO, headers={"Idempotency-Key": "same"}, key=other_key)

    assert router.json(mine)["id"] != router.json(theirs)["id"]


def test_dlq_purge_empties_the_dead_letter_queue(router: Router, capsys: pytest.CaptureFixture[str]) -> None:
    router.set_models(failure="server_error")
    router.call(HELLO)
    router.drain(rounds=10)

    assert router.queue_depth(router.dead_letter_queue_url) == 1
    assert cli(["dlq", "purge", "--yes", "--queue-url", router.queue_url]) == 0
    assert router.queue_depth(router.dead_letter_queue_url) == 0
    assert "purged" in capsys.readouterr().out
