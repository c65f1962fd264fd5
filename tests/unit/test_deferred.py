"""Deferred work: run in order once the response is out; a failing task never stops the others."""

from __future__ import annotations

import pytest

from llm_router.runtime.deferred import Deferred


def test_pending_tasks_run_in_order_once_and_a_failure_does_not_stop_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deferred = Deferred()
    ran: list[str] = []

    def fail() -> None:
        raise RuntimeError("table away")

    deferred.defer(lambda: ran.append("first"))
    deferred.defer(fail)
    deferred.defer(lambda: ran.append("third"))
    assert len(deferred) == 3 and ran == []

    assert deferred.run_pending() == 3
    assert ran == ["first", "third"]
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["deferred_task_failed"]
    # Each task runs once
    assert deferred.run_pending() == 0 and ran == ["first", "third"]


def test_a_task_deferred_while_running_runs_in_the_same_pass() -> None:
    deferred = Deferred()
    ran: list[str] = []
    deferred.defer(lambda: deferred.defer(lambda: ran.append("inner")))

    assert deferred.run_pending() == 2 and ran == ["inner"]
