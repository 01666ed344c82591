"""OpenLineage run events: ``openlineage.run`` on ``platform.openlineage``.

Two ways in, one parser:

- HTTP: an endpoint compatible with the OpenLineage HTTP transport. Configure the client
  with ``url: http://<receiver>/platforms/<platform_id>/`` (default endpoint
  ``api/v1/lineage``) and ``auth: {type: api_key, apiKey: <secret>}``; gzip bodies
  (``compression: gzip``) are accepted.
- Kafka: with ``--from-topic`` the same command also bridges the topic the OpenLineage
  Kafka transport writes to (see :mod:`services.collectors.openlineage_kafka`; the
  command that runs both is :mod:`services.collectors.openlineage_cli`, so neither
  transport's module imports the other's).

RunEvents keep the spec's structure; facets travel as JSON text. DatasetEvents and
JobEvents (static metadata, no run) carry no run signal and are counted as ignored. The
natural id of a run event is its runId, eventType and eventTime, so a client's retry is
de-duplicated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from services.collectors.webhook import WebhookSource
from services.collectors.webhook_auth import AuthScheme
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

NAME = "openlineage"
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
DEFAULT_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _facets(m: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    """Facets by name as JSON text; each facet must be a JSON object."""
    out = {}
    for name, value in opt_obj(m, key, path).items():
        as_object(value, f"{path}.{key}.{name}")
        out[name] = json.dumps(value, ensure_ascii=False)
    return out


def _datasets(value: Any, path: str, extra: str) -> list[dict[str, Any]]:
    out = []
    for i, raw in enumerate(as_list(value, path)):
        ds = as_object(raw, f"{path}[{i}]")
        where = f"{path}[{i}]"
        out.append(
            {
                "namespace": req_str(ds, "namespace", where),
                "name": req_str(ds, "name", where),
                "facets": _facets(ds, "facets", where),
                extra: _facets(ds, extra, where),
            }
        )
    return out


def run_event(doc: Mapping[str, Any], platform_id: str) -> Event | str:
    """A RunEvent document -> an openlineage.run event, or why it carries no run signal."""
    if "run" not in doc:
        return (
            "DatasetEvent" if "dataset" in doc else "JobEvent" if "job" in doc else "not a RunEvent"
        )
    run = obj(doc, "run", "")
    job = obj(doc, "job", "")
    event_type = opt_str(doc, "eventType", "") or "OTHER"
    if event_type not in EVENT_TYPES:
        raise PayloadError(f"eventType: {event_type!r} is not one of {', '.join(EVENT_TYPES)}")
    event_time = req_str(doc, "eventTime", "")
    run_id = req_str(run, "runId", "run")
    data = {
        "eventType": event_type,
        "eventTime": event_time,
        "run": {"runId": run_id, "facets": _facets(run, "facets", "run")},
        "job": {
            "namespace": req_str(job, "namespace", "job"),
            "name": req_str(job, "name", "job"),
            "facets": _facets(job, "facets", "job"),
        },
        "inputs": _datasets(doc.get("inputs"), "inputs", "inputFacets"),
        "outputs": _datasets(doc.get("outputs"), "outputs", "outputFacets"),
        "producer": req_str(doc, "producer", ""),
        "schemaURL": opt_str(doc, "schemaURL", "") or DEFAULT_SCHEMA_URL,
    }
    eid = event_id(NAME, platform_id, f"{run_id}/{event_type}/{event_time}")
    return Event("openlineage.run", platform_id, eid, timestamp_ms(event_time, "eventTime"), data)


def parse(inbound: Inbound) -> Parsed:
    """One OpenLineage HTTP transport request -> one openlineage.run (or nothing)."""
    doc = as_object(load_json(inbound.body, "OpenLineage event"), "body")
    result = run_event(doc, inbound.platform_id)
    if isinstance(result, str):
        return Parsed(ignored=(result,))
    return Parsed(events=(result,))


SOURCE = WebhookSource(
    name=NAME,
    path="/api/v1/lineage",
    event_types=("openlineage.run",),
    auth=AuthScheme("bearer"),
    parse=parse,
    default_port=18094,
    summary="Receive OpenLineage run events (HTTP transport, Kafka bridge).",
)
