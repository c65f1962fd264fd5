"""Tables, the provider-keys secret, the fallback queue, and what each function may do with them."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from tests.infra.cfn import actions, as_list, only, resources, role_statements
from tests.infra.conftest import BEDROCK_ARNS, MARKETPLACE_PRODUCT_IDS, OPERATOR_ROLE_ARN, Synth

MARKETPLACE = {"aws-marketplace:Subscribe", "aws-marketplace:Unsubscribe", "aws-marketplace:ViewSubscriptions"}

KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


def _queues(template: dict[str, Any]) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]:
    """(fallback queue, dead-letter queue), each as (logical id, resource)."""
    queues = resources(template, "AWS::SQS::Queue")
    main = next((k, q) for k, q in queues.items() if "RedrivePolicy" in q["Properties"])
    dead = next((k, q) for k, q in queues.items() if k != main[0])
    return main, dead


def _config_table_arn(template: dict[str, Any]) -> dict[str, Any]:
    config_id, _ = only(template, "AWS::DynamoDB::Table", "TablesConfig")
    return {"Fn::GetAtt": [config_id, "Arn"]}


def test_config_table_has_pitr_deletion_protection_and_outlives_the_stack(synth: Synth) -> None:
    synth.default.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "KeySchema": KEY_SCHEMA,
                    "BillingMode": "PAY_PER_REQUEST",
                    "DeletionProtectionEnabled": True,
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                }
            ),
        },
    )


def test_state_table_expires_items_by_ttl_and_goes_with_the_stack(synth: Synth) -> None:
    _, state = only(synth.default_json, "AWS::DynamoDB::Table", "TablesState")
    assert state["DeletionPolicy"] == "Delete"
    props = state["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["KeySchema"] == KEY_SCHEMA
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    key_id, _ = only(synth.default_json, "AWS::KMS::Key", "DataKey")
    assert props["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }


def test_the_data_key_is_customer_managed_and_rotates(synth: Synth) -> None:
    _, key = only(synth.default_json, "AWS::KMS::Key", "DataKey")
    assert key["Properties"]["EnableKeyRotation"] is True


def test_provider_keys_secret_starts_as_an_empty_json_map(synth: Synth) -> None:
    synth.default.resource_count_is("AWS::SecretsManager::Secret", 1)
    synth.default.has_resource_properties("AWS::SecretsManager::Secret", {"SecretString": "{}"})


def test_fallback_queue_redrives_to_a_two_week_dead_letter_queue(synth: Synth) -> None:
    for template, max_receive in ((synth.default_json, 5), (synth.full_json, 7)):
        (_, queue), (dead_id, dead) = _queues(template)
        assert queue["Properties"]["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dead_id, "Arn"]},
            "maxReceiveCount": max_receive,
        }
        assert dead["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_queues_are_encrypted_and_refuse_plain_http(synth: Synth) -> None:
    (queue_id, queue), (dead_id, dead) = _queues(synth.default_json)
    key_id, _ = only(synth.default_json, "AWS::KMS::Key", "DataKey")
    assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert dead["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    denied = set()
    for policy in resources(synth.default_json, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                denied |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert denied == {queue_id, dead_id}


def test_only_the_router_role_may_send_to_the_fallback_queue(synth: Synth) -> None:
    (queue_id, _), _ = _queues(synth.default_json)
    router_role_id, _ = only(synth.default_json, "AWS::IAM::Role", "FunctionsRouterRole")
    statements = [
        statement
        for policy in resources(synth.default_json, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny" and "sqs:SendMessage" in as_list(statement["Action"])
    ]
    assert statements == [
        {
            "Sid": "OnlyTheRouterSends",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [router_role_id, "Arn"]}}},
        }
    ]


def test_operator_roles_named_in_the_context_may_also_send(synth: Synth) -> None:
    (queue_id, _), _ = _queues(synth.full_json)
    router_role_id, _ = only(synth.full_json, "AWS::IAM::Role", "FunctionsRouterRole")
    [statement] = [
        statement
        for policy in resources(synth.full_json, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "OnlyTheRouterSends"
    ]
    assert statement["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": [{"Fn::GetAtt": [router_role_id, "Arn"]}, OPERATOR_ROLE_ARN]}
    }


def test_router_reads_only_the_catalog_partitions_of_the_config_table(synth: Synth) -> None:
    # Given every statement of the router's role that touches the Config table
    config_arn = _config_table_arn(synth.default_json)
    on_config = [s for s in role_statements(synth.default_json, "FunctionsRouterRole") if s["Resource"] == config_arn]
    # Then there is one, read-only, held to the catalog partitions (never the API keys)
    assert len(on_config) == 1
    statement = on_config[0]
    assert actions(statement) == {"dynamodb:GetItem", "dynamodb:Query"}
    partitions = statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
    assert {"model", "route", "rule"} <= set(partitions)
    assert "apikey" not in partitions


def test_authorizer_may_only_get_api_key_items(synth: Synth) -> None:
    statements = role_statements(synth.default_json, "FunctionsAuthorizerRole")
    non_log = [s for s in statements if not actions(s) <= {"logs:CreateLogStream", "logs:PutLogEvents"}]
    assert non_log == [
        {
            "Action": "dynamodb:GetItem",
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["apikey"]}},
            "Effect": "Allow",
            "Resource": _config_table_arn(synth.default_json),
        }
    ]


def test_no_function_may_write_or_scan_the_config_table(synth: Synth) -> None:
    config_arn = _config_table_arn(synth.full_json)
    for role in ("FunctionsRouterRole", "FunctionsAuthorizerRole"):
        for statement in role_statements(synth.full_json, role):
            if config_arn in as_list(statement["Resource"]):
                assert actions(statement) <= {"dynamodb:GetItem", "dynamodb:Query"}, role


def test_router_reads_and_writes_the_state_table_sends_to_the_queue_and_reads_the_secret(synth: Synth) -> None:
    state_id, _ = only(synth.default_json, "AWS::DynamoDB::Table", "TablesState")
    secret_id, _ = only(synth.default_json, "AWS::SecretsManager::Secret")
    (queue_id, _), _ = _queues(synth.default_json)
    granted: dict[str, set[str]] = {}
    for statement in role_statements(synth.default_json, "FunctionsRouterRole"):
        for resource in as_list(statement["Resource"]):
            granted.setdefault(str(resource), set()).update(actions(statement))
    assert {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"} <= granted[
        str({"Fn::GetAtt": [state_id, "Arn"]})
    ]
    assert "sqs:SendMessage" in granted[str({"Fn::GetAtt": [queue_id, "Arn"]})]
    assert "secretsmanager:GetSecretValue" in granted[str({"Ref": secret_id})]


def test_without_listed_models_the_router_may_invoke_no_bedrock_model(synth: Synth) -> None:
    statements = role_statements(synth.default_json, "FunctionsRouterRole")
    assert not [s for s in statements if any(a.startswith("bedrock:") for a in actions(s))]


def test_router_may_invoke_exactly_the_listed_bedrock_models(synth: Synth) -> None:
    # Given the stack whose context lists an inference profile, its destination models and one more model
    statements = [
        s
        for s in role_statements(synth.full_json, "FunctionsRouterRole")
        if any(a.startswith("bedrock:") for a in actions(s))
    ]
    # Then one statement allows invoking (streamed or not) exactly those ARNs, the account filled in
    assert len(statements) == 1
    assert actions(statements[0]) == {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
    expected: list[Any] = []
    for arn in BEDROCK_ARNS:
        if "{account}" in arn:
            before, after = arn.split("{account}")
            expected.append({"Fn::Join": ["", [before, {"Ref": "AWS::AccountId"}, after]]})
        else:
            expected.append(arn)
    assert sorted(map(str, as_list(statements[0]["Resource"]))) == sorted(map(str, expected))


def test_only_xray_and_marketplace_subscription_are_granted_on_every_resource(synth: Synth) -> None:
    xray = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    for template, expected in (
        (synth.default_json, MARKETPLACE),
        (synth.full_json, xray | MARKETPLACE),
        (synth.minimal_json, set()),
    ):
        wildcard_actions: set[str] = set()
        for policy in resources(template, "AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if "*" in as_list(statement["Resource"]):
                    wildcard_actions |= actions(statement)
        assert wildcard_actions == expected


def _marketplace_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for s in role_statements(template, role) if any(a.startswith("aws-marketplace:") for a in actions(s))]


def test_gateway_functions_may_subscribe_to_bedrock_models_on_their_first_call(synth: Synth) -> None:
    # Given the default stack: the router and the replay worker call models, the authorizer does not
    for role in ("FunctionsRouterRole", "FunctionsReplayRole"):
        statements = _marketplace_statements(synth.default_json, role)
        granted = set().union(*(actions(s) for s in statements))
        # Then they hold exactly the rights Bedrock's first-call subscription uses
        assert granted == MARKETPLACE, role
    assert _marketplace_statements(synth.default_json, "FunctionsAuthorizerRole") == []


def test_listed_marketplace_products_scope_subscribe_and_unsubscribe(synth: Synth) -> None:
    statements = _marketplace_statements(synth.full_json, "FunctionsRouterRole")
    subscribe = next(s for s in statements if "aws-marketplace:Subscribe" in actions(s))
    assert actions(subscribe) == {"aws-marketplace:Subscribe", "aws-marketplace:Unsubscribe"}
    assert subscribe["Condition"] == {
        "ForAnyValue:StringEquals": {"aws-marketplace:ProductId": list(MARKETPLACE_PRODUCT_IDS)}
    }


def test_marketplace_rights_go_with_the_context_flag(synth: Synth) -> None:
    assert _marketplace_statements(synth.minimal_json, "FunctionsRouterRole") == []


def test_function_roles_have_no_managed_policies(synth: Synth) -> None:
    roles = resources(synth.full_json, "AWS::IAM::Role")
    for role_id, role in roles.items():
        if role_id.startswith("ApiRestApiCloudWatchRole"):
            # API Gateway's logging role: the AWS-managed policy AWS documents for it, nothing else
            assert [p["Fn::Join"][1][-1] for p in role["Properties"]["ManagedPolicyArns"]] == [
                ":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
            ]
        else:
            assert "ManagedPolicyArns" not in role["Properties"], role_id
