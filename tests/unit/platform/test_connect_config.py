"""The Debezium connector's config, the plugin layout's filter, and the Connect REST
client's errors, against a local HTTP server that answers as Kafka Connect does."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from services.platform import connect
from services.platform.connect import (
    AVRO_CONVERTER,
    ConnectError,
    ConnectRest,
    cdc_topic,
    debezium_postgres_config,
    pause_connector,
)
from services.platform.source_db import SourceDatabase
from services.stack import maven

pytestmark = pytest.mark.unit


def db(tmp_path: Path) -> SourceDatabase:
    return SourceDatabase(tmp_path, port=54321)


def test_avro_values_carry_the_ids_the_confluent_api_hands_out(tmp_path: Path) -> None:
    config = debezium_postgres_config(
        db(tmp_path), topic_prefix="cdc-AB12", registry_url="http://r/apis/registry/v2"
    )
    assert config["value.converter"] == AVRO_CONVERTER
    assert config["value.converter.apicurio.registry.use-id"] == "contentId"
    assert config["value.converter.apicurio.registry.as-confluent"] == "true"
    assert config["value.converter.apicurio.registry.headers.enabled"] == "false"
    assert config["database.port"] == "54321" and config["plugin.name"] == "pgoutput"
    # PostgreSQL takes only lower-case letters, digits and underscores in slot names
    assert re.fullmatch(r"[a-z0-9_]{1,63}", config["slot.name"])
    assert cdc_topic("cdc-AB12") == "cdc-AB12.public.orders"


def test_without_a_registry_values_are_json(tmp_path: Path) -> None:
    config = debezium_postgres_config(db(tmp_path), topic_prefix="p", slot="mine")
    assert config["value.converter"] == connect.JSON_CONVERTER
    assert config["slot.name"] == "mine"
    assert not any("apicurio" in k for k in config)


def test_the_workers_own_jars_stay_out_of_plugin_dirs() -> None:
    kafka = maven.artifact_path("org.apache.kafka:connect-api:4.3.0")
    slf4j = maven.artifact_path("org.slf4j:slf4j-api:1.7.36")
    debezium = maven.artifact_path("io.debezium:debezium-api:3.6.1.Final")
    assert connect._provided(kafka) and connect._provided(slf4j)
    assert not connect._provided(debezium)
    assert not connect._provided(Path("/elsewhere/org/apache/kafka/x.jar"))


class FakeConnect(BaseHTTPRequestHandler):
    """Answers like Kafka Connect 4.1 with Debezium 3.6 (see the routes)."""

    statuses: ClassVar[dict[str, Any]] = {}

    def _send(self, code: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        name = self.path.split("/")[2] if self.path.startswith("/connectors/") else ""
        if name in self.statuses:
            self._send(200, self.statuses[name])
        else:
            self._send(404, {"error_code": 404, "message": f"Connector {name} not found"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send(500, {"error_code": 500, "message": "Cannot invoke ConfigValueInfo.errors()"})

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/config/validate" in self.path:
            bad = {"name": "slot.name", "errors": ["slot name must be lower case"]}
            self._send(200, {"error_count": 1, "configs": [{"value": None}, {"value": bad}]})
        elif self.path.endswith("/pause"):
            self._send(202, None)
        else:
            self._send(404, {"error_code": 404, "message": "no"})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeConnect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_refused_config_is_reported_with_the_plugins_reasons(fake: str) -> None:
    with pytest.raises(ConnectError, match=r"slot\.name: slot name must be lower case"):
        ConnectRest(fake).create("orders", {"connector.class": connect.DEBEZIUM_CLASS})


def test_a_failed_task_ends_the_wait_with_its_trace(fake: str) -> None:
    FakeConnect.statuses["orders"] = {
        "connector": {"state": "RUNNING"},
        "tasks": [{"id": 0, "state": "FAILED", "trace": "No table filters found"}],
    }
    status = ConnectRest(fake).status("orders")
    assert status.failed and status.tasks == ("FAILED",)
    # the failure ends the wait at once (a 60 s budget would fail the test's timeout)
    with pytest.raises(ConnectError, match=r"(?s)connector orders failed .*No table filters found"):
        ConnectRest(fake).wait_running("orders", timeout_s=60)
    with pytest.raises(ConnectError, match=r"(?s)connector orders failed .*No table filters found"):
        pause_connector(fake, "orders", timeout_s=60)


def test_unknown_connector_and_connect_down_are_clear_errors(
    fake: str, unused_tcp_port: int
) -> None:
    with pytest.raises(ConnectError, match=r"answered 404 .* Connector ghost not found"):
        ConnectRest(fake).status("ghost")
    down = ConnectRest(f"http://127.0.0.1:{unused_tcp_port}", timeout_s=2)
    assert not down.healthy()
    with pytest.raises(ConnectError, match=r"not reachable .*is the worker running"):
        down.connectors()


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
