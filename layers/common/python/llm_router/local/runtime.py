"""Local mode's AWS: moto's server in-process on a free loopback port, the stack's tables, a seeded config, and
the router built on them through the composition root (`wiring`), as the Lambda functions build theirs.

The process environment is left alone: clients get the emulation's endpoint and throwaway credentials directly.
`stop()` removes the endpoint file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from llm_router.cli.common import ENDPOINT_FILE, USER_ENDPOINT_FILE
from llm_router.settings import DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE, Env, ReplaySettings, RouterSettings
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
        self.api_key = api_key or os.environ.get("LLM_ROUTER_LOCAL_KEY") or DEFAULT_LOCAL_KEY
        self.project_dir = project_dir or Path.cwd()
        self.region = region
        self.write_endpoint_file = write_endpoint_file
        self.endpoint = ""
        self.queue_url = ""
        self.dead_letter_queue_url = ""
        self._server: Any = None
        self.clients: Any = None
        self.settings: RouterSettings | None = None
        self.environ: dict[str, str] = {}

    @property
    def endpoint_file(self) -> Path:
        return self.project_dir / ENDPOINT_FILE

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        from llm_router.wiring import AwsClients

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.clients = AwsClients(
            region=self.region,
            endpoint_url=self.endpoint,
            credentials={"aws_access_key_id": "local", "aws_secret_access_key": "local"},
        )
        state_dir = self.endpoint_file.parent
        state_dir.mkdir(parents=True, exist_ok=True)
        self._create_tables()
        self.queue_url, self.dead_letter_queue_url = self._create_queues()
        self.settings = self.router_settings(state_dir)
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
            with contextlib.suppress(OSError):  # a read-only or missing home only loses the shortcut
                user_file = USER_ENDPOINT_FILE.expanduser()
                user_file.parent.mkdir(parents=True, exist_ok=True)
                user_file.write_text(json.dumps(info, indent=2) + "\n")
        return self

    def router_settings(self, state_dir: Path) -> RouterSettings:
        """The router's settings in local mode: the process environment may change any of them (e.g.
        RULES_TTL_SECONDS), except what points at the emulation."""
        defaults: dict[str, str] = {
            Env.METRICS_SINK: str(state_dir / "metrics.jsonl"),
            # Short back-offs locally, so a replayed answer shows up within seconds of the models recovering.
            Env.REPLAY_BACKOFF_SECONDS: "2",
            Env.CIRCUIT_COOLDOWN_SECONDS: "5",
        }
        fixed: dict[str, str] = {
            Env.CONFIG_TABLE_NAME: DEFAULT_CONFIG_TABLE,
            Env.STATE_TABLE_NAME: DEFAULT_STATE_TABLE,
            Env.FALLBACK_QUEUE_URL: self.queue_url,
            Env.SIMULATE: "true" if self.simulate else "false",
            Env.MAX_RECEIVE_COUNT: str(LOCAL_MAX_RECEIVE_COUNT),
            Env.LOCAL_MODE: "true",
        }
        self.environ = {**defaults, **os.environ, **fixed}
        return RouterSettings.from_env(self.environ)

    def gateway(self, **overrides: Any) -> Any:
        """API Gateway's part locally: the authorizer in front of the router's API (see local/server.py)."""
        from llm_router.local.server import LocalGateway
        from llm_router.wiring import build_key_store, build_router_api

        assert self.settings is not None, "start() first"
        api = build_router_api(self.settings, clients=self.clients, **overrides)
        return LocalGateway(api, build_key_store(self.settings, clients=self.clients))

    def stop(self) -> None:
        if self.write_endpoint_file:
            self.endpoint_file.unlink(missing_ok=True)
            with contextlib.suppress(OSError, ValueError):
                user_file = USER_ENDPOINT_FILE.expanduser()
                if json.loads(user_file.read_text()).get("endpoint") == self.endpoint:  # still ours
                    user_file.unlink()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _create_tables(self) -> None:
        ddb = self.clients.get("dynamodb")
        for name in (DEFAULT_CONFIG_TABLE, DEFAULT_STATE_TABLE):
            ddb.create_table(**table_definition(name))
        ddb.update_time_to_live(
            TableName=DEFAULT_STATE_TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )

    def _create_queues(self) -> tuple[str, str]:
        """The fallback queue and its dead-letter queue, with the stack's redrive policy."""
        sqs = self.clients.get("sqs")
        dlq_url = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": LOCAL_MAX_RECEIVE_COUNT})
        url = sqs.create_queue(
            QueueName=FALLBACK_QUEUE, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "30"}
        )["QueueUrl"]
        return str(url), str(dlq_url)

    def start_replay(self, **overrides: Any) -> Any:
        """The replay worker in a background thread (as the replay function consumes the queue in AWS)."""
        from llm_router.local.replay_thread import ReplayThread
        from llm_router.wiring import build_replayer

        assert self.settings is not None, "start() first"
        settings = ReplaySettings.from_env(self.environ)
        replayer = build_replayer(settings, clients=self.clients, **overrides)
        return ReplayThread(self.clients.get("sqs"), self.queue_url, replayer.handle).start()

    def _seed(self) -> None:
        from llm_router.cli.common import read_document
        from llm_router.stores.config_admin import ConfigAdmin, validate_document
        from llm_router.stores.key_store import KeyStore

        doc = read_document(str(self.config_path)) if self.config_path else example_config()
        config = validate_document(doc)
        if not config.ok:
            raise ValueError("invalid config: " + "; ".join(config.errors))
        ddb = self.clients.get("dynamodb")
        ConfigAdmin(DEFAULT_CONFIG_TABLE, dynamodb=ddb).apply(config)
        # The person running the local server is its operator: their key sees routing reasons.
        KeyStore(DEFAULT_CONFIG_TABLE, dynamodb=ddb).create(LOCAL_TENANT, self.api_key, admin=True)
