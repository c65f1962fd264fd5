"""The opt-in scheduled adapt function: absent by default; when `adaptSchedule` is set, a function on an EventBridge
schedule that may read routes and outcome records and write nothing but adaptation items."""

from __future__ import annotations

from typing import Any

import pytest

from infra.settings import StackSettings
from llm_router.settings import AdaptSettings, Env
from llm_router.stores.outcome_store import RECORD_PREFIX
from tests.infra.cfn import actions, as_list, function, only, resources, role_statements
from tests.infra.conftest import ADAPT_SCHEDULE, Synth


def _table_arn(template: dict[str, Any], prefix: str) -> dict[str, Any]:
    table_id, _ = only(template, "AWS::DynamoDB::Table", prefix)
    return {"Fn::GetAtt": [table_id, "Arn"]}


def _non_log_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in role_statements(template, "FunctionsAdaptRole")
        if not actions(s) <= {"logs:CreateLogStream", "logs:PutLogEvents"}
        and not actions(s) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    ]


def test_no_schedule_and_no_function_by_default(synth: Synth) -> None:
    for template in (synth.default_json, synth.minimal_json):
        assert resources(template, "AWS::Events::Rule") == {}
        assert not [k for k in resources(template, "AWS::Lambda::Function") if k.startswith("FunctionsAdapt")]


def test_the_schedule_invokes_the_adapt_function_without_retries(synth: Synth) -> None:
    adapt_id, _ = only(synth.full_json, "AWS::Lambda::Function", "FunctionsAdapt")
    _, rule = only(synth.full_json, "AWS::Events::Rule", "AdaptSchedule")
    properties = rule["Properties"]

    assert properties["ScheduleExpression"] == ADAPT_SCHEDULE
    assert properties["State"] == "ENABLED"
    (target,) = properties["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [adapt_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    # Lambda itself does not retry a failed run either: the next scheduled run starts from fresh data.
    _, invoke_config = only(synth.full_json, "AWS::Lambda::EventInvokeConfig")
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 0


def test_the_adapt_function_runs_the_handler_with_its_settings(synth: Synth) -> None:
    properties = function(synth.full_json, "FunctionsAdapt")
    env = properties["Environment"]["Variables"]

    assert properties["Handler"] == "handler.lambda_handler"
    assert AdaptSettings.required_variables() <= set(env)
    assert env["OUTCOME_RETENTION_DAYS"] == str(synth.full_settings.outcome_retention_days)
    assert set(env) - {e for e in Env if e.startswith("POWERTOOLS_")} <= AdaptSettings.variables()


def test_the_adapt_function_writes_only_adaptation_items_and_reads_only_what_it_needs(synth: Synth) -> None:
    template = synth.full_json
    config_arn, state_arn = _table_arn(template, "TablesConfig"), _table_arn(template, "TablesState")
    on_config = []
    on_state = []
    other = []
    for statement in _non_log_statements(template):
        targets = as_list(statement["Resource"])
        if config_arn in targets:
            on_config.append(statement)
        elif state_arn in targets:
            on_state.append(statement)
        else:
            other.append(statement)

    reads = [s for s in on_config if actions(s) == {"dynamodb:GetItem", "dynamodb:Query"}]
    writes = [s for s in on_config if actions(s) == {"dynamodb:PutItem", "dynamodb:DeleteItem"}]
    assert len(reads) == 1 and len(writes) == 1 and len(on_config) == 2
    assert reads[0]["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["adaptation", "model", "route", "rule"]}
    }
    assert writes[0]["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["adaptation"]}}
    # The State table: queries of outcome-record partitions only (no request bodies, keys or counters), read-only.
    assert on_state == [
        {
            "Action": "dynamodb:Query",
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{RECORD_PREFIX}*"]}},
            "Effect": "Allow",
            "Resource": state_arn,
        }
    ]
    # ... and decrypting what it reads with the data key; nothing else (no models, queue or secret).
    assert [actions(s) for s in other] == [{"kms:Decrypt"}]


def test_the_router_reads_the_active_adaptations(synth: Synth) -> None:
    config_arn = _table_arn(synth.default_json, "TablesConfig")
    (statement,) = [
        s for s in role_statements(synth.default_json, "FunctionsRouterRole") if s["Resource"] == config_arn
    ]
    assert "adaptation" in statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]


@pytest.mark.parametrize("schedule", ["rate(1 day)", "rate(6 hours)", "cron(0 3 * * ? *)", ""])
def test_schedule_expressions_are_accepted(schedule: str) -> None:
    assert StackSettings(adapt_schedule=schedule).adapt_schedule == schedule


@pytest.mark.parametrize("schedule", ["daily", "rate(0 days)", "rate(1 fortnight)", "cron()"])
def test_a_bad_schedule_is_refused_at_synth(schedule: str) -> None:
    with pytest.raises(ValueError, match="adaptSchedule"):
        StackSettings(adapt_schedule=schedule)
