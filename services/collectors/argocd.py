"""Argo CD sync results from Argo CD notifications: ``argocd.sync`` on ``platform.argocd``.

The body is the one k8s/argocd/notifications-template.yaml renders (``kind:
proctor.argocd.sync/v1``) for every finished sync operation. The natural id of a sync is
the application plus the operation's start and finish times, so Argo CD's retries of one
notification carry one event id.
"""

from __future__ import annotations

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
    opt_str,
    req_str,
    timestamp_ms,
)
from services.core.events import Event, ms_to_rfc3339
from services.errors import PayloadError

NAME = "argocd"
KIND = "proctor.argocd.sync/v1"
SYNC_STATUSES = ("Synced", "OutOfSync", "Unknown")
HEALTH_STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")
PHASES = ("Succeeded", "Failed", "Error", "Running", "Terminating")


def _initiated_by(value: Any) -> str:
    """'automated' for an automated sync, else the user name ('unknown' when Argo CD has none)."""
    if value is None:
        return "unknown"
    by = as_object(value, "initiatedBy")
    if by.get("automated") is True:
        return "automated"
    return opt_str(by, "username", "initiatedBy") or "unknown"


def _resources(value: Any, where: str = "resources") -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(as_list(value, where)):
        res = as_object(item, f"{where}[{i}]")
        path = f"{where}[{i}]"
        out.append(
            {
                "kind": req_str(res, "kind", path),
                "namespace": opt_str(res, "namespace", path),
                "name": req_str(res, "name", path),
                "group": opt_str(res, "group", path),
                "status": opt_str(res, "status", path),
            }
        )
    return out


def _with_managed(resources: list[dict[str, Any]], managed: Any) -> list[dict[str, Any]]:
    """The sync's resources plus every resource the app manages that is Synced now.

    Two operations finishing in the same second share one notification (its ``oncePer``
    is the finish time), and the body shows the later one's ``syncResult``: a self-heal
    of one resource right after a sync left the first sync's other resources, and their
    namespaces, out (seen on the real Argo CD). The app's ``status.resources`` lists what
    it manages with its sync status; a Synced one is deployed by Argo CD at the revision."""
    seen = {(r["group"], r["kind"], r["namespace"], r["name"]) for r in resources}
    out = list(resources)
    for r in _resources(managed, "managed"):
        key = (r["group"], r["kind"], r["namespace"], r["name"])
        if r["status"] == "Synced" and key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _enum(doc: Any, key: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = opt_str(doc, key, "")
    if value is None:
        if default is None:
            raise PayloadError(f"{key}: missing", "missing_required_field")
        return default
    if value not in allowed:
        raise PayloadError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _revisions(doc: Any) -> tuple[str, list[str]]:
    """(first revision, every source's revision) of the sync.

    A single-source application reports ``syncResult.revision``; a multi-source one
    (``spec.sources``) reports ``syncResult.revisions``, one per source in order, and a fix
    merged to any of its sources is synced there, so all of them are kept.
    """
    listed = as_list(doc.get("revisions"), "revisions")
    revisions: list[str] = []
    for i, item in enumerate(listed):
        if not isinstance(item, str) or not item:
            raise PayloadError(f"revisions[{i}]: {item!r} is not a revision")
        revisions.append(item)  # kept in source order, repeats included
    revision = opt_str(doc, "revision", "")
    if revision is None:
        revision = revisions[0] if revisions else opt_str(doc, "operationRevision", "")
    if revision is None:
        raise PayloadError(
            "revision: missing (no syncResult.revision, revisions or operation revision)",
            "missing_required_field",
        )
    return revision, revisions or [revision]


def parse(inbound: Inbound) -> Parsed:
    """One notification -> one argocd.sync event."""
    doc = as_object(load_json(inbound.body, "Argo CD notification"), "body")
    kind = doc.get("kind")
    if kind != KIND:
        raise PayloadError(
            f"kind: {kind!r} is not {KIND!r}; render the body with "
            "k8s/argocd/notifications-template.yaml"
        )
    app = req_str(doc, "app", "")
    if doc.get("reconciled") is True:
        return _reconciled(inbound, doc, app)
    finished = opt_str(doc, "finishedAt", "")
    started = opt_str(doc, "startedAt", "")
    finished_ms = timestamp_ms(finished, "finishedAt") if finished else None
    if finished_ms is not None:
        ts = finished_ms
    elif started:
        ts = timestamp_ms(started, "startedAt")
    else:
        raise PayloadError(
            "finishedAt and startedAt: both missing; the sync has no time", "missing_required_field"
        )
    app_key = _app_key(doc, app)
    revision, revisions = _revisions(doc)
    phase = _enum(doc, "phase", PHASES, None)
    resources = _resources(doc.get("resources"))
    if phase == "Succeeded":
        resources = _with_managed(resources, doc.get("managed"))
    data = {
        "app": app,
        "project": opt_str(doc, "project", "") or "default",
        "revision": revision,
        "sync_status": _enum(doc, "syncStatus", SYNC_STATUSES, "Unknown"),
        "health_status": _enum(doc, "healthStatus", HEALTH_STATUSES, "Unknown"),
        "phase": phase,
        "initiated_by": _initiated_by(doc.get("initiatedBy")),
        "finished_at": None if finished_ms is None else ms_to_rfc3339(finished_ms),
        "resources": resources,
        "revisions": revisions,
    }
    natural = f"{app_key}@{started or ''}/{finished or ''}"
    event = Event(
        "argocd.sync", inbound.platform_id, event_id(NAME, inbound.platform_id, natural), ts, data
    )
    return Parsed(events=(event,))


def _app_key(doc: Any, app: str) -> str:
    return opt_str(doc, "appUid", "") or f"{opt_str(doc, 'appNamespace', '') or 'argocd'}/{app}"


def _reconciled(inbound: Inbound, doc: Any, app: str) -> Parsed:
    """Argo CD found the app Synced at a revision without a sync operation (after a failed
    sync, Git was made equal to what is live): a succeeded sync with no operation, so
    ``finished_at`` null, no resources and initiated by Argo CD itself."""
    at = req_str(doc, "reconciledAt", "")
    ts = timestamp_ms(at, "reconciledAt")
    revision, revisions = _revisions(doc)
    sync_status = _enum(doc, "syncStatus", SYNC_STATUSES, "Unknown")
    if sync_status != "Synced":
        raise PayloadError(f"syncStatus: {sync_status!r} for a reconciled app; only Synced is sent")
    data = {
        "app": app,
        "project": opt_str(doc, "project", "") or "default",
        "revision": revision,
        "sync_status": sync_status,
        "health_status": _enum(doc, "healthStatus", HEALTH_STATUSES, "Unknown"),
        "phase": "Succeeded",
        "initiated_by": "automated",
        "finished_at": None,
        "resources": [],
        "revisions": revisions,
    }
    natural = f"{_app_key(doc, app)}@reconciled/{','.join(revisions)}"
    event = Event(
        "argocd.sync", inbound.platform_id, event_id(NAME, inbound.platform_id, natural), ts, data
    )
    return Parsed(events=(event,))


SOURCE = WebhookSource(
    name=NAME,
    path="/argocd",
    event_types=("argocd.sync",),
    auth=AuthScheme("bearer"),
    parse=parse,
    default_port=18091,
    summary="Receive Argo CD sync notifications (webhook).",
)

command = receiver_command(
    NAME,
    [SOURCE],
    "Receive Argo CD notifications of finished syncs and publish argocd.sync events.\n\n"
    "Argo CD posts the body of k8s/argocd/notifications-template.yaml to "
    "/platforms/<platform_id>/argocd with 'Authorization: Bearer <secret>'.",
)
