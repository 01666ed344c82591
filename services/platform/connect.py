"""Kafka Connect with the Debezium PostgreSQL connector: a candidate's CDC, as real processes.

The cdc-offsets collector and ``p1.cdc_source`` are only as good as their reading of a
real connector's topic, and a proctor's CDC fault is only real if the connector really
stops. :class:`ConnectWorker` runs a Kafka Connect standalone worker (the
``connect-runtime`` jars of the stack's Kafka version, from Maven) against the stack's
broker, with Debezium's PostgreSQL connector as a plugin, and the Apicurio Avro
converter as a second plugin so the value schema lands in the stack's registry as
``<topic>-value``. Connectors are managed through the worker's REST API only
(:class:`ConnectRest`), as a candidate's tooling would; the fault injector and its undo
(:func:`pause_connector`, :func:`resume_connector`, :func:`misconfigure_connector`,
:func:`restore_connector`) are plain functions over that API.

    install = ensure_installed()
    with SourceDatabase(dir / "db") as db, ConnectWorker(dir / "connect", install) as worker:
        db.create_orders_table()
        worker.rest.create("orders", debezium_postgres_config(db, topic_prefix="cdcab12"))
        worker.rest.wait_running("orders")
        pause_connector(worker.rest_url, "orders")

Why Apicurio's 2.6 converter: the 3.x converter's jar is not served by Maven Central, and
Confluent's converter is not on it at all. The 2.6 converter speaks the registry's v2
API, which Apicurio 3.3.3 still serves; artifacts of the default group are the subjects
of the Confluent-compatible API, so the collector sees ``<topic>-value`` there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from services.errors import StackError
from services.platform.source_db import ORDERS_TABLE, OrderLoad, SourceDatabase
from services.stack import jvm, maven
from services.stack.component import StartedOnEnter, stop_process_group
from services.stack.config import StackConfig
from services.stack.kafka import KAFKA_VERSION, LOG4J_VERSION
from services.stack.kubernetes import free_port

Progress = Callable[[str], None]

DEBEZIUM_VERSION = "3.6.1.Final"
#: the newest Apicurio converter whose jars Maven Central serves (3.x lacks its jar)
APICURIO_CONVERTER_VERSION = "2.6.13.Final"
HOST = "127.0.0.1"

RUNTIME = (
    f"org.apache.kafka:connect-runtime:{KAFKA_VERSION}",
    f"org.apache.kafka:connect-json:{KAFKA_VERSION}",
    f"org.apache.kafka:connect-transforms:{KAFKA_VERSION}",
    f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
)
#: plugin directory name -> the artifacts resolved into it
PLUGINS: dict[str, tuple[str, ...]] = {
    "debezium-postgres": (f"io.debezium:debezium-connector-postgres:{DEBEZIUM_VERSION}",),
    "apicurio-converter": (
        f"io.apicurio:apicurio-registry-utils-converter:{APICURIO_CONVERTER_VERSION}",
    ),
}
#: jars the worker already has: a plugin's own copy (another Kafka version) would be
#: ignored by Connect's class loading or clash with it, so they stay out of plugin dirs
_PROVIDED = (
    "org/apache/kafka/",
    "org/slf4j/",
    "com/github/luben/",
    "org/lz4/",
    "at/yawk/lz4/",
    "org/xerial/snappy/",
)

DEBEZIUM_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
AVRO_CONVERTER = "io.apicurio.registry.utils.converter.AvroConverter"
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
logger.kafka.name = org.apache.kafka.clients
logger.kafka.level = WARN
"""


class ConnectError(StackError):
    """The Connect worker could not be reached, or refused or failed a connector."""


def _quiet(_message: str) -> None:
    """Progress sink for callers that do not want the install lines."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "proctor" / f"connect-{KAFKA_VERSION}"
    return Path(os.environ.get("PROCTOR_CONNECT_CACHE", str(default)))


@dataclass(frozen=True, slots=True)
class ConnectInstall:
    """The worker's class path and the plugin path holding one directory per plugin."""

    classpath: tuple[Path, ...]
    plugin_path: Path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One installer at a time (two test sessions may start together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _provided(jar: Path) -> bool:
    try:
        rel = jar.resolve().relative_to(maven.M2_REPO.resolve()).as_posix()
    except ValueError:
        return False
    return rel.startswith(_PROVIDED)


def ensure_installed(progress: Progress = _quiet) -> ConnectInstall:
    """Resolve the worker and its plugins with ``mvn`` (cached in ~/.m2) and lay out the
    plugin path under :func:`cache_dir`; a second call only checks the files."""
    root = cache_dir()
    with _locked(root / ".lock"):
        classpath = maven.classpath(RUNTIME, root / "runtime", progress)
        plugins = root / "plugins"
        for name, coords in PLUGINS.items():
            jars = [
                j
                for j in maven.classpath(coords, root / "mvn" / name, progress)
                if not _provided(j)
            ]
            target = plugins / name
            wanted = {j.name for j in jars}
            have = {p.name for p in target.glob("*.jar")} if target.is_dir() else set()
            if have != wanted:
                progress(f"connect: laying out plugin {name} ({len(jars)} jars)")
                shutil.rmtree(target, ignore_errors=True)
                staging = plugins / f".{name}.new"
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                for jar in jars:
                    shutil.copy2(jar, staging / jar.name)
                staging.rename(target)
        return ConnectInstall(tuple(classpath), plugins)


# REST ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    """``GET /connectors/{name}/status``: the connector's and each task's state."""

    name: str
    state: str
    tasks: tuple[str, ...]
    trace: str

    @property
    def failed(self) -> bool:
        return self.state == "FAILED" or "FAILED" in self.tasks


@dataclass(frozen=True, slots=True)
class ConnectRest:
    """A client of Kafka Connect's REST API; every failure is a :class:`ConnectError`."""

    url: str
    timeout_s: float = 10.0

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                detail: Any = json.loads(raw)
            except ValueError:
                detail = raw.decode(errors="replace")
            message = detail.get("message", detail) if isinstance(detail, dict) else detail
            raise ConnectError(
                f"Kafka Connect at {self.url} answered {exc.code} to {method} {path}: {message}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ConnectError(
                f"Kafka Connect at {self.url} is not reachable ({method} {path}): {exc}; "
                "is the worker running?"
            ) from exc

    def healthy(self) -> bool:
        """The worker answers ``GET /`` with its version (never raises)."""
        try:
            status, body = self.call("GET", "/")
        except ConnectError:
            return False
        return status == 200 and isinstance(body, dict) and "version" in body

    def plugins(self) -> list[str]:
        _, body = self.call("GET", "/connector-plugins?connectorsOnly=false")
        return [str(p["class"]) for p in body or []]

    def connectors(self) -> list[str]:
        _, body = self.call("GET", "/connectors")
        return [str(c) for c in body or []]

    def validate(self, config: Mapping[str, str]) -> list[str]:
        """The plugin's own verdict on a config: ``"<key>: <error>"`` per problem."""
        plugin = _q(config.get("connector.class", ""))
        _, body = self.call("PUT", f"/connector-plugins/{plugin}/config/validate", dict(config))
        problems: list[str] = []
        for entry in (body or {}).get("configs", []):
            value = entry.get("value") if isinstance(entry, dict) else None
            if isinstance(value, dict):  # Debezium lists some entries without a value
                problems += [f"{value.get('name')}: {e}" for e in value.get("errors") or []]
        return problems

    def create(self, name: str, config: Mapping[str, str]) -> None:
        """Register a connector. A config the plugin rejects is reported with the
        plugin's reasons: Connect 4.1 answers Debezium 3.6's rejections with a 500 (a null
        entry in the validation result), which names none of them."""
        try:
            self.call("POST", "/connectors", {"name": name, "config": dict(config)})
        except ConnectError as exc:
            if "answered 500" not in str(exc):
                raise
            problems = self.validate({"name": name, **config})
            if not problems:
                raise
            raise ConnectError(
                f"Kafka Connect refused connector {name}: {'; '.join(problems)}"
            ) from exc

    def config(self, name: str) -> dict[str, str]:
        _, body = self.call("GET", f"/connectors/{_q(name)}/config")
        return {str(k): str(v) for k, v in (body or {}).items()}

    def put_config(self, name: str, config: Mapping[str, str]) -> None:
        self.call("PUT", f"/connectors/{_q(name)}/config", dict(config))

    def status(self, name: str) -> ConnectorStatus:
        _, body = self.call("GET", f"/connectors/{_q(name)}/status")
        connector = body.get("connector", {}) if isinstance(body, dict) else {}
        tasks = body.get("tasks", []) if isinstance(body, dict) else []
        traces = [str(t.get("trace", "")) for t in [connector, *tasks] if t.get("trace")]
        return ConnectorStatus(
            name,
            str(connector.get("state", "UNKNOWN")),
            tuple(str(t.get("state", "UNKNOWN")) for t in tasks),
            "\n".join(traces),
        )

    def pause(self, name: str) -> None:
        self.call("PUT", f"/connectors/{_q(name)}/pause")

    def resume(self, name: str) -> None:
        self.call("PUT", f"/connectors/{_q(name)}/resume")

    def delete(self, name: str) -> None:
        self.call("DELETE", f"/connectors/{_q(name)}")

    def wait_state(self, name: str, state: str, timeout_s: float = 120.0) -> ConnectorStatus:
        """Wait until the connector and all its tasks (at least one) are in ``state``;
        a failed connector or task ends the wait with its trace."""
        deadline = time.monotonic() + timeout_s
        last: ConnectorStatus | None = None
        while time.monotonic() < deadline:
            try:
                last = self.status(name)
            except ConnectError:  # 404 while the worker sets the connector up
                time.sleep(0.5)
                continue
            if last.failed:
                raise ConnectError(
                    f"connector {name} failed ({last.state}, tasks {list(last.tasks)}):\n"
                    + last.trace[-3000:]
                )
            if last.state == state and last.tasks and set(last.tasks) == {state}:
                return last
            time.sleep(0.5)
        raise ConnectError(
            f"connector {name} not {state} after {timeout_s:.0f}s; last status: {last}"
        )

    def wait_running(self, name: str, timeout_s: float = 120.0) -> ConnectorStatus:
        return self.wait_state(name, "RUNNING", timeout_s)

    def task_configs(self, name: str) -> list[dict[str, str]]:
        """The configs the connector's tasks run with (``GET /connectors/{name}/tasks``)."""
        _, body = self.call("GET", f"/connectors/{_q(name)}/tasks")
        return [
            {str(k): str(v) for k, v in (t.get("config") or {}).items()}
            for t in body or []
            if isinstance(t, dict)
        ]

    def wait_task_config(self, name: str, key: str, value: str, timeout_s: float = 120.0) -> None:
        """Wait until every task of the connector runs with ``key=value`` (a config change
        restarts the tasks a moment after ``PUT /config`` answers)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ConnectError):
                tasks = self.task_configs(name)
                if tasks and all(t.get(key) == value for t in tasks):
                    return
            time.sleep(0.5)
        raise ConnectError(f"the tasks of connector {name} do not run with {key}={value}")

    def wait_failed(self, name: str, timeout_s: float = 120.0) -> ConnectorStatus:
        """Wait until the connector or one of its tasks is FAILED; its status (with trace)."""
        deadline = time.monotonic() + timeout_s
        last: ConnectorStatus | None = None
        while time.monotonic() < deadline:
            with contextlib.suppress(ConnectError):
                last = self.status(name)
                if last.failed:
                    return last
            time.sleep(0.5)
        raise ConnectError(f"connector {name} did not fail in {timeout_s:.0f}s; last: {last}")


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# Fault injection and its undo (for rehearsals) ---------------------------------------------
def pause_connector(rest_url: str, name: str, timeout_s: float = 60.0) -> ConnectorStatus:
    """Pause a connector through the REST API and wait until its tasks are PAUSED: the
    source stops reading the WAL, so the CDC topic's offsets stop growing (the slot keeps
    the changes; nothing is lost)."""
    rest = ConnectRest(rest_url)
    rest.pause(name)
    return rest.wait_state(name, "PAUSED", timeout_s)


def resume_connector(rest_url: str, name: str, timeout_s: float = 60.0) -> ConnectorStatus:
    """Undo :func:`pause_connector`: resume and wait until RUNNING again."""
    rest = ConnectRest(rest_url)
    rest.resume(name)
    return rest.wait_running(name, timeout_s)


def misconfigure_connector(
    rest_url: str, name: str, table: str = "public.no_such_table", timeout_s: float = 120.0
) -> dict[str, str]:
    """Point a running connector at a table that does not exist (a typo'd include list)
    and wait until its task runs with it: the connector stays RUNNING on its existing
    slot and publication while the declared table's changes no longer reach the topic.
    Returns the previous config, which :func:`restore_connector` takes."""
    rest = ConnectRest(rest_url)
    before = rest.config(name)
    rest.put_config(name, {**before, "table.include.list": table})
    rest.wait_task_config(name, "table.include.list", table, timeout_s)
    rest.wait_running(name, timeout_s)
    return before


def restore_connector(
    rest_url: str, name: str, config: Mapping[str, str], timeout_s: float = 120.0
) -> ConnectorStatus:
    """Undo :func:`misconfigure_connector` with the config it returned."""
    rest = ConnectRest(rest_url)
    config = {k: v for k, v in config.items() if k != "name"}
    rest.put_config(name, config)
    table = config.get("table.include.list", "")
    rest.wait_task_config(name, "table.include.list", table, timeout_s)
    return rest.wait_running(name, timeout_s)


# Connector config ---------------------------------------------------------------------------
def cdc_topic(topic_prefix: str, table: str = ORDERS_TABLE) -> str:
    """The topic Debezium writes a table's changes to: ``<prefix>.<schema>.<table>``."""
    return f"{topic_prefix}.{table}"


def debezium_postgres_config(
    db: SourceDatabase,
    *,
    topic_prefix: str,
    table: str = ORDERS_TABLE,
    slot: str | None = None,
    registry_url: str | None = None,
) -> dict[str, str]:
    """A Debezium PostgreSQL connector for one table over ``pgoutput``.

    ``registry_url`` is the Apicurio v2 API (``http://host:port/apis/registry/v2``):
    values are then Avro in the Confluent wire format and their schema is registered as
    ``<topic>-value``; without it values are JSON with embedded schemas.
    """
    config = {
        "connector.class": DEBEZIUM_CLASS,
        "tasks.max": "1",
        "database.hostname": db.host,
        "database.port": str(db.port),
        "database.user": db.role,
        "database.password": "unused-trust-auth",
        "database.dbname": db.database,
        "topic.prefix": topic_prefix,
        "table.include.list": table,
        "plugin.name": "pgoutput",
        "slot.name": slot or f"{topic_prefix}_slot".replace("-", "_").lower(),
        "publication.name": f"{topic_prefix}_pub".replace("-", "_").lower(),
        "publication.autocreate.mode": "filtered",
        "snapshot.mode": "initial",
        "poll.interval.ms": "200",
        "status.update.interval.ms": "1000",
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1",
        "key.converter": JSON_CONVERTER,
        "key.converter.schemas.enable": "false",
    }
    if registry_url:
        config.update(
            {
                "value.converter": AVRO_CONVERTER,
                "value.converter.apicurio.registry.url": registry_url,
                "value.converter.apicurio.registry.auto-register": "true",
                "value.converter.apicurio.registry.find-latest": "true",
                # the schema id in the payload as Confluent frames it, not in headers
                "value.converter.apicurio.registry.headers.enabled": "false",
                "value.converter.apicurio.registry.as-confluent": "true",
                # the ccompat API's ids are content ids; the converter frames global ids
                # by default, which a Confluent client then resolves to the wrong schema
                "value.converter.apicurio.registry.use-id": "contentId",
                "schema.name.adjustment.mode": "avro",
            }
        )
    else:
        config.update({"value.converter": JSON_CONVERTER, "value.converter.schemas.enable": "true"})
    return config


def apicurio_v2_url(config: StackConfig) -> str:
    """The stack registry's native v2 API, which Apicurio's Connect converter speaks."""
    return f"http://{config.host}:{config.registry_port}/apis/registry/v2"


# The worker ---------------------------------------------------------------------------------
@dataclass
class ConnectWorker(StartedOnEnter):
    """A Kafka Connect standalone worker on a free loopback port, stopped by its pid."""

    workdir: Path
    install: ConnectInstall
    bootstrap: str = "127.0.0.1:19092"
    heap: str = "512m"
    java_home: Path = field(default_factory=lambda: StackConfig.from_env().java17_home)
    start_timeout_s: float = 240.0
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def rest(self) -> ConnectRest:
        return ConnectRest(self.rest_url)

    @property
    def log_file(self) -> Path:
        return self.workdir / "connect.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def log(self, tail: int = 4000) -> str:
        path = self.log_file
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def worker_properties(self) -> dict[str, str]:
        return {
            "bootstrap.servers": self.bootstrap,
            "listeners": f"http://{HOST}:{self.port}",
            "key.converter": JSON_CONVERTER,
            "value.converter": JSON_CONVERTER,
            "offset.storage.file.filename": str(self.workdir / "offsets.dat"),
            "offset.flush.interval.ms": "1000",
            "plugin.path": str(self.install.plugin_path),
            "plugin.discovery": "hybrid_warn",
            "task.shutdown.graceful.timeout.ms": "5000",
        }

    def command(self) -> list[str]:
        return [
            str(jvm.java(self.java_home, 17)),
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # quick start on a shared 2-core machine
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            os.pathsep.join(str(p) for p in self.install.classpath),
            "org.apache.kafka.connect.cli.ConnectStandalone",
            str(self.workdir / "worker.properties"),
        ]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        (self.workdir / "log4j2.properties").write_text(_LOG4J2)
        props = self.workdir / "worker.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in self.worker_properties().items()))
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout_s
        rest = self.rest
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConnectError(
                    f"Kafka Connect exited with {self._proc.returncode} during start; "
                    f"see {self.log_file}:\n{self.log()}"
                )
            if rest.healthy():
                return
            time.sleep(0.5)
        raise ConnectError(
            f"Kafka Connect not answering on {self.rest_url} after {self.start_timeout_s:.0f}s; "
            f"see {self.log_file}:\n{self.log()}"
        )

    def stop(self) -> None:
        """SIGTERM (the worker stops its tasks and flushes offsets), then SIGKILL, to the
        process group this worker started and nothing else."""
        proc, self._proc = self._proc, None
        stop_process_group(proc, 30.0)


# The whole candidate's CDC -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Registered:
    """A connector :class:`CandidateCdc` registered: its REST name and its topic."""

    name: str
    topic_prefix: str
    topic: str
    config: Mapping[str, str]


class CandidateCdc:
    """A candidate's CDC in one object: the source database (``public.orders`` created),
    the Connect worker, and the Debezium connectors registered through it.

        with CandidateCdc(workdir, bootstrap, registry_v2=apicurio_v2_url(cfg)) as cdc:
            orders = cdc.register()             # RUNNING; cdc.load.insert(...) feeds it
            pause_connector(cdc.rest_url, orders.name)
    """

    def __init__(
        self,
        workdir: Path,
        bootstrap: str,
        *,
        registry_v2: str | None = None,
        install: ConnectInstall | None = None,
        progress: Progress = _quiet,
    ) -> None:
        self.workdir = workdir
        self.registry_v2 = registry_v2
        self.progress = progress
        self.db = SourceDatabase(workdir / "db", progress=progress)
        self.load = OrderLoad(self.db)
        self._install = install
        self._bootstrap = bootstrap
        self.worker: ConnectWorker | None = None
        self.registered: list[Registered] = []

    @property
    def rest_url(self) -> str:
        if self.worker is None:
            raise ConnectError("the Connect worker is not started")
        return self.worker.rest_url

    @property
    def rest(self) -> ConnectRest:
        return ConnectRest(self.rest_url)

    def start(self) -> CandidateCdc:
        install = self._install or ensure_installed(self.progress)
        self.db.up()
        self.db.create_orders_table()
        self.worker = ConnectWorker(self.workdir / "connect", install, bootstrap=self._bootstrap)
        self.worker.start()
        return self

    def ensure_worker(self) -> None:
        """Start the worker again after it was stopped (Connect down): same port; a
        standalone worker forgets REST-created connectors, so they are registered again."""
        worker = self.worker
        if worker is None:
            raise ConnectError("the Connect worker was never started")
        if worker.pid is not None and worker.rest.healthy():
            return
        worker.stop()
        worker.start()
        for reg in self.registered:  # from the offsets file: no change read twice or lost
            self.rest.create(reg.name, reg.config)

    def stop_worker(self) -> None:
        """Connect down (a fault): the worker's process stopped by its pid; the database
        keeps changing and the slot keeps the changes. :meth:`ensure_worker` undoes it."""
        if self.worker is not None:
            self.worker.stop()

    def delete(self, name: str) -> None:
        """Delete a connector through the REST API; it is not registered again."""
        self.rest.delete(name)
        self.registered = [r for r in self.registered if r.name != name]

    def register(
        self,
        *,
        topic_prefix: str | None = None,
        table: str = ORDERS_TABLE,
        slot: str | None = None,
        registry: bool = True,
        wait: bool = True,
    ) -> Registered:
        """A Debezium connector for ``table`` under a fresh topic prefix; RUNNING unless
        ``wait`` is off. Values go through the registry when one was given and ``registry``."""
        self.ensure_worker()
        prefix = topic_prefix or f"cdc{uuid.uuid4().hex[:10]}"
        config = debezium_postgres_config(
            self.db,
            topic_prefix=prefix,
            table=table,
            slot=slot,
            registry_url=self.registry_v2 if registry else None,
        )
        reg = Registered(f"orders-{prefix}", prefix, cdc_topic(prefix), config)
        self.rest.create(reg.name, config)
        self.registered.append(reg)
        if wait:
            self.rest.wait_running(reg.name)
        return reg

    def stop(self) -> None:
        """Delete the connectors (while the worker runs), stop the worker, then the database."""
        worker, self.worker = self.worker, None
        if worker is not None:
            if worker.pid is not None:
                for reg in self.registered:
                    with contextlib.suppress(ConnectError):
                        worker.rest.delete(reg.name)
            worker.stop()
        self.db.down()

    def __enter__(self) -> CandidateCdc:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
