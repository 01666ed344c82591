"""A real Argo CD v3.6.2 syncing real commits into a real kube-apiserver, its notifications
controller posting k8s/argocd/notifications-template.yaml's body to the argocd receiver;
the argocd.sync events read back from the broker are graded by the core.

Shown: an automated sync of a commit is ``p1.argocd_deployed`` met; a fix merged (a real
merge commit, with the Git host's merge delivery from GitLab's documented example) and
synced is ``p2.fix_via_gitops`` met; a commit with an invalid manifest is a Failed sync
that meets nothing; a multi-source application whose sources sit at different commits
reports both. Needs scripts/build-argocd.sh's cached binary (skipped without it) and
scripts/build-kube.sh's (built when missing).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from services.collectors import argocd, gitops
from services.collectors.webhook import ReceiverSettings
from services.collectors.webhook_auth import secret_env
from services.collectors.webhook_payload import Inbound
from services.collectors.webhook_run import BackgroundReceiver, build_receiver
from services.core.events import Event
from services.core.simple_judge import KeywordJudge
from services.offline.replay import replay_events
from services.offline.scenarios import ExamBuilder
from services.platform.argocd import NotificationSink, application
from services.rubrics import resolver
from tests.integration.collectors.conftest import Env, contract_env

if TYPE_CHECKING:
    from tests.platform_fixtures.argocd import ArgoPlatform

pytest_plugins = ["tests.platform_fixtures.argocd"]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "it-argocd-" + uuid.uuid4().hex
PLATFORM = f"basecamp-{uuid.uuid4().hex[:8]}"
TOPICS = ("platform.argocd", "platform.collectors", "grading.dlq")
TYPES = ["argocd.sync", "collector.heartbeat", "grading.dead_letter"]
#: the pipeline namespaces the offline builder's pipeline.declared names
NAMESPACES = ("pipeline", "flink")
CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"


def namespace(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


def configmap(name: str, ns: str, value: str) -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
        f"data:\n  value: {value!r}\n"
    )


def service(name: str, ns: str) -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
        "spec:\n  selector: {app: " + name + "}\n  ports: [{port: 8080}]\n"
    )


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, registry_url: str) -> Iterator[Env]:
    with contract_env(kafka_bootstrap, registry_url, "argo", TOPICS, TYPES) as e:
        yield e


@dataclass
class Rig:
    platform: ArgoPlatform
    env: Env

    def syncs(
        self, app: str, ready: Callable[[list[Event]], bool], timeout_s: float = 180.0
    ) -> list[Event]:
        """The argocd.sync events of ``app`` on the topic, once ``ready`` holds for them."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.platform.argo.check_running()
            events = [
                e
                for e in self.env.read("platform.argocd", PLATFORM)
                if e.type == "argocd.sync" and e.data["app"] == app
            ]
            if ready(events):
                return events
            if time.monotonic() > deadline:
                status = self.platform.argo.app(app).get("status", {})
                raise AssertionError(
                    f"no matching argocd.sync of {app}: {[e.data for e in events]}\n"
                    f"application status: {json.dumps(status)[:3000]}\n"
                    f"notifications log:\n{self.platform.argo.log('notifications', 3000)}"
                )
            time.sleep(1.0)

    def dead_letters(self) -> list[Event]:
        return [e for e in self.env.read("grading.dlq") if e.type == "grading.dead_letter"]


@pytest.fixture(scope="module")
def rig(env: Env, argocd_platform: Callable[[NotificationSink], ArgoPlatform]) -> Iterator[Rig]:
    receiver = build_receiver(
        [argocd.SOURCE],
        env.settings,
        ReceiverSettings(platforms=(PLATFORM,), heartbeat_s=3600.0),
        env={secret_env(argocd.NAME): SECRET},
    )
    # Argo CD holds the platform's own secret, derived per platform (the default)
    token = receiver.secrets.secret(argocd.NAME, PLATFORM, 1)
    with BackgroundReceiver(receiver) as port:
        sink = NotificationSink(f"http://127.0.0.1:{port}/platforms/{PLATFORM}", token)
        platform = argocd_platform(sink)
        # the pipeline's namespaces come from the repository too (Argo CD syncs them)
        platform.git.commit({f"base/{ns}.yaml": namespace(ns) for ns in NAMESPACES}, "namespaces")
        platform.argo.apply(application("base", platform.git.url, "base", "default"))
        platform.argo.wait_app(
            "base", lambda a: a.get("status", {}).get("sync", {}).get("status") == "Synced"
        )
        yield Rig(platform, env)


def grade(events: list[Event], criterion: str, fault_before_ms: int | None = None) -> Any:
    """``criterion`` over an exam around ``events``: Part 1 spans them; with
    ``fault_before_ms`` the fault is injected a minute before it, so Part 2 spans them."""
    first = min(e.ts_ms for e in events)
    if fault_before_ms is None:
        b = ExamBuilder(PLATFORM, start_ms=first - 3 * 60_000)
        b.start()
    else:
        b = ExamBuilder(PLATFORM, start_ms=fault_before_ms - 182 * 60_000)
        b.start()
        b.control(
            "fault.injected",
            181,
            fault_id="fault-1",
            layer="flink",
            kind="bad_config",
            target="orders-enrich",
            note="flink/bad_config injected by the proctor",
        )
    b.events.extend(events)
    b.finish()
    (exam,) = replay_events(b.events, resolver(), KeywordJudge()).results
    return exam.criterion(criterion)


def _for(rev: str) -> Callable[[list[Event]], bool]:
    return lambda es: any(e.data["revision"] == rev and e.data["phase"] != "Running" for e in es)


def test_automated_sync_of_a_commit_is_argocd_deployed(rig: Rig) -> None:
    git, argo = rig.platform.git, rig.platform.argo
    sha = git.commit(
        {
            "apps/orders/config.yaml": configmap("orders-config", "pipeline", "v1"),
            "apps/orders/api.yaml": service("orders-api", "pipeline"),
            "apps/orders/job.yaml": configmap("orders-enrich", "flink", "v1"),
        },
        "orders pipeline v1",
    )
    argo.apply(application("orders", git.url, "apps/orders", "pipeline"))
    (sync,) = [e for e in rig.syncs("orders", _for(sha)) if e.data["revision"] == sha]
    d = sync.data
    assert d["project"] == "default"
    assert d["revisions"] == [sha]  # a single-source app: syncResult.revision only
    assert (d["phase"], d["sync_status"], d["health_status"]) == ("Succeeded", "Synced", "Healthy")
    assert d["initiated_by"] == "automated"
    assert d["finished_at"] is not None
    assert sync.ts_ms == pytest.approx(
        dt.datetime.fromisoformat(d["finished_at"]).timestamp() * 1000, abs=1
    )
    got = {(r["kind"], r["namespace"], r["name"], r["status"]) for r in d["resources"]}
    assert got == {
        ("ConfigMap", "pipeline", "orders-config", "Synced"),
        ("Service", "pipeline", "orders-api", "Synced"),
        ("ConfigMap", "flink", "orders-enrich", "Synced"),
    }
    # the objects are really there, carrying Argo CD's tracking label
    live = json.loads(
        argo.kubectl("get", "configmap", "orders-config", "-n", "pipeline", "-o", "json")
    )
    assert live["data"] == {"value": "v1"}
    tracking = live["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"]
    assert tracking.startswith("orders:/ConfigMap:pipeline/orders-config"), tracking

    c = grade([sync], "p1.argocd_deployed")
    assert c.state == "met", c.reason
    assert not rig.dead_letters()


def gitlab_merge(sha: str, merged_at: dt.datetime) -> Event:
    """The Git host's delivery for the merge: GitLab's documented merge request example with
    the fields GitLab documents for a merged one (as tests/unit/collectors/test_corpus.py),
    carrying the real merge commit."""
    doc: dict[str, Any] = json.loads((CORPUS / "gitlab" / "merge-request-hook.json").read_text())
    doc["object_attributes"].update(
        action="merge",
        state="merged",
        merge_commit_sha=sha,
        updated_at=merged_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    inbound = Inbound(
        PLATFORM,
        json.dumps(doc).encode(),
        {"x-gitlab-event": "Merge Request Hook", "content-type": "application/json"},
    )
    (event,) = gitops.parse(inbound).events
    return event


def test_broken_commit_fails_and_a_merged_fix_is_a_gitops_fix(rig: Rig) -> None:
    git, argo = rig.platform.git, rig.platform.argo
    good = git.commit(
        {"apps/enrich/job.yaml": configmap("enrich-settings", "flink", "parallelism=2")},
        "enrich settings",
    )
    argo.apply(application("enrich", git.url, "apps/enrich", "flink"))
    rig.syncs("enrich", _for(good))

    # the fault: a manifest the API server refuses (an invalid name)
    bad = git.commit(
        {"apps/enrich/broken.yaml": configmap("Enrich_Settings", "flink", "x")}, "broken"
    )
    argo.refresh("enrich")
    (failed,) = [e for e in rig.syncs("enrich", _for(bad)) if e.data["revision"] == bad]
    d = failed.data
    assert d["phase"] == "Failed", d
    assert d["initiated_by"] == "automated"
    statuses = {r["name"]: r["status"] for r in d["resources"]}
    assert statuses["Enrich_Settings"] == "SyncFailed"
    state = grade([failed], "p1.argocd_deployed")
    assert state.state != "met", state.reason

    # the fix: a branch merged with a merge commit, as a Git host merges a pull request.
    # It changes the live state too: a merge that only reverts to what is live leaves the
    # app Synced at the merge without any sync operation, so Argo CD notifies nothing
    # (seen on this Argo CD; docs/collectors.md)
    git.commit(
        {
            "apps/enrich/broken.yaml": None,
            "apps/enrich/job.yaml": configmap("enrich-settings", "flink", "parallelism=4"),
        },
        "remove the broken manifest, raise the parallelism",
        branch="fix",
    )
    merge = git.merge("fix", "Merge branch 'fix'")
    merge_event = gitlab_merge(merge, dt.datetime.now(dt.UTC))
    argo.refresh("enrich")
    (fixed,) = [e for e in rig.syncs("enrich", _for(merge)) if e.data["revision"] == merge]
    assert (fixed.data["phase"], fixed.data["health_status"]) == ("Succeeded", "Healthy")
    after = {r["name"]: r["status"] for r in fixed.data["resources"]}
    assert after == {"enrich-settings": "Synced"}, fixed.data["resources"]
    assert merge_event.data["commit_sha"] == merge

    c = grade([merge_event, fixed], "p2.fix_via_gitops", fault_before_ms=merge_event.ts_ms)
    assert c.state == "met", c.reason
    assert merge[:12] in c.reason
    # the failed sync of the broken commit is no fix, even with a merge of that commit
    bad_merge = gitlab_merge(bad, dt.datetime.now(dt.UTC))
    c = grade([bad_merge, failed], "p2.fix_via_gitops", fault_before_ms=bad_merge.ts_ms)
    assert c.state != "met", c.reason


def test_reverting_a_failed_sync_is_reported_without_an_operation(rig: Rig) -> None:
    """A merge that only removes the manifest a failed sync choked on makes Git equal to
    what is live: Argo CD shows the app Synced at the merge and runs no sync. The
    template's second trigger reports that, so the revert grades as a GitOps fix."""
    git, argo = rig.platform.git, rig.platform.argo
    good = git.commit(
        {"apps/revert/cm.yaml": configmap("revert-settings", "flink", "v1")}, "revert app"
    )
    argo.apply(application("revert", git.url, "apps/revert", "flink"))
    rig.syncs("revert", _for(good))
    bad = git.commit({"apps/revert/bad.yaml": configmap("Bad_Name", "flink", "x")}, "broken")
    argo.refresh("revert")
    (failed,) = [e for e in rig.syncs("revert", _for(bad)) if e.data["revision"] == bad]
    assert failed.data["phase"] == "Failed"

    git.commit({"apps/revert/bad.yaml": None}, "revert the broken manifest", branch="revert")
    merge = git.merge("revert", "Merge branch 'revert'")
    merge_event = gitlab_merge(merge, dt.datetime.now(dt.UTC))
    argo.refresh("revert")
    app = argo.wait_app(
        "revert",
        lambda a: (
            a.get("status", {}).get("sync", {}).get("revision") == merge
            and a["status"]["sync"].get("status") == "Synced"
        ),
    )
    assert app["status"]["operationState"]["phase"] == "Failed"  # no sync operation ran
    (synced,) = [e for e in rig.syncs("revert", _for(merge)) if e.data["revision"] == merge]
    d = synced.data
    assert (d["phase"], d["sync_status"], d["health_status"]) == ("Succeeded", "Synced", "Healthy")
    assert (d["finished_at"], d["resources"], d["revisions"]) == (None, [], [merge])
    assert d["initiated_by"] == "automated"
    c = grade([merge_event, synced], "p2.fix_via_gitops", fault_before_ms=merge_event.ts_ms)
    assert c.state == "met", c.reason
    c = grade([synced], "p1.argocd_deployed")  # nothing was deployed by it
    assert c.state != "met", c.reason


def test_multi_source_app_reports_every_source_revision(rig: Rig) -> None:
    git, argo = rig.platform.git, rig.platform.argo
    pinned = git.commit(
        {"apps/ms-lookup/cm.yaml": configmap("lookup-table", "pipeline", "v1")}, "lookup v1"
    )
    head = git.commit(
        {"apps/ms-api/cm.yaml": configmap("ms-api", "pipeline", "v1")}, "api on its own source"
    )
    app = application("multi", git.url, ["apps/ms-api", "apps/ms-lookup"], "pipeline")
    # the second source stays on the older commit: the two sources sync different commits
    app["spec"]["sources"][1]["targetRevision"] = pinned
    argo.apply(app)
    events = rig.syncs("multi", lambda es: any(head in e.data["revisions"] for e in es))
    (sync,) = [e for e in events if head in e.data["revisions"]]
    d = sync.data
    assert d["revisions"] == [head, pinned], d
    assert d["revision"] == head
    assert (d["phase"], d["health_status"]) == ("Succeeded", "Healthy")
    assert {r["name"] for r in d["resources"]} == {"ms-api", "lookup-table"}
    c = grade([sync], "p1.argocd_deployed")
    assert c.state != "met"  # only namespace pipeline synced; flink has none
    assert "flink" in c.reason


def deployment(name: str, ns: str, image: str) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
        "spec:\n  replicas: 1\n"
        f"  selector:\n    matchLabels: {{app: {name}}}\n"
        f"  template:\n    metadata:\n      labels: {{app: {name}}}\n"
        f"    spec:\n      containers: [{{name: {name}, image: {image!r}}}]\n"
    )


def rollout_done(rig: Rig, name: str, ns: str) -> None:
    """What the deployment controller writes once the new pods are available (no
    kube-controller-manager runs here)."""
    argo = rig.platform.argo
    live = json.loads(argo.kubectl("get", "deployment", name, "-n", ns, "-o", "json"))
    status = {
        "observedGeneration": live["metadata"]["generation"],
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }
    argo.kubectl(
        "patch", "deployment", name, "-n", ns, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_rollout_is_reported_once_healthy_not_while_progressing(rig: Rig) -> None:
    """Argo CD finishes a sync while the Deployment still rolls out (Progressing) and
    notifies nothing when it turns Healthy: the template reports the sync once its health
    settled, so the rollout's end is what grades p1.argocd_deployed. An update of a healthy
    Deployment is not reported with the health from before the sync either."""
    git, argo = rig.platform.git, rig.platform.argo

    def commit(image: str) -> str:
        return git.commit(
            {
                "apps/api/deploy.yaml": deployment("orders-api", "pipeline", image),
                "apps/api/job.yaml": configmap("orders-api-job", "flink", "v1"),
            },
            f"orders api {image}",
        )

    def progressing(sha: str) -> Callable[[dict[str, Any]], bool]:
        def check(a: dict[str, Any]) -> bool:
            s = a.get("status", {})
            op = s.get("operationState", {})
            return bool(
                op.get("phase") == "Succeeded"
                and op.get("syncResult", {}).get("revision") == sha
                and s.get("health", {}).get("status") == "Progressing"
            )

        return check

    def reported(sha: str) -> list[Event]:
        events = rig.env.read("platform.argocd", PLATFORM)
        return [e for e in events if e.data["app"] == "api" and e.data["revision"] == sha]

    syncs = []
    for n, image in enumerate(("registry.invalid/api:1", "registry.invalid/api:2")):
        sha = commit(image)
        if n == 0:
            argo.apply(application("api", git.url, "apps/api", "pipeline"))
        else:
            argo.refresh("api")
        argo.wait_app("api", progressing(sha))
        # the finished sync is not reported while the Deployment rolls out
        time.sleep(8)
        assert progressing(sha)(argo.app("api"))
        assert not reported(sha)

        rollout_done(rig, "orders-api", "pipeline")
        rig.syncs("api", _for(sha))
        # Argo CD may run a second, self-heal sync of the Deployment alone right after the
        # first (its cache saw the new Deployment out of sync): then the first operation is
        # superseded before its health settles and only the second is reported
        reports = reported(sha)
        assert 1 <= len(reports) <= 2, [e.data for e in reports]
        for sync in reports:
            d = sync.data
            assert (d["phase"], d["health_status"], d["sync_status"]) == (
                "Succeeded",
                "Healthy",
                "Synced",
            )
            assert ("Deployment", "pipeline", "apps") in {
                (r["kind"], r["namespace"], r["group"]) for r in d["resources"]
            }
            assert {(r["kind"], r["namespace"]) for r in d["resources"]} <= {
                ("Deployment", "pipeline"),
                ("ConfigMap", "flink"),
            }
        syncs.extend(reports)
    assert len({e.event_id for e in syncs}) == len(syncs)
    c = grade(syncs, "p1.argocd_deployed")
    flink = any(r["namespace"] == "flink" for e in syncs for r in e.data["resources"])
    assert (c.state == "met") == flink, c.reason


def test_a_persons_sync_counts_only_for_a_merged_commit(rig: Rig) -> None:
    """A sync a person starts (what argocd-server writes for ``argocd app sync``: the
    operation, with the user as initiator) is GitOps only when its commit was merged."""
    git, argo = rig.platform.git, rig.platform.argo
    sha = git.commit(
        {
            "apps/manual/cm.yaml": configmap("manual-settings", "pipeline", "v1"),
            "apps/manual/job.yaml": configmap("manual-job", "flink", "v1"),
        },
        "settings synced by hand",
    )
    argo.apply(application("manual", git.url, "apps/manual", "pipeline", automated=False))
    argo.wait_app(
        "manual", lambda a: a.get("status", {}).get("sync", {}).get("status") == "OutOfSync"
    )
    operation = {"initiatedBy": {"username": "alice"}, "sync": {"revision": sha, "prune": True}}
    argo.kubectl(
        "patch", "application", "manual", "-n", "argocd", "--type=merge",
        "-p", json.dumps({"operation": operation}),
    )  # fmt: skip
    (sync,) = rig.syncs("manual", _for(sha))
    d = sync.data
    assert d["initiated_by"] == "alice"
    assert (d["phase"], d["health_status"], d["revision"]) == ("Succeeded", "Healthy", sha)
    c = grade([sync], "p1.argocd_deployed")
    assert c.state != "met", c.reason
    merged = gitlab_merge(sha, dt.datetime.fromtimestamp(sync.ts_ms / 1000 - 60, dt.UTC))
    c = grade([merged, sync], "p1.argocd_deployed")
    assert c.state == "met", c.reason
