"""A real Kubernetes API server on loopback, without containers: kine (etcd API on SQLite)
and kube-apiserver, with static tokens and the audit webhook pointed at proctor.

The k8s-audit collector is only as good as its reading of what a real API server sends;
this starts one so tests drive it with a real ``kubectl``. Binaries come from
``scripts/build-kube.sh`` (built from Go modules, cached under ~/.cache/proctor/kube-<v>).
Serving certificates and the service-account key are generated at each start in the
cluster's work directory; nothing listens beyond 127.0.0.1.

    with KubeCluster(workdir, ensure_binaries(), audit) as cluster:
        subprocess.run([cluster.binaries.kubectl, "--kubeconfig", cluster.kubeconfig("alice"), ...])
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from services.errors import StackError
from services.stack.component import StartedOnEnter

KUBE_VERSION = os.environ.get("PROCTOR_KUBE_VERSION", "v1.37.2")
REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-kube.sh"
HOST = "127.0.0.1"

Progress = Callable[[str], None]


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "proctor" / f"kube-{KUBE_VERSION}"
    return Path(os.environ.get("PROCTOR_KUBE_CACHE", str(default)))


@dataclass(frozen=True, slots=True)
class KubeBinaries:
    apiserver: Path
    kubectl: Path
    kine: Path

    @classmethod
    def cached(cls, where: Path | None = None) -> KubeBinaries:
        d = where or cache_dir()
        return cls(d / "kube-apiserver", d / "kubectl", d / "kine")

    def missing(self) -> list[str]:
        return [p.name for p in (self.apiserver, self.kubectl, self.kine) if not p.is_file()]


def ensure_binaries(progress: Progress = lambda _m: None, build: bool = True) -> KubeBinaries:
    """The cached binaries; builds the missing ones first (minutes) unless ``build`` is off."""
    binaries = KubeBinaries.cached()
    missing = binaries.missing()
    if missing and build:
        progress(f"building {', '.join(missing)} with {BUILD_SCRIPT.name} (several minutes)")
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT), *missing], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise StackError(f"{BUILD_SCRIPT.name} failed:\n{result.stderr[-3000:]}")
        missing = binaries.missing()
    if missing:
        raise StackError(
            f"missing {', '.join(missing)} in {cache_dir()}; run scripts/build-kube.sh"
        )
    return binaries


@dataclass(frozen=True, slots=True)
class Identity:
    """A static-token user of the API server (``--token-auth-file``)."""

    name: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditSink:
    """Where the API server posts its audit batches: proctor's k8s-audit receiver."""

    url: str  # e.g. http://127.0.0.1:PORT/platforms/basecamp-it/k8s-audit
    token: str


#: Writes at RequestResponse would carry whole objects; Metadata has every field proctor reads.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version", "/openapi*"]
  - level: None
    verbs: [get, list, watch]
  - level: None
    users: ["system:apiserver", "system:kube-controller-manager", "system:kube-scheduler"]
  - level: None
    resources: [{group: "coordination.k8s.io", resources: ["leases"]}, {group: "", resources: ["events"]}]
  - level: Metadata
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _write_key(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_certs(directory: Path) -> dict[str, Path]:
    """A throwaway CA, a serving certificate for 127.0.0.1/localhost and the
    service-account signing key: generated per start, never reused."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proctor-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths = {
        "ca": directory / "ca.crt",
        "cert": directory / "apiserver.crt",
        "key": directory / "apiserver.key",
        "sa_key": directory / "sa.key",
        "sa_pub": directory / "sa.pub",
    }
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths["key"], key)
    _write_key(paths["sa_key"], sa_key)
    paths["sa_pub"].write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return paths


def kubeconfig_text(server: str, token: str, ca_file: Path | None, name: str) -> str:
    """A kubeconfig (JSON is valid YAML) for one token user of one server."""
    cluster: dict[str, object] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return json.dumps(doc, indent=2)


class TlsFront:
    """A TLS-terminating forwarder on loopback in front of a plain-HTTP receiver.

    client-go reads a kubeconfig's credentials only for TLS servers, so the API server's
    audit webhook sends no bearer token to an ``http://`` URL: a receiver without TLS of
    its own needs a front like this one (in production: its ingress).
    """

    def __init__(self, target_port: int, cert: Path, key: Path) -> None:
        self.target_port = target_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tls-front", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.5)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            tls = self.ctx.wrap_socket(conn, server_side=True)
            upstream = socket.create_connection((HOST, self.target_port), timeout=30)
        except OSError:
            conn.close()
            return

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pipe, args=(upstream, tls), daemon=True)
        back.start()
        pipe(tls, upstream)
        back.join(30)
        for s in (tls, upstream):
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@dataclass
class KubeCluster(StartedOnEnter):
    """kine + kube-apiserver on loopback ports, stopped by the pids it started."""

    workdir: Path
    binaries: KubeBinaries
    audit: AuditSink
    identities: Sequence[Identity]
    #: how long the audit webhook backend waits to fill a batch
    audit_batch_wait_s: float = 1.0
    start_timeout_s: float = 180.0
    port: int = 0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _files: dict[str, Path] = field(default_factory=dict)
    _front: TlsFront | None = None

    @property
    def audit_log(self) -> Path:
        """The API server's log backend: every audit event it also posted, one JSON a line."""
        return self.workdir / "audit.log"

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.port}"

    def kubeconfig(self, user: str) -> Path:
        ident = next((i for i in self.identities if i.name == user), None)
        if ident is None:
            raise StackError(f"no identity {user!r}; known: {[i.name for i in self.identities]}")
        path = self.workdir / f"kubeconfig-{len(self._files)}-{user.replace(':', '_')}"
        path.write_text(kubeconfig_text(self.server, ident.token, self._files["ca"], "proctor"))
        self._files[f"kubeconfig:{user}"] = path
        return path

    def _spawn(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._procs.append(proc)
        return proc

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._files.update(make_certs(self.workdir))
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(
            "".join(
                f"{i.token},{i.name},{i.name}"
                + (f',"{",".join(i.groups)}"' if i.groups else "")
                + "\n"
                for i in self.identities
            )
        )
        tokens.chmod(0o600)
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        webhook = self.workdir / "audit-webhook.kubeconfig"
        url = urllib.parse.urlsplit(self.audit.url)
        sink, ca = self.audit.url, None
        if url.scheme == "http":  # the token would not be sent: put TLS in front
            self._front = TlsFront(url.port or 80, self._files["cert"], self._files["key"])
            sink = url._replace(scheme="https", netloc=f"{HOST}:{self._front.port}").geturl()
            ca = self._files["ca"]
        webhook.write_text(kubeconfig_text(sink, self.audit.token, ca, "proctor"))
        webhook.chmod(0o600)

        kine_port = free_port()
        kine = self._spawn(
            "kine",
            [
                str(self.binaries.kine),
                f"--endpoint=sqlite://{self.workdir / 'state.db'}?_journal=WAL&cache=shared",
                f"--listen-address={HOST}:{kine_port}",
                f"--metrics-bind-address={HOST}:{free_port()}",
            ],
        )
        self._wait(lambda: _port_open(kine_port), "kine", kine)
        self.port = free_port()
        files = self._files
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.binaries.apiserver),
                f"--etcd-servers=http://{HOST}:{kine_port}",
                f"--bind-address={HOST}",
                f"--advertise-address={HOST}",
                "--endpoint-reconciler-type=none",  # no kubernetes Service endpoint on loopback
                f"--secure-port={self.port}",
                f"--cert-dir={self.workdir / 'certs'}",
                f"--tls-cert-file={files['cert']}",
                f"--tls-private-key-file={files['key']}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=AlwaysAllow",
                "--anonymous-auth=false",
                f"--service-account-key-file={files['sa_pub']}",
                f"--service-account-signing-key-file={files['sa_key']}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/24",
                f"--audit-policy-file={policy}",
                f"--audit-webhook-config-file={webhook}",
                "--audit-webhook-version=audit.k8s.io/v1",
                "--audit-webhook-mode=batch",
                f"--audit-webhook-batch-max-wait={self.audit_batch_wait_s}s",
                "--audit-webhook-initial-backoff=1s",
                # the same events as JSON lines, kept beside the cluster's other files
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-maxbackup=1",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--watch-cache=false",
            ],
        )
        self._wait(self._ready, "kube-apiserver", apiserver)

    def _ready(self) -> bool:
        ident = self.identities[0]
        ctx = ssl.create_default_context(cafile=str(self._files["ca"]))
        req = urllib.request.Request(
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {ident.token}"}
        )
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def _wait(self, check: Callable[[], bool], name: str, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")
            if check():
                return
            time.sleep(0.5)
        raise StackError(f"{name} not ready in {self.start_timeout_s:.0f}s:\n{self.log(name)}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, to exactly the processes this cluster started."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self._procs.clear()
        if self._front is not None:
            self._front.close()
            self._front = None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def kubectl_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for kubectl that reads no user config and caches in the work dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update(extra or {})
    return env
