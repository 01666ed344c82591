"""The one Iceberg catalog factory and the one Trino connection factory.

The worker, the scoreboard, the demo, the collectors' Iceberg source and the local stack
all open catalogs and Trino connections here, from the sections of
:mod:`services.settings`, so a catalog is configured one way (its type from the URI's
scheme) and every Trino session runs in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from services.errors import ConfigError
from services.settings import CatalogSettings, TrinoSettings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from trino.dbapi import Connection

#: seconds a Trino request may take (maintenance's ``optimize`` is the slowest)
TRINO_REQUEST_TIMEOUT_S = 120.0


def load_catalog(name: str, properties: Mapping[str, str]) -> Catalog:
    """pyiceberg's catalog ``name`` from its properties; a ConfigError when pyiceberg
    cannot build it from them (a connection refused surfaces at first use)."""
    from pyiceberg.catalog import load_catalog as pyiceberg_load

    try:
        return pyiceberg_load(name, **dict(properties))
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise ConfigError(
            f"cannot open Iceberg catalog {name}: {type(exc).__name__}: {exc}"
        ) from exc


def open_catalog(catalog: CatalogSettings) -> Catalog:
    """proctor's own catalog (SQL/JDBC or REST, from ``catalog.uri``)."""
    return load_catalog(catalog.name, catalog.properties())


def catalog_factory(catalog: CatalogSettings) -> Callable[[], Catalog]:
    """A function that opens the catalog anew, for the services that reconnect."""
    return lambda: open_catalog(catalog)


def trino_connect(
    trino: TrinoSettings, schema: str | None = None, user: str | None = None
) -> Connection:
    """A DB-API connection to Trino on the Iceberg catalog, in UTC.

    Nothing is sent until the first query, so a stopped Trino shows up there as a
    ``trino.exceptions`` error or a connection error from the HTTP client.
    """
    from trino.dbapi import Connection

    url = urlparse(trino.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"PROCTOR_TRINO_URL={trino.url!r} is not an http(s) URL")
    return Connection(
        host=url.hostname,
        port=url.port or (443 if url.scheme == "https" else 8080),
        user=user or trino.user,
        catalog=trino.catalog,
        schema=schema,
        http_scheme=url.scheme,
        request_timeout=TRINO_REQUEST_TIMEOUT_S,
        # Session time zone fixed so current_timestamp and casts agree across machines.
        timezone="UTC",
    )


def trino_factory(trino: TrinoSettings) -> Callable[[], Connection]:
    """A function that opens a new Trino connection per use."""
    return lambda: trino_connect(trino)
