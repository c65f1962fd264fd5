"""ProviderKeys: secret first, environment second, cached with a max age, never shown."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from llm_router.stores.secrets import ProviderKeys


class FakeSecrets:
    def __init__(self, value: dict[str, Any] | str) -> None:
        self.value = value
        self.reads = 0
        self.fail = False

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.reads += 1
        if self.fail:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")
        raw = self.value if isinstance(self.value, str) else json.dumps(self.value)
        return {"SecretString": raw}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_in_the_secret_wins_over_the_environment() -> None:
    keys = ProviderKeys(
        "keys",
        secretsmanager=FakeSecrets({"OPENAI_API_KEY": "sk-from-secret"}),
        environ={"LLM_ROUTER_KEY_OPENAI_API_KEY": "sk-from-env"},
    )

    assert keys.get("OPENAI_API_KEY") == "sk-from-secret"


def test_a_name_missing_from_the_secret_falls_back_to_the_environment() -> None:
    keys = ProviderKeys("keys", secretsmanager=FakeSecrets({}), environ={"LLM_ROUTER_KEY_GROQ_API_KEY": "gsk-env"})

    assert keys.get("GROQ_API_KEY") == "gsk-env"
    assert keys.get("NOTHING") is None


def test_without_a_secret_id_only_the_environment_is_read() -> None:
    secrets = FakeSecrets({"K": "from-secret"})
    keys = ProviderKeys(None, secretsmanager=secrets, environ={"LLM_ROUTER_KEY_K": "from-env"})

    assert keys.get("K") == "from-env"
    assert secrets.reads == 0


def test_the_secret_is_read_again_only_after_max_age() -> None:
    clock, secrets = Clock(), FakeSecrets({"K": "v1"})
    keys = ProviderKeys("keys", max_age=60, secretsmanager=secrets, environ={}, clock=clock)

    keys.get("K")
    secrets.value = {"K": "v2"}
    clock.now = 59
    assert keys.get("K") == "v1"
    clock.now = 61
    assert keys.get("K") == "v2"
    assert secrets.reads == 2


def test_an_unreadable_secret_keeps_the_last_good_keys() -> None:
    clock, secrets = Clock(), FakeSecrets({"K": "v1"})
    keys = ProviderKeys("keys", max_age=1, secretsmanager=secrets, environ={}, clock=clock)
    keys.get("K")

    secrets.fail = True
    clock.now = 5

    assert keys.get("K") == "v1"


def test_a_secret_that_is_not_json_logs_no_part_of_it(capsys: Any) -> None:
    keys = ProviderKeys("keys", secretsmanager=FakeSecrets("sk-raw-key-not-json"), environ={})

    assert keys.get("K") is None
    captured = capsys.readouterr()
    assert "sk-raw-key" not in captured.out + captured.err


def test_repr_names_keys_but_never_shows_them() -> None:
    keys = ProviderKeys("keys", secretsmanager=FakeSecrets({"OPENAI_API_KEY": "sk-very-secret"}), environ={})
    keys.get("OPENAI_API_KEY")

    assert "sk-very-secret" not in repr(keys)
    assert "OPENAI_API_KEY" in repr(keys)


def test_without_an_environment_only_the_secret_is_read_and_no_variable_is_reachable() -> None:
    # Given a process whose environment holds its own AWS credentials, and no environment passed (as on AWS)
    keys = ProviderKeys("keys", secretsmanager=FakeSecrets({}))

    # Then no ref reaches them, whatever it names
    assert keys.get("AWS_SECRET_ACCESS_KEY") is None
    assert keys.get("PATH") is None


def test_local_mode_reads_only_variables_with_the_fixed_prefix() -> None:
    environ = {
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "OPENAI_API_KEY": "sk-bare",
        "LLM_ROUTER_KEY_OPENAI_API_KEY": "sk-x",
    }
    keys = ProviderKeys(None, environ=environ)

    assert keys.get("OPENAI_API_KEY") == "sk-x"
    assert keys.get("AWS_SECRET_ACCESS_KEY") is None
