"""Apicurio Registry 3: a real schema registry with a Confluent-compatible REST API.

Confluent's clients (``SchemaRegistryClient``, ``AvroSerializer``) talk to it under
``/apis/ccompat/v7``. It is the ``all`` assembly of ``apicurio-registry-app`` (a Quarkus
fast-jar, fetched with ``mvn``), which needs Java 21 or newer, so it runs on Java 25.

Schemas live in the stack's PostgreSQL, in a database of their own (``registry``):
records already in Kafka carry schema ids, so the ids must outlive a registry restart
(an in-memory store would forget them and make those records undecodable), and the
stack already runs and health-checks PostgreSQL, so this adds no new moving part.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.errors import StackError
from services.stack import jvm, maven
from services.stack.component import Component, Progress

APICURIO_VERSION = "3.3.3"
ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
DATABASE = "registry"
#: unpacked software, outside any state dir so a fresh stack does not unpack again
CACHE_DIR = Path.home() / ".cache" / "proctor"


class RegistryComponent(Component):
    """Apicurio Registry on ``registry_port``; its health endpoints on the next port."""

    name = "registry"
    requires = ("postgres",)
    start_timeout = 120.0

    heap = "512m"

    @property
    def port(self) -> int:
        return self.config.registry_port

    @property
    def management_port(self) -> int:
        """Quarkus serves health and metrics on a separate port; keep it next to ours."""
        return self.config.registry_port + 1

    def ports(self) -> Sequence[int]:
        return (self.port, self.management_port)

    @property
    def address(self) -> str:
        return self.config.registry_url

    @property
    def app_dir(self) -> Path:
        """The unpacked assembly, shared by every state dir (like ~/.m2 for the archive)."""
        return CACHE_DIR / f"apicurio-registry-{APICURIO_VERSION}"

    # Install and configure ---------------------------------------------------------------
    def install(self, progress: Progress) -> None:
        jvm.java(self.config.java25_home, 25)
        if (self.app_dir / "quarkus-run.jar").is_file():
            return
        archive = maven.fetch(ARTIFACT, progress)
        progress(f"registry: unpacking {archive.name}")
        staging = CACHE_DIR / f"apicurio-registry-{APICURIO_VERSION}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise StackError(f"registry: cannot unpack {archive}: {exc}") from exc
        runner = next(staging.rglob("quarkus-run.jar"), None)
        if runner is None:
            raise StackError(
                f"registry: {archive} has no quarkus-run.jar; is it the `all` assembly?"
            )
        if not (self.app_dir / "quarkus-run.jar").is_file():  # another process may have won
            shutil.rmtree(self.app_dir, ignore_errors=True)
            runner.parent.rename(self.app_dir)
        shutil.rmtree(staging, ignore_errors=True)

    def jdbc_url(self) -> str:
        c = self.config
        return f"jdbc:postgresql://{c.host}:{c.postgres_port}/{DATABASE}"

    def prepare(self, progress: Progress) -> None:
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        ensure_database(
            self.config.host,
            self.config.postgres_port,
            self.config.postgres_user,
            self.config.postgres_db,
            DATABASE,
            progress,
        )

    def settings(self) -> dict[str, str]:
        """Quarkus and Apicurio properties, passed as ``-D`` flags."""
        c = self.config
        tmp = str(self.dir / "tmp")
        return {
            "quarkus.http.host": c.host,
            "quarkus.http.port": str(self.port),
            "quarkus.management.host": c.host,
            "quarkus.management.port": str(self.management_port),
            "apicurio.storage.kind": "sql",
            "apicurio.storage.sql.kind": "postgresql",
            "apicurio.datasource.url": self.jdbc_url(),
            "apicurio.datasource.username": c.postgres_user,
            "apicurio.datasource.jdbc.initial-size": "2",
            "apicurio.datasource.jdbc.min-size": "2",
            "apicurio.datasource.jdbc.max-size": "10",
            "apicurio.storage.snapshot.location": tmp,
            "apicurio.import.work-dir": tmp,
            "java.io.tmpdir": tmp,
            # every health poll would otherwise add an access-log line
            'quarkus.log.category."io.quarkus.http.access-log".level': "WARN",
            "quarkus.log.console.format": "%d{yyyy-MM-dd HH:mm:ss,SSS} %p [%c{3.}] %m%n",
        }

    def environment(self) -> Mapping[str, str]:
        # A password, if the cluster wants one, comes from the environment only (not argv).
        password = os.environ.get("PROCTOR_POSTGRES_PASSWORD")
        return {"APICURIO_DATASOURCE_PASSWORD": password} if password else {}

    def command(self) -> Sequence[str]:
        return [
            str(jvm.java(self.config.java25_home, 25)),
            "-Xms128m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            *(f"-D{k}={v}" for k, v in self.settings().items()),
            "-jar",
            str(self.app_dir / "quarkus-run.jar"),
        ]

    # Health ------------------------------------------------------------------------------
    def healthy(self) -> bool:
        """The Confluent-compatible API answers a subject listing."""
        import httpx

        try:
            response = httpx.get(f"{self.config.registry_url}/subjects", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200


def ensure_database(
    host: str, port: int, user: str, maintenance_db: str, database: str, progress: Progress
) -> None:
    """Create ``database`` unless it exists; a clear error when PostgreSQL is not up."""
    import psycopg2

    try:
        conn = psycopg2.connect(
            host=host,
            port=port,
            user=user,
            dbname=maintenance_db,
            password=os.environ.get("PROCTOR_POSTGRES_PASSWORD", ""),
            connect_timeout=5,
        )
    except psycopg2.Error as exc:
        raise StackError(
            f"registry keeps its schemas in PostgreSQL at {host}:{port}, which does not answer "
            f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}); "
            "start it first with `proctor stack up postgres`"
        ) from exc
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                progress(f"registry: creating database {database!r} in PostgreSQL")
                cur.execute(f'CREATE DATABASE "{database}"')
    except psycopg2.Error as exc:
        raise StackError(f"registry: cannot create database {database!r}: {exc}") from exc
    finally:
        conn.close()
