"""A candidate's source PostgreSQL: its own cluster with ``wal_level=logical``, on a free port.

The CDC connector reads this database's write-ahead log through a replication slot, so
it must not be the stack's shared PostgreSQL (which runs without logical decoding and
must never be restarted). It reuses the stack's Debian binaries, ``initdb`` and
run-as-``postgres`` helpers (:class:`services.stack.postgres.PostgresComponent`), adds
the settings logical replication needs and a ``replication`` line in ``pg_hba.conf``,
and owns one database and one login role with the REPLICATION attribute, as a
candidate's platform would give Debezium.

    with SourceDatabase(workdir) as db:
        db.create_orders_table()
        OrderLoad(db).insert(10)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import psycopg2
from psycopg2 import sql

from services.stack.component import Progress
from services.stack.config import StackConfig
from services.stack.kubernetes import free_port
from services.stack.postgres import FALLBACK_ROOT, SUPERUSER, PostgresComponent

#: the candidate's database and the role its connector logs in as
DATABASE = "shop"
ROLE = "shop"
#: the table the exam's pipeline declares as its source
ORDERS_TABLE = "public.orders"

#: what logical decoding needs beyond the stack's settings (pgoutput ships with the server)
LOGICAL_SETTINGS = {
    "wal_level": "logical",
    "max_replication_slots": "8",
    "max_wal_senders": "8",
    "shared_buffers": "32MB",
    "max_connections": "30",
}


def _quiet(_message: str) -> None:
    """Progress sink for callers that do not want the start-up lines."""


class SourceDatabase(PostgresComponent):
    """The candidate's source database, stopped by the pid it started (context manager)."""

    name = "source-postgres"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        database: str = DATABASE,
        role: str = ROLE,
        progress: Progress = _quiet,
    ) -> None:
        config = StackConfig(
            state_dir=workdir,
            postgres_port=port or free_port(),
            postgres_user=role,
            postgres_db=database,
        )
        super().__init__(config)
        self.progress = progress

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def database(self) -> str:
        return self.config.postgres_db

    @property
    def role(self) -> str:
        return self.config.postgres_user

    def dsn(self, superuser: bool = False) -> str:
        """libpq connection string of the candidate's database (trust on loopback)."""
        user = SUPERUSER if superuser else self.role
        return (
            f"host={self.host} port={self.port} dbname={self.database} user={user} "
            "connect_timeout=10"
        )

    def connect(self) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(self.dsn())
        conn.autocommit = True
        return conn

    # Component ----------------------------------------------------------------------------
    def prepare(self, progress: Progress) -> None:
        super().prepare(progress)
        hba = self.data_dir / "pg_hba.conf"
        owner = self._server_owner()
        # Logical replication connections match only `replication` lines, never `all`.
        hba.write_text(
            hba.read_text()
            + "local   replication  all            trust\n"
            + f"host    replication  all   {self.host}/32  trust\n"
        )
        if owner is not None:
            os.chown(hba, *owner)

    def command(self) -> Sequence[str]:
        argv = list(super().command())
        for key, value in LOGICAL_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def after_start(self, progress: Progress) -> None:
        """The connector's role (LOGIN REPLICATION) and its database; no Iceberg catalog."""
        conn = self._connect(SUPERUSER, "postgres", timeout=10)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.role,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("CREATE ROLE {} LOGIN REPLICATION").format(
                            sql.Identifier(self.role)
                        )
                    )
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(self.database), sql.Identifier(self.role)
                        )
                    )
        finally:
            conn.close()

    # Life cycle ---------------------------------------------------------------------------
    def up(self) -> SourceDatabase:
        self.start(self.progress)
        return self

    def down(self) -> None:
        """Stop the postmaster; remove a cluster kept outside the work dir (root's fallback)."""
        root = self.cluster_root
        self.stop(self.progress)
        if root != self.dir and root.is_relative_to(FALLBACK_ROOT):
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> SourceDatabase:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # The candidate's schema ---------------------------------------------------------------
    def create_orders_table(self) -> None:
        """``public.orders`` with a primary key (Debezium keys its records by it)."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS public.orders ("
                " id bigserial PRIMARY KEY,"
                " customer text NOT NULL,"
                " amount_cents bigint NOT NULL,"
                " status text NOT NULL DEFAULT 'new',"
                " updated_at timestamptz NOT NULL DEFAULT now())"
            )

    def slots(self) -> dict[str, bool]:
        """Replication slots of the database and whether a connection is streaming from each."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT slot_name, active FROM pg_replication_slots WHERE database = %s",
                (self.database,),
            )
            return {str(name): bool(active) for name, active in cur.fetchall()}


class OrderLoad:
    """A load generator on ``public.orders``: inserts new orders, updates existing ones."""

    def __init__(self, db: SourceDatabase) -> None:
        self.db = db
        self._n = itertools.count(1)

    def insert(self, rows: int) -> list[int]:
        """Insert ``rows`` orders, one committed row at a time (each a change event); their ids."""
        values = [(f"customer-{next(self._n)}", 100 + i) for i in range(rows)]
        with contextlib.closing(self.db.connect()) as conn, conn.cursor() as cur:
            ids: list[int] = []
            for customer, cents in values:
                cur.execute(
                    "INSERT INTO public.orders (customer, amount_cents) VALUES (%s, %s) "
                    "RETURNING id",
                    (customer, cents),
                )
                row = cur.fetchone()
                assert row is not None
                ids.append(int(row[0]))
            return ids

    def update(self, ids: Sequence[int], status: str = "paid") -> int:
        """Set ``status`` on the given orders; how many rows changed."""
        with contextlib.closing(self.db.connect()) as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE public.orders SET status = %s, updated_at = now() WHERE id = ANY(%s)",
                (status, list(ids)),
            )
            return int(cur.rowcount)

    def count(self) -> int:
        with contextlib.closing(self.db.connect()) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM public.orders")
            row = cur.fetchone()
            return int(row[0]) if row else 0
