"""The Lambda functions: runtime, architecture, layers, logs, tracing, environment."""

from __future__ import annotations

import json
import os
import re

from tests.infra.cfn import function, only, resources
from tests.infra.conftest import BEDROCK_ARNS, OPERATOR_ROLE_ARN, Synth, cdk_json_context


def _python_version(runtime: str) -> tuple[int, int]:
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    assert match, runtime
    return int(match[1]), int(match[2])


def test_functions_run_python_3_13_on_arm64(synth: Synth) -> None:
    functions = resources(synth.default_json, "AWS::Lambda::Function").values()
    assert len(functions) == 3  # router, authorizer, replay
    for fn in functions:
        assert _python_version(fn["Properties"]["Runtime"]) == (3, 13)
        assert fn["Properties"]["Architectures"] == ["arm64"]
        assert fn["Properties"]["Handler"] == "handler.lambda_handler"


def test_functions_log_json_to_their_own_log_group_with_the_context_retention(synth: Synth) -> None:
    for name in ("FunctionsRouter", "FunctionsAuthorizer", "FunctionsReplay"):
        log_group_id, log_group = only(synth.default_json, "AWS::Logs::LogGroup", f"{name}Logs")
        assert log_group["Properties"]["RetentionInDays"] == cdk_json_context()["logRetentionDays"]
        assert function(synth.default_json, name)["LoggingConfig"] == {
            "LogFormat": "JSON",
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "INFO",
            "LogGroup": {"Ref": log_group_id},
        }


def test_functions_carry_the_shared_library_and_the_pinned_powertools_layer(synth: Synth) -> None:
    # Given the stack built from cdk.json: Powertools comes from AWS's SSM parameter of the pinned release
    layer_id, _ = only(synth.default_json, "AWS::Lambda::LayerVersion")
    version = cdk_json_context()["powertoolsVersion"]
    parameters = {
        k: p for k, p in synth.default_json["Parameters"].items() if p["Type"] == "AWS::SSM::Parameter::Value<String>"
    }
    powertools = [k for k, p in parameters.items() if p["Default"].startswith("/aws/service/powertools/")]
    assert len(powertools) == 1
    assert parameters[powertools[0]]["Default"] == f"/aws/service/powertools/python/arm64/python3.13/{version}"
    # Then both functions use both layers
    for name in ("FunctionsRouter", "FunctionsAuthorizer"):
        layers = function(synth.default_json, name)["Layers"]
        assert sorted(layers, key=str) == sorted([{"Ref": layer_id}, {"Ref": powertools[0]}], key=str)


def test_a_bundled_powertools_layer_is_built_for_the_runtime_and_shipped_as_a_layer_of_its_own(synth: Synth) -> None:
    # Given the stack with powertoolsLayer=bundled: no SSM parameter and no layer ARN from another account
    parameters = synth.full_json.get("Parameters", {})
    assert not [p for p in parameters.values() if str(p.get("Default", "")).startswith("/aws/service/powertools/")]
    assert "017000801446" not in json.dumps(synth.full_json)
    # Then the layer was built for the functions' Python version, and both layers are the stack's own
    assert "3.13" in synth.layer_builds
    layers = resources(synth.full_json, "AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    powertools_id = next(k for k in layers if k.startswith("FunctionsPowertoolsLayer"))
    assert layers[powertools_id]["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layers[powertools_id]["Properties"]["CompatibleArchitectures"] == ["arm64"]
    for name in ("FunctionsRouter", "FunctionsAuthorizer", "FunctionsReplay"):
        assert {"Ref": powertools_id} in function(synth.full_json, name)["Layers"]
    # And the asset holds the packages under python/, without the build marker
    assets = [p for p in synth.outdir.glob("asset.*") if (p / "python" / "aws_lambda_powertools").is_dir()]
    assert assets
    assert not (assets[0] / ".complete").exists()


def test_no_template_writes_the_commercial_partition_literally(synth: Synth) -> None:
    # The Bedrock ARNs of the full stack's context are the user's own words, in the user's partition.
    for template in (synth.default_json, synth.full_json, synth.minimal_json):
        text = json.dumps(template)
        for arn in BEDROCK_ARNS:
            text = text.replace(arn.split("{account}")[0], "")
        text = text.replace(OPERATOR_ROLE_ARN, "")  # also the user's own words
        assert "arn:aws:" not in text


def test_shared_layer_is_the_library_without_cli_local_ml_or_caches(synth: Synth) -> None:
    # Given the layer asset written by the synth
    layer_dirs = [p for p in synth.outdir.glob("asset.*") if (p / "python" / "llm_router").is_dir()]
    assert len(layer_dirs) == 1
    package = layer_dirs[0] / "python" / "llm_router"
    # Then it holds the library the functions import
    assert (package / "api.py").is_file()
    assert (package / "authorizer.py").is_file()
    # And nothing that runs only on a laptop, and no byte-code caches: of `ml`, only the pure-Python fitting
    # the scheduled adapt function runs
    for excluded in ("cli", "local"):
        assert not (package / excluded).exists(), excluded
    assert sorted(p.name for p in (package / "ml").iterdir()) == ["__init__.py", "adapt.py", "metrics.py"]
    assert not list(layer_dirs[0].rglob("__pycache__"))
    assert not list(layer_dirs[0].rglob("*.egg-info"))
    # And the shutdown extension, executable, where Lambda looks for extensions (/opt/extensions)
    extension = layer_dirs[0] / "extensions" / "llm-router-shutdown"
    assert extension.is_file() and os.access(extension, os.X_OK)
    assert (package / "shutdown_extension.py").is_file()


def test_function_code_is_the_handler_folder(synth: Synth) -> None:
    handlers = [p for p in synth.outdir.glob("asset.*") if (p / "handler.py").is_file()]
    assert len(handlers) == 4  # router, authorizer, replay, and adapt (on a schedule, in the full stack)
    for folder in handlers:
        assert sorted(p.name for p in folder.iterdir()) == ["handler.py"]


def test_tracing_is_off_by_default_and_on_when_asked(synth: Synth) -> None:
    for fn in resources(synth.default_json, "AWS::Lambda::Function").values():
        assert "TracingConfig" not in fn["Properties"]
    for fn in resources(synth.full_json, "AWS::Lambda::Function").values():
        assert fn["Properties"]["TracingConfig"] == {"Mode": "Active"}
    synth.default.has_resource_properties("AWS::ApiGateway::Stage", {"TracingEnabled": False})
    synth.full.has_resource_properties("AWS::ApiGateway::Stage", {"TracingEnabled": True})
    assert function(synth.full_json, "FunctionsRouter")["Environment"]["Variables"]["POWERTOOLS_TRACE_ENABLED"] == (
        "true"
    )


def test_every_function_gets_the_powertools_settings(synth: Synth) -> None:
    for name in ("FunctionsRouter", "FunctionsAuthorizer"):
        env = function(synth.default_json, name)["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "llm-router"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "LlmRouter"
        assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
        assert env["POWERTOOLS_TRACE_ENABLED"] == "false"
        assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
        assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"


def test_router_is_told_its_tables_secret_queue_and_limits(synth: Synth) -> None:
    # Given the resources of the stack
    config_id, _ = only(synth.default_json, "AWS::DynamoDB::Table", "TablesConfig")
    state_id, _ = only(synth.default_json, "AWS::DynamoDB::Table", "TablesState")
    secret_id, _ = only(synth.default_json, "AWS::SecretsManager::Secret")
    queue_id = next(
        k for k, q in resources(synth.default_json, "AWS::SQS::Queue").items() if "RedrivePolicy" in q["Properties"]
    )
    # Then the router's environment names them, and the limits from the context
    router = function(synth.default_json, "FunctionsRouter")
    env = router["Environment"]["Variables"]
    assert env["CONFIG_TABLE_NAME"] == {"Ref": config_id}
    assert env["STATE_TABLE_NAME"] == {"Ref": state_id}
    assert env["PROVIDER_KEYS_SECRET_ID"] == {"Ref": secret_id}
    assert env["FALLBACK_QUEUE_URL"] == {"Ref": queue_id}
    assert env["REQUEST_TIMEOUT_SECONDS"] == str(cdk_json_context()["integrationTimeoutSeconds"])
    assert env["MAX_BODY_BYTES"] == str(cdk_json_context()["maxRequestBytes"])
    assert env["RULES_TTL_SECONDS"] == "30"
    assert env["USAGE_FLUSH_SECONDS"] == str(cdk_json_context()["usageFlushSeconds"])
    assert env["OUTCOME_RETENTION_DAYS"] == str(cdk_json_context()["outcomeRetentionDays"])
    assert env["LLM_ROUTER_METRICS_SINK"] == "stdout"


def test_router_outlives_the_integration_timeout_to_queue_what_it_could_not_answer(synth: Synth) -> None:
    # Given the integration timeout of each stack (300 s from cdk.json, 600 s in the full one)
    for template, seconds in ((synth.default_json, 300), (synth.full_json, 600), (synth.minimal_json, 29)):
        router = function(template, "FunctionsRouter")
        # Then the router's deadline is that timeout and the function lives a few seconds longer
        assert router["Environment"]["Variables"]["REQUEST_TIMEOUT_SECONDS"] == str(seconds)
        assert seconds < router["Timeout"] <= seconds + 5


def test_router_streams_its_responses_through_the_layer_runtime_loop(synth: Synth) -> None:
    env = function(synth.default_json, "FunctionsRouter")["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/llm-router-runtime"
    assert env["LLM_ROUTER_STREAMING_RESPONSES"] == "true"
    replay_env = function(synth.default_json, "FunctionsReplay")["Environment"]["Variables"]
    assert "AWS_LAMBDA_EXEC_WRAPPER" not in replay_env


def test_reserved_concurrency_is_opt_in(synth: Synth) -> None:
    # Given cdk.json's defaults: a new account with a low quota cannot reserve, so nothing is reserved
    for fn in resources(synth.default_json, "AWS::Lambda::Function").values():
        assert "ReservedConcurrentExecutions" not in fn["Properties"]
    # When the context asks for it, the router and the replay worker get what it says
    assert function(synth.full_json, "FunctionsRouter")["ReservedConcurrentExecutions"] == 50
    assert function(synth.full_json, "FunctionsReplay")["ReservedConcurrentExecutions"] == 5
    assert "ReservedConcurrentExecutions" not in function(synth.full_json, "FunctionsAuthorizer")


def test_authorizer_is_told_only_the_config_table(synth: Synth) -> None:
    config_id, _ = only(synth.default_json, "AWS::DynamoDB::Table", "TablesConfig")
    env = function(synth.default_json, "FunctionsAuthorizer")["Environment"]["Variables"]
    assert env["CONFIG_TABLE_NAME"] == {"Ref": config_id}
    assert not {"STATE_TABLE_NAME", "PROVIDER_KEYS_SECRET_ID", "FALLBACK_QUEUE_URL"} & set(env)


def _replay_mapping(template: dict) -> tuple[str, dict, dict, dict]:
    queue_id, queue = next(
        (k, q) for k, q in resources(template, "AWS::SQS::Queue").items() if "RedrivePolicy" in q["Properties"]
    )
    mappings = list(resources(template, "AWS::Lambda::EventSourceMapping").values())
    assert len(mappings) == 1
    return queue_id, queue["Properties"], mappings[0]["Properties"], function(template, "FunctionsReplay")


def test_replay_worker_consumes_the_fallback_queue_with_partial_batch_failures(synth: Synth) -> None:
    queue_id, _, mapping, replay = _replay_mapping(synth.default_json)
    assert replay["Handler"] == "handler.lambda_handler"
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    env = replay["Environment"]["Variables"]
    assert env["FALLBACK_QUEUE_URL"] == {"Ref": queue_id}
    assert env["MAX_RECEIVE_COUNT"] == str(cdk_json_context()["fallbackMaxReceiveCount"])


def test_replay_takes_one_message_per_invocation_with_the_whole_deadline(synth: Synth) -> None:
    for template in (synth.default_json, synth.full_json):
        _, queue, mapping, replay = _replay_mapping(template)
        router = function(template, "FunctionsRouter")
        # One message per invocation: no message waits behind another and spends a receive untried
        assert mapping["BatchSize"] == 1
        # A replay gets the time a live request gets, inside its function timeout
        deadline = int(replay["Environment"]["Variables"]["REQUEST_TIMEOUT_SECONDS"])
        assert deadline == int(router["Environment"]["Variables"]["REQUEST_TIMEOUT_SECONDS"])
        assert deadline < replay["Timeout"] <= 900
        # And a message stays hidden for six function timeouts (AWS's guidance for SQS event sources)
        assert queue["VisibilityTimeout"] >= 6 * replay["Timeout"]
        assert queue["VisibilityTimeout"] <= 12 * 3600


def test_replay_concurrency_is_capped_by_the_event_source(synth: Synth) -> None:
    _, _, mapping, _ = _replay_mapping(synth.default_json)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": cdk_json_context()["replayMaxConcurrency"]}
    _, _, mapping, _ = _replay_mapping(synth.full_json)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_without_buffered_usage_the_layer_goes_without_the_shutdown_extension(synth: Synth) -> None:
    from dataclasses import replace

    from infra.constructs.functions import LAYER_EXCLUDES, Functions

    assert Functions._layer_excludes(synth.full_settings) == LAYER_EXCLUDES
    assert Functions._layer_excludes(replace(synth.full_settings, usage_flush_seconds=0)) == [
        *LAYER_EXCLUDES,
        "extensions",
    ]
