"""The public face: a regional REST API with `/v1/{proxy+}` behind the key authorizer and an open `/health`.

The router integration streams (response transfer mode STREAM): headers and tokens reach the caller as the
router writes them, and a request may last up to the integration timeout instead of REST's buffered 29 seconds.
`/health` is answered by API Gateway itself (a MOCK integration), so an unauthenticated caller never starts a
function. Errors API Gateway answers itself (bad key, throttling, timeouts, unknown paths) carry the same
OpenAI-style body the router uses, so an OpenAI client raises the same exception locally and in AWS.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.settings import StackSettings
from llm_router.api import UNAUTHORIZED_BODY

F = apigw.AccessLogField
# One JSON object per request. The tenant and key prefix come from the authorizer; nothing from the body
# (prompts never reach the access log).
ACCESS_LOG_FIELDS = {
    "requestId": F.context_request_id(),
    "requestTime": F.context_request_time(),
    "ip": F.context_identity_source_ip(),
    "userAgent": F.context_identity_user_agent(),
    "httpMethod": F.context_http_method(),
    "resourcePath": F.context_resource_path(),
    "path": F.context_path(),
    "status": F.context_status(),
    "protocol": F.context_protocol(),
    "responseLength": F.context_response_length(),
    "responseLatencyMs": F.context_response_latency(),
    "integrationLatencyMs": F.context_integration_latency(),
    "integrationStatus": F.context_integration_status(),
    "tenant": F.context_authorizer("tenant"),
    "keyPrefix": F.context_authorizer("key_prefix"),
    "authorizerError": F.context_authorizer_error(),
    "errorType": F.context_error_response_type(),
    "errorMessage": F.context_error_message(),
    "wafStatus": F.context_waf_status(),
}
# `$context.error.messageString` is API Gateway's own message, already quoted as a JSON string.
GATEWAY_MESSAGE = "$context.error.messageString"
HEALTH_BODY = '{"status":"ok"}'
# Under `/v1`: the paths Anthropic clients call, whose key may come in `x-api-key` alone.
ANY_HEADER_PATHS = ("messages", "models")


def openai_error(message: str, error_type: str, code: str) -> str:
    """An OpenAI-style error body as a gateway-response template (`message` may be a `$context` reference)."""
    quoted = message if message == GATEWAY_MESSAGE else json.dumps(message)
    return f'{{"error":{{"message":{quoted},"type":{json.dumps(error_type)},"param":null,"code":{json.dumps(code)}}}}}'


def gateway_responses(settings: StackSettings) -> list[tuple[apigw.ResponseType, str, str, dict[str, str]]]:
    """Each response API Gateway may answer by itself: (type, status or "" to keep it, body template, headers)."""
    unauthorized = UNAUTHORIZED_BODY["error"]
    invalid_key = openai_error(str(unauthorized["message"]), str(unauthorized["type"]), str(unauthorized["code"]))
    timeout = settings.integration_timeout_seconds
    return [
        # No Authorization header: API Gateway refuses before the authorizer runs.
        (apigw.ResponseType.UNAUTHORIZED, "401", invalid_key, {"WWW-Authenticate": "'Bearer'"}),
        # The authorizer answers an unknown key with a Deny policy (it never raises, so a failed login is not a
        # Lambda error); the only Deny it gives is for a key that is not valid, hence the same 401 as above.
        (apigw.ResponseType.ACCESS_DENIED, "401", invalid_key, {"WWW-Authenticate": "'Bearer'"}),
        (
            apigw.ResponseType.WAF_FILTERED,
            "403",
            openai_error("The request was blocked by the API firewall.", "permission_error", "request_blocked"),
            {},
        ),
        # Paths outside /v1 and /health never reach the router: same answer as the router's unknown endpoint.
        (
            apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
            "404",
            openai_error("Unknown endpoint. Try POST /v1/chat/completions.", "invalid_request_error", "unknown_url"),
            {},
        ),
        (
            apigw.ResponseType.THROTTLED,
            "429",
            openai_error("Rate limit reached for this API; retry shortly.", "requests", "rate_limit_exceeded"),
            {"Retry-After": "'1'"},
        ),
        (
            apigw.ResponseType.QUOTA_EXCEEDED,
            "429",
            openai_error("The usage quota of this API is exhausted.", "insufficient_quota", "insufficient_quota"),
            {},
        ),
        (
            apigw.ResponseType.REQUEST_TOO_LARGE,
            "413",
            openai_error("The request is larger than the API accepts.", "invalid_request_error", "request_too_large"),
            {},
        ),
        (
            apigw.ResponseType.AUTHORIZER_FAILURE,
            "500",
            openai_error("The API key could not be checked; retry shortly.", "server_error", "authorizer_failure"),
            {},
        ),
        (
            apigw.ResponseType.AUTHORIZER_CONFIGURATION_ERROR,
            "500",
            openai_error("The API key could not be checked; retry shortly.", "server_error", "authorizer_failure"),
            {},
        ),
        (
            apigw.ResponseType.INTEGRATION_TIMEOUT,
            "504",
            openai_error(f"The router did not answer within {timeout} seconds.", "server_error", "timeout"),
            {},
        ),
        (
            apigw.ResponseType.INTEGRATION_FAILURE,
            "502",
            openai_error("The router could not be reached; retry shortly.", "server_error", "bad_gateway"),
            {},
        ),
        (
            apigw.ResponseType.DEFAULT_4_XX,
            "",
            openai_error(GATEWAY_MESSAGE, "invalid_request_error", "invalid_request"),
            {},
        ),
        (
            apigw.ResponseType.DEFAULT_5_XX,
            "",
            openai_error(GATEWAY_MESSAGE, "server_error", "internal_error"),
            {},
        ),
    ]


def cors_headers(origins: tuple[str, ...]) -> dict[str, str]:
    """The CORS headers of the errors API Gateway answers itself (a refused key, throttling, a timeout), so that a
    browser client can read them as it reads the router's own; none while CORS is off.

    A gateway response cannot pick one of several origins the way the router does: one configured origin (or `*`)
    is sent as it is; with several, the request's own `Origin` is echoed. That exposes nothing: these bodies are
    fixed error messages, with no tenant data, and credentials are never allowed (no cookies, keys are headers)."""
    if not origins:
        return {}
    if "*" in origins:
        origin = "'*'"
    elif len(origins) == 1:
        origin = f"'{origins[0]}'"
    else:
        origin = "method.request.header.Origin"
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "'*'",
        "Vary": "'Origin'",
    }


def key_authorizer(
    scope: Construct, construct_id: str, function: lambda_.IFunction, ttl: int
) -> apigw.RequestAuthorizer:
    """The key authorizer: cached per `Authorization` header for `ttl` seconds, or, with `ttl` 0, uncached and
    without identity sources, so API Gateway calls the function for every request whichever header carries the key
    (with an identity source, a request without that header is refused even when caching is off)."""
    if ttl > 0:
        return apigw.RequestAuthorizer(
            scope,
            construct_id,
            handler=function,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=Duration.seconds(ttl),
        )
    uncached = apigw.RequestAuthorizer(
        scope, construct_id, handler=function, identity_sources=[], results_cache_ttl=Duration.seconds(0)
    )
    resource = uncached.node.default_child
    assert isinstance(resource, apigw.CfnAuthorizer)
    resource.add_property_deletion_override("IdentitySource")
    return uncached


class RouterApi(Construct):
    """The REST API, its stage (access logs, metrics, throttling) and the authorizer.

    Throttling is the stage's: a usage plan would only limit methods that require an API Gateway API key, and
    callers here present their own keys to the authorizer instead.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        router: lambda_.IFunction,
        authorizer: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        # Kept after the stack is gone: who called, when and with which key is an audit record.
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=settings.log_retention, removal_policy=RemovalPolicy.RETAIN
        )
        self.api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{settings.stack_name}-api",
            description="llm-router: OpenAI-compatible LLM gateway",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access logs need API Gateway's account-wide CloudWatch role (AWS::ApiGateway::Account) in this
            # account and region. It is created here unless the context says one exists; it is retained with the
            # stack because the account setting would otherwise point at a deleted role, and every other API in
            # the region would lose its logs.
            cloud_watch_role=settings.api_gateway_cloudwatch_role,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN if settings.api_gateway_cloudwatch_role else None,
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage_name,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                metrics_enabled=True,
                data_trace_enabled=False,
                tracing_enabled=settings.tracing_enabled,
                throttling_rate_limit=settings.throttle_rate_limit,
                throttling_burst_limit=settings.throttle_burst_limit,
                method_options={
                    "/health/GET": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=settings.health_throttle_rate_limit,
                        throttling_burst_limit=settings.health_throttle_rate_limit,
                    )
                },
            ),
        )
        # The default output duplicates the stack's own, clearer ones.
        self.api.node.try_remove_child("Endpoint")
        self.stage = self.api.deployment_stage

        integration = apigw.LambdaIntegration(
            router,
            proxy=True,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=Duration.seconds(settings.integration_timeout_seconds),
            allow_test_invoke=False,
        )
        # API Gateway refuses a request that lacks any of an authorizer's identity sources with a 401 before the
        # function runs, and caches answers only when the authorizer has identity sources. OpenAI clients send
        # `Authorization`, so the cached authorizer is keyed on it; Anthropic clients send `x-api-key` alone, so
        # the Anthropic paths get an uncached authorizer without identity sources that reads either header
        # (one authorizer invocation per request there; see "API keys from Anthropic clients" in the README).
        caching = settings.authorizer_cache_ttl_seconds > 0
        self.authorizer = key_authorizer(
            self, "KeyAuthorizer", authorizer, settings.authorizer_cache_ttl_seconds if caching else 0
        )
        self.any_header_authorizer = (
            key_authorizer(self, "AnyHeaderKeyAuthorizer", authorizer, 0) if caching else self.authorizer
        )
        # Load balancers and uptime checks call /health without a key: API Gateway answers a constant itself.
        self.health_method = self.api.root.add_resource("health").add_method(
            "GET",
            apigw.MockIntegration(
                request_templates={"application/json": '{"statusCode": 200}'},
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                integration_responses=[
                    apigw.IntegrationResponse(status_code="200", response_templates={"application/json": HEALTH_BODY})
                ],
            ),
            method_responses=[apigw.MethodResponse(status_code="200")],
        )
        v1 = self.api.root.add_resource("v1")
        self.proxy = v1.add_proxy(
            default_integration=integration,
            any_method=True,
            default_method_options=apigw.MethodOptions(
                authorizer=self.authorizer, authorization_type=apigw.AuthorizationType.CUSTOM
            ),
        )
        # The paths Anthropic's SDK calls with `x-api-key`, and everything below them: `/v1/messages` (count_tokens,
        # batches) and `/v1/models` (rarely called, so its uncached authorization costs little).
        self.any_header_resources: list[apigw.Resource] = []
        for part in ANY_HEADER_PATHS:
            resource = v1.add_resource(
                part,
                default_integration=integration,
                default_method_options=apigw.MethodOptions(
                    authorizer=self.any_header_authorizer, authorization_type=apigw.AuthorizationType.CUSTOM
                ),
            )
            resource.add_method("ANY")
            self.any_header_resources += [resource, resource.add_proxy(any_method=True)]

        # Unauthenticated on purpose, answered by the router without reading any data: the OpenAPI document, and
        # CORS preflights (browsers send them without credentials; the router adds CORS headers only for the
        # origins in `corsAllowedOrigins`).
        self.openapi_method = self.api.root.add_resource("openapi.json").add_method(
            "GET", integration, authorization_type=apigw.AuthorizationType.NONE
        )
        self.preflight_methods: list[apigw.Method] = []
        if settings.cors_allowed_origins:
            self.preflight_methods = [
                resource.add_method("OPTIONS", integration, authorization_type=apigw.AuthorizationType.NONE)
                for resource in (self.proxy, *self.any_header_resources)
            ]

        cors = cors_headers(settings.cors_allowed_origins)
        for response_type, status, template, headers in gateway_responses(settings):
            options: dict[str, Any] = {"templates": {"application/json": template}}
            if status:
                options["status_code"] = status
            if headers or cors:
                options["response_headers"] = {**headers, **cors}
            name = response_type.response_type.title().replace("_", "")
            self.api.add_gateway_response(name, type=response_type, **options)

    @property
    def base_url(self) -> str:
        """What OpenAI clients take as `base_url`: the stage URL plus `v1`."""
        return self.api.url_for_path("/v1")
