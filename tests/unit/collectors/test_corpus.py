"""Collectors driven by payloads the systems' own projects publish (tests/fixtures/corpus).

Each corpus file is taken unchanged from the project named in the README beside it; a test
that needs a field the published example lacks says so and adds it here, never in the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.collectors import argocd, gitops, k8s_audit
from services.collectors.flink import job_data
from services.collectors.webhook_payload import Inbound
from services.contract.schemas import load_contract
from services.core.events import rfc3339_to_ms

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "corpus"


def raw(system: str, name: str) -> bytes:
    return (CORPUS / system / name).read_bytes()


def git_delivery(system: str, name: str, header: str, event: str) -> Inbound:
    headers = {header: event, "content-type": "application/json"}
    return Inbound("basecamp-alice", raw(system, name), headers)


# ----------------------------------------------------------------------------- gitops
def test_gitlab_push_to_the_default_branch_is_a_merge() -> None:
    parsed = gitops.parse(git_delivery("gitlab", "push-hook.json", "x-gitlab-event", "Push Hook"))
    (event,) = parsed.events
    load_contract().to_datum(event)
    assert dict(event.data) == {
        "repo": "mike/diaspora",
        "pr_number": None,
        "commit_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "merged_by": "jsmith",
        "files": ["CHANGELOG", "app/controller/application.rb"],
        "merged_at": "2012-01-03T21:36:29.000Z",  # the pushed head's timestamp, +02:00
    }
    assert event.ts_ms == rfc3339_to_ms("2012-01-03T21:36:29Z")


def test_gitlab_opened_merge_request_is_no_merge() -> None:
    parsed = gitops.parse(
        git_delivery("gitlab", "merge-request-hook.json", "x-gitlab-event", "Merge Request Hook")
    )
    assert parsed.events == () and parsed.rejected == ()
    assert parsed.ignored == ("merge_request open",)


def test_gitlab_merged_merge_request() -> None:
    """GitLab's docs show an opened MR; a merged one differs in the fields GitLab documents
    for it (action merge, state merged, merge_commit_sha), added here."""
    doc: dict[str, Any] = json.loads(raw("gitlab", "merge-request-hook.json"))
    doc["object_attributes"].update(
        action="merge",
        state="merged",
        merge_commit_sha="2a0a6a1b7b7e4d8f9c3d6e5f4a3b2c1d0e9f8a7b",
        updated_at="2013-12-03T18:00:00Z",
    )
    inbound = Inbound(
        "basecamp-alice",
        json.dumps(doc).encode(),
        {"x-gitlab-event": "Merge Request Hook", "content-type": "application/json"},
    )
    (event,) = gitops.parse(inbound).events
    load_contract().to_datum(event)
    assert dict(event.data) == {
        "repo": "gitlabhq/gitlab-test",
        "pr_number": 1,
        "commit_sha": "2a0a6a1b7b7e4d8f9c3d6e5f4a3b2c1d0e9f8a7b",
        "merged_by": "root",
        "files": [],
        "merged_at": "2013-12-03T18:00:00.000Z",
    }


def test_gogs_push_without_head_commit_is_a_merge() -> None:
    parsed = gitops.parse(git_delivery("gogs", "push.json", "x-gogs-event", "push"))
    (event,) = parsed.events
    load_contract().to_datum(event)
    assert dict(event.data) == {
        "repo": "alice/moonlanding",
        "pr_number": None,
        "commit_sha": "bffeb74224043ba2feb48d137756c8a9331c449a",
        "merged_by": "alice",
        "files": [],  # Gogs lists no added/modified/removed per commit
        "merged_at": "2017-03-13T17:52:11.000Z",
    }


@pytest.mark.parametrize("header", ["x-gitea-event", "x-gogs-event", "x-github-event"])
def test_gitea_push_to_another_branch_is_no_merge(header: str) -> None:
    """Gitea sends all three event headers; the documented push is to 'develop'."""
    parsed = gitops.parse(git_delivery("gitea", "push.json", header, "push"))
    assert parsed.events == () and parsed.ignored == ("push to refs/heads/develop",)


# ----------------------------------------------------------------------------- argocd
def multi_source_application() -> dict[str, Any]:
    """The documented multi-source Application with the documented multi-source sync
    result under its status; the phase and times a finished sync also has are added."""
    app: dict[str, Any] = yaml.safe_load(raw("argocd", "multiple-sources-application.yaml"))
    status: dict[str, Any] = yaml.safe_load(raw("argocd", "multi-source-sync-result-status.yaml"))
    app["status"] = status["status"]
    app["status"]["operationState"].update(
        phase="Succeeded",
        startedAt="2026-11-27T10:29:50Z",
        finishedAt="2026-11-27T10:30:00Z",
    )
    return app


def notification(app: dict[str, Any]) -> bytes:
    """The body k8s/argocd/notifications-template.yaml renders for ``app`` (the same dig
    paths; tests/fixtures/argocd checks the template against real renders)."""

    def dig(*path: str) -> Any:
        node: Any = app
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    op = ("status", "operationState")
    return json.dumps(
        {
            "kind": "proctor.argocd.sync/v1",
            "app": app["metadata"]["name"],
            "appNamespace": dig("metadata", "namespace"),
            "appUid": dig("metadata", "uid"),
            "project": dig("spec", "project") or "default",
            "revision": dig(*op, "syncResult", "revision"),
            "revisions": dig(*op, "syncResult", "revisions"),
            "syncStatus": dig("status", "sync", "status"),
            "healthStatus": dig("status", "health", "status"),
            "phase": dig(*op, "phase"),
            "message": dig(*op, "message"),
            "initiatedBy": dig(*op, "operation", "initiatedBy"),
            "operationRevision": dig(*op, "operation", "sync", "revision"),
            "startedAt": dig(*op, "startedAt"),
            "finishedAt": dig(*op, "finishedAt"),
            "resources": dig(*op, "syncResult", "resources"),
        }
    ).encode()


def test_multi_source_sync_keeps_every_source_revision() -> None:
    app = multi_source_application()
    assert len(app["spec"]["sources"]) == 2
    (event,) = argocd.parse(Inbound("basecamp-alice", notification(app))).events
    load_contract().to_datum(event)
    sha = "38cfa22edf9148caabfecb288bfb47dc4352dfc6"
    assert event.data["revision"] == sha
    assert event.data["revisions"] == [sha, sha]  # one per source, in spec.sources order
    assert event.data["phase"] == "Succeeded" and event.data["app"] == "my-billing-app"


# ----------------------------------------------------------------------------- flink
def test_streaming_job_without_checkpointing_answers_long_max() -> None:
    """A streaming job that never called enableCheckpointing answers /checkpoints/config
    with 200 and Flink's 'disabled' interval, Long.MAX_VALUE; the mode there is a default."""
    config = {"mode": "exactly_once", "interval": 9223372036854775807, "timeout": 600000}
    job = {"jid": "a" * 32, "name": "j", "state": "RUNNING"}
    data = job_data(job, {"plan": {}}, config)
    assert (data["checkpointing_mode"], data["checkpoint_interval_ms"]) == (None, None)
    on = job_data(job, {"plan": {}}, {"mode": "exactly_once", "interval": 500})
    assert (on["checkpointing_mode"], on["checkpoint_interval_ms"]) == ("exactly_once", 500)


# ----------------------------------------------------------------------------- k8s-audit
def test_real_api_server_batch_tells_dry_runs_and_windows_kubectl_apart() -> None:
    """The EventList of a session against a real kube-apiserver v1.37.2 (see the README)."""
    parsed = k8s_audit.parse(
        Inbound("basecamp-alice", raw("k8s-audit", "kubectl-session.eventlist.json"))
    )
    assert parsed.rejected == () and len(parsed.events) == 9
    for event in parsed.events:
        load_contract().to_datum(event)
    alice = [e.data for e in parsed.events if e.data["user"] == "alice"]
    dry = [d for d in alice if d["dry_run"]]
    assert [(d["verb"], d["name"]) for d in dry] == [
        ("patch", "settings"),  # apply --dry-run=server
        ("patch", "settings"),  # diff
        ("create", "new-one"),  # apply --dry-run=server of a new object
    ]
    assert {d["field_manager"] for d in dry} == {"kubectl-client-side-apply"}
    real = [(d["verb"], d["field_manager"], d["name"]) for d in alice if not d["dry_run"]]
    assert real == [
        ("patch", "kubectl-client-side-apply", "settings"),  # apply
        ("patch", "kubectl", "other"),  # apply --server-side
        ("create", "kubectl-client-side-apply", "windows"),  # apply, as kubectl.exe
    ]
    assert alice[-1]["user_agent"].startswith("kubectl.exe/")
    argo = [e.data for e in parsed.events if e.data["user"].startswith("system:serviceaccount:")]
    assert len(argo) == 3 and not any(d["dry_run"] for d in argo)


class _FakeFlinkRest:
    """Answers of a JobManager with one sound job and one whose plan is not an object."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def request(self, method: str, path: str, allow: tuple[int, ...] = ()) -> tuple[int, Any]:
        if path not in self.answers:
            return 404, None
        return 200, self.answers[path]

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path)[1]

    def close(self) -> None:
        pass


def test_one_unreadable_flink_job_does_not_stop_the_others() -> None:
    from services.collectors.flink import FlinkCollector, Settings
    from services.collectors.http import SourceError

    good, bad = "a" * 32, "b" * 32
    off = {"mode": "exactly_once", "interval": 9223372036854775807}
    answers: dict[str, Any] = {
        "/jobs/overview": {
            "jobs": [
                {"jid": bad, "name": "broken", "state": "RUNNING", "last-modification": 1},
                {"jid": good, "name": "orders", "state": "RUNNING", "last-modification": 2},
            ]
        },
        f"/jobs/{bad}/plan": ["not", "an", "object"],
        f"/jobs/{good}/plan": {"plan": {"nodes": []}},
        f"/jobs/{good}/checkpoints/config": off,
    }
    collector = FlinkCollector(Settings(url="http://flink.invalid:8081"), "basecamp-alice")
    collector.http = _FakeFlinkRest(answers)  # type: ignore[assignment]
    result = collector.poll({})
    (job,) = [e for e in result.events if e.type == "flink.job"]
    assert job.data["job_id"] == good and job.data["checkpointing_mode"] is None
    assert bad not in result.position and result.lag == 1  # read again next poll
    answers["/jobs/overview"]["jobs"] = answers["/jobs/overview"]["jobs"][:1]
    with pytest.raises(SourceError, match="no Flink job could be read"):
        collector.poll({})
