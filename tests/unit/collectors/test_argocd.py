"""Argo CD notifications: the shipped template's body, rendered from recorded Applications."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.collectors.argocd import parse
from services.collectors.webhook_payload import Inbound
from services.contract.schemas import load_contract
from services.errors import PayloadError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "argocd"
TEMPLATE = REPO / "k8s" / "argocd" / "notifications-template.yaml"


def body(name: str) -> bytes:
    return (FIXTURES / f"notification-{name}.json").read_bytes()


def one(raw: bytes, platform: str = "basecamp-alice") -> Any:
    parsed = parse(Inbound(platform, raw))
    assert len(parsed.events) == 1 and not parsed.rejected and not parsed.ignored
    event = parsed.events[0]
    load_contract().to_datum(event)  # the contract accepts it
    return event


def test_fixtures_were_rendered_from_the_shipped_template() -> None:
    cm = yaml.safe_load(TEMPLATE.read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-notifications-cm"
    template = yaml.safe_load(cm["data"]["template.proctor-sync-finished"])
    text = template["webhook"]["proctor"]["body"]
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == (FIXTURES / "template.sha256").read_text().strip(), (
        "the template body changed: re-render tests/fixtures/argocd (see its README)"
    )
    assert "service.webhook.proctor" in cm["data"]
    assert "Bearer $proctor-webhook-token" in cm["data"]["service.webhook.proctor"]
    trigger = yaml.safe_load(cm["data"]["trigger.on-proctor-sync-finished"])
    assert trigger[0]["send"] == ["proctor-sync-finished"]


def test_automated_successful_sync() -> None:
    event = one(body("automated-succeeded"))
    assert event.type == "argocd.sync"
    assert event.ts_ms == 1795775400000  # finishedAt 2026-11-27T10:30:00Z
    assert dict(event.data) == {
        "app": "orders-pipeline",
        "project": "data",
        "revision": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "sync_status": "Synced",
        "health_status": "Healthy",
        "phase": "Succeeded",
        "initiated_by": "automated",
        "finished_at": "2026-11-27T10:30:00.000Z",
        "resources": [
            {
                "kind": "FlinkDeployment",
                "namespace": "flink",
                "name": "orders-enrich",
                "group": "flink.apache.org",
                "status": "Synced",
            },
            {
                "kind": "ConfigMap",
                "namespace": "flink",
                "name": "orders-enrich-config",
                "group": None,
                "status": "Synced",
            },
            {
                "kind": "ClusterRole",
                "namespace": None,
                "name": "orders-enrich-reader",
                "group": "rbac.authorization.k8s.io",
                "status": "Synced",
            },
        ],
        "revisions": ["9fceb02d0ae598e95dc970b74767f19372d61af8"],
    }


def test_manual_failed_sync_names_the_user() -> None:
    event = one(body("manual-failed"))
    assert event.data["initiated_by"] == "alice"
    assert (event.data["phase"], event.data["health_status"], event.data["sync_status"]) == (
        "Failed",
        "Degraded",
        "OutOfSync",
    )
    assert event.data["resources"][0]["status"] == "SyncFailed"


def test_errored_sync_without_result_uses_the_operation_revision() -> None:
    event = one(body("error-no-result"))
    assert event.data["revision"] == "e83c5163316f89bfbde7d9ab23ca2e25604af290"
    assert event.data["project"] == "default"
    assert event.data["resources"] == []
    assert event.data["initiated_by"] == "admin"


def test_event_id_is_the_sync_operation() -> None:
    raw = body("automated-succeeded")
    assert one(raw).event_id == one(raw).event_id  # a retried notification
    assert one(raw).event_id != one(raw, "basecamp-bob").event_id
    doc = json.loads(raw)
    doc["finishedAt"] = "2026-11-27T10:45:00Z"  # the next sync of the same app
    assert one(json.dumps(doc).encode()).event_id != one(raw).event_id


def _edit(**changes: Any) -> bytes:
    doc = json.loads(body("automated-succeeded"))
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("raw", "fragment", "error_class"),
    [
        (b"<html>", "not JSON", "corrupt_bytes"),
        (b"[1, 2]", "expected a JSON object", "invalid_field"),
        (_edit(kind="something-else"), "render the body with", "invalid_field"),
        (_edit(phase="Exploded"), "phase: 'Exploded' is not one of", "invalid_field"),
        (_edit(phase=None), "phase: missing", "missing_required_field"),
        (_edit(app=None), "app: missing", "missing_required_field"),
        (_edit(finishedAt=None, startedAt=None), "both missing", "missing_required_field"),
        (_edit(finishedAt="10:30"), "finishedAt: '10:30' is not an RFC 3339", "invalid_field"),
        (
            _edit(revision=None, revisions=None, operationRevision=None),
            "revision: missing",
            "missing_required_field",
        ),
        (
            _edit(resources=[{"kind": "Job"}]),
            "resources[0].name: missing",
            "missing_required_field",
        ),
        (_edit(initiatedBy="alice"), "initiatedBy: expected a JSON object", "invalid_field"),
    ],
)
def test_malformed_notifications_are_refused_with_the_reason(
    raw: bytes, fragment: str, error_class: str
) -> None:
    with pytest.raises(PayloadError) as info:
        parse(Inbound("basecamp-alice", raw))
    assert fragment in str(info.value)
    assert info.value.error_class == error_class


def test_multi_source_revision_and_missing_statuses() -> None:
    raw = _edit(
        revision=None,
        revisions=["abc123", "def456"],
        healthStatus=None,
        syncStatus=None,
        initiatedBy=None,
    )
    event = one(raw)
    assert event.data["revision"] == "abc123"
    assert event.data["revisions"] == ["abc123", "def456"]  # a fix to the 2nd source matches
    assert (event.data["health_status"], event.data["sync_status"]) == ("Unknown", "Unknown")
    assert event.data["initiated_by"] == "unknown"


def reconciled_body(**changes: Any) -> bytes:
    """What template.proctor-synced-after-failure posts, as the real Argo CD rendered it
    (test_argocd_real.py::test_reverting_a_failed_sync_is_reported_without_an_operation)."""
    doc: dict[str, Any] = {
        "kind": "proctor.argocd.sync/v1",
        "reconciled": True,
        "app": "revert",
        "appNamespace": "argocd",
        "appUid": "0b5d8f5e-6b0a-4f43-9d3c-5b6f3e2f9a10",
        "project": "default",
        "revision": "5e1f3c0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e",
        "revisions": None,
        "syncStatus": "Synced",
        "healthStatus": "Healthy",
        "reconciledAt": "2026-12-06T12:17:41Z",
    }
    doc.update(changes)
    return json.dumps(doc).encode()


def test_app_synced_without_an_operation_is_a_succeeded_sync_without_resources() -> None:
    event = one(reconciled_body())
    assert event.ts_ms == 1796559461000
    assert dict(event.data) == {
        "app": "revert",
        "project": "default",
        "revision": "5e1f3c0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e",
        "sync_status": "Synced",
        "health_status": "Healthy",
        "phase": "Succeeded",
        "initiated_by": "automated",
        "finished_at": None,
        "resources": [],
        "revisions": ["5e1f3c0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"],
    }
    # one event per app and revision, whenever Argo CD re-sends it
    again = one(reconciled_body(reconciledAt="2026-12-06T12:18:00Z"))
    assert again.event_id == event.event_id
    other = one(reconciled_body(revision="0" * 40))
    assert other.event_id != event.event_id


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"reconciledAt": None}, "reconciledAt"),
        ({"syncStatus": "OutOfSync"}, "syncStatus"),
        ({"revision": None}, "revision"),
    ],
)
def test_reconciled_notification_without_its_facts_is_refused(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse(Inbound("basecamp-alice", reconciled_body(**changes)))


def test_a_later_operation_in_the_same_second_does_not_hide_the_syncs_resources() -> None:
    """Two operations finishing in one second share one notification, whose syncResult is
    the later one's (a self-heal of one resource, seen on the real Argo CD): the resources
    the app manages and reports Synced are added; OutOfSync ones and a failed sync's are
    not."""
    doc = json.loads(body("automated-succeeded"))
    doc["resources"] = [
        {"group": "", "kind": "ConfigMap", "namespace": "pipeline", "name": "lookup-table",
         "status": "Synced"},
    ]  # fmt: skip
    doc["managed"] = [
        {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "pipeline",
         "name": "lookup-table", "status": "Synced", "health": {"status": "Healthy"}},
        {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "flink",
         "name": "ms-api", "status": "Synced"},
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "serving",
         "name": "api", "status": "OutOfSync"},
    ]  # fmt: skip
    event = one(json.dumps(doc).encode())
    got = [(r["namespace"], r["name"]) for r in event.data["resources"]]
    assert got == [("pipeline", "lookup-table"), ("flink", "ms-api")]
    doc["phase"] = "Failed"
    failed = one(json.dumps(doc).encode())
    assert [r["name"] for r in failed.data["resources"]] == ["lookup-table"]
    doc["phase"], doc["managed"] = "Succeeded", {"not": "a list"}
    with pytest.raises(PayloadError, match="managed: expected a JSON array"):
        parse(Inbound("basecamp-alice", json.dumps(doc).encode()))
