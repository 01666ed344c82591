"""Kubernetes API requests from the audit webhook backend: ``k8s.audit`` on ``platform.k8s-audit``.

The API server (``--audit-webhook-config-file``, a kubeconfig whose user has a ``token``)
posts ``audit.k8s.io/v1`` EventLists in batches. Each event of stage ResponseComplete (or
Panic) becomes one k8s.audit; the other stages and non-resource requests (``/healthz``)
carry no signal and are counted as ignored. A bad event in a batch is dead-lettered alone,
the rest of the batch is accepted. The natural id is the request's auditID and stage, so a
batch the API server re-sends yields the same event ids.

A dry run (``?dryRun=All`` on the request URI: ``kubectl apply --dry-run=server``, and
``kubectl diff``, which sends its patches with dryRun=All) is audited like the real write
but persists nothing: it is published with ``dry_run: true`` so the grading rules can tell
it from a change (the verb, field manager and user agent are those of a real apply).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from services.collectors import canary
from services.collectors.webhook import WebhookSource
from services.collectors.webhook_auth import AuthScheme
from services.collectors.webhook_cli import receiver_command
from services.collectors.webhook_payload import (
    Inbound,
    Parsed,
    Rejected,
    as_list,
    as_object,
    at_path,
    event_id,
    load_json,
    opt_obj,
    opt_str,
    req_str,
    timestamp_ms,
)
from services.core.events import Event
from services.errors import PayloadError

NAME = "k8s-audit"
API_VERSION = "audit.k8s.io/v1"
#: Stages that describe a finished request.
SIGNAL_STAGES = ("ResponseComplete", "Panic")


def _query(request_uri: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request_uri).query)


def field_manager(request_uri: str) -> str | None:
    """The ``fieldManager`` query parameter of a request URI, or None."""
    values = _query(request_uri).get("fieldManager")
    return values[0] if values and values[0] else None


def dry_run(request_uri: str) -> bool:
    """Whether the request was a dry run: any non-empty ``dryRun`` query value.

    The API server accepts only ``All`` and refuses other values with 400 before the
    request reaches storage, so any value there means nothing was persisted.
    """
    return any(v for v in _query(request_uri).get("dryRun", ()))


def audit_event(item: Mapping[str, Any], platform_id: str, path: str = "") -> Event | str:
    """One audit event -> a k8s.audit event, or the reason it carries no signal."""
    stage = req_str(item, "stage", path)
    if stage not in SIGNAL_STAGES:
        return f"stage {stage}"
    ref = opt_obj(item, "objectRef", path)
    if not ref.get("resource"):
        return "non-resource request"
    audit_id = req_str(item, "auditID", path)
    user = opt_obj(item, "user", path)
    status = opt_obj(item, "responseStatus", path)
    code = status.get("code")
    if code is None:
        if stage != "Panic":
            raise PayloadError(
                f"{at_path(path, 'responseStatus.code')}: missing", "missing_required_field"
            )
        code = 500  # the API server panicked while serving the request
    if isinstance(code, bool) or not isinstance(code, int):
        raise PayloadError(
            f"{at_path(path, 'responseStatus.code')}: {code!r} is not an HTTP status code"
        )
    when = opt_str(item, "stageTimestamp", path) or req_str(item, "requestReceivedTimestamp", path)
    groups = [
        g for g in as_list(user.get("groups"), at_path(path, "user.groups")) if isinstance(g, str)
    ]
    uri = opt_str(item, "requestURI", path) or ""
    data = {
        "verb": req_str(item, "verb", path),
        "user": req_str(user, "username", at_path(path, "user")),
        "user_agent": opt_str(item, "userAgent", path) or "",
        "field_manager": field_manager(uri),
        "resource": req_str(ref, "resource", at_path(path, "objectRef")),
        "subresource": opt_str(ref, "subresource", at_path(path, "objectRef")),
        "namespace": opt_str(ref, "namespace", at_path(path, "objectRef")),
        "name": opt_str(ref, "name", at_path(path, "objectRef")),
        "response_code": code,
        "audit_id": audit_id,
        "user_groups": groups,
        "dry_run": dry_run(uri),
    }
    eid = event_id(NAME, platform_id, f"{audit_id}/{stage}")
    return Event(
        "k8s.audit", platform_id, eid, timestamp_ms(when, at_path(path, "stageTimestamp")), data
    )


def parse(inbound: Inbound) -> Parsed:
    """An EventList -> one k8s.audit per finished resource request."""
    doc = as_object(load_json(inbound.body, "audit EventList"), "body")
    kind, version = doc.get("kind"), doc.get("apiVersion")
    if kind != "EventList" or version != API_VERSION:
        raise PayloadError(
            f"kind/apiVersion: {kind!r}/{version!r} is not EventList/{API_VERSION}; point the "
            "API server's --audit-webhook-config-file here with --audit-webhook-version=audit.k8s.io/v1"
        )
    events: list[Event] = []
    items: list[bytes] = []
    rejected: list[Rejected] = []
    ignored: list[str] = []
    for index, raw in enumerate(as_list(doc.get("items"), "items")):
        text = json.dumps(raw, separators=(",", ":")).encode()
        try:
            path = f"items[{index}]"
            result = audit_event(as_object(raw, path), inbound.platform_id, path)
        except PayloadError as exc:
            rejected.append(Rejected(str(exc), exc.error_class, text))
            continue
        if isinstance(result, str):
            ignored.append(result)
        else:
            events.append(result)
            items.append(text)
    return Parsed(tuple(events), tuple(rejected), tuple(ignored), tuple(items))


SOURCE = WebhookSource(
    name=NAME,
    path="/k8s-audit",
    event_types=("k8s.audit",),
    auth=AuthScheme("bearer"),
    parse=parse,
    default_port=18092,
    summary="Receive Kubernetes audit events (audit webhook backend).",
)

# The audit canary (services/collectors/canary.py): the command's source notes and drops
# its own canary requests and reports blindness when they stop appearing.
command = receiver_command(
    NAME,
    [canary.watched(SOURCE, canary.WATCH)],
    "Receive the API server's audit webhook batches and publish k8s.audit events.\n\n"
    "Point --audit-webhook-config-file at a kubeconfig whose cluster server is "
    "http(s)://<receiver>/platforms/<platform_id>/k8s-audit and whose user has "
    "'token: <secret>'; use --audit-webhook-version=audit.k8s.io/v1.",
    extra=canary.options(),
    companions=canary.companions,
)
