"""Local mode's AWS: moto's server in-process on a free loopback port, the stack's tables, a seeded config.

Everything it changes (environment variables, cached clients, the endpoint file) is put back by `stop()`.
"""

from __future__ import annotations

import json
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from llm_router.cli.common import ENDPOINT_FILE, local_environment
from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE, Env
from llm_router.stores.tables import TTL_ATTRIBUTE, table_definition

DEFAULT_LOCAL_KEY = "sk-local-dev"
LOCAL_TENANT = "local"
FALLBACK_QUEUE = "llm-router-fallback"
DEAD_LETTER_QUEUE = "llm-router-fallback-dlq"
LOCAL_MAX_RECEIVE_COUNT = 5


def example_config() -> dict[str, Any]:
    """The example catalog, routes and rules shipped with the package."""
    text = resources.files("llm_router").joinpath("data/example-config.yaml").read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def reset_process_caches() -> None:
    """Forget settings, clients and the gateway so the next request sees the current environment."""
    from llm_router import api, authorizer, replay
    from llm_router.settings import get_settings
    from llm_router.stores import aws

    get_settings.cache_clear()
    aws.reset()
    api.get_gateway.cache_clear()
    api.get_idempotency.cache_clear()
    authorizer.get_key_store.cache_clear()
    replay.get_replayer.cache_clear()


class LocalStack:
    """Emulated AWS for `llm-router serve` and the end-to-end tests."""

    def __init__(
        self,
        *,
        config_path: Path | None = None,
        simulate: bool | None = None,
        api_key: str | None = None,
        project_dir: Path | None = None,
        region: str = "us-east-1",
        write_endpoint_file: bool = True,
    ) -> None:
        self.config_path = config_path
        # Without a config file every model is simulated; with one, only when asked to.
        self.simulate = simulate if simulate is not None else config_path is None
        self.api_key = api_key or os.environ.get(Env.LOCAL_KEY) or DEFAULT_LOCAL_KEY
        self.project_dir = project_dir or Path.cwd()
        self.region = region
        self.write_endpoint_file = write_endpoint_file
        self.endpoint = ""
        self.queue_url = ""
        self.dead_letter_queue_url = ""
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def endpoint_file(self) -> Path:
        return self.project_dir / ENDPOINT_FILE

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        state_dir = self.endpoint_file.parent
        state_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **local_environment(self.endpoint, self.region),
            Env.CONFIG_TABLE_NAME: DEFAULT_CONFIG_TABLE,
            Env.STATE_TABLE_NAME: DEFAULT_STATE_TABLE,
            Env.SIMULATE: "true" if self.simulate else "false",
            Env.METRICS_SINK: os.environ.get(Env.METRICS_SINK, str(state_dir / "metrics.jsonl")),
            Env.POWERTOOLS_TRACE_DISABLED: "true",
            Env.MAX_RECEIVE_COUNT: str(LOCAL_MAX_RECEIVE_COUNT),
            # Short back-offs locally, so a replayed answer shows up within seconds of the models recovering.
            Env.REPLAY_BACKOFF_SECONDS: os.environ.get(Env.REPLAY_BACKOFF_SECONDS, "2"),
            Env.CIRCUIT_COOLDOWN_SECONDS: os.environ.get(Env.CIRCUIT_COOLDOWN_SECONDS, "5"),
        }
        self._saved_env = {name: os.environ.get(name) for name in [*env, "AWS_PROFILE", Env.FALLBACK_QUEUE_URL]}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(env)
        reset_process_caches()
        self._create_tables()
        self.queue_url, self.dead_letter_queue_url = self._create_queues()
        os.environ[Env.FALLBACK_QUEUE_URL] = self.queue_url
        reset_process_caches()
        self._seed()
        if self.write_endpoint_file:
            info = {
                "endpoint": self.endpoint,
                "region": self.region,
                "config_table": DEFAULT_CONFIG_TABLE,
                "state_table": DEFAULT_STATE_TABLE,
                "fallback_queue_url": self.queue_url,
                "dead_letter_queue_url": self.dead_letter_queue_url,
                "pid": os.getpid(),
            }
            self.endpoint_file.write_text(json.dumps(info, indent=2) + "\n")
        return self

    def stop(self) -> None:
        if self.write_endpoint_file:
            self.endpoint_file.unlink(missing_ok=True)
        if self._server is not None:
            self._server.stop()
            self._server = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_process_caches()

    def _create_tables(self) -> None:
        from llm_router.stores.aws import client

        ddb = client("dynamodb")
        for name in (DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE):
            ddb.create_table(**table_definition(name))
        ddb.update_time_to_live(
            TableName=DEFAULT_STATE_TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )

    def _create_queues(self) -> tuple[str, str]:
        """The fallback queue and its dead-letter queue, with the stack's redrive policy."""
        from llm_router.stores.aws import client

        sqs = client("sqs")
        dlq_url = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": LOCAL_MAX_RECEIVE_COUNT})
        url = sqs.create_queue(
            QueueName=FALLBACK_QUEUE, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "30"}
        )["QueueUrl"]
        return str(url), str(dlq_url)

    def start_replay(self) -> Any:
        """The replay worker in a background thread (as the replay function consumes the queue in AWS)."""
        from llm_router.local.replay_thread import ReplayThread
        from llm_router.replay import handle
        from llm_router.stores.aws import client

        return ReplayThread(client("sqs"), self.queue_url, handle).start()

    def _seed(self) -> None:
        from llm_router.cli.common import read_document
        from llm_router.stores.config_admin import ConfigAdmin, validate_document
        from llm_router.stores.key_store import KeyStore

        doc = read_document(str(self.config_path)) if self.config_path else example_config()
        config = validate_document(doc)
        if not config.ok:
            raise ValueError("invalid config: " + "; ".join(config.errors))
        ConfigAdmin(DEFAULT_CONFIG_TABLE).apply(config)
        KeyStore(DEFAULT_CONFIG_TABLE).create(LOCAL_TENANT, self.api_key)
