"""Merges to the GitOps repository from the Git host's webhook: ``gitops.merge`` on ``platform.gitops``.

GitHub-style deliveries (GitHub, and Gitea/Forgejo which send the same payloads), signed
with the shared secret (``X-Hub-Signature-256: sha256=<hex>``, or Gitea's
``X-Gitea-Signature``):

- ``pull_request`` with action ``closed`` and ``merged: true``: the merge, with its PR
  number, ``merge_commit_sha`` and who merged it (a pull_request payload lists no files);
- ``push`` to the repository's default branch: the pushed head, with the files the
  pushed commits added, modified or removed.

GitLab deliveries (``X-Gitlab-Event``; the body's ``object_kind`` says what it is):

- ``merge_request`` with ``object_attributes.action: merge``: the merge, with the MR's
  ``iid``, ``merge_commit_sha`` and the user who merged it (``user.username``);
- ``push`` to the project's default branch: ``checkout_sha``/``after``, ``user_username``,
  and the files of the pushed commits.

Gogs pushes (``X-Gogs-Event``) carry no ``head_commit``: the push time is the timestamp
of the pushed head among ``commits``.

A merged pull request also produces a push of the same commit; both are kept (their
event ids differ: ``pr:<repo>#<n>`` and ``push:<repo>@<sha>``) and consumers key merges
by ``commit_sha``. Pings, other actions, branches and tags are authentic but carry no
merge: answered 200 and counted as ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

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
    opt_str,
    req_int,
    req_str,
    timestamp_ms,
)
from services.core.events import Event, ms_to_rfc3339
from services.errors import PayloadError

NAME = "gitops"
EVENT_HEADERS = ("x-github-event", "x-gitea-event", "x-gogs-event")
GITLAB_HEADER = "x-gitlab-event"
ZERO_SHA = "0" * 40


def _body(inbound: Inbound) -> Any:
    """The JSON payload; GitHub can also send it form-encoded as ``payload=<json>``."""
    ctype = (inbound.header("content-type") or "").split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(inbound.body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise PayloadError(f"form body is not UTF-8 ({exc})", "corrupt_bytes") from exc
        if "payload" not in fields:
            raise PayloadError("form body has no 'payload' field", "missing_required_field")
        return load_json(fields["payload"][0].encode(), "Git webhook payload")
    return load_json(inbound.body, "Git webhook payload")


def _repo(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj(doc, "repository", "")


def _merged_pull_request(doc: Mapping[str, Any], platform_id: str) -> Event | str:
    if doc.get("action") != "closed":
        return f"pull_request {doc.get('action')}"
    pr = obj(doc, "pull_request", "")
    if pr.get("merged") is not True:
        return "pull_request closed without merge"
    repo = req_str(_repo(doc), "full_name", "repository")
    number = req_int(pr, "number", "pull_request")
    merged_at = timestamp_ms(req_str(pr, "merged_at", "pull_request"), "pull_request.merged_at")
    merger = pr.get("merged_by") or doc.get("sender")
    merged_by = req_str(
        as_object(merger, "pull_request.merged_by"), "login", "pull_request.merged_by"
    )
    data = {
        "repo": repo,
        "pr_number": number,
        "commit_sha": req_str(pr, "merge_commit_sha", "pull_request"),
        "merged_by": merged_by,
        "files": [],
        "merged_at": ms_to_rfc3339(merged_at),
    }
    eid = event_id(NAME, platform_id, f"pr:{repo}#{number}")
    return Event("gitops.merge", platform_id, eid, merged_at, data)


def _files(commits: list[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for i, raw in enumerate(commits):
        commit = as_object(raw, f"commits[{i}]")
        for key in ("added", "modified", "removed"):
            for path in as_list(commit.get(key), f"commits[{i}].{key}"):
                if isinstance(path, str):
                    seen.setdefault(path, None)
    return list(seen)


def _pusher(doc: Mapping[str, Any]) -> str:
    """Who pushed: the sender's login (GitHub, Gitea), else the pusher's name."""
    for key, names in (("sender", ("login", "username")), ("pusher", ("name", "username"))):
        who = doc.get(key)
        if isinstance(who, Mapping):
            for name in names:
                value = who.get(name)
                if isinstance(value, str) and value:
                    return value
    raise PayloadError("sender.login and .pusher.name: both missing", "missing_required_field")


def _pushed_head_time(commits: list[Any], after: str) -> int:
    """The timestamp of the pushed head among ``commits`` (Gogs and GitLab send no
    ``head_commit``); the newest commit's when the head is not listed (GitLab lists
    only the newest 20)."""
    listed = [c for c in commits if isinstance(c, Mapping)]
    head = next((c for c in listed if c.get("id") == after), listed[-1] if listed else None)
    if head is None or not head.get("timestamp"):
        raise PayloadError(
            "push has no repository.pushed_at, head_commit.timestamp or timestamp of the "
            "pushed commit",
            "missing_required_field",
        )
    return timestamp_ms(head["timestamp"], "commits[].timestamp")


def _push(doc: Mapping[str, Any], platform_id: str) -> Event | str:
    ref = req_str(doc, "ref", "")
    repository = _repo(doc)
    branch = opt_str(repository, "default_branch", "repository") or opt_str(
        repository, "master_branch", "repository"
    )
    default_refs = {f"refs/heads/{branch}"} if branch else {"refs/heads/main", "refs/heads/master"}
    if ref not in default_refs:
        return f"push to {ref}"
    after = req_str(doc, "after", "")
    if doc.get("deleted") is True or after == ZERO_SHA:
        return "branch deleted"
    repo = req_str(repository, "full_name", "repository")
    head = doc.get("head_commit")
    pushed_at = repository.get("pushed_at")
    if isinstance(pushed_at, int) and not isinstance(pushed_at, bool):
        ts = pushed_at * 1000  # GitHub sends the push time as epoch seconds here
    elif isinstance(head, Mapping) and head.get("timestamp"):
        ts = timestamp_ms(head["timestamp"], "head_commit.timestamp")
    else:
        ts = _pushed_head_time(as_list(doc.get("commits"), "commits"), after)
    merged_by = _pusher(doc)
    data = {
        "repo": repo,
        "pr_number": None,
        "commit_sha": after,
        "merged_by": merged_by,
        "files": _files(as_list(doc.get("commits"), "commits")),
        "merged_at": ms_to_rfc3339(ts),
    }
    return Event(
        "gitops.merge", platform_id, event_id(NAME, platform_id, f"push:{repo}@{after}"), ts, data
    )


def _gitlab_merge_request(doc: Mapping[str, Any], platform_id: str) -> Event | str:
    attrs = obj(doc, "object_attributes", "")
    action = attrs.get("action")
    if action != "merge":
        return f"merge_request {action}"
    project = obj(doc, "project", "")
    repo = req_str(project, "path_with_namespace", "project")
    number = req_int(attrs, "iid", "object_attributes")
    when = opt_str(attrs, "merged_at", "object_attributes") or req_str(
        attrs, "updated_at", "object_attributes"
    )
    merged_at = timestamp_ms(when, "object_attributes.merged_at")
    data = {
        "repo": repo,
        "pr_number": number,
        "commit_sha": req_str(attrs, "merge_commit_sha", "object_attributes"),
        "merged_by": req_str(obj(doc, "user", ""), "username", "user"),
        "files": [],
        "merged_at": ms_to_rfc3339(merged_at),
    }
    eid = event_id(NAME, platform_id, f"pr:{repo}#{number}")
    return Event("gitops.merge", platform_id, eid, merged_at, data)


def _gitlab_push(doc: Mapping[str, Any], platform_id: str) -> Event | str:
    project = obj(doc, "project", "")
    branch = opt_str(project, "default_branch", "project")
    ref = req_str(doc, "ref", "")
    default_refs = {f"refs/heads/{branch}"} if branch else {"refs/heads/main", "refs/heads/master"}
    if ref not in default_refs:
        return f"push to {ref}"
    after = req_str(doc, "after", "")
    if after == ZERO_SHA:
        return "branch deleted"
    repo = req_str(project, "path_with_namespace", "project")
    commits = as_list(doc.get("commits"), "commits")
    ts = _pushed_head_time(commits, after)
    data = {
        "repo": repo,
        "pr_number": None,
        "commit_sha": opt_str(doc, "checkout_sha", "") or after,
        "merged_by": opt_str(doc, "user_username", "") or req_str(doc, "user_name", ""),
        "files": _files(commits),
        "merged_at": ms_to_rfc3339(ts),
    }
    sha = data["commit_sha"]
    return Event(
        "gitops.merge", platform_id, event_id(NAME, platform_id, f"push:{repo}@{sha}"), ts, data
    )


def _gitlab(inbound: Inbound) -> Parsed:
    """A GitLab delivery: what it is comes from the body's object_kind (the header names
    the hook, e.g. 'Merge Request Hook', and system hooks send 'System Hook' for all)."""
    doc = as_object(_body(inbound), "body")
    kind = doc.get("object_kind")
    if kind == "merge_request":
        result = _gitlab_merge_request(doc, inbound.platform_id)
    elif kind == "push":
        result = _gitlab_push(doc, inbound.platform_id)
    else:
        return Parsed(ignored=(f"{kind or inbound.header(GITLAB_HEADER)} event",))
    if isinstance(result, str):
        return Parsed(ignored=(result,))
    return Parsed(events=(result,))


def parse(inbound: Inbound) -> Parsed:
    """One delivery -> a gitops.merge, or nothing for deliveries that are not merges."""
    if inbound.header(GITLAB_HEADER):
        return _gitlab(inbound)
    kind = next((inbound.header(h) for h in EVENT_HEADERS if inbound.header(h)), None)
    if kind is None:
        raise PayloadError(
            "no X-GitHub-Event, X-Gitea-Event, X-Gogs-Event or X-Gitlab-Event header: not "
            "a Git host webhook delivery",
            "missing_required_field",
        )
    if kind == "ping":
        return Parsed(ignored=("ping",))
    if kind not in ("pull_request", "push"):
        return Parsed(ignored=(f"{kind} event",))
    doc = as_object(_body(inbound), "body")
    if kind == "pull_request":
        result = _merged_pull_request(doc, inbound.platform_id)
    else:
        result = _push(doc, inbound.platform_id)
    if isinstance(result, str):
        return Parsed(ignored=(result,))
    return Parsed(events=(result,))


SOURCE = WebhookSource(
    name=NAME,
    path="/gitops",
    event_types=("gitops.merge",),
    auth=AuthScheme(
        "hmac-sha256",
        signatures=(
            ("X-Hub-Signature-256", "sha256="),
            ("X-Gitea-Signature", ""),
            ("X-Gogs-Signature", ""),
        ),
        tokens=("X-Gitlab-Token",),
    ),
    parse=parse,
    default_port=18093,
    summary="Receive Git host webhooks (merged pull requests, pushes).",
)

command = receiver_command(
    NAME,
    [SOURCE],
    "Receive the Git host's webhook (pull_request and push events, content type "
    "application/json) and publish gitops.merge events.\n\n"
    "Set the webhook URL to /platforms/<platform_id>/gitops and its secret to the "
    "receiver's secret; deliveries are checked with X-Hub-Signature-256.",
)
