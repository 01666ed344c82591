"""The candidate's own Trino: file-based access control with a column mask, and the HTTP
event listener posting every completed query to proctor's receiver.

This is not the stack's Trino (proctor's scoreboard engine, shared by everyone): it is a
second server process, started from the same cached Trino 476 install
(``services/stack/trino.py``) on free loopback ports with a 1 GB heap, as a candidate's
platform runs it. Its ``iceberg`` catalog is the stack's JDBC catalog on PostgreSQL.

Access control is Trino's own ``access-control.name=file`` reading a rules JSON that this
class writes (atomically, so Trino never reads half a file) and Trino reloads every
``security.refresh-period``: a test or rehearsal changes the rules while Trino runs and
waits until Trino applies them (``wait_applied``). Queries go through Trino's client
protocol as any user (no authentication: the user is the session user, as with Trino's
insecure default), so a masked and an unmasked user can be compared on Trino's answers.

    with CandidateTrino(workdir, StackConfig.from_env(), listener) as trino:
        trino.set_rules(acl_rules(...))
        trino.query("analyst", "SELECT email FROM iceberg.s.customers")
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from trino.dbapi import Connection

from services.errors import StackError
from services.stack import jvm
from services.stack import trino as stack_trino
from services.stack.component import StartedOnEnter, stop_process_group
from services.stack.config import StackConfig

HOST = "127.0.0.1"
#: the catalog name the candidate's Trino gives the stack's JDBC Iceberg catalog
CATALOG = "iceberg"
#: the user that owns the schema and tables (allowed everything by ``acl_rules``)
ADMIN = "admin"
HEAP = "1G"
QUERY_MEMORY = "256MB"
HEAP_HEADROOM = "256MB"
#: how often Trino re-reads the rules file; short so a test sees a change within seconds
REFRESH_PERIOD = "1s"

Progress = Callable[[str], None]


# Rules (pure) -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Mask:
    """A column mask of one table for the users a regex names (Trino matches it fully)."""

    schema: str
    table: str
    column: str
    expression: str
    users: str
    catalog: str = CATALOG


def acl_rules(
    masks: Sequence[Mask], readers: str | None = None, admin: str = ADMIN
) -> dict[str, Any]:
    """A system access-control rules document: ``admin`` may do anything; each mask's users
    may read its table with the column masked; ``readers`` (a user regex), matched after the
    masks, may read every table unmasked. Trino applies the first table rule that matches a
    user and table, so the order of the rules is the order of this list."""
    tables: list[dict[str, Any]] = [
        {
            "user": admin,
            "privileges": ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"],
        }
    ]
    for m in masks:
        tables.append(
            {
                "user": m.users,
                "catalog": m.catalog,
                "schema": m.schema,
                "table": m.table,
                "privileges": ["SELECT"],
                "columns": [{"name": m.column, "mask": m.expression}],
            }
        )
    if readers:
        tables.append({"user": readers, "privileges": ["SELECT"]})
    return {
        "catalogs": [{"allow": "all"}],
        "schemas": [{"user": admin, "owner": True}, {"owner": False}],
        "tables": tables,
    }


def without_masks(rules: Mapping[str, Any], column: str | None = None) -> dict[str, Any]:
    """``rules`` with the column masks dropped (only ``column``'s when given): the table rules
    keep their privileges, so the users still read the table, now unmasked."""
    doc = json.loads(json.dumps(rules))
    for rule in doc.get("tables", []):
        cols = [
            c for c in rule.get("columns", []) if column is not None and c.get("name") != column
        ]
        if cols:
            rule["columns"] = cols
        else:
            rule.pop("columns", None)
    return dict(doc)


# Configuration (pure) -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EventListener:
    """Where Trino's HTTP event listener posts completed queries, and the token it sends."""

    url: str
    token: str


def config_properties(port: int, home: Path, etc: Path) -> dict[str, str]:
    return {
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true",
        "http-server.http.port": str(port),
        "discovery.uri": f"http://{HOST}:{port}",
        "query.max-memory": QUERY_MEMORY,
        "query.max-memory-per-node": QUERY_MEMORY,
        "memory.heap-headroom-per-node": HEAP_HEADROOM,
        "http-server.log.enabled": "false",
        "plugin.dir": str(home / "plugin"),
        "catalog.config-dir": str(etc / "catalog"),
        "access-control.config-files": str(etc / "access-control.properties"),
    }


def access_control_properties(rules: Path) -> dict[str, str]:
    return {
        "access-control.name": "file",
        "security.config-file": str(rules),
        "security.refresh-period": REFRESH_PERIOD,
    }


def event_listener_properties(listener: EventListener) -> dict[str, str]:
    return {
        "event-listener.name": "http",
        "http-event-listener.log-completed": "true",
        "http-event-listener.connect-ingest-uri": listener.url,
        "http-event-listener.connect-http-headers": f"Authorization: Bearer {listener.token}",
        "http-event-listener.connect-retry-count": "2",
        "http-event-listener.connect-retry-delay": "1s",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def write_atomic(path: Path, text: str) -> None:
    """Write beside, then rename over: a reader sees the old file or the new, never half."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class Answer:
    """A query's rows and the id Trino gave it (the id its completed event carries)."""

    rows: list[list[Any]]
    query_id: str


# The server ---------------------------------------------------------------------------------
@dataclass
class CandidateTrino(StartedOnEnter):
    """A Trino coordinator-worker with file-based access control, stopped by its own pid."""

    workdir: Path
    config: StackConfig
    listener: EventListener | None = None
    rules: Mapping[str, Any] = field(default_factory=lambda: acl_rules([]))
    start_timeout_s: float = 240.0
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return stack_trino.install_dir()

    @property
    def etc(self) -> Path:
        return self.workdir / "etc"

    @property
    def rules_path(self) -> Path:
        """The rules file Trino applies (its ``security.config-file``)."""
        return self.etc / "rules.json"

    @property
    def access_control_path(self) -> Path:
        """Trino's ``access-control.properties``: where a collector learns the rules source."""
        return self.etc / "access-control.properties"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def install(self, progress: Progress = lambda _m: None) -> None:
        """The cached server with the Iceberg and HTTP event listener plugins (downloaded
        through ``mvn`` on the first call on a machine, as the stack's Trino is)."""
        stack_trino.TrinoComponent(self.config).install(progress)

    def _write_config(self) -> None:
        catalog = self.etc / "catalog"
        catalog.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        render = stack_trino.render_properties
        props = config_properties(self.port, self.home, self.etc)
        files = {
            self.etc / "node.properties": render(self._node_properties()),
            self.etc / "jvm.config": "".join(f"{o}\n" for o in stack_trino.jvm_options(HEAP)),
            self.etc / "log.properties": "io.trino=INFO\n",
            self.access_control_path: render(access_control_properties(self.rules_path)),
            catalog / f"{CATALOG}.properties": render(
                stack_trino.iceberg_catalog_properties(self.config)
            ),
        }
        if self.listener is not None:
            path = self.etc / "http-event-listener.properties"
            props["event-listener.config-files"] = str(path)
            files[path] = render(event_listener_properties(self.listener))
            path.touch(mode=0o600)  # the bearer token is in it
        files[self.etc / "config.properties"] = render(props)
        for path, text in files.items():
            path.write_text(text)
        self.set_rules(self.rules)

    def _node_properties(self) -> dict[str, str]:
        return {
            "node.environment": "candidate",
            "node.id": f"candidate-{self.port}",
            "node.data-dir": str(self.workdir / "data"),
            "node.bind-ip": HOST,
            "node.internal-address": HOST,
        }

    def command(self) -> list[str]:
        java = jvm.java(self.config.java25_home, stack_trino.JAVA_MAJOR)
        system = [f"-D{k}={v}" for k, v in self._node_properties().items()]
        return [
            str(java),
            "-cp",
            str(self.home / "lib" / "*"),
            *stack_trino.jvm_options(HEAP),
            *system,
            f"-Dconfig={self.etc / 'config.properties'}",
            f"-Dlog.levels-file={self.etc / 'log.properties'}",
            stack_trino.MAIN_CLASS,
        ]

    def start(self, progress: Progress = lambda _m: None) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self.install(progress)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self._write_config()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "JAVA_HOME": str(self.config.java25_home)},
                cwd=self.workdir,
            )
        (self.workdir / "pid").write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise StackError(
                    f"candidate Trino exited with {self._proc.returncode}:\n{self.log()}"
                )
            if self.healthy():
                return
            time.sleep(1.0)
        raise StackError(f"candidate Trino not ready in {self.start_timeout_s:.0f}s:\n{self.log()}")

    def healthy(self) -> bool:
        """Started and answers ``SELECT 1`` for the admin user."""
        try:
            info = httpx.get(f"{self.url}/v1/info", timeout=2.0)
            if info.status_code != 200 or info.json().get("starting") is not False:
                return False
            return self.query(ADMIN, "SELECT 1") == [[1]]
        except Exception:  # any client or server error means "not healthy yet"
            return False

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, to exactly the process this server started."""
        proc, self._proc = self._proc, None
        stop_process_group(proc, 30.0)

    # Queries and rules ----------------------------------------------------------------------
    def connect(self, user: str) -> Connection:
        return Connection(
            host=HOST,
            port=self.port,
            user=user,
            catalog=CATALOG,
            http_scheme="http",
            max_attempts=1,
            request_timeout=60.0,
        )

    def run(self, user: str, sql: str) -> Answer:
        """Trino's answer to ``sql`` run as ``user`` (raises Trino's error as the client does)."""
        conn = self.connect(user)
        with contextlib.closing(conn):
            cur = conn.cursor()
            cur.execute(sql)
            rows = [list(row) for row in cur.fetchall()]
            return Answer(rows, str(cur.query_id))

    def query(self, user: str, sql: str) -> list[list[Any]]:
        """The rows of Trino's answer to ``sql`` run as ``user``."""
        return self.run(user, sql).rows

    def set_rules(self, rules: Mapping[str, Any]) -> None:
        """Replace the rules file; Trino applies it within its refresh period."""
        self.rules = rules
        self.etc.mkdir(parents=True, exist_ok=True)
        write_atomic(self.rules_path, json.dumps(rules, indent=2) + "\n")

    def wait_applied(
        self, check: Callable[[], bool], timeout_s: float = 30.0, what: str = "the new rules"
    ) -> None:
        """Wait until ``check`` (a query's answer) shows Trino applies ``what``."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(Exception):
                if check():
                    return
            if time.monotonic() > deadline:
                raise StackError(f"candidate Trino did not apply {what} in {timeout_s:.0f}s")
            time.sleep(0.5)


# Injectors for rehearsals: each returns its undo ----------------------------------------------
Undo = Callable[[], None]


def drop_mask(trino: CandidateTrino, column: str | None = None) -> Undo:
    """Take the column masks (or ``column``'s) out of the rules Trino applies; the undo
    puts the rules back as they were."""
    before = trino.rules
    trino.set_rules(without_masks(before, column))
    return lambda: trino.set_rules(before)


def mask_wrong_column(trino: CandidateTrino, mask: Mask, column: str) -> Undo:
    """Move ``mask`` onto another ``column`` of its table (the PII column left readable)."""
    before = trino.rules
    doc = json.loads(json.dumps(before))
    for rule in doc.get("tables", []):
        for col in rule.get("columns", []):
            if rule.get("table") == mask.table and col.get("name") == mask.column:
                col["name"] = column
    trino.set_rules(doc)
    return lambda: trino.set_rules(before)


def stale_statistics(trino: CandidateTrino, table: str) -> Undo:
    """The ``stale_statistics`` fault: drop the Iceberg table's extended statistics (the
    cost-based optimiser then plans without column statistics); the undo runs ANALYZE."""
    trino.query(ADMIN, f"ALTER TABLE {table} EXECUTE drop_extended_stats")

    def undo() -> None:
        trino.query(ADMIN, f"ANALYZE {table}")

    return undo
