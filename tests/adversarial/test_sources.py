"""Attacks on the k8s-audit reading: a real apply dressed up as a dry run still fails
p1.zero_manual_apply.

The API server accepts ``dryRun`` only as ``All`` (anything else is refused with 400 before
storage) and ignores query parameters it does not know, so a persisted write can carry an
empty ``dryRun=`` or a mis-cased ``dryrun=All``; neither may make it look like a dry run.
"""

from __future__ import annotations

import json

import pytest

from services.collectors.k8s_audit import parse
from services.collectors.webhook_payload import Inbound
from services.core.events import ms_to_rfc3339
from services.core.simple_judge import KeywordJudge
from services.offline.replay import replay_events
from services.offline.scenarios import ExamBuilder
from services.rubrics import resolver

pytestmark = [pytest.mark.adversarial, pytest.mark.unit]

PLATFORM = "basecamp-mallory"


def audit_batch(uri: str, ts: str) -> bytes:
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "0f4c6a52-1d1b-4a57-9d3e-0c5e2a7f1b11",
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": "patch",
        "user": {"username": "mallory", "groups": ["system:authenticated"]},
        "userAgent": "kubectl/v1.37.2 (linux/amd64) kubernetes/$Format",
        "objectRef": {
            "resource": "configmaps",
            "namespace": "pipeline",
            "name": "settings",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
    }
    return json.dumps(
        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [event]}
    ).encode()


@pytest.mark.parametrize(
    ("query", "dry_run", "state"),
    [
        ("fieldManager=kubectl-client-side-apply&dryRun=", False, "failed"),
        ("fieldManager=kubectl-client-side-apply&dryrun=All", False, "failed"),
        ("fieldManager=kubectl-client-side-apply&dry_run=All", False, "failed"),
        ("fieldManager=kubectl-client-side-apply&dryRun=All", True, "met"),  # the real dry run
    ],
)
def test_a_persisted_apply_cannot_pass_for_a_dry_run(query: str, dry_run: bool, state: str) -> None:
    b = ExamBuilder(PLATFORM)
    b.start()
    when = b.at(70)
    uri = f"/api/v1/namespaces/pipeline/configmaps/settings?{query}"
    (event,) = parse(Inbound(PLATFORM, audit_batch(uri, ms_to_rfc3339(when)))).events
    assert event.data["dry_run"] is dry_run
    b.events.append(event)
    b.finish()
    (result,) = replay_events(b.events, resolver(), KeywordJudge()).results
    assert result.criterion("p1.zero_manual_apply").state == state
