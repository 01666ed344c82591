#!/usr/bin/env python3
"""Policy check of rendered Kubernetes manifests (the output of ``kustomize build``).

kubeconform says a manifest is well-formed; this says it is acceptable to run here:

- every container: non-root, read-only root file system with a writable emptyDir at
  /tmp, no privilege escalation, not privileged, all capabilities dropped and none added,
  a RuntimeDefault (or Localhost) seccomp profile, CPU and memory requests and limits,
  an image with a tag that is not ``latest``;
- every pod: no host network, PID or IPC namespace, no hostPath volume;
- long-running pods (Deployment, StatefulSet, DaemonSet): liveness and readiness probes;
- the grader worker (label app.kubernetes.io/component=worker): readiness on /readyz,
  liveness on /healthz, a preStop hook and a grace period of at least 30 s, no more
  replicas than the partitions of its input topics (when the Topics are in the same
  build), and a PodDisruptionBudget that selects it;
- secrets only by reference: no Secret with data, no secret-looking environment variable
  or ConfigMap key with a literal value.

    kustomize build k8s/overlays/prod | python scripts/policy_check.py -
Exit status 1 and one line per violation (what, where, how to fix) when anything fails.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|USER_INFO|API_KEY|PRIVATE_KEY|CREDENTIAL)", re.I
)
#: Topics whose partitions bound the worker's parallelism (the contract's input topics).
INPUT_TOPIC = re.compile(r"^(exam\.control|platform\..+)$")
MIN_GRACE_S = 30


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where, which rule, and what to do about it."""

    resource: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: [{self.rule}] {self.message}"


def load_documents(texts: Iterable[str]) -> list[dict[str, Any]]:
    """Every non-empty YAML document of the given streams."""
    docs: list[dict[str, Any]] = []
    for text in texts:
        for doc in yaml.safe_load_all(text):
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc:
                raise ValueError(f"not a Kubernetes object: {str(doc)[:80]!r}")
            docs.append(doc)
    return docs


def _dig(obj: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _ref(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{doc['kind']}/{ns + '/' if ns else ''}{meta.get('name', '?')}"


def _containers(pod: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("initContainers", "containers"):
        for container in pod.get(field) or []:
            yield field, container


def check_container(
    where: str, pod: dict[str, Any], container: dict[str, Any], long_running: bool
) -> list[Violation]:
    v: list[Violation] = []
    name = f"{where} container {container.get('name', '?')}"
    pod_sc = pod.get("securityContext") or {}
    sc = container.get("securityContext") or {}

    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    if non_root is not True:
        v.append(Violation(name, "non-root", "set securityContext.runAsNonRoot: true"))
    if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
        v.append(Violation(name, "non-root", "runAsUser is 0 (root); use the image's uid 10001"))
    if sc.get("readOnlyRootFilesystem") is not True:
        v.append(
            Violation(name, "read-only-root", "set securityContext.readOnlyRootFilesystem: true")
        )
    else:
        empty_dirs = {vol.get("name") for vol in pod.get("volumes") or [] if "emptyDir" in vol}
        tmp = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == "/tmp"]
        if not tmp or tmp[0].get("name") not in empty_dirs:
            v.append(
                Violation(
                    name,
                    "read-only-root",
                    "mount an emptyDir volume at /tmp (the root is read-only)",
                )
            )
    if sc.get("allowPrivilegeEscalation") is not False:
        v.append(
            Violation(
                name,
                "no-privilege-escalation",
                "set securityContext.allowPrivilegeEscalation: false",
            )
        )
    if sc.get("privileged") is True:
        v.append(Violation(name, "not-privileged", "remove securityContext.privileged: true"))
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        v.append(
            Violation(name, "drop-capabilities", "set securityContext.capabilities.drop: [ALL]")
        )
    if caps.get("add"):
        v.append(
            Violation(
                name,
                "drop-capabilities",
                f"capabilities.add {caps['add']} is not allowed; drop them",
            )
        )
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        v.append(
            Violation(name, "seccomp", "set securityContext.seccompProfile.type: RuntimeDefault")
        )

    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if (resources.get(kind) or {}).get(res) in (None, ""):
                v.append(Violation(name, "resources", f"set resources.{kind}.{res}"))

    image = str(container.get("image") or "")
    tag = image.rsplit("/", 1)[-1]
    if not image or ("@" not in tag and (":" not in tag or tag.endswith(":latest"))):
        v.append(
            Violation(name, "pinned-image", f"image {image!r}: name a version tag (not latest)")
        )

    if long_running:
        for probe in ("livenessProbe", "readinessProbe"):
            if not container.get(probe):
                v.append(Violation(name, "probes", f"set {probe}"))

    for env in container.get("env") or []:
        if SECRET_NAME.search(str(env.get("name", ""))) and "value" in env:
            v.append(
                Violation(
                    name,
                    "secret-by-reference",
                    f"env {env['name']} has a literal value; take it from a Secret (valueFrom/envFrom)",
                )
            )
    return v


def check_pod(where: str, kind: str, pod: dict[str, Any]) -> list[Violation]:
    v: list[Violation] = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag) is True:
            v.append(Violation(where, "host-namespaces", f"remove {flag}: true"))
    for vol in pod.get("volumes") or []:
        if "hostPath" in vol:
            v.append(
                Violation(
                    where,
                    "host-path",
                    f"volume {vol.get('name')} is a hostPath; use emptyDir or a PVC",
                )
            )
    containers = list(_containers(pod))
    if not containers:
        v.append(Violation(where, "containers", "the pod has no containers"))
    for field, container in containers:
        v += check_container(where, pod, container, kind in LONG_RUNNING and field == "containers")
    return v


def _http_path(probe: Any) -> str | None:
    return _dig(probe, ("httpGet", "path"))


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if not selector:
        return False
    match = selector.get("matchLabels") or {}
    if any(labels.get(k) != val for k, val in match.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value = labels.get(expr.get("key", ""))
        op, values = expr.get("operator"), expr.get("values") or []
        if (op == "In" and value not in values) or (op == "NotIn" and value in values):
            return False
        if (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    return bool(match or selector.get("matchExpressions"))


def check_worker(doc: dict[str, Any], docs: list[dict[str, Any]]) -> list[Violation]:
    where = _ref(doc)
    pod = _dig(doc, POD_TEMPLATE_PATHS[doc["kind"]]) or {}
    v: list[Violation] = []
    main = [c for c in pod.get("containers") or []]
    for container in main:
        name = f"{where} container {container.get('name', '?')}"
        if _http_path(container.get("readinessProbe")) != "/readyz":
            v.append(
                Violation(name, "worker-probes", "readinessProbe must be an httpGet of /readyz")
            )
        if _http_path(container.get("livenessProbe")) != "/healthz":
            v.append(
                Violation(name, "worker-probes", "livenessProbe must be an httpGet of /healthz")
            )
        if not _dig(container, ("lifecycle", "preStop")):
            v.append(
                Violation(
                    name,
                    "worker-shutdown",
                    "set lifecycle.preStop so it leaves endpoints before SIGTERM",
                )
            )
    grace = pod.get("terminationGracePeriodSeconds")
    if not isinstance(grace, int) or grace < MIN_GRACE_S:
        v.append(
            Violation(
                where,
                "worker-shutdown",
                f"terminationGracePeriodSeconds must be >= {MIN_GRACE_S} so the worker commits before exit",
            )
        )
    partitions = [
        _dig(t, ("spec", "partitions"))
        for t in docs
        if t.get("kind") == "Topic"
        and INPUT_TOPIC.match(
            str(_dig(t, ("spec", "overwriteTopicName")) or _dig(t, ("metadata", "name")))
        )
    ]
    replicas = _dig(doc, ("spec", "replicas"))
    bounded = [p for p in partitions if isinstance(p, int)]
    if bounded and isinstance(replicas, int) and replicas > min(bounded):
        v.append(
            Violation(
                where,
                "worker-replicas",
                f"{replicas} replicas but the input topics have {min(bounded)} partitions: the rest would idle",
            )
        )
    labels = _dig(doc, ("spec", "template", "metadata", "labels")) or {}
    namespace = _dig(doc, ("metadata", "namespace"))
    pdbs = [
        p
        for p in docs
        if p.get("kind") == "PodDisruptionBudget"
        and _dig(p, ("metadata", "namespace")) == namespace
        and _selects(_dig(p, ("spec", "selector")), labels)
    ]
    if not pdbs:
        v.append(
            Violation(
                where, "worker-pdb", "add a PodDisruptionBudget that selects the worker's pods"
            )
        )
    if not _dig(pod, ("affinity", "podAntiAffinity")):
        v.append(
            Violation(
                where,
                "worker-anti-affinity",
                "set affinity.podAntiAffinity to spread workers over nodes",
            )
        )
    return v


def check_secrets(doc: dict[str, Any]) -> list[Violation]:
    where = _ref(doc)
    if doc["kind"] == "Secret" and (doc.get("data") or doc.get("stringData")):
        return [
            Violation(
                where,
                "secret-by-reference",
                "a Secret with data is in the manifests; create it outside git (ExternalSecret or by hand)",
            )
        ]
    if doc["kind"] == "ConfigMap":
        return [
            Violation(
                where,
                "secret-by-reference",
                f"ConfigMap key {key} looks secret; move it to a Secret",
            )
            for key in (doc.get("data") or {})
            if SECRET_NAME.search(key)
        ]
    return []


def check(docs: list[dict[str, Any]]) -> list[Violation]:
    """Every violation in a set of rendered manifests."""
    violations: list[Violation] = []
    for doc in docs:
        kind = doc["kind"]
        violations += check_secrets(doc)
        path = POD_TEMPLATE_PATHS.get(kind)
        if path is None:
            continue
        pod = _dig(doc, path)
        if not isinstance(pod, dict):
            violations.append(Violation(_ref(doc), "containers", "no pod template"))
            continue
        violations += check_pod(_ref(doc), kind, pod)
        component = _dig(
            doc, ("spec", "template", "metadata", "labels", "app.kubernetes.io/component")
        )
        if kind in LONG_RUNNING and component == "worker":
            violations += check_worker(doc, docs)
    return violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="YAML files of rendered manifests ('-' for stdin)")
    args = parser.parse_args(argv)
    texts = [sys.stdin.read() if f == "-" else Path(f).read_text() for f in args.files]
    try:
        docs = load_documents(texts)
    except (yaml.YAMLError, ValueError) as exc:
        print(f"policy: cannot read the manifests: {exc}", file=sys.stderr)
        return 2
    violations = check(docs)
    for violation in violations:
        print(f"policy: {violation}", file=sys.stderr)
    workloads = sum(1 for d in docs if d["kind"] in POD_TEMPLATE_PATHS)
    print(f"policy: {len(docs)} resources, {workloads} workloads, {len(violations)} violations")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
