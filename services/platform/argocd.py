"""Argo CD against a real Kubernetes API server: a candidate's GitOps, as local processes.

The argocd collector and ``p1.argocd_deployed`` / ``p2.fix_via_gitops`` are only as good as
their reading of what a real Argo CD posts. :class:`ArgoCD` applies the CRDs of the Argo CD
module source (``manifests/crds``) to a :class:`~services.stack.kubernetes.KubeCluster`,
writes Argo CD's settings (argocd-cm, argocd-secret, the default AppProject, and
argocd-notifications-cm built from the project's own k8s/argocd/notifications-template.yaml
with the webhook pointed at proctor's receiver), and runs Redis (Debian's redis-server),
argocd-repo-server, argocd-application-controller and argocd-notifications out of
cluster (``--kubeconfig``, ``ARGOCD_FAKE_IN_CLUSTER`` so ``https://kubernetes.default.svc``
is the API server of that kubeconfig). :class:`GitDaemon` serves a bare repository with
``git daemon`` on loopback; commits are made in a work clone and pushed to it.

The binary is the multi-call one ``scripts/build-argocd.sh`` builds (cached under
~/.cache/proctor/argocd-<version>); ``ARGOCD_BINARY_NAME`` says which program it runs as.
The controller and the notifications controller bind their metrics port on every
interface (Argo CD has no address flag for them); the repo server and Redis only on
127.0.0.1.

    with KubeCluster(...) as kube, GitDaemon(dir / "git") as git:
        with ArgoCD(dir / "argo", ensure_binary(), kube, ARGO.name, sink) as argo:
            sha = git.commit({"app/cm.yaml": text}, "first")
            argo.apply(application("demo", git.url, "app", "pipeline"))
            argo.wait_app("demo", lambda app: ...)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services.errors import StackError
from services.stack.component import StartedOnEnter, stop_process_group
from services.stack.kubernetes import HOST, KubeCluster, free_port, kubectl_env

ARGOCD_VERSION = os.environ.get("PROCTOR_ARGOCD_VERSION", "v3.6.2")
REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-argocd.sh"
TEMPLATE = REPO / "k8s" / "argocd" / "notifications-template.yaml"
NAMESPACE = "argocd"
#: the key of argocd-notifications-secret the template's Authorization header reads
TOKEN_KEY = "proctor-webhook-token"
#: Argo CD reads only the config maps and secrets that carry this label
PART_OF = {"app.kubernetes.io/part-of": "argocd"}


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "proctor" / f"argocd-{ARGOCD_VERSION}"
    return Path(os.environ.get("PROCTOR_ARGOCD_CACHE", str(default)))


def source_dir() -> Path:
    """The module source build-argocd.sh built from (it holds manifests/crds)."""
    base = Path(os.environ.get("PROCTOR_GO_CACHE", str(Path.home() / ".cache" / "proctor" / "go")))
    return base / "src" / f"argo-cd-{ARGOCD_VERSION}"


@dataclass(frozen=True, slots=True)
class ArgoBinary:
    path: Path
    crds: Path

    @property
    def verify_wrapper(self) -> Path:
        return self.crds.parents[1] / "hack" / "git-verify-wrapper.sh"

    def missing(self) -> list[str]:
        out = [] if self.path.is_file() else [str(self.path)]
        return out + ([] if self.crds.is_dir() else [str(self.crds)])


def ensure_binary() -> ArgoBinary:
    """The cached multi-call binary and the CRDs beside its source; never builds (35 min)."""
    binary = ArgoBinary(cache_dir() / "argocd", source_dir() / "manifests" / "crds")
    missing = binary.missing()
    if missing:
        raise StackError(
            f"Argo CD {ARGOCD_VERSION} is not built ({', '.join(missing)} missing); "
            "run scripts/build-argocd.sh (about 35 min on two cores, cached afterwards)"
        )
    if shutil.which("redis-server") is None:
        raise StackError("redis-server is not installed; run scripts/bootstrap.sh")
    return binary


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        raise StackError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class GitDaemon(StartedOnEnter):
    """A bare repository served read-only by ``git daemon`` on loopback, and a work clone
    that commits and pushes to it (through the file system, as a merged pull request)."""

    workdir: Path
    name: str = "platform.git"
    branch: str = "main"
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"git://{HOST}:{self.port}/{self.name}"

    @property
    def bare(self) -> Path:
        return self.workdir / "served" / self.name

    @property
    def clone(self) -> Path:
        return self.workdir / "clone"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.workdir),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Candidate",
            "GIT_AUTHOR_EMAIL": "candidate@basecamp.invalid",
            "GIT_COMMITTER_NAME": "Candidate",
            "GIT_COMMITTER_EMAIL": "candidate@basecamp.invalid",
        }

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        env = self._env()
        _git(self.workdir, "init", "--bare", "-b", self.branch, str(self.bare), env=env)
        _git(self.workdir, "init", "-b", self.branch, str(self.clone), env=env)
        _git(self.clone, "remote", "add", "origin", str(self.bare), env=env)
        self.port = free_port()
        log = (self.workdir / "git-daemon.log").open("wb")
        self._proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                f"--base-path={self.bare.parent}",
                f"--listen={HOST}",
                f"--port={self.port}",
                "--informative-errors",
                str(self.bare.parent),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + 30
        while not _port_open(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"git daemon did not start: {self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        path = self.workdir / "git-daemon.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def commit(
        self, files: Mapping[str, str | None], message: str, branch: str | None = None
    ) -> str:
        """Write (or, for None, delete) ``files`` in the clone, commit on ``branch`` (the
        main branch by default) and push it; the new commit's sha."""
        env = self._env()
        target = branch or self.branch
        has_head = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"],
            cwd=self.clone,
            env=env,
            check=False,
            capture_output=True,
        )
        if has_head.returncode == 0:
            _git(self.clone, "checkout", "-q", "-B", target, env=env)
        for rel, text in files.items():
            path = self.clone / rel
            if text is None:
                _git(self.clone, "rm", "-q", rel, env=env)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            _git(self.clone, "add", rel, env=env)
        _git(self.clone, "commit", "-q", "-m", message, env=env)
        _git(self.clone, "push", "-q", "origin", f"{target}:{target}", env=env)
        return _git(self.clone, "rev-parse", "HEAD", env=env)

    def merge(self, branch: str, message: str) -> str:
        """Merge ``branch`` into the main branch with a merge commit (as a Git host does for
        a pull request) and push; the merge commit's sha."""
        env = self._env()
        _git(self.clone, "checkout", "-q", self.branch, env=env)
        _git(self.clone, "merge", "-q", "--no-ff", "-m", message, branch, env=env)
        _git(self.clone, "push", "-q", "origin", self.branch, env=env)
        return _git(self.clone, "rev-parse", "HEAD", env=env)

    def stop(self) -> None:
        stop_process_group(self._proc, term_wait_s=10)
        self._proc = None


@dataclass(frozen=True, slots=True)
class NotificationSink:
    """Where the notifications controller posts: proctor's argocd receiver."""

    base_url: str  # e.g. http://127.0.0.1:PORT/platforms/basecamp-it (the template adds /argocd)
    token: str


def notifications_config(sink: NotificationSink) -> dict[str, Any]:
    """argocd-notifications-cm as k8s/argocd/notifications-template.yaml ships it, with the
    service URL the operator would fill in pointed at ``sink``."""
    doc: dict[str, Any] = yaml.safe_load(TEMPLATE.read_text())
    service = yaml.safe_load(doc["data"]["service.webhook.proctor"])
    service["url"] = sink.base_url
    doc["data"]["service.webhook.proctor"] = yaml.safe_dump(service, sort_keys=False)
    doc["metadata"]["labels"] = dict(PART_OF)
    return doc


def application(
    name: str,
    repo_url: str,
    path: str | Sequence[str],
    namespace: str,
    *,
    revision: str = "main",
    automated: bool = True,
) -> dict[str, Any]:
    """An Application deploying ``path`` (several paths: one source each) of ``repo_url``
    into ``namespace`` of the cluster Argo CD runs against, synced automatically."""
    paths = [path] if isinstance(path, str) else list(path)
    sources = [{"repoURL": repo_url, "targetRevision": revision, "path": p} for p in paths]
    spec: dict[str, Any] = {
        "project": "default",
        "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
    }
    if len(sources) == 1:
        spec["source"] = sources[0]
    else:
        spec["sources"] = sources
    if automated:
        spec["syncPolicy"] = {
            "automated": {"prune": True, "selfHeal": True},
            # an automated sync retries 5 times with back-off up to minutes unless told:
            # one retry a second later, so a broken commit is reported failed at once
            "retry": {"limit": 1, "backoff": {"duration": "1s", "factor": 1, "maxDuration": "1s"}},
        }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


@dataclass
class ArgoCD(StartedOnEnter):
    """Redis, the repo server, the application controller and the notifications controller
    of one Argo CD, on loopback ports, stopped by the process groups it started."""

    workdir: Path
    binary: ArgoBinary
    cluster: KubeCluster
    #: the cluster identity Argo CD acts as (a service account's token user)
    identity: str
    sink: NotificationSink
    #: seconds between the controller's refreshes of every application (Argo CD's default
    #: is 120 s; a git webhook to argocd-server would refresh at once, there is none here)
    resync_s: int = 5
    start_timeout_s: float = 120.0
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _kubeconfig: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ kubectl
    def kubectl(self, *args: str, stdin: str = "") -> str:
        """kubectl as Argo CD's identity (set-up and what its API server would do)."""
        out = self._kubectl(args, stdin, check=True)
        assert out is not None
        return out

    def _kubectl(self, args: Sequence[str], stdin: str, check: bool) -> str | None:
        assert self._kubeconfig is not None, "start() first"
        done = subprocess.run(
            [str(self.cluster.binaries.kubectl), "--kubeconfig", str(self._kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=kubectl_env({"HOME": str(self.workdir)}),
            check=False,
        )
        if check and done.returncode != 0:
            raise StackError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout if done.returncode == 0 else None

    def apply(self, *docs: Mapping[str, Any]) -> None:
        self.kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)}),
        )

    def app(self, name: str) -> dict[str, Any]:
        """The Application object as the API server has it now."""
        out: dict[str, Any] = json.loads(
            self.kubectl("get", "application", name, "-n", NAMESPACE, "-o", "json")
        )
        return out

    def refresh(self, name: str) -> None:
        """What argocd-server does on a Git host's push webhook: ask for a refresh now."""
        self.kubectl(
            "annotate", "application", name, "-n", NAMESPACE, "--overwrite",
            "argocd.argoproj.io/refresh=normal",
        )  # fmt: skip

    def wait_app(
        self, name: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 120.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.check_running()
            try:
                last = self.app(name)
            except StackError:
                last = {}
            if last and done(last):
                return last
            time.sleep(1.0)
        raise StackError(
            f"application {name} did not reach the expected state in {timeout_s:.0f}s; "
            f"status: {json.dumps(last.get('status', {}))[:2000]}\n"
            f"controller log:\n{self.log('application-controller', 3000)}"
        )

    # ------------------------------------------------------------------ life cycle
    def _spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self._procs[name] = subprocess.Popen(
            list(argv),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **env},
        )
        log.close()

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def check_running(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            self.check_running()
            if ready():
                return
            time.sleep(0.5)
        raise StackError(f"{name} not ready in {self.start_timeout_s:.0f}s:\n{self.log(name)}")

    def _configure(self) -> None:
        crds = [a for f in sorted(self.binary.crds.glob("*-crd.yaml")) for a in ("-f", str(f))]
        self.kubectl("apply", "--server-side", *crds)
        deadline = time.monotonic() + 60  # served once the API server established them
        while self._kubectl(("get", "applications,appprojects", "-A"), "", check=False) is None:
            if time.monotonic() > deadline:
                raise StackError("Argo CD's CRDs were not served within 60 s")
            time.sleep(0.5)
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        meta = {"namespace": NAMESPACE, "labels": dict(PART_OF)}
        self.apply(
            ns,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm", **meta},
                # the controller resolves revisions and refreshes on its own schedule
                "data": {"timeout.reconciliation": f"{self.resync_s}s"},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "argocd-secret", **meta},
                "stringData": {"server.secretkey": os.urandom(24).hex()},
            },
            notifications_config(self.sink),
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "argocd-notifications-secret", **meta},
                "stringData": {TOKEN_KEY: self.sink.token},
            },
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {"name": "default", "namespace": NAMESPACE},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                },
            },
        )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        self._kubeconfig = self.cluster.kubeconfig(self.identity)
        self._configure()
        for name in (
            "redis",
            "repo",
            "repo-metrics",
            "controller-metrics",
            "notifications-metrics",
        ):
            self.ports[name] = free_port()
        # the repo server runs hack/git-verify-wrapper.sh on every manifest generation (its
        # image installs it on PATH); without it every sync fails with "permission denied"
        bin_dir = self.workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        wrapper = bin_dir / "git-verify-wrapper.sh"
        shutil.copyfile(self.binary.verify_wrapper, wrapper)  # the module zip drops its x bit
        wrapper.chmod(0o755)
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(self.workdir),
            "TMPDIR": str(self.workdir / "tmp"),
            "KUBECONFIG": str(self._kubeconfig),
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_ASK_PASS_SOCK": str(self.workdir / "askpass.sock"),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        redis = self.ports["redis"]
        self._spawn(
            "redis",
            ["redis-server", "--bind", HOST, "--port", str(redis), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "yes"],
            env,
        )  # fmt: skip
        self._wait("redis", lambda: _redis_ping(redis))
        kube = ["--kubeconfig", str(self._kubeconfig), "--namespace", NAMESPACE]
        common = ["--loglevel", "info", "--logformat", "text"]
        repo = self.ports["repo"]
        self._spawn(
            "repo-server",
            [str(self.binary.path), *common, "--address", HOST, "--port", str(repo),
             # plain gRPC on loopback; the mTLS CA path defaults to a file in a pod and
             # must be emptied, or the repo server refuses --disable-tls
             "--disable-tls", "--client-ca-path=", "--metrics-address", HOST,
             "--metrics-port", str(self.ports["repo-metrics"]), "--redis", f"{HOST}:{redis}",
             # a new commit is seen at the next refresh, not after Argo CD's 3 min
             "--revision-cache-expiration", "1s"],
            {**env, "ARGOCD_BINARY_NAME": "argocd-repo-server"},
        )  # fmt: skip
        self._wait("repo-server", lambda: _port_open(repo))
        self._spawn(
            "application-controller",
            [str(self.binary.path), *common, *kube, "--redis", f"{HOST}:{redis}",
             "--repo-server", f"{HOST}:{repo}", "--repo-server-plaintext",
             "--metrics-port", str(self.ports["controller-metrics"]),
             "--app-resync", str(self.resync_s), "--app-resync-jitter", "0",
             "--self-heal-timeout-seconds", "2", "--status-processors", "2",
             "--operation-processors", "2"],
            {**env, "ARGOCD_BINARY_NAME": "argocd-application-controller"},
        )  # fmt: skip
        controller_metrics = self.ports["controller-metrics"]
        self._wait("application-controller", lambda: _http_ok(controller_metrics, "/healthz"))
        self._spawn(
            "notifications",
            [str(self.binary.path), *common, *kube,
             "--argocd-repo-server", f"{HOST}:{repo}", "--argocd-repo-server-plaintext",
             "--metrics-port", str(self.ports["notifications-metrics"])],
            {**env, "ARGOCD_BINARY_NAME": "argocd-notifications"},
        )  # fmt: skip
        notifications_metrics = self.ports["notifications-metrics"]
        self._wait("notifications", lambda: _http_ok(notifications_metrics, "/metrics"))

    def stop(self) -> None:
        """The controllers first (they write to Redis and the API server), Redis last."""
        for name in ("notifications", "application-controller", "repo-server", "redis"):
            stop_process_group(self._procs.get(name), term_wait_s=15)
        self._procs.clear()


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _http_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
