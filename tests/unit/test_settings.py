"""Settings models: read from the environment once, required variables named when missing, one error type."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from llm_router.settings import (
    AuthorizerSettings,
    Env,
    EnvSettings,
    GatewaySettings,
    ObservabilitySettings,
    ReplaySettings,
    RouterSettings,
    SettingsError,
    get_settings,
)

LIBRARY = Path(__file__).resolve().parents[2] / "layers" / "common" / "python" / "llm_router"
TABLES: dict[str, str] = {Env.CONFIG_TABLE_NAME: "config", Env.STATE_TABLE_NAME: "state"}
QUEUE: dict[str, str] = {Env.FALLBACK_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/fallback"}
MODELS: list[type[EnvSettings]] = [RouterSettings, ReplaySettings, AuthorizerSettings]


def test_each_function_requires_what_it_cannot_work_without() -> None:
    assert RouterSettings.required_variables() == {Env.CONFIG_TABLE_NAME, Env.STATE_TABLE_NAME}
    assert ReplaySettings.required_variables() == {
        Env.CONFIG_TABLE_NAME,
        Env.STATE_TABLE_NAME,
        Env.FALLBACK_QUEUE_URL,
    }
    assert AuthorizerSettings.required_variables() == {Env.CONFIG_TABLE_NAME}


@pytest.mark.parametrize("model", MODELS)
def test_a_missing_required_variable_is_named(model: type[EnvSettings]) -> None:
    complete = {**TABLES, **QUEUE}
    for name in model.required_variables():
        # Given the environment without one required variable
        environ = {k: v for k, v in complete.items() if k != name}
        # When the model is read, Then the error names that variable, and no other
        with pytest.raises(SettingsError, match=name) as raised:
            model.from_env(environ)
        assert raised.value.missing == [name]
        assert raised.value.invalid == []


def test_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        ReplaySettings.from_env({})
    assert sorted(raised.value.missing) == sorted(["CONFIG_TABLE_NAME", "STATE_TABLE_NAME", "FALLBACK_QUEUE_URL"])
    assert str(raised.value).startswith("ReplaySettings: missing environment variable(s) ")


def test_an_empty_value_counts_as_missing() -> None:
    with pytest.raises(SettingsError) as raised:
        AuthorizerSettings.from_env({Env.CONFIG_TABLE_NAME: ""})
    assert raised.value.missing == ["CONFIG_TABLE_NAME"]


def test_an_unusable_value_is_named_with_the_reason() -> None:
    with pytest.raises(SettingsError) as raised:
        RouterSettings.from_env({**TABLES, Env.MAX_BODY_BYTES: "0", Env.RULES_TTL_SECONDS: "soon"})
    assert raised.value.missing == []
    assert {problem.split(" ")[0] for problem in raised.value.invalid} == {"RULES_TTL_SECONDS", "MAX_BODY_BYTES"}
    assert "greater than 0" in str(raised.value)


def test_values_are_read_by_their_variable_names() -> None:
    settings = ReplaySettings.from_env(
        {
            **TABLES,
            **QUEUE,
            Env.MAX_RECEIVE_COUNT: "7",
            Env.REQUEST_TIMEOUT_SECONDS: "20",
            Env.SIMULATE: "true",
            Env.POWERTOOLS_SERVICE_NAME: "router-test",
        }
    )
    assert (settings.config_table_name, settings.state_table_name) == ("config", "state")
    assert settings.fallback_queue_url == QUEUE[Env.FALLBACK_QUEUE_URL]
    assert settings.max_receive_count == 7
    assert settings.deadline_seconds == 20 - settings.deadline_margin_seconds
    assert settings.simulate_all is True
    assert settings.service_name == "router-test"


def test_the_router_works_without_a_fallback_queue() -> None:
    # Without a queue, requests every model failed are refused with 503 instead of queued (api.py)
    assert RouterSettings.from_env(TABLES).fallback_queue_url is None


def test_from_env_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(Env.CONFIG_TABLE_NAME, "from-process")
    monkeypatch.delenv(Env.STATE_TABLE_NAME, raising=False)
    assert AuthorizerSettings.from_env().config_table_name == "from-process"
    with pytest.raises(SettingsError, match="STATE_TABLE_NAME"):
        RouterSettings.from_env()


def test_get_settings_is_the_router_settings_of_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(Env.CONFIG_TABLE_NAME, "c1")
    monkeypatch.setenv(Env.STATE_TABLE_NAME, "s1")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert isinstance(settings, RouterSettings)
        assert settings == RouterSettings.from_env()
        monkeypatch.delenv(Env.STATE_TABLE_NAME)
        get_settings.cache_clear()
        with pytest.raises(SettingsError, match="STATE_TABLE_NAME"):
            get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("model", [*MODELS, GatewaySettings, ObservabilitySettings])
def test_every_field_is_read_from_an_env_name(model: type[EnvSettings]) -> None:
    # `variables()` maps each field's alias to Env, so a field read from an unlisted name raises here
    assert len(model.variables()) == len(model.model_fields)


def test_names_kept_for_the_runtime_and_streaming() -> None:
    assert Env.STREAMING_RESPONSES == "LLM_ROUTER_STREAMING_RESPONSES"
    assert Env.EXEC_WRAPPER == "AWS_LAMBDA_EXEC_WRAPPER"


def test_observability_settings_never_fail_and_read_the_tracing_switch() -> None:
    defaults = ObservabilitySettings.from_env({})
    assert (defaults.service_name, defaults.tracing_enabled) == ("llm-router", False)
    assert ObservabilitySettings.from_env({Env.POWERTOOLS_TRACE_ENABLED: "true"}).tracing_enabled is True


def test_observability_reads_the_environment_only_through_settings() -> None:
    tree = ast.parse((LIBRARY / "observability.py").read_text(encoding="utf-8"))
    reads = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")
    ]
    assert reads == []
