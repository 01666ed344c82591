"""The stack's Iceberg catalog, seen from pyiceberg (writes) and from Trino (SQL).

Both sides share one JDBC catalog in the stack's PostgreSQL: pyiceberg's ``SqlCatalog``
and Trino's ``iceberg.catalog.type=jdbc`` read and write the same ``iceberg_tables`` rows,
under the same catalog name, so a table committed by one is visible to the other.
"""

from __future__ import annotations

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from sqlalchemy.exc import SQLAlchemyError
from trino.dbapi import Connection

from services import connections
from services.errors import StackError
from services.settings import CatalogSettings, TrinoSettings
from services.stack.config import StackConfig

#: catalog_name column of the JDBC catalog tables; Trino's catalog-name must match it
CATALOG_NAME = "proctor"
#: the Trino catalog (etc/catalog/<name>.properties) that serves the Iceberg tables
TRINO_CATALOG = "iceberg"
#: user name Trino sees for the stack's own queries
TRINO_USER = "proctor"


def catalog_settings(config: StackConfig) -> CatalogSettings:
    """The catalog section of the settings that point at the stack's catalog."""
    return CatalogSettings(name=CATALOG_NAME, uri=config.catalog_uri, warehouse=config.warehouse)


def trino_settings(config: StackConfig) -> TrinoSettings:
    return TrinoSettings(url=config.trino_url, catalog=TRINO_CATALOG, user=TRINO_USER)


def catalog_properties(config: StackConfig) -> dict[str, str]:
    """pyiceberg properties of the stack's SQL catalog."""
    return catalog_settings(config).properties()


def load_catalog(config: StackConfig) -> Catalog:
    """pyiceberg's view of the stack's catalog; creates the catalog tables when absent."""
    try:
        return connections.open_catalog(catalog_settings(config))
    except SQLAlchemyError as exc:
        raise StackError(
            f"Iceberg catalog database at {config.host}:{config.postgres_port}/"
            f"{config.postgres_db} is not reachable ({type(exc).__name__}); start the stack "
            "with `proctor stack up`"
        ) from exc


def ensure_catalog_tables(config: StackConfig) -> None:
    """Create the JDBC catalog tables (Trino expects them to exist; pyiceberg makes them)."""
    catalog = load_catalog(config)
    if isinstance(catalog, SqlCatalog):
        catalog.engine.dispose()


def trino_connect(
    config: StackConfig, schema: str | None = None, user: str = TRINO_USER
) -> Connection:
    """A DB-API connection to the stack's Trino on the ``iceberg`` catalog.

    Nothing is sent until the first query, so a stopped Trino shows up there as a
    ``trino.exceptions`` error or a connection error from the HTTP client.
    """
    return connections.trino_connect(trino_settings(config), schema, user)
