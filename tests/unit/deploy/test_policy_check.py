"""scripts/policy_check.py: a compliant set passes, and each broken rule is caught by name."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "k8s"

Doc = dict[str, Any]


def worker() -> Doc:
    """A worker Deployment that meets every rule."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "proctor-worker", "namespace": "proctor"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "proctor-worker"}},
            "template": {
                "metadata": {
                    "labels": {
                        "app.kubernetes.io/name": "proctor-worker",
                        "app.kubernetes.io/component": "worker",
                    }
                },
                "spec": {
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "affinity": {
                        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}
                    },
                    "containers": [
                        {
                            "name": "worker",
                            "image": "proctor:0.1.0",
                            "args": ["worker"],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "768Mi"},
                                "limits": {"cpu": "1", "memory": "1536Mi"},
                            },
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "10"]}}},
                            "env": [
                                {
                                    "name": "PROCTOR_KAFKA_SASL_PASSWORD",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "kafka", "key": "password"}
                                    },
                                }
                            ],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def pdb() -> Doc:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "proctor-worker", "namespace": "proctor"},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "proctor-worker"}},
        },
    }


def topic(name: str, partitions: int) -> Doc:
    return {
        "apiVersion": "cluster.redpanda.com/v1alpha2",
        "kind": "Topic",
        "metadata": {"name": "proctor-" + name.replace(".", "-"), "namespace": "redpanda"},
        "spec": {"overwriteTopicName": name, "partitions": partitions},
    }


def good() -> list[Doc]:
    return [
        worker(),
        pdb(),
        topic("exam.control", 6),
        topic("platform.flink", 6),
        topic("grading.dlq", 3),
    ]


def container(docs: list[Doc]) -> Doc:
    c: Doc = docs[0]["spec"]["template"]["spec"]["containers"][0]
    return c


def pod(docs: list[Doc]) -> Doc:
    p: Doc = docs[0]["spec"]["template"]["spec"]
    return p


def test_a_compliant_set_passes(policy: ModuleType) -> None:
    assert policy.check(good()) == []


def _set(path: list[str], value: Any) -> Callable[[list[Doc]], None]:
    def mutate(docs: list[Doc]) -> None:
        node = container(docs)
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return mutate


def _del(
    path: list[str], on: Callable[[list[Doc]], Doc] = container
) -> Callable[[list[Doc]], None]:
    def mutate(docs: list[Doc]) -> None:
        node = on(docs)
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _pod_set(key: str, value: Any) -> Callable[[list[Doc]], None]:
    def mutate(docs: list[Doc]) -> None:
        pod(docs)[key] = value

    return mutate


def _no_pdb(docs: list[Doc]) -> None:
    docs.remove(next(d for d in docs if d["kind"] == "PodDisruptionBudget"))


def _pdb_elsewhere(docs: list[Doc]) -> None:
    next(d for d in docs if d["kind"] == "PodDisruptionBudget")["spec"]["selector"] = {
        "matchLabels": {"app.kubernetes.io/name": "someone-else"}
    }


def _tmp_not_empty_dir(docs: list[Doc]) -> None:
    pod(docs)["volumes"] = [{"name": "tmp", "configMap": {"name": "x"}}]


def _secret_literal(docs: list[Doc]) -> None:
    container(docs)["env"] = [
        {"name": "PROCTOR_KAFKA_SASL_PASSWORD", "value": "hunter2-but-longer"}
    ]


def _secret_in_repo(docs: list[Doc]) -> None:
    docs.append(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    )


def _secret_in_config(docs: list[Doc]) -> None:
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"PROCTOR_WEBHOOK_SECRET": "x"},
        }
    )


BROKEN: dict[str, tuple[Callable[[list[Doc]], None], str]] = {
    "runs as root": (_set(["securityContext", "runAsUser"], 0), "non-root"),
    "runAsNonRoot missing": (_del(["securityContext", "runAsNonRoot"], pod), "non-root"),
    "writable root": (_set(["securityContext", "readOnlyRootFilesystem"], False), "read-only-root"),
    "no /tmp": (_del(["volumeMounts"]), "read-only-root"),
    "/tmp not an emptyDir": (_tmp_not_empty_dir, "read-only-root"),
    "privilege escalation": (
        _set(["securityContext", "allowPrivilegeEscalation"], True),
        "no-privilege-escalation",
    ),
    "escalation unset": (
        _del(["securityContext", "allowPrivilegeEscalation"]),
        "no-privilege-escalation",
    ),
    "privileged": (_set(["securityContext", "privileged"], True), "not-privileged"),
    "capabilities kept": (
        _set(["securityContext", "capabilities"], {"drop": ["NET_RAW"]}),
        "drop-capabilities",
    ),
    "capability added": (
        _set(["securityContext", "capabilities"], {"drop": ["ALL"], "add": ["NET_ADMIN"]}),
        "drop-capabilities",
    ),
    "no seccomp": (_del(["securityContext", "seccompProfile"], pod), "seccomp"),
    "unconfined seccomp": (
        _set(["securityContext", "seccompProfile"], {"type": "Unconfined"}),
        "seccomp",
    ),
    "no cpu limit": (_del(["resources", "limits", "cpu"]), "resources"),
    "no memory request": (_del(["resources", "requests", "memory"]), "resources"),
    "no resources": (_del(["resources"]), "resources"),
    "latest image": (_set(["image"], "proctor:latest"), "pinned-image"),
    "untagged image": (_set(["image"], "registry.example.com:5000/proctor"), "pinned-image"),
    "no liveness": (_del(["livenessProbe"]), "probes"),
    "readiness on /healthz": (
        _set(["readinessProbe"], {"httpGet": {"path": "/healthz", "port": "http"}}),
        "worker-probes",
    ),
    "liveness on /metrics": (
        _set(["livenessProbe"], {"httpGet": {"path": "/metrics", "port": "http"}}),
        "worker-probes",
    ),
    "no preStop": (_del(["lifecycle"]), "worker-shutdown"),
    "short grace": (_pod_set("terminationGracePeriodSeconds", 5), "worker-shutdown"),
    "grace unset": (_del(["terminationGracePeriodSeconds"], pod), "worker-shutdown"),
    "host network": (_pod_set("hostNetwork", True), "host-namespaces"),
    "hostPath": (
        _pod_set(
            "volumes", [{"name": "tmp", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/"}}]
        ),
        "host-path",
    ),
    "no anti-affinity": (_del(["affinity"], pod), "worker-anti-affinity"),
    "no PDB": (_no_pdb, "worker-pdb"),
    "PDB selects others": (_pdb_elsewhere, "worker-pdb"),
    "literal secret env": (_secret_literal, "secret-by-reference"),
    "Secret with data": (_secret_in_repo, "secret-by-reference"),
    "secret in ConfigMap": (_secret_in_config, "secret-by-reference"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_rule_is_caught(policy: ModuleType, case: str) -> None:
    mutate, rule = BROKEN[case]
    docs = good()
    mutate(docs)
    violations = policy.check(docs)
    assert rule in {v.rule for v in violations}, [str(v) for v in violations]


def test_more_workers_than_partitions_is_caught(policy: ModuleType) -> None:
    docs = good()
    docs[0]["spec"]["replicas"] = 7
    rules = [v for v in policy.check(docs) if v.rule == "worker-replicas"]
    assert len(rules) == 1
    assert "6 partitions" in rules[0].message  # the input topics', not the DLQ's 3


def test_init_containers_are_checked_too(policy: ModuleType) -> None:
    docs = good()
    init = copy.deepcopy(container(docs))
    init["name"] = "init"
    init["securityContext"]["readOnlyRootFilesystem"] = False
    pod(docs)["initContainers"] = [init]
    violations = policy.check(docs)
    assert [v.resource for v in violations] == ["Deployment/proctor/proctor-worker container init"]


def test_jobs_need_no_probes_but_the_rest(policy: ModuleType) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "proctor"},
        "spec": {"template": {"spec": copy.deepcopy(pod(good()))}},
    }
    c = job["spec"]["template"]["spec"]["containers"][0]
    del c["livenessProbe"], c["readinessProbe"]
    assert policy.check([job]) == []
    c["resources"] = {}
    assert {v.rule for v in policy.check([job])} == {"resources"}


def _run(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "policy_check.py"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_exit_codes_and_messages() -> None:
    ok = _run(["-"], yaml.safe_dump_all(good()))
    assert ok.returncode == 0, ok.stderr
    assert "0 violations" in ok.stdout
    docs = good()
    container(docs)["securityContext"]["allowPrivilegeEscalation"] = True
    bad = _run(["-"], yaml.safe_dump_all(docs))
    assert bad.returncode == 1
    assert (
        "[no-privilege-escalation] set securityContext.allowPrivilegeEscalation: false"
        in bad.stderr
    )
    broken = _run(["-"], "kind: [unclosed")
    assert broken.returncode == 2
    assert "cannot read the manifests" in broken.stderr
    not_k8s = _run(["-"], "just: a mapping\n")
    assert not_k8s.returncode == 2


@pytest.mark.parametrize("overlay", ["local", "prod"])
def test_the_overlays_pass(policy: ModuleType, build: Any, overlay: str) -> None:
    docs = build(K8S / "overlays" / overlay)
    assert [str(v) for v in policy.check(docs)] == []
    workers = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "proctor-worker"
    ]
    assert len(workers) == 1
