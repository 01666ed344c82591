"""A candidate's Trino for tests: file-based access control masking a PII column of a table
in the stack's Iceberg catalog, and its HTTP event listener posting to a receiver.

Register with ``pytest_plugins = ["tests.platform_fixtures.trino"]`` and call the
``candidate_trino`` factory with the listener's address. The server is the stack's cached
Trino 476 (fetched through ``mvn`` on a clean machine by ``CandidateTrino.install``);
only the stack's PostgreSQL (the catalog) must run.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from services.errors import StackError
from services.platform.trino import ADMIN, CATALOG, CandidateTrino, EventListener, Mask, acl_rules
from services.stack.catalog import load_catalog
from services.stack.config import StackConfig

#: who the rules name: ``analyst`` reads the table with the PII column masked, ``auditor``
#: reads it unmasked, anyone else is denied
MASKED_USER = "analyst"
UNMASKED_USER = "auditor"
PII = "email"
ROWS = [
    (1, "ann@example.com", "Oslo"),
    (2, "bo@example.com", "Bergen"),
    (3, "cy@example.com", "Tromso"),
]
MASK_EXPRESSION = "'***'"


@dataclass
class TrinoPlatform:
    trino: CandidateTrino
    schema: str
    mask: Mask

    @property
    def table(self) -> str:
        return f"{CATALOG}.{self.schema}.customers"

    def select(self, user: str, columns: str = "id, email") -> tuple[list[list[object]], str]:
        """(rows ordered by id, query id) of ``user``'s read of the table."""
        answer = self.trino.run(user, f"SELECT {columns} FROM {self.table} ORDER BY id")
        return answer.rows, answer.query_id


TrinoFactory = Callable[[EventListener | None], TrinoPlatform]


@pytest.fixture(scope="module")
def candidate_trino(
    stack: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrinoFactory]:
    """``candidate_trino(listener)``: start the candidate's Trino (once per module) with
    ``analyst`` masked on ``customers.email`` and ``auditor`` unmasked; the table is in a
    schema of its own, dropped with it at the end."""
    config: StackConfig = stack.require("postgres")  # type: ignore[attr-defined]
    made: list[TrinoPlatform] = []

    def make(listener: EventListener | None) -> TrinoPlatform:
        schema = f"acl_{uuid.uuid4().hex[:10]}"
        mask = Mask(schema, "customers", PII, MASK_EXPRESSION, MASKED_USER)
        trino = CandidateTrino(
            tmp_path_factory.mktemp("candidate-trino"),
            config,
            listener,
            rules=acl_rules([mask], readers=UNMASKED_USER),
        )
        try:
            trino.start(print)
        except StackError as exc:
            trino.stop()
            pytest.fail(f"the candidate's Trino did not start: {exc}")
        platform = TrinoPlatform(trino, schema, mask)
        made.append(platform)
        trino.query(ADMIN, f"CREATE SCHEMA {CATALOG}.{schema}")
        trino.query(
            ADMIN, f"CREATE TABLE {platform.table} (id integer, email varchar, city varchar)"
        )
        values = ", ".join(f"({i}, '{e}', '{c}')" for i, e, c in ROWS)
        trino.query(ADMIN, f"INSERT INTO {platform.table} VALUES {values}")
        return platform

    yield make
    for p in made:
        p.trino.stop()
        # the candidate's Trino may be down by now (a test stops it): drop through pyiceberg
        with contextlib.suppress(Exception):
            catalog = load_catalog(config)
            catalog.purge_table((p.schema, "customers"))
            catalog.drop_namespace(p.schema)
