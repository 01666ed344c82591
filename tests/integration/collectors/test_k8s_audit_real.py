"""A real kube-apiserver (kine on SQLite, loopback) posting audit batches to the k8s-audit
receiver, driven by a real kubectl; the k8s.audit events read back from the broker are
graded by the core.

What is checked is what p1.zero_manual_apply relies on: a person's client-side and
server-side ``kubectl apply`` are manual applies; ``apply --dry-run=server``, ``kubectl
diff`` and a service account's writes are not; Windows kubectl (``kubectl.exe/...``) is
recognised. Needs the binaries of scripts/build-kube.sh (skipped when they are missing
and PROCTOR_BUILD_KUBE is not 1; the build takes several minutes).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.collectors import k8s_audit
from services.collectors.webhook import ReceiverSettings
from services.collectors.webhook_auth import secret_env
from services.collectors.webhook_run import BackgroundReceiver, build_receiver
from services.core.events import Event
from services.core.simple_judge import KeywordJudge
from services.errors import StackError
from services.offline.replay import replay_events
from services.offline.scenarios import ExamBuilder
from services.rubrics import resolver
from services.stack.kubernetes import (
    AuditSink,
    Identity,
    KubeBinaries,
    KubeCluster,
    ensure_binaries,
    kubectl_env,
)
from tests.integration.collectors.conftest import Env, contract_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "it-audit-" + uuid.uuid4().hex
PLATFORM = f"basecamp-{uuid.uuid4().hex[:8]}"
ALICE = Identity("alice", "alice-" + uuid.uuid4().hex)
ARGO = Identity(
    "system:serviceaccount:argocd:argocd-application-controller",
    "argo-" + uuid.uuid4().hex,
    ("system:serviceaccounts", "system:serviceaccounts:argocd"),
)
TOPICS = ("platform.k8s-audit", "platform.collectors", "grading.dlq")
TYPES = ["k8s.audit", "collector.heartbeat", "grading.dead_letter"]
NS = "pipeline"  # one of the namespaces the offline builder's pipeline.declared names


def configmap(name: str, value: str) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata:\n  name: {name}\n  namespace: {NS}\n"
        f"data:\n  value: {value!r}\n"
    )


@pytest.fixture(scope="module")
def binaries() -> KubeBinaries:
    build = os.environ.get("PROCTOR_BUILD_KUBE") == "1"
    try:
        return ensure_binaries(build=build)
    except StackError as exc:
        pytest.skip(f"{exc} (or set PROCTOR_BUILD_KUBE=1)")


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, registry_url: str) -> Iterator[Env]:
    with contract_env(kafka_bootstrap, registry_url, "k8s", TOPICS, TYPES) as e:
        yield e


@dataclass
class Rig:
    cluster: KubeCluster
    env: Env
    workdir: Path

    def kubectl(self, user: str, *args: str, name: str = "kubectl", stdin: str = "") -> str:
        """Run kubectl as ``user``; ``name`` is the program name it sees (its user agent
        is built from it: Windows' binary is kubectl.exe)."""
        exe = self.workdir / name
        if not exe.exists():
            exe.symlink_to(self.cluster.binaries.kubectl)
        argv: Sequence[str] = [str(exe), "--kubeconfig", str(self.cluster.kubeconfig(user)), *args]
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=kubectl_env({"HOME": str(self.workdir)}),
            check=False,
        )
        # kubectl diff exits 1 when it found differences, which is what it is run for
        ok = (0, 1) if args and args[0] == "diff" else (0,)
        assert done.returncode in ok, f"{' '.join(args)}: {done.returncode}\n{done.stderr}"
        return done.stdout

    def audit(self, ready: Callable[[list[Event]], bool], timeout_s: float = 90.0) -> list[Event]:
        """The k8s.audit events of the platform on the topic, once ``ready`` holds for them
        (the API server posts its batches a second or so after the requests)."""
        deadline = time.monotonic() + timeout_s
        while True:
            events = [
                e for e in self.env.read("platform.k8s-audit", PLATFORM) if e.type == "k8s.audit"
            ]
            if ready(events) or time.monotonic() > deadline:
                return events
            time.sleep(1.0)


@pytest.fixture(scope="module")
def rig(
    binaries: KubeBinaries, env: Env, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    workdir = tmp_path_factory.mktemp("kube")
    receiver = build_receiver(
        [k8s_audit.SOURCE],
        env.settings,
        ReceiverSettings(platforms=(PLATFORM,), heartbeat_s=3600.0),
        env={secret_env(k8s_audit.NAME): SECRET},
    )
    # the API server holds the platform's own secret, derived per platform (the default)
    platform_secret = receiver.secrets.secret(k8s_audit.NAME, PLATFORM, 1)
    assert platform_secret != SECRET
    with BackgroundReceiver(receiver) as port:
        sink = AuditSink(f"http://127.0.0.1:{port}/platforms/{PLATFORM}/k8s-audit", platform_secret)
        cluster = KubeCluster(workdir, binaries, sink, [ALICE, ARGO])
        with cluster:
            yield Rig(cluster, env, workdir)
        record = os.environ.get("PROCTOR_RECORD_AUDIT")
        if record:  # keep what the real API server audited, for the corpus
            Path(record).write_bytes(cluster.audit_log.read_bytes())


def writes(events: list[Event], user: str) -> list[Event]:
    return [
        e
        for e in events
        if e.data["user"] == user and e.data["verb"] in ("create", "update", "patch")
    ]


def grade_p1(events: list[Event]) -> tuple[str, str]:
    """p1.zero_manual_apply over an exam whose Part 1 spans the audit events."""
    first = min(e.ts_ms for e in events)
    b = ExamBuilder(PLATFORM, start_ms=first - 3 * 60_000)
    b.start()
    b.events.extend(events)
    b.finish()
    result = replay_events(b.events, resolver(), KeywordJudge()).results
    (exam,) = result
    c = exam.criterion("p1.zero_manual_apply")
    return c.state, c.reason


def test_dry_runs_and_service_account_writes_are_no_manual_apply_but_kubectl_apply_is(
    rig: Rig,
) -> None:
    # a service account (Argo CD's controller) creates the namespace and applies a config map
    rig.kubectl(ARGO.name, "create", "namespace", NS)
    rig.kubectl(ARGO.name, "apply", "-f", "-", stdin=configmap("settings", "argo"))
    # a person looks before changing: a server-side dry run and a diff change nothing
    rig.kubectl(
        ALICE.name, "apply", "--dry-run=server", "-f", "-", stdin=configmap("settings", "a")
    )
    rig.kubectl(ALICE.name, "diff", "-f", "-", stdin=configmap("settings", "b"))
    rig.kubectl(ALICE.name, "apply", "--dry-run=server", "-f", "-", stdin=configmap("new-one", "c"))

    before = rig.audit(
        lambda es: len(writes(es, ALICE.name)) >= 3 and len(writes(es, ARGO.name)) >= 2
    )
    alice = writes(before, ALICE.name)
    assert alice, f"no write of alice arrived: {[e.data for e in before]}"
    assert all(e.data["dry_run"] is True for e in alice), [e.data for e in alice]
    assert {e.data["user_agent"].split("/")[0] for e in alice} == {"kubectl"}
    argo = writes(before, ARGO.name)
    assert argo and all(e.data["dry_run"] is False for e in argo)
    state, reason = grade_p1(before)
    assert state == "met", reason

    # now a person applies for real: client-side, then server-side
    rig.kubectl(ALICE.name, "apply", "-f", "-", stdin=configmap("settings", "alice"))
    rig.kubectl(ALICE.name, "apply", "--server-side", "-f", "-", stdin=configmap("other", "ssa"))
    after = rig.audit(
        lambda es: len([e for e in writes(es, ALICE.name) if not e.data["dry_run"]]) >= 2
    )
    real = [e for e in writes(after, ALICE.name) if not e.data["dry_run"]]
    managers = {e.data["field_manager"] for e in real}
    assert {"kubectl-client-side-apply", "kubectl"} <= managers, [e.data for e in real]
    assert all(e.data["namespace"] == NS and e.data["response_code"] < 400 for e in real)
    state, reason = grade_p1(after)
    assert state == "failed", reason
    assert f"namespace {NS}" in reason


def test_windows_kubectl_user_agent_is_a_manual_apply(rig: Rig) -> None:
    namespace = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n"
    rig.kubectl(ARGO.name, "apply", "-f", "-", stdin=namespace)
    rig.kubectl(ALICE.name, "apply", "-f", "-", stdin=configmap("windows", "w"), name="kubectl.exe")
    events = rig.audit(lambda es: any(e.data["name"] == "windows" for e in writes(es, ALICE.name)))
    exe = [
        e
        for e in writes(events, ALICE.name)
        if e.data["user_agent"].startswith("kubectl.exe/") and e.data["name"] == "windows"
    ]
    assert exe, [e.data["user_agent"] for e in events]
    state, reason = grade_p1(exe)
    assert state == "failed", reason
