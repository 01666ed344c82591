"""The audit files `proctor deploy render` ships, on a real kube-apiserver (v1.37.2): the
rendered Policy and webhook kubeconfig, whose token is read from ``tokenFile`` (a file made
from a Secret), deliver a person's write to the platform's k8s-audit path with the bearer
token. Needs the binaries of scripts/build-kube.sh (skipped when they are missing)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from services.deploy.cohort import parse_cohort
from services.deploy.render import AUDIT_POLICY, audit_kubeconfig
from services.errors import StackError
from services.stack import kubernetes
from services.stack.kubernetes import AuditSink, Identity, KubeCluster, ensure_binaries, kubectl_env

pytestmark = pytest.mark.integration

COHORT = Path(__file__).resolve().parents[3] / "k8s" / "cohorts" / "example" / "cohort.yaml"
ALICE = Identity("alice", "alice-" + uuid.uuid4().hex)
#: API groups a bare API server serves (the CRDs' groups are not installed here)
CORE_GROUPS = {"v1", "apps", "networking.k8s.io", "policy", "batch", "rbac.authorization.k8s.io"}


class Capture(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Capture.seen.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    Capture.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_rendered_audit_files_deliver_a_persons_write_with_the_token_file(
    tmp_path: Path, receiver: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        binaries = ensure_binaries(build=False)
    except StackError as exc:
        pytest.skip(f"{exc}")
    cohort = parse_cohort(yaml.safe_load(COHORT.read_text()), str(COHORT))
    cand = cohort.candidates[0]
    rendered = json.loads(audit_kubeconfig(cohort, cand))
    rendered_path = urllib.parse.urlsplit(rendered["clusters"][0]["cluster"]["server"]).path
    token = "audit-" + uuid.uuid4().hex
    token_file = tmp_path / "token"
    token_file.write_text(token)
    original = kubernetes.kubeconfig_text

    def webhook_from_render(server: str, tok: str, ca: Path | None, name: str) -> str:
        if tok != token:  # the users' kubeconfigs stay as they are
            return original(server, tok, ca, name)
        # the rendered kubeconfig, with this host's TLS front, CA and token file
        doc = json.loads(json.dumps(rendered))
        front = urllib.parse.urlsplit(server)
        cluster = doc["clusters"][0]["cluster"]
        cluster["server"] = front._replace(path=rendered_path).geturl()
        cluster["certificate-authority"] = str(ca)
        doc["users"][0]["user"]["tokenFile"] = str(token_file)
        return json.dumps(doc)

    monkeypatch.setattr(kubernetes, "kubeconfig_text", webhook_from_render)
    monkeypatch.setattr(kubernetes, "AUDIT_POLICY", AUDIT_POLICY)
    sink = AuditSink(f"http://127.0.0.1:{receiver}/unused", token)
    with KubeCluster(tmp_path / "kube", binaries, sink, [ALICE]) as cluster:
        webhook = json.loads((tmp_path / "kube" / "audit-webhook.kubeconfig").read_text())
        assert webhook["users"][0]["user"] == {"tokenFile": str(token_file)}
        subprocess.run(
            [
                str(binaries.kubectl),
                *("--kubeconfig", str(cluster.kubeconfig("alice"))),
                *("create", "configmap", "proctor-probe", "-n", "default"),
            ],
            check=True,
            capture_output=True,
            env=kubectl_env(),
            timeout=60,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            hits = [
                (path, auth)
                for path, auth, batch in Capture.seen
                for item in batch.get("items", [])
                if item.get("objectRef", {}).get("name") == "proctor-probe"
                and item.get("user", {}).get("username") == "alice"
            ]
            if hits:
                break
            time.sleep(0.5)
        else:
            log = cluster.log("kube-apiserver")
            pytest.fail(f"no audit batch with alice's write; the API server said: {log}")
    paths = {urllib.parse.urlsplit(path).path for path, _ in hits}
    assert paths == {f"/platforms/{cand.platform_id}/k8s-audit"}
    assert {auth for _, auth in hits} == {f"Bearer {token}"}
    # reads are left out by the rendered Policy
    assert not any(
        item.get("verb") in {"get", "list", "watch"}
        for _, _, batch in Capture.seen
        for item in batch.get("items", [])
    )


def test_the_built_cohort_is_accepted_by_a_real_api_server(tmp_path: Path, receiver: int) -> None:
    """Every built object of a Kubernetes API group (the CRDs' kinds aside: no operator
    runs here) passes the real API server's validation: `kubectl apply --dry-run=server`."""
    try:
        binaries = ensure_binaries(build=False)
    except StackError as exc:
        pytest.skip(f"{exc}")
    from tests.unit.deploy.conftest import kustomize_build

    objs = kustomize_build(COHORT.parent / "rendered")
    core = [o for o in objs if o["apiVersion"].split("/")[0] in CORE_GROUPS]
    assert {o["kind"] for o in core} >= {"Deployment", "ConfigMap", "NetworkPolicy", "Service"}
    manifest = tmp_path / "cohort.yaml"
    manifest.write_text(yaml.safe_dump_all(core))
    # each platform's Argo CD notification patch is a whole ConfigMap of namespace argocd
    patches = sorted((COHORT.parent / "rendered").glob("*/argocd/notifications-cm-patch.yaml"))
    assert len(patches) == 3
    sink = AuditSink(f"http://127.0.0.1:{receiver}/platforms/any/k8s-audit", "audit-x" * 4)
    with KubeCluster(tmp_path / "kube", binaries, sink, [ALICE]) as cluster:
        kubectl = [str(binaries.kubectl), "--kubeconfig", str(cluster.kubeconfig("alice"))]
        namespaces = sorted({o["metadata"].get("namespace") for o in core} - {None} | {"argocd"})
        for ns in namespaces:
            subprocess.run(
                [*kubectl, "create", "namespace", ns],
                check=True,
                capture_output=True,
                env=kubectl_env(),
                timeout=60,
            )
        done = subprocess.run(
            [*kubectl, "apply", "--server-side", "--dry-run=server", "-f", str(manifest)],
            capture_output=True,
            text=True,
            env=kubectl_env(),
            timeout=120,
        )
        argocd = [
            subprocess.run(
                [*kubectl, "apply", "--server-side", "--dry-run=server", "-f", str(p)],
                capture_output=True,
                text=True,
                env=kubectl_env(),
                timeout=60,
            )
            for p in patches
        ]
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("serverside-applied (server dry run)") == len(core)
    for p, result in zip(patches, argocd, strict=True):
        assert result.returncode == 0, f"{p}: {result.stderr}"
        assert "argocd-notifications-cm serverside-applied" in result.stdout
