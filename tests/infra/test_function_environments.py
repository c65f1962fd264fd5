"""Each function's environment against its settings model: every required variable set, nothing the code ignores."""

from __future__ import annotations

from typing import Any

import pytest

from llm_router.settings import AuthorizerSettings, Env, EnvSettings, ReplaySettings, RouterSettings, SettingsError
from tests.infra.cfn import function
from tests.infra.conftest import Synth

# Variables Powertools reads by itself; no model of ours needs them.
# Read by Lambda and the runtime loop in the layer (llm_router/runtime), before any settings model exists.
RUNTIME_OWN = {Env.EXEC_WRAPPER, Env.STREAMING_RESPONSES}
POWERTOOLS_OWN = {
    Env.POWERTOOLS_METRICS_NAMESPACE,
    Env.POWERTOOLS_LOG_LEVEL,
    Env.POWERTOOLS_LOGGER_LOG_EVENT,
    Env.POWERTOOLS_TRACER_CAPTURE_RESPONSE,
}
FUNCTIONS: list[tuple[str, type[EnvSettings]]] = [
    ("FunctionsRouter", RouterSettings),
    ("FunctionsReplay", ReplaySettings),
    ("FunctionsAuthorizer", AuthorizerSettings),
]


def _environment(template: dict[str, Any], prefix: str) -> dict[str, Any]:
    return dict(function(template, prefix)["Environment"]["Variables"])


def _as_deployed(env: dict[str, Any]) -> dict[str, str]:
    """The environment as Lambda will see it: references (table names, the queue URL) become strings."""
    return {name: value if isinstance(value, str) else f"resolved-{name.lower()}" for name, value in env.items()}


@pytest.mark.parametrize(("prefix", "model"), FUNCTIONS)
def test_every_required_variable_of_the_model_is_set(synth: Synth, prefix: str, model: type[EnvSettings]) -> None:
    for template in (synth.default_json, synth.full_json):
        # Given the function's environment in the template
        names = set(_environment(template, prefix))
        # Then it holds each variable the model cannot load without
        assert model.required_variables() <= names, model.required_variables() - names


@pytest.mark.parametrize(("prefix", "model"), FUNCTIONS)
def test_every_variable_set_is_one_the_function_reads(synth: Synth, prefix: str, model: type[EnvSettings]) -> None:
    for template in (synth.default_json, synth.full_json):
        names = set(_environment(template, prefix))
        # Then each is an Env name that the model (or Powertools) reads: a renamed field cannot leave a stale one
        assert names <= set(Env), names - set(Env)
        assert names - POWERTOOLS_OWN - RUNTIME_OWN <= model.variables(), names - POWERTOOLS_OWN - model.variables()


@pytest.mark.parametrize(("prefix", "model"), FUNCTIONS)
def test_the_model_loads_from_the_stacks_environment(synth: Synth, prefix: str, model: type[EnvSettings]) -> None:
    for template in (synth.default_json, synth.full_json):
        env = _as_deployed(_environment(template, prefix))
        settings = model.from_env(env)
        assert settings.model_dump(by_alias=True)[Env.CONFIG_TABLE_NAME] == f"resolved-{Env.CONFIG_TABLE_NAME.lower()}"


def test_the_replay_worker_gives_up_at_the_queues_receive_count(synth: Synth) -> None:
    # Given the stack with fallbackMaxReceiveCount 7
    env = _as_deployed(_environment(synth.full_json, "FunctionsReplay"))
    # Then the replay worker marks a request failed on the receive that dead-letters it
    assert ReplaySettings.from_env(env).max_receive_count == synth.full_settings.fallback_max_receive_count == 7


def test_the_router_loads_the_stacks_limits(synth: Synth) -> None:
    settings = RouterSettings.from_env(_as_deployed(_environment(synth.full_json, "FunctionsRouter")))
    assert settings.request_timeout_seconds == synth.full_settings.integration_timeout_seconds
    assert settings.max_body_bytes == synth.full_settings.max_request_bytes
    assert settings.tracing_enabled is True
    assert settings.metrics_sink == "stdout"


@pytest.mark.parametrize(("prefix", "model"), FUNCTIONS)
def test_without_a_required_variable_the_model_names_it(synth: Synth, prefix: str, model: type[EnvSettings]) -> None:
    env = _as_deployed(_environment(synth.default_json, prefix))
    for name in model.required_variables():
        with pytest.raises(SettingsError) as raised:
            model.from_env({k: v for k, v in env.items() if k != name})
        assert raised.value.missing == [name]
