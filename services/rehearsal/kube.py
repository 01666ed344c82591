"""The candidate's push sources in a rehearsal: proctor's real receiver for the platforms'
Kubernetes audit and OpenLineage, and a Kubernetes API server per platform whose deploys
go through it and whose audit webhook reaches that receiver.

The reference candidate deploys the way GitOps does (Argo CD's application controller,
a service account, writes the manifests); the ``manual-apply`` candidate runs
``kubectl apply`` as a person. One API server per platform, because the audit webhook's
URL names the platform.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Sequence
from pathlib import Path

from services.collectors import k8s_audit, openlineage, trino_events
from services.collectors.webhook import ReceiverSettings
from services.collectors.webhook_auth import secret_env
from services.collectors.webhook_run import BackgroundReceiver, build_receiver
from services.contract.settings import ClientSettings
from services.errors import StackError
from services.stack.kubernetes import (
    AuditSink,
    Identity,
    KubeBinaries,
    KubeCluster,
    ensure_binaries,
    kubectl_env,
)

#: Argo CD's application controller, as the API server knows it
CONTROLLER = Identity(
    "system:serviceaccount:argocd:argocd-application-controller",
    "argo-" + secrets.token_hex(12),
    ("system:serviceaccounts", "system:serviceaccounts:argocd"),
)
#: a pipeline namespace of the declared assets (services.exam_builder.ASSETS)
NAMESPACE = "pipeline"

MANIFEST = """apiVersion: v1
kind: ConfigMap
metadata:
  name: orders-enrich
  namespace: {namespace}
data:
  checkpointing: exactly_once
  sink: {sink}
"""


def available() -> KubeBinaries | None:
    """The built API server, kine and kubectl (scripts/build-kube.sh), or None."""
    try:
        return ensure_binaries(build=False)
    except StackError:
        return None


class PushReceiver:
    """proctor's k8s-audit, OpenLineage and Trino query-event receiver for the rehearsal's platforms, with
    each platform's own derived secret (the receivers' default)."""

    def __init__(
        self, client: ClientSettings, platforms: Sequence[str], heartbeat_s: float = 5.0
    ) -> None:
        self.receiver = build_receiver(
            [k8s_audit.SOURCE, openlineage.SOURCE, trino_events.SOURCE],
            client,
            ReceiverSettings(platforms=tuple(platforms), heartbeat_s=heartbeat_s),
            env={
                secret_env(k8s_audit.NAME): secrets.token_hex(16),
                secret_env(openlineage.NAME): secrets.token_hex(16),
                secret_env(trino_events.NAME): secrets.token_hex(16),
            },
        )
        self._background = BackgroundReceiver(self.receiver)
        self.port = self._background.__enter__()

    def url(self, platform_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/platforms/{platform_id}/"

    def secret(self, source: str, platform_id: str) -> str:
        value: str = self.receiver.secrets.secret(source, platform_id, 1)
        return value

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._background.__exit__(None, None, None)


class PlatformKubes:
    """One API server per platform, all auditing to the rehearsal's receiver."""

    def __init__(self, binaries: KubeBinaries, receiver: PushReceiver, workdir: Path) -> None:
        self.binaries = binaries
        self.workdir = workdir
        self.receiver = receiver
        self.clusters: dict[str, KubeCluster] = {}
        self.people: dict[str, Identity] = {}

    def start(self, platform_id: str, person: str) -> None:
        secret = self.receiver.secret(k8s_audit.NAME, platform_id)
        sink = AuditSink(f"{self.receiver.url(platform_id)}k8s-audit", secret)
        who = Identity(person, "person-" + secrets.token_hex(12))
        workdir = self.workdir / f"kube-{platform_id}"
        workdir.mkdir(parents=True, exist_ok=True)
        cluster = KubeCluster(workdir, self.binaries, sink, [who, CONTROLLER])
        cluster.start()
        self.clusters[platform_id] = cluster
        self.people[platform_id] = who
        # the platform as the exam hands it over: the pipeline's namespace exists
        self.kubectl(platform_id, CONTROLLER.name, "create", "namespace", NAMESPACE)

    def kubectl(self, platform_id: str, user: str, *args: str, stdin: str = "") -> str:
        cluster = self.clusters[platform_id]
        done = subprocess.run(
            [str(self.binaries.kubectl), "--kubeconfig", str(cluster.kubeconfig(user)), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=kubectl_env({"HOME": str(cluster.workdir)}),
            check=False,
        )
        if done.returncode != 0:
            raise StackError(f"kubectl {' '.join(args)} as {user}: {done.stderr.strip()}")
        return done.stdout.strip()

    def deploy_gitops(self, platform_id: str, sink: str) -> str:
        """What Argo CD's controller writes when it syncs the pipeline's manifests."""
        out = self.kubectl(
            platform_id,
            CONTROLLER.name,
            "apply",
            "--server-side",
            "--field-manager=argocd-controller",
            "-f",
            "-",
            stdin=MANIFEST.format(namespace=NAMESPACE, sink=sink),
        )
        return f"as {CONTROLLER.name}: {out}"

    def apply_by_hand(self, platform_id: str, sink: str) -> str:
        """A person's ``kubectl apply`` of the same manifest: what the exam forbids."""
        person = self.people[platform_id].name
        out = self.kubectl(
            platform_id,
            person,
            "apply",
            "-f",
            "-",
            stdin=MANIFEST.format(namespace=NAMESPACE, sink=sink).replace(
                "exactly_once", "at_least_once"
            ),
        )
        return f"as {person}: {out}"

    def close(self) -> None:
        for cluster in self.clusters.values():
            with contextlib.suppress(Exception):
                cluster.stop()
