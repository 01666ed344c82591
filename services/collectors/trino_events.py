"""Completed Trino queries from Trino's HTTP event listener: ``trino.query`` on ``platform.trino``.

Trino's ``http`` event listener (plugin ``http-event-listener``) POSTs each
QueryCompletedEvent as JSON to ``http-event-listener.connect-ingest-uri``, with the bearer
token in ``http-event-listener.connect-http-headers``.

The tables and columns a query read are those access control checked for it
(``metadata.tables[].columns``) together with those the connectors were asked for
(``ioMetadata.inputs``): a masked column is in the first only when its mask needs no read
of it (a constant such as ``'***'``), so ``ioMetadata`` alone loses exactly the masked
users' reads. ``masked_columns`` are the columns whose mask Trino applied in that query,
which says the mask applied to its user whatever the rules' user patterns look like.
Created and split events (when the listener is told to send them) carry no completed
query and are counted as ignored. The natural id is the query id, which Trino never reuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.collectors.webhook import WebhookSource
from services.collectors.webhook_auth import AuthScheme
from services.collectors.webhook_cli import receiver_command
from services.collectors.webhook_payload import (
    Inbound,
    Parsed,
    as_list,
    as_object,
    event_id,
    load_json,
    obj,
    opt_obj,
    opt_str,
    req_str,
    timestamp_ms,
)
from services.core.events import Event
from services.errors import PayloadError

NAME = "trino"


def _instant_ms(value: Any, path: str) -> int:
    """A Java Instant as Trino's JSON codec writes it: ISO text, or epoch seconds as a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1000)  # whole milliseconds, never rounded into the future
    return timestamp_ms(value, path)


def _column_name(value: Any, path: str) -> str:
    """An input column: {"name", "type"} records in current Trino, plain names in older ones."""
    if isinstance(value, str) and value:
        return value
    col = as_object(value, path)
    name = col.get("name", col.get("column"))
    if not isinstance(name, str) or not name:
        raise PayloadError(f"{path}.name: missing", "missing_required_field")
    return name


def referenced(
    meta: Mapping[str, Any],
) -> tuple[dict[str, None], dict[str, None], dict[str, None]]:
    """(tables, columns, masked columns) of ``metadata.tables``, in order, each once."""
    tables: dict[str, None] = {}
    columns: dict[str, None] = {}
    masked: dict[str, None] = {}
    for i, raw in enumerate(as_list(meta.get("tables"), "metadata.tables")):
        path = f"metadata.tables[{i}]"
        item = as_object(raw, path)
        table = ".".join(
            (
                req_str(item, "catalog", path),
                req_str(item, "schema", path),
                req_str(item, "table", path),
            )
        )
        tables.setdefault(table, None)
        for j, raw_col in enumerate(as_list(item.get("columns"), f"{path}.columns")):
            cpath = f"{path}.columns[{j}]"
            col = as_object(raw_col, cpath)
            name = f"{table}.{req_str(col, 'column', cpath)}"
            columns.setdefault(name, None)
            mask = col.get("mask", col.get("masks"))
            if mask not in (None, "", []):
                masked.setdefault(name, None)
    return tables, columns, masked


def reads(
    io: Mapping[str, Any], meta: Mapping[str, Any] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """(tables, columns, masked columns) a query read, as catalog.schema.table[.column], each
    once, in order: access control's view (``metadata.tables``) first, then ``ioMetadata``."""
    tables, columns, masked = referenced(meta or {})
    for i, raw in enumerate(as_list(io.get("inputs"), "ioMetadata.inputs")):
        path = f"ioMetadata.inputs[{i}]"
        item = as_object(raw, path)
        table = ".".join(
            (
                req_str(item, "catalogName", path),
                req_str(item, "schema", path),
                req_str(item, "table", path),
            )
        )
        tables.setdefault(table, None)
        for j, col in enumerate(as_list(item.get("columns"), f"{path}.columns")):
            columns.setdefault(f"{table}.{_column_name(col, f'{path}.columns[{j}]')}", None)
    return list(tables), list(columns), list(masked)


def query_event(doc: Mapping[str, Any], platform_id: str) -> Event | str:
    """A QueryCompletedEvent -> a trino.query event, or why the document is not one."""
    if "ioMetadata" not in doc or "endTime" not in doc:
        return "SplitCompletedEvent" if "stageId" in doc else "QueryCreatedEvent"
    meta = obj(doc, "metadata", "")
    context = obj(doc, "context", "")
    query_id = req_str(meta, "queryId", "metadata")
    failure = opt_obj(doc, "failureInfo", "")
    error_code = opt_obj(failure, "errorCode", "failureInfo") if failure else {}
    tables, columns, masked = reads(obj(doc, "ioMetadata", ""), meta)
    data = {
        "query_id": query_id,
        "user": req_str(context, "user", "context"),
        "state": req_str(meta, "queryState", "metadata"),
        "query": req_str(meta, "query", "metadata"),
        "catalog": opt_str(context, "catalog", "context"),
        "schema": opt_str(context, "schema", "context"),
        "tables": tables,
        "columns": columns,
        "masked_columns": masked,
        "error_code": opt_str(error_code, "name", "failureInfo.errorCode") if error_code else None,
    }
    ts = _instant_ms(doc["endTime"], "endTime")
    return Event("trino.query", platform_id, event_id(NAME, platform_id, query_id), ts, data)


def parse(inbound: Inbound) -> Parsed:
    """One listener POST -> one trino.query (or nothing for created/split events)."""
    doc = as_object(load_json(inbound.body, "Trino query event"), "body")
    result = query_event(doc, inbound.platform_id)
    if isinstance(result, str):
        return Parsed(ignored=(result,))
    return Parsed(events=(result,))


SOURCE = WebhookSource(
    name=NAME,
    path="/trino",
    event_types=("trino.query",),
    auth=AuthScheme("bearer"),
    parse=parse,
    default_port=18095,
    summary="Receive Trino query-completed events (HTTP event listener).",
)

command = receiver_command(
    NAME,
    [SOURCE],
    "Receive Trino's HTTP event listener posts (QueryCompletedEvent) and publish trino.query.\n\n"
    "Configure Trino with event-listener.name=http, http-event-listener.log-completed=true, "
    "http-event-listener.connect-ingest-uri=http://<receiver>/platforms/<platform_id>/trino and "
    "http-event-listener.connect-http-headers=Authorization: Bearer <secret>.",
)
