"""A real Flink session (MiniCluster, REST on a loopback port) running the exam's kind of job.

The job (flink_job/PipelineSession.java) reads a Debezium CDC topic from Kafka
(``debezium-json``), enriches it with a JDBC lookup join against a PostgreSQL dimension
table, and writes an Iceberg table of the stack's JDBC catalog with the Iceberg Flink
runtime, which commits on checkpoints (``flink.max-committed-checkpoint-id`` in each
snapshot's summary). Checkpointing is exactly-once, at-least-once or off, per job.

No Flink distribution is downloaded: the module jars come from Maven (``maven.classpath``,
cached in ~/.m2) and the session class is compiled with ``javac`` once per source hash
under ~/.cache/proctor/flink-<version>/. One JVM holds the JobManager, one TaskManager
and the REST endpoint, so the collectors poll real ``/jobs`` answers; Flink's
PrometheusReporter serves the real metrics (``flink_jobmanager_job_uptime``,
``flink_taskmanager_job_task_operator_numRecordsIn``...) at ``metrics_url``.

    runtime = ensure_runtime(print)
    with FlinkSession(workdir, runtime) as flink:
        job_id = flink.submit(PipelineJob(...))
        undo = cancel_job(flink, job)      # a fault the rehearsal injects
        undo()                             # resubmits the job as it was
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from services.errors import StackError
from services.stack import maven
from services.stack.component import StartedOnEnter, stop_process_group
from services.stack.config import StackConfig
from services.stack.jvm import java
from services.stack.kubernetes import free_port

FLINK_VERSION = "1.20.4"
#: the newest Iceberg whose Flink runtime for 1.20 resolves with its dependencies
ICEBERG_VERSION = "1.10.1"
#: the newest 1.20 PrometheusReporter served (the reporter API is the same across 1.20.x)
METRICS_PROMETHEUS_VERSION = "1.20.1"
COORDS: tuple[str, ...] = (
    f"org.apache.flink:flink-clients:{FLINK_VERSION}",
    f"org.apache.flink:flink-streaming-java:{FLINK_VERSION}",
    f"org.apache.flink:flink-runtime-web:{FLINK_VERSION}",
    f"org.apache.flink:flink-table-api-java-bridge:{FLINK_VERSION}",
    # the planner itself, not flink-table-planner-loader: the loader is not served at 1.20.4
    f"org.apache.flink:flink-table-planner_2.12:{FLINK_VERSION}",
    f"org.apache.flink:flink-table-runtime:{FLINK_VERSION}",
    f"org.apache.flink:flink-json:{FLINK_VERSION}",
    # Flink's PrometheusReporter: the session's metrics at metrics_url for a Prometheus;
    # not served at 1.20.4, 1.20.1 is (its Flink dependencies are `provided`: 1.20.4's run)
    f"org.apache.flink:flink-metrics-prometheus:{METRICS_PROMETHEUS_VERSION}",
    "org.apache.flink:flink-connector-kafka:3.4.0-1.20",
    "org.apache.flink:flink-connector-jdbc-core:3.3.0-1.20",
    "org.apache.flink:flink-connector-jdbc-postgres:3.3.0-1.20",
    f"org.apache.iceberg:iceberg-flink-runtime-1.20:{ICEBERG_VERSION}",
    "org.postgresql:postgresql:42.7.8",
    "org.apache.hadoop:hadoop-client-api:3.3.6",
    "org.apache.hadoop:hadoop-client-runtime:3.3.6",
)
JOB_SOURCES = Path(__file__).resolve().parent / "flink_job"
MAIN_CLASS = "PipelineSession"
HOST = "127.0.0.1"
#: what Flink's own launcher passes to a Java 17 JVM (config.yaml env.java.opts.all)
JAVA17_OPTS: tuple[str, ...] = (
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    *(
        f"--add-opens=java.base/{p}=ALL-UNNAMED"
        for p in (
            "java.lang",
            "java.net",
            "java.io",
            "java.nio",
            "sun.nio.ch",
            "java.lang.reflect",
            "java.text",
            "java.time",
            "java.util",
            "java.util.concurrent",
            "java.util.concurrent.atomic",
            "java.util.concurrent.locks",
        )
    ),
)

#: class files for the Java 17 runtime whatever the javac on the PATH (part of the cache key)
JAVAC_FLAGS: tuple[str, ...] = ("--release", "17", "-nowarn", "-encoding", "UTF-8")

Checkpointing = Literal["exactly_once", "at_least_once", "off"]
MODES: tuple[Checkpointing, ...] = ("exactly_once", "at_least_once", "off")
Progress = Callable[[str], None]


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "proctor" / f"flink-{FLINK_VERSION}"
    return Path(os.environ.get("PROCTOR_FLINK_CACHE", str(default)))


@dataclass(frozen=True, slots=True)
class FlinkRuntime:
    """The resolved jars and the compiled session class: what ``java -cp`` needs."""

    jars: tuple[Path, ...]
    classes: Path

    @property
    def classpath(self) -> str:
        return ":".join([*(str(j) for j in self.jars), str(self.classes)])


def source_digest(sources: Sequence[Path], coords: Sequence[str]) -> str:
    """Hash of the job sources and the jar list: a change of either recompiles."""
    h = hashlib.sha256()
    for c in coords:
        h.update(c.encode() + b"\n")
    for src in sorted(sources):
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    return h.hexdigest()[:16]


def ensure_runtime(progress: Progress = lambda _m: None) -> FlinkRuntime:
    """Resolve the jars (cached in ~/.m2) and compile the session once per source hash."""
    if shutil.which("javac") is None:
        raise StackError("javac not found: install a JDK (apt-get install openjdk-17-jdk-headless)")
    base = cache_dir()
    jars = tuple(maven.classpath(COORDS, base / "classpath", progress))
    sources = sorted(JOB_SOURCES.glob("*.java"))
    if not sources:
        raise StackError(f"no Java sources in {JOB_SOURCES}")
    classes = base / f"classes-{source_digest(sources, (*COORDS, *JAVAC_FLAGS))}"
    if not (classes / f"{MAIN_CLASS}.class").is_file():
        progress(f"javac: compiling {', '.join(s.name for s in sources)}")
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="classes-", dir=base))
        done = subprocess.run(
            [
                "javac",
                *JAVAC_FLAGS,
                "-cp",
                ":".join(str(j) for j in jars),
                "-d",
                str(tmp),
                *(str(s) for s in sources),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StackError(f"javac failed on {JOB_SOURCES}:\n{done.stderr[-3000:]}")
        try:
            tmp.rename(classes)  # atomic: a concurrent compile of the same hash may win
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return FlinkRuntime(jars, classes)


@dataclass(frozen=True, slots=True)
class PipelineJob:
    """One submission of the CDC -> lookup join -> Iceberg job."""

    name: str
    kafka_bootstrap: str
    topic: str
    jdbc_url: str
    jdbc_user: str
    dimension_table: str
    warehouse: str
    namespace: str
    table: str
    checkpointing: Checkpointing = "exactly_once"
    checkpoint_interval_ms: int = 1000
    catalog: str = "proctor"
    jdbc_password: str = ""
    group: str = ""
    #: properties of the sink table when the job creates it, e.g. history.expire.*
    table_properties: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.checkpointing not in MODES:
            raise StackError(f"checkpointing {self.checkpointing!r}: want one of {MODES}")
        if self.checkpoint_interval_ms <= 0:
            raise StackError("checkpoint_interval_ms must be positive")

    @classmethod
    def on_stack(
        cls, config: StackConfig, name: str, topic: str, dimension_table: str, table: str, **kw: Any
    ) -> PipelineJob:
        """A job reading the stack's broker and writing the stack's catalog (``namespace.table``)."""
        namespace, _, short = table.rpartition(".")
        if not namespace:
            raise StackError(f"sink table {table!r}: want namespace.table")
        return cls(
            name=name,
            kafka_bootstrap=config.kafka_bootstrap,
            topic=topic,
            jdbc_url=f"jdbc:postgresql://{config.host}:{config.postgres_port}/{config.postgres_db}",
            jdbc_user=config.postgres_user,
            dimension_table=dimension_table,
            warehouse=config.warehouse,
            namespace=namespace,
            table=short,
            **kw,
        )

    def with_checkpointing(self, mode: Checkpointing) -> PipelineJob:
        return dataclasses.replace(self, checkpointing=mode)

    def properties(self) -> str:
        """The job.properties the session reads (java.util.Properties, escaped)."""
        values = {
            "job.name": self.name,
            "checkpointing": self.checkpointing,
            "checkpoint.interval.ms": str(self.checkpoint_interval_ms),
            "kafka.bootstrap": self.kafka_bootstrap,
            "kafka.topic": self.topic,
            "kafka.group": self.group or f"proctor-{self.name}",
            "jdbc.url": self.jdbc_url,
            "jdbc.user": self.jdbc_user,
            "jdbc.password": self.jdbc_password,
            "dimension.table": self.dimension_table,
            "iceberg.catalog": self.catalog,
            "iceberg.warehouse": self.warehouse,
            "iceberg.namespace": self.namespace,
            "iceberg.table": self.table,
            **{f"table.{k}": v for k, v in self.table_properties},
        }
        for k, v in values.items():
            if "'" in v:  # the session splices values into SQL string literals
                raise StackError(f"job property {k} may not contain a quote: {v!r}")
        return "".join(f"{k}={_escape(v)}\n" for k, v in values.items())


def _escape(value: str) -> str:
    out = []
    for ch in value:
        if ch in "\\:=#!":
            out.append("\\" + ch)
        elif ord(ch) > 126 or ord(ch) < 32:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


@dataclass
class FlinkSession(StartedOnEnter):
    """One JVM with a MiniCluster session; started and stopped by the pid it started."""

    workdir: Path
    runtime: FlinkRuntime
    heap: str = "768m"
    start_timeout_s: float = 180.0
    java_home: Path | None = None
    port: int = 0
    #: the PrometheusReporter's port (``/metrics`` of the JobManager and the TaskManager)
    metrics_port: int = 0
    _proc: subprocess.Popen[bytes] | None = None
    _submitted: int = 0
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def metrics_url(self) -> str:
        """Flink's Prometheus endpoint (text exposition format), for a scrape config."""
        return f"http://{HOST}:{self.metrics_port}/metrics"

    @property
    def log_path(self) -> Path:
        return self.workdir / "flink.log"

    def log(self, tail: int = 4000) -> str:
        path = self.log_path
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        home = self.java_home or StackConfig.from_env().java17_home
        self.port = self.port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            [
                str(java(home, 17)),
                f"-Xmx{self.heap}",
                "-XX:+UseSerialGC",
                "-XX:ActiveProcessorCount=2",
                *JAVA17_OPTS,
                f"-Djava.io.tmpdir={self.workdir}",
                "-cp",
                self.runtime.classpath,
                MAIN_CLASS,
                str(self.port),
                str(self.metrics_port),
            ],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._answers("/overview"):
            self._alive()
            if time.monotonic() > deadline:
                raise StackError(f"Flink REST not up in {self.start_timeout_s:.0f}s:\n{self.log()}")
            time.sleep(0.5)

    def _alive(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise StackError(f"the Flink session is not running (exit {code}):\n{self.log()}")

    def _answers(self, path: str) -> bool:
        try:
            return self._http.get(self.url + path).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str) -> Any:
        """A REST answer of the session (``/jobs/overview``, ``/jobs/<id>/checkpoints``...)."""
        resp = self._http.get(self.url + path)
        if resp.status_code != 200:
            raise StackError(f"GET {path}: {resp.status_code} {resp.text[:300]}")
        return resp.json()

    def jobs(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.get("/jobs/overview")["jobs"]
        return jobs

    def submit(self, job: PipelineJob, timeout_s: float = 180.0) -> str:
        """Submit ``job``; returns its id once the session reports it submitted."""
        self._alive()
        assert self._proc is not None and self._proc.stdin is not None
        self._submitted += 1
        props = self.workdir / f"job-{self._submitted}-{job.name}.properties"
        props.write_text(job.properties(), encoding="utf-8")
        start = self.log_path.stat().st_size
        self._proc.stdin.write(f"submit {props}\n".encode())
        self._proc.stdin.flush()
        deadline = time.monotonic() + timeout_s
        while True:
            with self.log_path.open("rb") as f:
                f.seek(start)
                new = f.read().decode(errors="replace")
            for line in new.splitlines():
                if line.startswith("SUBMITTED "):
                    return line.split()[1]
                if line.startswith("FAILED "):
                    raise StackError(f"Flink refused job {job.name}: {new[-3000:]}")
            self._alive()
            if time.monotonic() > deadline:
                raise StackError(f"job {job.name} not submitted in {timeout_s:.0f}s:\n{self.log()}")
            time.sleep(0.3)

    def state(self, job_id: str) -> str:
        return str(self.get(f"/jobs/{job_id}")["state"])

    def wait_state(self, job_id: str, states: Sequence[str], timeout_s: float = 120.0) -> str:
        deadline = time.monotonic() + timeout_s
        while (state := self.state(job_id)) not in states:
            if state in ("FAILED", "FINISHED", "CANCELED"):
                raise StackError(f"job {job_id} is {state}, not {'/'.join(states)}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise StackError(f"job {job_id} still {state} after {timeout_s:.0f}s")
            time.sleep(0.5)
        return state

    def running(self, name: str) -> str | None:
        """The id of the RUNNING (or starting) job called ``name``, if any."""
        for job in self.jobs():
            if job.get("name") == name and job.get("state") in ("CREATED", "RUNNING", "RESTARTING"):
                return str(job["jid"])
        return None

    def cancel(self, job_id: str, timeout_s: float = 60.0) -> None:
        """Cancel through the REST API, as an operator would, and wait for CANCELED."""
        resp = self._http.patch(f"{self.url}/jobs/{job_id}", params={"mode": "cancel"})
        if resp.status_code not in (200, 202):
            raise StackError(f"cancel {job_id}: {resp.status_code} {resp.text[:300]}")
        self._wait_canceled(job_id, timeout_s)

    def _wait_canceled(self, job_id: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (state := self.state(job_id)) != "CANCELED":
            if time.monotonic() > deadline:
                raise StackError(f"job {job_id} still {state} {timeout_s:.0f}s after cancel")
            time.sleep(0.3)

    def record_answers(self, job_id: str, directory: Path, label: str) -> list[Path]:
        """Write the REST answers the Flink collector reads for one job, as Flink gave them
        (``<label>.overview.json`` is the job's entry of ``/jobs/overview``), for a corpus."""
        directory.mkdir(parents=True, exist_ok=True)
        entries = [j for j in self.jobs() if j.get("jid") == job_id]
        if not entries:
            raise StackError(f"job {job_id} is not in /jobs/overview")
        answers: dict[str, Any] = {"overview": entries[0]}
        for name, path in (
            ("plan", "plan"),
            ("checkpoints-config", "checkpoints/config"),
            ("checkpoints", "checkpoints"),
        ):
            answers[name] = self.get(f"/jobs/{job_id}/{path}")
        written = []
        for name, body in answers.items():
            out = directory / f"{label}.{name}.json"
            out.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            written.append(out)
        return written

    def stop(self) -> None:
        """Ask the session to quit, then SIGTERM/SIGKILL the process group it started."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.write(b"quit\n")
                proc.stdin.close()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                stop_process_group(proc, 20.0)
        self._http.close()


# Faults a rehearsal injects, each returning the undo that puts the job back ------------

Undo = Callable[[], str]


def cancel_job(session: FlinkSession, job: PipelineJob) -> Undo:
    """Cancel the running job called ``job.name``; the undo resubmits ``job`` (new job id)."""
    job_id = session.running(job.name)
    if job_id is None:
        raise StackError(f"no running Flink job {job.name!r} to cancel")
    session.cancel(job_id)
    return lambda: session.submit(job)


def restart_without_checkpointing(session: FlinkSession, job: PipelineJob) -> Undo:
    """Cancel ``job.name`` and run it again with checkpointing off (no Iceberg commits
    while it runs); the undo restarts it with ``job``'s own checkpointing."""
    job_id = session.running(job.name)
    if job_id is None:
        raise StackError(f"no running Flink job {job.name!r} to restart")
    session.cancel(job_id)
    off_id = session.submit(job.with_checkpointing("off"))

    def undo() -> str:
        session.cancel(off_id)
        return session.submit(job)

    return undo
