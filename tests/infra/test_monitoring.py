"""Alarms wired to the topic, the topic itself, the dashboard, and the stack outputs."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.cfn import only, resources
from tests.infra.conftest import ALARM_EMAIL, Synth, cdk_json_context


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Alarm construct name (CostPerHour, ServerErrorRate...) -> properties."""
    found = {}
    for logical_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        name = logical_id.removeprefix("Monitoring")[:-8]
        found[name] = alarm["Properties"]
    return found


def _dashboard_body(template: dict[str, Any]) -> str:
    """The dashboard JSON with CloudFormation references reduced to placeholders."""
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    return "".join(part if isinstance(part, str) else "REF" for part in parts)


def test_every_alarm_notifies_the_alarm_topic(synth: Synth) -> None:
    topic_id, _ = only(synth.default_json, "AWS::SNS::Topic")
    alarms = _alarms(synth.default_json)
    assert set(alarms) == {
        "CostPerHour",
        "ServerErrorRate",
        "QueueWriteFailed",
        "InvalidConfigItems",
        "FunctionThrottles",
        "DeadLetterQueueNotEmpty",
    }
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name


def test_cost_alarm_fires_above_the_context_threshold_per_hour(synth: Synth) -> None:
    for template, threshold in (
        (synth.default_json, cdk_json_context()["costPerHourAlarmUsd"]),
        (synth.full_json, 12.5),
    ):
        alarm = _alarms(template)["CostPerHour"]
        assert alarm["Namespace"] == "LlmRouter"
        assert alarm["MetricName"] == "CostUSD"
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "llm-router"}]
        assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 3600)
        assert alarm["Threshold"] == threshold
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_5xx_rate_alarm_divides_server_errors_by_requests(synth: Synth) -> None:
    alarm = _alarms(synth.default_json)["ServerErrorRate"]
    assert alarm["Threshold"] == cdk_json_context()["error5xxRateAlarmPercent"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert "100 * errors / requests" in next(m["Expression"] for m in metrics.values() if "Expression" in m)
    assert metrics["errors"]["MetricStat"]["Metric"]["MetricName"] == "5XXError"
    assert metrics["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"


def test_dead_letter_alarm_fires_on_a_single_message(synth: Synth) -> None:
    queues = resources(synth.default_json, "AWS::SQS::Queue")
    dead_id = next(k for k, q in queues.items() if "RedrivePolicy" not in q["Properties"])
    alarm = _alarms(synth.default_json)["DeadLetterQueueNotEmpty"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_id, "QueueName"]}}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(synth: Synth) -> None:
    key_id, key = only(synth.default_json, "AWS::KMS::Key", "Monitoring")
    _, topic = only(synth.default_json, "AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    principals = [s.get("Principal") for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals


def test_alarm_email_is_subscribed_only_when_configured(synth: Synth) -> None:
    synth.default.resource_count_is("AWS::SNS::Subscription", 0)
    synth.full.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": ALARM_EMAIL})


def test_dashboard_shows_volume_cost_latency_errors_and_queues(synth: Synth) -> None:
    body = _dashboard_body(synth.default_json)
    # Requests, cost and savings per hour
    for metric in ("Requests", "CostUSD", "SavedUSD", "BaselineCostUSD"):
        assert f'"LlmRouter","{metric}","service","llm-router"' in body, metric
    assert '"period":3600' in body
    # Cost by model and by route
    assert 'SEARCH(\'{LlmRouter,Model} MetricName=\\"CostUSD\\"' in body
    assert 'SEARCH(\'{LlmRouter,Route} MetricName=\\"CostUSD\\"' in body
    # Latency percentiles and router overhead
    for metric in ("LatencyMs", "RouterOverheadMs"):
        assert f'"LlmRouter","{metric}"' in body
    assert '"stat":"p50"' in body
    assert '"stat":"p99"' in body
    # Fallbacks, errors and queue depths
    for metric in ("Fallbacks", "ProviderErrors", "5XXError", "Queued", "ApproximateNumberOfMessagesVisible"):
        assert metric in body, metric


def test_dashboard_says_cost_metrics_are_estimates_not_the_bill(synth: Synth) -> None:
    widgets = json.loads(_dashboard_body(synth.default_json).replace("REF", "x"))["widgets"]
    texts = [w["properties"]["markdown"] for w in widgets if w["type"] == "text"]
    assert any("estimates" in text and "not the AWS bill" in text for text in texts)


def test_outputs_give_the_api_url_and_table_names(synth: Synth) -> None:
    outputs = synth.default_json["Outputs"]
    config_id, _ = only(synth.default_json, "AWS::DynamoDB::Table", "TablesConfig")
    state_id, _ = only(synth.default_json, "AWS::DynamoDB::Table", "TablesState")
    assert outputs["ConfigTableName"]["Value"] == {"Ref": config_id}
    assert outputs["StateTableName"]["Value"] == {"Ref": state_id}
    assert {"ApiUrl", "OpenAiBaseUrl", "ProviderKeysSecretArn", "AlarmTopicArn", "DashboardUrl"} <= set(outputs)
    stage_id, _ = only(synth.default_json, "AWS::ApiGateway::Stage")
    base_url = outputs["OpenAiBaseUrl"]["Value"]["Fn::Join"][1]
    assert base_url[-2:] == [{"Ref": stage_id}, "/v1"]


def test_cloudwatch_may_publish_to_the_alarm_topic_for_this_accounts_alarms_only(synth: Synth) -> None:
    # Given the topic's policy (enforce_ssl's policy replaces SNS's default one)
    topic_id, _ = only(synth.default_json, "AWS::SNS::Topic")
    _, policy = only(synth.default_json, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # Then CloudWatch may publish, conditioned on this account and its alarms
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1]
    assert ":cloudwatch:" in source_arn and source_arn[-1].endswith(":alarm:*")
    # And plain HTTP is still refused
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_invalid_config_items_alarm_on_the_first_one(synth: Synth) -> None:
    alarm = _alarms(synth.default_json)["InvalidConfigItems"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("LlmRouter", "InvalidConfigItems")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "llm-router"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_throttles_of_any_function_alarm(synth: Synth) -> None:
    # Given the throttle alarm: one expression over every function's Throttles metric
    alarm = _alarms(synth.default_json)["FunctionThrottles"]
    metrics = alarm["Metrics"]
    [expression] = [m["Expression"] for m in metrics if "Expression" in m]
    throttled = {
        str(m["MetricStat"]["Metric"]["Dimensions"][0]["Value"])
        for m in metrics
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "Throttles"
    }
    function_ids = {str({"Ref": k}) for k in resources(synth.default_json, "AWS::Lambda::Function")}
    # Then all three functions are summed, and one throttle fires it
    assert throttled == function_ids
    assert expression.startswith("SUM([")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
