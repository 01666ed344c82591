"""Kubernetes audit webhook batches: finished resource requests become k8s.audit events."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.collectors.k8s_audit import field_manager, parse
from services.collectors.webhook_payload import Inbound
from services.contract.schemas import load_contract
from services.errors import PayloadError

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "k8s-audit"


def batch(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_batch_yields_one_event_per_finished_resource_request() -> None:
    parsed = parse(Inbound("basecamp-alice", batch("eventlist-batch.json")))
    assert sorted(parsed.ignored) == ["non-resource request", "stage RequestReceived"]
    assert not parsed.rejected
    assert len(parsed.items) == len(parsed.events) == 5
    contract = load_contract()
    for event in parsed.events:
        contract.to_datum(event)
    apply, argo, forbidden, exec_, listing = parsed.events
    assert dict(apply.data) == {
        "verb": "patch",
        "user": "alice",
        "user_agent": "kubectl/v1.31.0 (linux/amd64) kubernetes/9edcffc",
        "field_manager": "kubectl-client-side-apply",
        "resource": "deployments",
        "subresource": None,
        "namespace": "pipeline",
        "name": "orders-api",
        "response_code": 200,
        "audit_id": "6c2b4d1e-8f3a-4c5b-9d7e-1a2b3c4d5e6f",
        "user_groups": ["system:authenticated"],
        "dry_run": False,
    }
    assert apply.ts_ms == 1795776000004  # stageTimestamp ...10:40:00.004512Z, truncated
    assert argo.data["field_manager"] == "argocd-controller"
    assert argo.data["user"] == "system:serviceaccount:argocd:argocd-application-controller"
    assert forbidden.data["response_code"] == 403 and forbidden.data["verb"] == "delete"
    assert (exec_.data["resource"], exec_.data["subresource"]) == ("pods", "exec")
    assert (listing.data["namespace"], listing.data["name"]) == (None, None)
    assert len({e.event_id for e in parsed.events}) == 5


def test_a_resent_batch_has_the_same_event_ids() -> None:
    raw = batch("eventlist-batch.json")
    first = [e.event_id for e in parse(Inbound("basecamp-alice", raw)).events]
    again = [e.event_id for e in parse(Inbound("basecamp-alice", raw)).events]
    assert first == again


def test_one_bad_item_is_rejected_alone() -> None:
    parsed = parse(Inbound("basecamp-alice", batch("eventlist-one-bad-item.json")))
    assert [e.data["verb"] for e in parsed.events] == ["update"]
    assert len(parsed.rejected) == 1
    bad = parsed.rejected[0]
    assert bad.reason == "items[1].verb: missing"
    assert bad.error_class == "missing_required_field"
    assert json.loads(bad.raw)["auditID"] == "3c8d0e5f-7a92-4b4c-8d3e-6f7a8b9c0d1e"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "not JSON"),
        (json.dumps({"kind": "Event", "apiVersion": "audit.k8s.io/v1"}).encode(), "EventList"),
        (
            json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1"}).encode(),
            "EventList",
        ),
        (
            json.dumps(
                {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": {}}
            ).encode(),
            "items: expected a JSON array",
        ),
    ],
)
def test_malformed_batches_are_refused(raw: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(fragment)):
        parse(Inbound("basecamp-alice", raw))


def test_panic_without_status_is_a_500_and_bad_codes_are_rejected() -> None:
    doc = json.loads(batch("eventlist-one-bad-item.json"))
    panic = dict(doc["items"][0], stage="Panic")
    panic.pop("responseStatus")
    weird = dict(doc["items"][0], auditID="x-1", responseStatus={"code": "OK"})
    raw = json.dumps({**doc, "items": [panic, weird]}).encode()
    parsed = parse(Inbound("basecamp-alice", raw))
    assert [e.data["response_code"] for e in parsed.events] == [500]
    assert (
        parsed.rejected[0].reason == "items[1].responseStatus.code: 'OK' is not an HTTP status code"
    )


@pytest.mark.parametrize(
    ("uri", "manager"),
    [
        (
            "/apis/apps/v1/namespaces/p/deployments/x?fieldManager=kubectl-client-side-apply",
            "kubectl-client-side-apply",
        ),
        ("/apis/apps/v1/namespaces/p/deployments/x?force=true&fieldManager=kubectl", "kubectl"),
        ("/apis/apps/v1/namespaces/p/deployments/x?fieldManager=helm%20v3", "helm v3"),
        ("/apis/apps/v1/namespaces/p/deployments/x", None),
        ("/apis/apps/v1/namespaces/p/deployments/x?fieldManager=", None),
    ],
)
def test_field_manager_from_the_request_uri(uri: str, manager: str | None) -> None:
    assert field_manager(uri) == manager
