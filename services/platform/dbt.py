"""dbt on Trino, with its OpenLineage integration: a candidate's rollup built for real.

dbt-core, dbt-trino and openlineage-dbt live in a virtual environment of their own (dbt
pins pathspec<0.13, which proctor's mypy cannot share), built once by pip from the pinned
``requirements-dbt.txt`` under ``~/.cache/proctor`` (the directory name carries a hash of
that file, so a changed pin builds a new one; a lock keeps two builds apart).

:class:`DbtProject` copies ``dbt_project/`` (orders from the lake rolled up per hour, with
schema tests and a singular test that a negative revenue fails) into a work directory,
creates one Iceberg schema of its own on the given Trino with the source table
``orders_enriched`` in it, and runs ``dbt build`` (or ``dbt-ol build``, which sends the
run's OpenLineage events over the HTTP transport) against it. Each command's output is
kept under the work directory's ``logs/``; the schema and its tables are dropped on
``stop``. The rehearsal's fault injectors are here too: a broken upstream row
(:meth:`DbtProject.break_row`, :meth:`DbtProject.repair_row`) and a dropped test
(:meth:`DbtProject.drop_test`, :meth:`DbtProject.restore_test`, fault ``dbt/test_missing``).

    with DbtProject(workdir, ensure_venv(), TrinoTarget.unique("it")) as project:
        project.build(lineage=LineageTarget(url, api_key))
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import trino

from services.errors import ConfigError, StackError
from services.stack.component import run_setup

DBT_CORE_VERSION = "1.11.16"
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-dbt.txt"
PROJECT = HERE / "dbt_project"
PROJECT_NAME = "shop"
MODEL = "orders_hourly"
SOURCE_TABLE = "orders_enriched"
#: the singular test that a broken (negative) order fails
BROKEN_ROW_TEST = "orders_hourly_revenue_non_negative"
CACHE_DIR = Path.home() / ".cache" / "proctor"
PYTHON_ENV = "PROCTOR_DBT_PYTHON"
TRINO_ENV = "PROCTOR_TRINO_URL"
DEFAULT_TRINO = "http://127.0.0.1:18080"
#: file written last when the venv is complete; a directory without it is half built
_COMPLETE = ".proctor-complete"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

Progress = Callable[[str], None]

#: the orders the source table starts with: (order_id, customer_id, amount, status, ordered_at)
ORDERS: tuple[tuple[int, int, str, str, str], ...] = (
    (1, 10, "25.00", "placed", "2026-11-27 09:05:00"),
    (2, 11, "12.50", "shipped", "2026-11-27 09:40:00"),
    (3, 10, "40.00", "delivered", "2026-11-27 10:15:00"),
    (4, 12, "8.75", "placed", "2026-11-27 10:20:00"),
    (5, 13, "19.99", "cancelled", "2026-11-27 11:02:00"),
)


def requirements_hash(path: Path = REQUIREMENTS) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def venv_dir(cache: Path = CACHE_DIR, requirements: Path = REQUIREMENTS) -> Path:
    return cache / f"dbt-{DBT_CORE_VERSION}-{requirements_hash(requirements)}"


def base_python() -> str:
    """The interpreter that builds the venv: PROCTOR_DBT_PYTHON, else this one's base."""
    chosen = os.environ.get(PYTHON_ENV)
    if chosen:
        return chosen
    return str(getattr(sys, "_base_executable", None) or sys.executable)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive file lock, so two test runs never build the same venv at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(
    argv: Sequence[str], what: str, timeout: float, env: Mapping[str, str] | None = None
) -> str:
    return run_setup(argv, "dbt", what, timeout, env)


@dataclass(frozen=True, slots=True)
class DbtVenv:
    """The built environment: ``dbt`` and ``dbt-ol`` in its ``bin``."""

    path: Path

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    @property
    def complete(self) -> bool:
        return (self.path / _COMPLETE).is_file()


def ensure_venv(
    cache: Path = CACHE_DIR, progress: Progress = lambda _: None, timeout_s: float = 1800.0
) -> DbtVenv:
    """The dbt venv, built by pip on first use (about a minute with a warm pip cache)."""
    venv = DbtVenv(venv_dir(cache))
    if venv.complete:
        return venv
    with _locked(venv.path.with_name(venv.path.name + ".lock")):
        if venv.complete:
            return venv
        started = time.monotonic()
        python = base_python()
        progress(f"dbt: building its venv with {python} in {venv.path} (once)")
        # Built in place under its final name (venv scripts hard-code their path); the
        # marker written last says it is complete.
        shutil.rmtree(venv.path, ignore_errors=True)
        _run([python, "-m", "venv", str(venv.path)], "create the venv", 300)
        pip = [str(venv.bin("python")), "-m", "pip", "--disable-pip-version-check", "-q"]
        _run([*pip, "install", "-r", str(REQUIREMENTS)], "install dbt", timeout_s)
        took = time.monotonic() - started
        (venv.path / _COMPLETE).write_text(
            f"{DBT_CORE_VERSION} {requirements_hash()} {took:.0f}s\n"
        )
        progress(f"dbt: venv built in {took:.0f}s")
    return venv


@dataclass(frozen=True, slots=True)
class TrinoTarget:
    """Where dbt writes: a Trino server, an Iceberg catalog and a schema of the run's own."""

    host: str
    port: int
    schema: str
    catalog: str = "iceberg"
    user: str = "proctor-dbt"

    def __post_init__(self) -> None:
        for what, value in (("schema", self.schema), ("catalog", self.catalog)):
            if not _NAME.match(value):
                raise ConfigError(
                    f"dbt {what} {value!r} is not a plain lower-case SQL name "
                    "(letters, digits, underscores)"
                )

    @classmethod
    def unique(cls, prefix: str, url: str | None = None) -> TrinoTarget:
        """A fresh schema ``<prefix>_<random>`` on PROCTOR_TRINO_URL (else the stack's)."""
        raw = url or os.environ.get(TRINO_ENV, DEFAULT_TRINO)
        match = re.match(r"^https?://([^:/]+):(\d+)/?$", raw)
        if match is None:
            raise ConfigError(f"{TRINO_ENV}={raw!r} is not http://host:port")
        clean = re.sub(r"[^a-z0-9_]", "_", prefix.lower())[:40]
        return cls(match.group(1), int(match.group(2)), f"{clean}_{uuid.uuid4().hex[:8]}")

    @property
    def namespace(self) -> str:
        """The OpenLineage dataset namespace openlineage-dbt gives Trino relations."""
        return f"trino://{self.host}:{self.port}"

    def relation(self, table: str) -> str:
        return f"{self.catalog}.{self.schema}.{table}"


@dataclass(frozen=True, slots=True)
class LineageTarget:
    """The OpenLineage HTTP transport: the receiver's platform URL and its API key."""

    url: str
    api_key: str
    namespace: str = "dbt"

    def environment(self) -> dict[str, str]:
        """The OpenLineage client's variables: HTTP transport to ``url``, API key auth
        (sent as ``Authorization: Bearer <key>``), the jobs' namespace."""
        return {
            "OPENLINEAGE_URL": self.url,
            "OPENLINEAGE_ENDPOINT": "api/v1/lineage",
            "OPENLINEAGE_API_KEY": self.api_key,
            "OPENLINEAGE_NAMESPACE": self.namespace,
        }


@dataclass(frozen=True, slots=True)
class BuildResult:
    """One dbt invocation: its exit code, its artifacts' directory and its log."""

    command: tuple[str, ...]
    returncode: int
    target_dir: Path
    log: Path
    seconds: float

    @property
    def run_results(self) -> Path:
        return self.target_dir / "run_results.json"

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class DbtProject:
    """The rollup project in ``workdir``, bound to one schema of ``target``'s Trino.

    A context manager: ``start`` copies the project and creates the schema with the source
    table and its starting orders; ``stop`` drops them. ``build`` runs dbt to completion
    (a dbt invocation is a process that ends; its pid lives only as long as the call).
    """

    workdir: Path
    venv: DbtVenv
    target: TrinoTarget
    source: Path = PROJECT
    _runs: int = field(default=0, init=False)
    _broken: list[int] = field(default_factory=list, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def project_dir(self) -> Path:
        return self.workdir / "project"

    @property
    def target_dir(self) -> Path:
        return self.project_dir / "target"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def model_uid(self) -> str:
        return f"model.{PROJECT_NAME}.{MODEL}"

    # lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> DbtProject:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        shutil.rmtree(self.project_dir, ignore_errors=True)
        shutil.copytree(
            self.source, self.project_dir, ignore=shutil.ignore_patterns("target", "logs")
        )
        self.logs.mkdir(parents=True, exist_ok=True)
        self.health()
        t = self.target
        self.sql(f"CREATE SCHEMA IF NOT EXISTS {t.catalog}.{t.schema}")
        self.sql(
            f"CREATE TABLE IF NOT EXISTS {t.relation(SOURCE_TABLE)} (order_id bigint, "
            "customer_id bigint, amount decimal(10, 2), status varchar, ordered_at timestamp(6))"
        )
        self.insert_orders(ORDERS)

    def stop(self) -> None:
        """End a dbt still running (by its pid), drop every table of the run's schema,
        then the schema (never another's)."""
        self._kill()
        t = self.target
        with contextlib.suppress(Exception):
            for (table,) in self.sql(f"SHOW TABLES FROM {t.catalog}.{t.schema}"):
                self.sql(f'DROP TABLE IF EXISTS {t.catalog}.{t.schema}."{table}"')
            self.sql(f"DROP SCHEMA IF EXISTS {t.catalog}.{t.schema}")

    def health(self) -> None:
        """Trino answers and knows the catalog; else a StackError saying what to start."""
        t = self.target
        try:
            catalogs = {row[0] for row in self.sql("SHOW CATALOGS")}
        except Exception as exc:
            raise StackError(
                f"dbt: Trino at {t.host}:{t.port} does not answer ({exc}); start the stack "
                "with `proctor stack up` or set PROCTOR_TRINO_URL"
            ) from exc
        if t.catalog not in catalogs:
            raise StackError(f"dbt: Trino at {t.host}:{t.port} has no catalog {t.catalog!r}")

    def _kill(self) -> None:
        """Kill the process group of the dbt this project started, if it still runs."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(10)

    # Trino -----------------------------------------------------------------------------
    def sql(self, statement: str) -> list[list[object]]:
        conn = trino.dbapi.connect(  # type: ignore[no-untyped-call]
            host=self.target.host,
            port=self.target.port,
            user=self.target.user,
            catalog=self.target.catalog,
            request_timeout=120,
        )
        try:
            cur = conn.cursor()
            cur.execute(statement)
            rows: list[list[object]] = cur.fetchall()
            return rows
        finally:
            conn.close()

    def insert_orders(self, rows: Sequence[tuple[int, int, str, str, str]]) -> None:
        values = ", ".join(
            f"({o}, {c}, DECIMAL '{a}', '{s}', TIMESTAMP '{ts}')" for o, c, a, s, ts in rows
        )
        self.sql(f"INSERT INTO {self.target.relation(SOURCE_TABLE)} VALUES {values}")

    # fault injectors -------------------------------------------------------------------
    def break_row(self) -> str:
        """Insert a broken upstream order (a negative amount, otherwise valid: only the
        revenue test sees it, so dropping that test hides it); its row key."""
        order_id = 900_000 + len(self._broken) + 1
        self.insert_orders([(order_id, 99, "-99.00", "placed", "2026-11-27 11:30:00")])
        self._broken.append(order_id)
        return f"order-{order_id}"

    def repair_row(self) -> None:
        """Delete every broken row this project inserted (the undo of ``break_row``)."""
        if self._broken:
            ids = ", ".join(str(i) for i in self._broken)
            self.sql(f"DELETE FROM {self.target.relation(SOURCE_TABLE)} WHERE order_id IN ({ids})")
            self._broken.clear()

    def tests(self) -> list[str]:
        """Names of the project's singular tests that are in place."""
        return sorted(p.stem for p in (self.project_dir / "tests").glob("*.sql"))

    def drop_test(self, name: str = BROKEN_ROW_TEST) -> None:
        """Take a singular test out of the project (fault dbt/test_missing)."""
        test = self.project_dir / "tests" / f"{name}.sql"
        if not test.is_file():
            raise ConfigError(f"dbt test {name!r} is not in the project (has {self.tests()})")
        dropped = self.workdir / "dropped-tests"
        dropped.mkdir(exist_ok=True)
        test.replace(dropped / test.name)

    def restore_test(self, name: str = BROKEN_ROW_TEST) -> None:
        """Put a dropped test back (the undo of ``drop_test``)."""
        kept = self.workdir / "dropped-tests" / f"{name}.sql"
        if not kept.is_file():
            raise ConfigError(f"dbt test {name!r} was not dropped")
        kept.replace(self.project_dir / "tests" / kept.name)

    # dbt -------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        t = self.target
        return {
            "PROCTOR_DBT_TRINO_HOST": t.host,
            "PROCTOR_DBT_TRINO_PORT": str(t.port),
            "PROCTOR_DBT_TRINO_USER": t.user,
            "PROCTOR_DBT_CATALOG": t.catalog,
            "PROCTOR_DBT_SCHEMA": t.schema,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_PROFILES_DIR": str(self.project_dir),
            "DO_NOT_TRACK": "1",
            # dbt's own Python must not see proctor's packages
            "PYTHONPATH": "",
            "PYTHONNOUSERSITE": "1",
        }

    def build(
        self,
        lineage: LineageTarget | None = None,
        args: Sequence[str] = (),
        timeout_s: float = 600.0,
    ) -> BuildResult:
        """``dbt build`` (``dbt-ol build`` with ``lineage``), to completion; never raises
        for a failing build: the result says how it ended."""
        return self.invoke("build", lineage, args, timeout_s)

    def invoke(
        self,
        command: str,
        lineage: LineageTarget | None = None,
        args: Sequence[str] = (),
        timeout_s: float = 600.0,
    ) -> BuildResult:
        self._runs += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE_")}
        env.update(self.environment())
        # dbt-ol runs the ``dbt`` it finds on PATH: the venv's own, first
        env["PATH"] = f"{self.venv.bin('')}{os.pathsep}{env.get('PATH', '')}"
        exe = self.venv.bin("dbt")
        if lineage is not None:
            exe = self.venv.bin("dbt-ol")
            env.update(lineage.environment())
        argv = (
            str(exe),
            command,
            "--project-dir",
            str(self.project_dir),
            "--profiles-dir",
            str(self.project_dir),
            *args,
        )
        log = self.logs / f"{self._runs:03d}-{command}.log"
        started = time.monotonic()
        with log.open("w", encoding="utf-8") as out:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=self.project_dir,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                raise StackError(f"dbt: could not start {exe}: {exc}") from exc
            self._proc = proc
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise StackError(
                    f"dbt: {command} did not finish in {timeout_s:.0f}s; see {log}"
                ) from exc
            finally:
                self._kill()  # a timeout or an interrupt leaves no dbt behind
        return BuildResult(argv, code, self.target_dir, log, time.monotonic() - started)
