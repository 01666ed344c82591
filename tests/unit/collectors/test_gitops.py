"""Git host webhooks: merged pull requests and pushes to the default branch."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from services.collectors.gitops import parse
from services.collectors.webhook_payload import Inbound
from services.contract.schemas import load_contract
from services.errors import PayloadError

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "gitops"
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"


def deliver(name: str, event: str, header: str = "x-github-event", **extra: str) -> Inbound:
    body = (FIXTURES / f"{name}.json").read_bytes()
    return Inbound(
        "basecamp-alice", body, {header: event, "content-type": "application/json", **extra}
    )


def test_merged_pull_request() -> None:
    parsed = parse(deliver("pull_request-merged", "pull_request"))
    (event,) = parsed.events
    load_contract().to_datum(event)
    assert event.ts_ms == 1795784400000
    assert dict(event.data) == {
        "repo": "alice/basecamp",
        "pr_number": 118,
        "commit_sha": SHA,
        "merged_by": "alice",
        "files": [],
        "merged_at": "2026-11-27T13:00:00.000Z",
    }


def test_push_to_the_default_branch_lists_changed_files_once() -> None:
    (event,) = parse(deliver("push-main", "push")).events
    load_contract().to_datum(event)
    assert event.data["commit_sha"] == SHA and event.data["pr_number"] is None
    assert event.data["files"] == [
        "apps/trino/analyze-job.yaml",
        "apps/trino/kustomization.yaml",
        "apps/trino/old-analyze.yaml",
    ]
    assert event.ts_ms == 1795784400000  # repository.pushed_at (epoch seconds)


def test_pr_and_push_of_one_merge_are_two_events_of_one_commit() -> None:
    (pr,) = parse(deliver("pull_request-merged", "pull_request")).events
    (push,) = parse(deliver("push-main", "push")).events
    assert pr.data["commit_sha"] == push.data["commit_sha"]
    assert pr.event_id != push.event_id
    assert pr.event_id == parse(deliver("pull_request-merged", "pull_request")).events[0].event_id


@pytest.mark.parametrize(
    ("name", "event", "reason"),
    [
        ("ping", "ping", "ping"),
        ("push-feature-branch", "push", "push to refs/heads/fix/analyze"),
        ("pull_request-closed-unmerged", "pull_request", "pull_request closed without merge"),
        ("pull_request-merged", "issues", "issues event"),
    ],
)
def test_deliveries_that_are_not_merges_are_ignored(name: str, event: str, reason: str) -> None:
    parsed = parse(deliver(name, event))
    assert parsed.events == () and parsed.ignored == (reason,)


def test_gitea_headers_and_form_encoded_bodies() -> None:
    (event,) = parse(deliver("push-main", "push", header="x-gitea-event")).events
    assert event.data["commit_sha"] == SHA
    raw = (FIXTURES / "pull_request-merged.json").read_text()
    form = Inbound(
        "basecamp-alice",
        urlencode({"payload": raw}).encode(),
        {"x-github-event": "pull_request", "content-type": "application/x-www-form-urlencoded"},
    )
    assert parse(form).events[0].data["pr_number"] == 118


def test_push_time_falls_back_to_the_head_commit() -> None:
    doc = json.loads((FIXTURES / "push-main.json").read_text())
    del doc["repository"]["pushed_at"]
    inbound = Inbound("basecamp-alice", json.dumps(doc).encode(), {"x-github-event": "push"})
    assert parse(inbound).events[0].ts_ms == 1795784400000  # 14:00+01:00


def test_branch_deletion_is_ignored() -> None:
    doc = json.loads((FIXTURES / "push-main.json").read_text())
    doc.update(deleted=True, after="0" * 40)
    inbound = Inbound("basecamp-alice", json.dumps(doc).encode(), {"x-github-event": "push"})
    assert parse(inbound).ignored == ("branch deleted",)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda d: d["pull_request"].pop("merge_commit_sha"),
            "pull_request.merge_commit_sha: missing",
        ),
        (lambda d: d["pull_request"].update(merged_at="soon"), "pull_request.merged_at: 'soon'"),
        (lambda d: d.pop("repository"), "repository: missing"),
        (
            lambda d: d["pull_request"].update(number="118"),
            "pull_request.number: expected an integer",
        ),
    ],
)
def test_malformed_merges_are_refused(mutate: object, fragment: str) -> None:
    doc = json.loads((FIXTURES / "pull_request-merged.json").read_text())
    mutate(doc)  # type: ignore[operator]
    inbound = Inbound(
        "basecamp-alice", json.dumps(doc).encode(), {"x-github-event": "pull_request"}
    )
    with pytest.raises(PayloadError, match=re.escape(fragment)):
        parse(inbound)


def test_a_delivery_without_event_header_is_refused() -> None:
    with pytest.raises(PayloadError, match="X-GitHub-Event"):
        parse(Inbound("basecamp-alice", b"{}", {}))
