"""The REST API: routes, the key authorizer, the stage, throttling, OpenAI-style gateway responses, the WAF."""

from __future__ import annotations

import json

from tests.infra.cfn import only, resources
from tests.infra.conftest import Synth, cdk_json_context

OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


def _render(template: str) -> dict:
    """A gateway-response body as API Gateway would send it (its message variable is a quoted JSON string)."""
    return json.loads(template.replace("$context.error.messageString", '"Some gateway message"'))


def test_api_is_a_regional_rest_api(synth: Synth) -> None:
    synth.default.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"EndpointConfiguration": {"Types": ["REGIONAL"]}}
    )


def test_api_serves_health_openapi_and_everything_under_v1(synth: Synth) -> None:
    paths = sorted(
        r["Properties"]["PathPart"] for r in resources(synth.default_json, "AWS::ApiGateway::Resource").values()
    )
    assert paths == sorted(["health", "openapi.json", "v1", "{proxy+}", "messages", "{proxy+}", "models", "{proxy+}"])


def _authorizers(template: dict) -> dict[str, dict]:
    return {k: r["Properties"] for k, r in resources(template, "AWS::ApiGateway::Authorizer").items()}


def _resource(template: dict, path_part: str) -> str:
    [found] = [
        k
        for k, r in resources(template, "AWS::ApiGateway::Resource").items()
        if r["Properties"]["PathPart"] == path_part
    ]
    return found


def _messages_resource(template: dict) -> str:
    return _resource(template, "messages")


def _method_authorizers(template: dict) -> dict[tuple[str, str], object]:
    """(HTTP method, resource logical id) -> the authorizer reference, or None for an open method."""
    found = {}
    for method in resources(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        ref = props["ResourceId"].get("Ref", "root") if isinstance(props["ResourceId"], dict) else "root"
        found[(props["HttpMethod"], ref)] = props.get("AuthorizerId") if props["AuthorizationType"] != "NONE" else None
    return found


def test_every_method_except_health_and_openapi_requires_the_key_authorizer(synth: Synth) -> None:
    # Given the stack's resources
    health_id, _ = only(synth.default_json, "AWS::ApiGateway::Resource", "ApiRestApihealth")
    openapi_id, _ = only(synth.default_json, "AWS::ApiGateway::Resource", "ApiRestApiopenapijson")
    cached_id, _ = only(synth.default_json, "AWS::ApiGateway::Authorizer", "ApiKeyAuthorizer")
    any_header_id, _ = only(synth.default_json, "AWS::ApiGateway::Authorizer", "ApiAnyHeaderKeyAuthorizer")
    proxy_id, _ = only(synth.default_json, "AWS::ApiGateway::Resource", "ApiRestApiv1proxy")
    # When looking at every method
    methods = _method_authorizers(synth.default_json)
    # Then only GET /health and GET /openapi.json are open (CORS is off); the OpenAI paths use the cached
    # authorizer, Anthropic's paths (/v1/messages, /v1/models and below) the one that reads either header
    assert {key for key, auth in methods.items() if auth is None} == {("GET", health_id), ("GET", openapi_id)}
    assert methods[("ANY", proxy_id)] == {"Ref": cached_id}
    for part in ("messages", "models"):
        parent_id = _resource(synth.default_json, part)
        [below_id] = [
            k
            for k, r in resources(synth.default_json, "AWS::ApiGateway::Resource").items()
            if r["Properties"]["ParentId"] == {"Ref": parent_id}
        ]
        assert methods[("ANY", parent_id)] == {"Ref": any_header_id}
        assert methods[("ANY", below_id)] == {"Ref": any_header_id}
    assert len(methods) == 7


def test_authorizer_checks_the_authorization_header_and_caches_for_the_context_ttl(synth: Synth) -> None:
    expected = {"Type": "REQUEST", "IdentitySource": "method.request.header.Authorization"}
    synth.default.has_resource_properties(
        "AWS::ApiGateway::Authorizer", {**expected, "AuthorizerResultTtlInSeconds": 60}
    )
    synth.full.has_resource_properties("AWS::ApiGateway::Authorizer", {**expected, "AuthorizerResultTtlInSeconds": 300})


def test_anthropic_paths_are_authorized_uncached_without_identity_sources(synth: Synth) -> None:
    # An identity source makes API Gateway answer 401 to a request without that header before the function runs,
    # so the authorizer of the paths Anthropic clients call (with `x-api-key` only) has none, and no cache.
    for template in (synth.default_json, synth.full_json):
        [any_header] = [p for k, p in _authorizers(template).items() if k.startswith("ApiAnyHeaderKeyAuthorizer")]
        assert any_header["Type"] == "REQUEST"
        assert any_header["AuthorizerResultTtlInSeconds"] == 0
        assert "IdentitySource" not in any_header
        assert (
            any_header["AuthorizerUri"]
            == _authorizers(template)[only(template, "AWS::ApiGateway::Authorizer", "ApiKeyAuthorizer")[0]][
                "AuthorizerUri"
            ]
        )


def test_without_key_caching_one_uncached_authorizer_takes_the_key_from_either_header(synth: Synth) -> None:
    # Given a stack with authorizerCacheTtlSeconds 0
    authorizers = _authorizers(synth.minimal_json)
    # Then one authorizer guards every path, with no identity source (so no header is required up front)
    [(authorizer_id, props)] = authorizers.items()
    assert props["AuthorizerResultTtlInSeconds"] == 0 and "IdentitySource" not in props
    guarded = [auth for auth in _method_authorizers(synth.minimal_json).values() if auth is not None]
    assert len(guarded) == 5 and all(auth == {"Ref": authorizer_id} for auth in guarded)


def test_cors_origins_open_options_to_the_router_and_reach_its_environment(synth: Synth) -> None:
    proxy_id, _ = only(synth.full_json, "AWS::ApiGateway::Resource", "ApiRestApiv1proxy")
    messages_id = _messages_resource(synth.full_json)
    methods = resources(synth.full_json, "AWS::ApiGateway::Method").values()
    options = [m for m in methods if m["Properties"]["HttpMethod"] == "OPTIONS"]
    _, router = only(synth.full_json, "AWS::Lambda::Function", "FunctionsRouter")

    assert len(options) == 5 and all(o["Properties"]["AuthorizationType"] == "NONE" for o in options)
    resource_ids = [o["Properties"]["ResourceId"] for o in options]
    assert {"Ref": proxy_id} in resource_ids and {"Ref": messages_id} in resource_ids
    assert router["Properties"]["Environment"]["Variables"]["CORS_ALLOWED_ORIGINS"] == "https://app.example.com"


def test_gateway_errors_carry_the_configured_cors_origin(synth: Synth) -> None:
    # Given the stack with one allowed origin, and the one with CORS off
    full = resources(synth.full_json, "AWS::ApiGateway::GatewayResponse").values()
    default = resources(synth.default_json, "AWS::ApiGateway::GatewayResponse").values()
    # Then every response API Gateway answers itself lets that origin read it, and keeps its own headers
    for response in full:
        params = response["Properties"]["ResponseParameters"]
        assert params["gatewayresponse.header.Access-Control-Allow-Origin"] == "'https://app.example.com'"
        assert params["gatewayresponse.header.Vary"] == "'Origin'"
        assert params["gatewayresponse.header.Access-Control-Expose-Headers"] == "'*'"
    throttled = next(r for r in full if r["Properties"]["ResponseType"] == "THROTTLED")
    assert throttled["Properties"]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    # And without CORS no response names an origin
    for response in default:
        params = response["Properties"].get("ResponseParameters", {})
        assert not [name for name in params if "Access-Control" in name]


def test_gateway_error_cors_origin_for_any_several_or_no_origins() -> None:
    from infra.constructs.api import cors_headers

    assert cors_headers(()) == {}
    assert cors_headers(("*",))["Access-Control-Allow-Origin"] == "'*'"
    assert cors_headers(("https://a.example",))["Access-Control-Allow-Origin"] == "'https://a.example'"
    # Several origins cannot be chosen among by a static mapping: the request's own origin is echoed
    several = cors_headers(("https://a.example", "https://b.example"))
    assert several["Access-Control-Allow-Origin"] == "method.request.header.Origin"
    assert several["Vary"] == "'Origin'"


def test_authorizer_runs_the_authorizer_function(synth: Synth) -> None:
    function_id, _ = only(synth.default_json, "AWS::Lambda::Function", "FunctionsAuthorizer")
    _, authorizer = only(synth.default_json, "AWS::ApiGateway::Authorizer", "ApiKeyAuthorizer")
    assert {"Fn::GetAtt": [function_id, "Arn"]} in authorizer["Properties"]["AuthorizerUri"]["Fn::Join"][1]


def test_v1_streams_from_the_router_with_the_context_timeout(synth: Synth) -> None:
    for stack, millis in ((synth.default_json, 300_000), (synth.full_json, 600_000)):
        router_id, _ = only(stack, "AWS::Lambda::Function", "FunctionsRouter")
        _, method = only(stack, "AWS::ApiGateway::Method", "ApiRestApiv1proxyANY")
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["ResponseTransferMode"] == "STREAM"
        assert integration["TimeoutInMillis"] == millis
        uri = integration["Uri"]["Fn::Join"][1]
        assert {"Fn::GetAtt": [router_id, "Arn"]} in uri
        assert uri[-1] == "/response-streaming-invocations"


def test_health_is_answered_by_api_gateway_without_a_function(synth: Synth) -> None:
    _, method = only(synth.default_json, "AWS::ApiGateway::Method", "ApiRestApihealthGET")
    integration = method["Properties"]["Integration"]
    assert integration["Type"] == "MOCK"
    assert "Uri" not in integration
    [response] = integration["IntegrationResponses"]
    assert response["StatusCode"] == "200"
    assert json.loads(response["ResponseTemplates"]["application/json"]) == {"status": "ok"}
    # And no permission lets the open path invoke the router
    for permission in resources(synth.default_json, "AWS::Lambda::Permission").values():
        assert "health" not in json.dumps(permission["Properties"].get("SourceArn", ""))


def test_the_account_gets_api_gateways_cloudwatch_role_retained_with_the_stack(synth: Synth) -> None:
    # Given the default stack: the account setting names a role API Gateway may assume to write logs
    account_id, account = only(synth.default_json, "AWS::ApiGateway::Account")
    role_id, role = only(synth.default_json, "AWS::IAM::Role", "ApiRestApiCloudWatchRole")
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
    # Then both outlive the stack (the setting is account-wide), and the stage waits for the setting
    for resource in (account, role):
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    _, stage = only(synth.default_json, "AWS::ApiGateway::Stage")
    assert account_id in stage["DependsOn"]
    # And with the context flag off, the stack leaves the account setting alone
    assert not resources(synth.minimal_json, "AWS::ApiGateway::Account")
    assert not [k for k in resources(synth.minimal_json, "AWS::IAM::Role") if "CloudWatchRole" in k]


def test_stage_writes_json_access_logs_and_detailed_metrics(synth: Synth) -> None:
    # Given the stage
    _, stage = only(synth.default_json, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    # Then its access log lines are JSON objects with the request, status, latency and tenant
    log_format = json.loads(props["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "responseLatencyMs", "tenant", "errorType"} <= set(log_format)
    log_group_id, _ = only(synth.default_json, "AWS::Logs::LogGroup", "ApiAccessLogs")
    assert {"Ref": log_group_id} in props["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    # And execution metrics and stage throttling are on for every method
    assert props["StageName"] == "prod"
    assert props["MethodSettings"][:1] == [
        {
            "DataTraceEnabled": False,
            "HttpMethod": "*",
            "MetricsEnabled": True,
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": cdk_json_context()["throttleBurstLimit"],
            "ThrottlingRateLimit": cdk_json_context()["throttleRateLimit"],
        }
    ]


def test_access_logs_keep_no_request_body(synth: Synth) -> None:
    _, stage = only(synth.default_json, "AWS::ApiGateway::Stage")
    log_format = stage["Properties"]["AccessLogSetting"]["Format"]
    assert "body" not in log_format.lower()


def test_throttling_is_the_stages_with_a_tighter_limit_on_health(synth: Synth) -> None:
    # A usage plan throttles only methods that require an API Gateway key, which no method here does
    synth.default.resource_count_is("AWS::ApiGateway::UsagePlan", 0)
    _, stage = only(synth.default_json, "AWS::ApiGateway::Stage")
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in stage["Properties"]["MethodSettings"]}
    context = cdk_json_context()
    assert settings[("/*", "*")]["ThrottlingRateLimit"] == context["throttleRateLimit"]
    assert settings[("/*", "*")]["ThrottlingBurstLimit"] == context["throttleBurstLimit"]
    assert settings[("/~1health", "GET")]["ThrottlingRateLimit"] == context["healthThrottleRateLimit"]


def test_gateway_responses_are_openai_style_errors(synth: Synth) -> None:
    # Given every response API Gateway answers by itself
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(synth.default_json, "AWS::ApiGateway::GatewayResponse").values()
    }
    # Then the common ones are all there
    assert {
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
        "REQUEST_TOO_LARGE",
        "THROTTLED",
        "INTEGRATION_TIMEOUT",
        "MISSING_AUTHENTICATION_TOKEN",
        "WAF_FILTERED",
    } <= set(responses)
    # And each body is an OpenAI error envelope
    for response_type, props in responses.items():
        body = _render(props["ResponseTemplates"]["application/json"])
        assert set(body) == {"error"}, response_type
        assert set(body["error"]) == OPENAI_ERROR_KEYS, response_type
        assert body["error"]["param"] is None
        assert body["error"]["message"], response_type


def test_a_wrong_key_gets_the_same_401_body_as_the_local_server(synth: Synth) -> None:
    from llm_router.api import UNAUTHORIZED_BODY

    _, response = only(synth.default_json, "AWS::ApiGateway::GatewayResponse", "ApiRestApiUnauthorized")
    props = response["Properties"]
    assert props["ResponseType"] == "UNAUTHORIZED"
    assert props["StatusCode"] == "401"
    assert _render(props["ResponseTemplates"]["application/json"]) == UNAUTHORIZED_BODY


def test_throttled_callers_get_429_with_retry_after(synth: Synth) -> None:
    synth.default.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "THROTTLED",
            "StatusCode": "429",
            "ResponseParameters": {"gatewayresponse.header.Retry-After": "'1'"},
        },
    )


def test_timeout_response_names_the_context_timeout(synth: Synth) -> None:
    _, response = only(synth.full_json, "AWS::ApiGateway::GatewayResponse", "ApiRestApiIntegrationTimeout")
    body = _render(response["Properties"]["ResponseTemplates"]["application/json"])
    assert response["Properties"]["StatusCode"] == "504"
    assert "600 seconds" in body["error"]["message"]


def test_a_key_the_authorizer_denies_gets_the_same_401_as_a_missing_one(synth: Synth) -> None:
    from llm_router.api import UNAUTHORIZED_BODY

    _, denied = only(synth.default_json, "AWS::ApiGateway::GatewayResponse", "ApiRestApiAccessDenied")
    props = denied["Properties"]
    assert props["ResponseType"] == "ACCESS_DENIED"
    assert props["StatusCode"] == "401"
    assert props["ResponseParameters"] == {"gatewayresponse.header.WWW-Authenticate": "'Bearer'"}
    assert _render(props["ResponseTemplates"]["application/json"]) == UNAUTHORIZED_BODY


def test_waf_is_off_unless_the_context_turns_it_on(synth: Synth) -> None:
    synth.default.resource_count_is("AWS::WAFv2::WebACL", 0)
    synth.full.resource_count_is("AWS::WAFv2::WebACL", 1)


def test_waf_rate_limits_per_ip_and_is_attached_to_the_stage(synth: Synth) -> None:
    # Given the web ACL of the stack with WAF on
    acl_id, acl = only(synth.full_json, "AWS::WAFv2::WebACL")
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"
    rules = {rule["Name"]: rule for rule in props["Rules"]}
    # Then it limits each IP, and uses AWS's managed rule groups
    assert rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"] == {"AggregateKeyType": "IP", "Limit": 2000}
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= set(rules)
    # And it is associated with the API stage
    _, association = only(synth.full_json, "AWS::WAFv2::WebACLAssociation")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    stage_id, _ = only(synth.full_json, "AWS::ApiGateway::Stage")
    assert stage_id in association["DependsOn"]


def test_waf_counts_instead_of_blocking_body_rules_that_prompts_trip(synth: Synth) -> None:
    _, acl = only(synth.full_json, "AWS::WAFv2::WebACL")
    common = next(r for r in acl["Properties"]["Rules"] if r["Name"] == "AWSManagedRulesCommonRuleSet")
    overrides = common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    counted = {o["Name"] for o in overrides if o["ActionToUse"] == {"Count": {}}}
    assert {"SizeRestrictions_BODY", "CrossSiteScripting_BODY"} <= counted
