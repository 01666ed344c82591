"""PostgreSQL from the distribution's packages: a private cluster under the stack's state dir.

It holds the Iceberg JDBC catalog that pyiceberg and Trino share, and a database for the
schema registry. The cluster listens on loopback only and trusts connections there, so
no password is stored anywhere. PostgreSQL refuses to run as root; when the stack runs
as root the server runs as the ``postgres`` system user (created by the Debian package)
through ``setpriv``, which execs in place, so the pid the stack records is the
postmaster's own. A state dir that user cannot reach (a checkout under /root) keeps
only the pid and log; the cluster then lives under /var/lib/proctor.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg2
from psycopg2 import sql

from services.errors import StackError
from services.stack.catalog import ensure_catalog_tables
from services.stack.component import Component, Progress
from services.stack.config import StackConfig

#: where Debian's postgresql-NN packages put their server binaries
POSTGRES_LIB = Path("/usr/lib/postgresql")
#: the system user that owns the cluster when the stack runs as root
SERVER_USER = "postgres"
#: the cluster's superuser role (not the OS user); used only by the stack itself
SUPERUSER = "postgres"
#: database the schema registry may keep its state in
REGISTRY_DATABASE = "registry"
#: where the cluster goes when the ``postgres`` user cannot reach the state dir
FALLBACK_ROOT = Path("/var/lib/proctor")
#: file in the state dir naming the fallback cluster directory in use
_CLUSTER_MARKER = "cluster-location"
#: longest path of a Unix socket (sun_path minus the terminating NUL)
_SOCKET_PATH_MAX = 107


def find_bin_dir(root: Path | None = None) -> Path:
    """The ``bin`` directory of the newest PostgreSQL major version installed under ``root``."""
    root = POSTGRES_LIB if root is None else root
    versions: list[tuple[int, Path]] = []
    if root.is_dir():
        for child in root.iterdir():
            if re.fullmatch(r"\d+", child.name) and (child / "bin" / "postgres").is_file():
                versions.append((int(child.name), child / "bin"))
    if not versions:
        raise StackError(
            f"PostgreSQL server binaries not found under {root}: install them with "
            "`apt-get install postgresql`"
        )
    return max(versions)[1]


def server_settings(config: StackConfig, socket_dir: Path) -> dict[str, str]:
    """Settings passed to the postmaster with ``-c``: loopback only, socket in the state dir."""
    return {
        "listen_addresses": config.host,
        "port": str(config.postgres_port),
        "unix_socket_directories": str(socket_dir),
        # A test stack: losing the last few commits on a power cut is fine, waiting on
        # fsync for every catalog commit is not. The data files stay consistent.
        "synchronous_commit": "off",
        "max_connections": "100",
        "shared_buffers": "128MB",
    }


def hba_conf(config: StackConfig) -> str:
    """pg_hba.conf: trust on the private socket and on the stack's loopback address only."""
    return (
        "# written by proctor's stack; edits are overwritten on start\n"
        "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
        "local   all       all            trust\n"
        f"host    all       all   {config.host}/32  trust\n"
    )


class PostgresComponent(Component):
    """A PostgreSQL cluster with the ``proctor`` role and the ``iceberg`` catalog database."""

    name = "postgres"
    start_timeout = 60.0

    @property
    def port(self) -> int:
        return self.config.postgres_port

    @property
    def address(self) -> str:
        c = self.config
        return f"postgresql://{c.postgres_user}@{c.host}:{c.postgres_port}/{c.postgres_db}"

    @property
    def cluster_root(self) -> Path:
        """Where the cluster lives: the state dir, or the fallback ``prepare`` recorded."""
        try:
            recorded = (self.dir / _CLUSTER_MARKER).read_text().strip()
        except OSError:
            return self.dir
        return Path(recorded) if recorded else self.dir

    @property
    def data_dir(self) -> Path:
        return self.cluster_root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.cluster_root / "run"

    # Who runs the server ----------------------------------------------------------------
    def _as_server_user(self) -> list[str]:
        """argv prefix that drops root to the ``postgres`` user; empty when not root."""
        if os.geteuid() != 0:
            return []
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise StackError("setpriv not found: install it with `apt-get install util-linux`")
        return [
            setpriv,
            f"--reuid={SERVER_USER}",
            f"--regid={SERVER_USER}",
            "--init-groups",
            "--reset-env",
            "--",
        ]

    def _server_owner(self) -> tuple[int, int] | None:
        """uid/gid that must own the cluster files; None when the stack is not root."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise StackError(
                f"system user {SERVER_USER!r} is missing; PostgreSQL refuses to run as root. "
                "Install the server with `apt-get install postgresql` (it creates the user)"
            ) from None
        return entry.pw_uid, entry.pw_gid

    # Component ------------------------------------------------------------------------------
    def install(self, progress: Progress) -> None:
        find_bin_dir()
        self._server_owner()

    def prepare(self, progress: Progress) -> None:
        bin_dir = find_bin_dir()
        owner = self._server_owner()
        if owner is not None:
            self._choose_cluster_root(progress)
        socket_file = self.socket_dir / f".s.PGSQL.{self.config.postgres_port}"
        if len(str(socket_file)) > _SOCKET_PATH_MAX:
            raise StackError(
                f"postgres: socket path {socket_file} is longer than {_SOCKET_PATH_MAX} "
                "characters; set PROCTOR_STACK_DIR to a shorter directory"
            )
        fresh = not (self.data_dir / "PG_VERSION").is_file()
        if fresh:
            # Whatever an interrupted first start left there would make initdb refuse.
            shutil.rmtree(self.data_dir, ignore_errors=True)
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
            if owner is not None:
                os.chown(directory, *owner)
        if fresh:
            progress(f"postgres: initialising a cluster in {self.data_dir}")
            self._run_as_server(
                [
                    str(bin_dir / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    SUPERUSER,
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
                "initdb",
            )
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(hba_conf(self.config))
        if owner is not None:
            os.chown(hba, *owner)

    def command(self) -> Sequence[str]:
        argv = [*self._as_server_user(), str(find_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        for key, value in server_settings(self.config, self.socket_dir).items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def healthy(self) -> bool:
        try:
            conn = self._connect(SUPERUSER, "postgres", timeout=2)
        except psycopg2.Error:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                return bool(cur.fetchone() == (1,))
        except psycopg2.Error:
            return False
        finally:
            conn.close()

    def after_start(self, progress: Progress) -> None:
        role = self.config.postgres_user
        conn = self._connect(SUPERUSER, "postgres", timeout=10)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cur.fetchone() is None:
                    progress(f"postgres: creating role {role}")
                    cur.execute(
                        sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role))
                    )
                for database in (self.config.postgres_db, REGISTRY_DATABASE):
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                    if cur.fetchone() is None:
                        progress(f"postgres: creating database {database}")
                        cur.execute(
                            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                                sql.Identifier(database), sql.Identifier(role)
                            )
                        )
        finally:
            conn.close()
        # Trino's JDBC catalog expects the catalog tables to exist; pyiceberg creates them.
        ensure_catalog_tables(self.config)

    def stop(self, progress: Progress) -> None:
        """Fast shutdown (SIGINT): roll back open sessions instead of waiting for clients."""
        pid = self.pid()
        if pid is not None:
            progress(f"{self.name}: fast shutdown of pid {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + self.stop_timeout
            while time.monotonic() < deadline and self.pid() is not None:
                time.sleep(0.2)
        super().stop(progress)

    # Helpers --------------------------------------------------------------------------------
    def _connect(self, user: str, database: str, timeout: int) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host=self.config.host,
            port=self.config.postgres_port,
            user=user,
            dbname=database,
            connect_timeout=timeout,
        )

    def _run_as_server(self, argv: list[str], what: str) -> None:
        proc = subprocess.run(
            [*self._as_server_user(), *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            raise StackError(f"postgres: {what} failed (exit {proc.returncode}):\n{tail}")

    def _server_user_can_reach(self, path: Path) -> bool:
        probe = subprocess.run(
            [*self._as_server_user(), "test", "-x", str(path)], capture_output=True, check=False
        )
        return probe.returncode == 0

    def _choose_cluster_root(self, progress: Progress) -> None:
        """Keep the cluster in the state dir unless the ``postgres`` user cannot reach it.

        A state dir under a private home (a checkout in /root, say) is not searchable by
        other users; the cluster then lives in :data:`FALLBACK_ROOT`, in a directory named
        after the state dir. The marker file ties that cluster to this state dir: a new
        state dir (no marker yet) gets a freshly initialised cluster, never an old one.
        """
        marker = self.dir / _CLUSTER_MARKER
        if self._server_user_can_reach(self.dir):
            marker.unlink(missing_ok=True)
            return
        digest = hashlib.sha256(str(self.dir.resolve()).encode()).hexdigest()[:16]
        root = FALLBACK_ROOT / f"postgres-{digest}"
        if not marker.is_file():
            shutil.rmtree(root, ignore_errors=True)
            progress(
                f"postgres: user {SERVER_USER!r} cannot reach {self.dir}; keeping the "
                f"cluster in {root}"
            )
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        marker.write_text(f"{root}\n")
        if not self._server_user_can_reach(root):
            raise StackError(
                f"postgres: the {SERVER_USER!r} user can reach neither {self.dir} nor {root}; "
                "set PROCTOR_STACK_DIR to a directory outside private homes"
            )
