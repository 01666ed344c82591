"""The Kubernetes manifests agree with the code they deploy.

Topics equal the contract's, settings are names the services read, every command and
collector source exists, the pollers' configuration parses, images carry the package's
version, prod has every secret it mounts from an ExternalSecret, and Argo CD points at
the prod overlay. These read the YAML in k8s/ directly; the tests that need a rendered
overlay use kustomize (installed by scripts/check-manifests.sh) and skip without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services import __version__
from services.cli import COMMANDS
from services.collectors.cli import SOURCES
from services.collectors.receivers import ALL_SOURCES
from services.collectors.runner import polling_module
from services.collectors.settings import STATE_DIR_ENV, load_config, parse_model
from services.contract.schemas import PLATFORM_PARTITIONS, TOPICS
from services.grader.settings import GraderSettings
from services.stack.config import StackConfig

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "k8s"
RECEIVERS = K8S / "base" / "proctor" / "collectors"
POLLERS_EXAMPLE = K8S / "pollers" / "example"


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def containers(objs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, container) for every container of every pod template."""
    for obj in objs:
        spec = obj.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec")
        if pod:
            for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
                yield obj, c


def generator_literals(kustomization: Path, name: str) -> dict[str, str]:
    data = yaml.safe_load(kustomization.read_text())
    out: dict[str, str] = {}
    for gen in data.get("configMapGenerator") or []:
        if gen["name"] == name:
            out.update(dict(lit.split("=", 1) for lit in gen.get("literals") or []))
    return out


# --- topics -------------------------------------------------------------------------------
def test_topics_are_the_contracts() -> None:
    topics = docs(K8S / "base" / "topics" / "topics.yaml")
    assert all(
        t["apiVersion"] == "cluster.redpanda.com/v1alpha2" and t["kind"] == "Topic" for t in topics
    )
    by_name = {t["spec"]["overwriteTopicName"]: t for t in topics}
    assert len(by_name) == len(topics), "a topic is declared twice"
    assert set(by_name) == {spec.name for spec in TOPICS}
    for spec in TOPICS:
        topic = by_name[spec.name]
        assert topic["metadata"]["name"] == "proctor-" + spec.name.replace(".", "-")
        assert topic["spec"]["partitions"] == spec.partitions, spec.name
        assert topic["spec"]["additionalConfig"] == dict(spec.config), spec.name
        assert all(isinstance(v, str) for v in topic["spec"]["additionalConfig"].values())
        assert topic["spec"]["cluster"]["clusterRef"]["name"] == "redpanda"
        assert topic["spec"]["replicationFactor"] == 3
        # Created before the services that use them.
        assert int(topic["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < 0


def test_local_overlay_has_one_replica_per_topic(build: Any) -> None:
    topics = [d for d in build(K8S / "overlays" / "local") if d["kind"] == "Topic"]
    assert len(topics) == len(TOPICS)
    assert {t["spec"]["replicationFactor"] for t in topics} == {1}
    assert {t["metadata"]["namespace"] for t in topics} == {"redpanda"}


# --- settings -----------------------------------------------------------------------------
def config_literals() -> list[tuple[str, dict[str, str]]]:
    return [
        (
            "base",
            generator_literals(K8S / "base" / "proctor" / "kustomization.yaml", "proctor-config"),
        ),
        (
            "local",
            generator_literals(K8S / "overlays" / "local" / "kustomization.yaml", "proctor-config"),
        ),
        (
            "prod",
            generator_literals(K8S / "overlays" / "prod" / "kustomization.yaml", "proctor-config"),
        ),
    ]


def test_config_names_are_settings_the_services_read(known_settings: set[str]) -> None:
    known = known_settings
    pyiceberg = f"PYICEBERG_CATALOG__{GraderSettings().catalog_name.upper()}__"
    for where, literals in config_literals():
        assert literals, f"{where}: no proctor-config literals"
        unknown = {k for k in literals if k not in known and not k.startswith(pyiceberg)}
        assert not unknown, f"{where}: no service reads {sorted(unknown)}"
    for path in [
        *RECEIVERS.glob("*.yaml"),
        K8S / "base" / "proctor" / "worker.yaml",
        K8S / "pollers" / "base" / "deployment.yaml",
    ]:
        for _obj, c in containers(docs(path)):
            names = {e["name"] for e in c.get("env") or []}
            assert names <= known, f"{path.name}: no service reads {sorted(names - known)}"


def test_stack_dir_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_STACK_DIR", "/var/lib/proctor")
    assert StackConfig.from_env().state_dir == Path("/var/lib/proctor")


@pytest.mark.parametrize("overlay", ["local", "prod"])
def test_worker_accepts_the_overlay_config(monkeypatch: pytest.MonkeyPatch, overlay: str) -> None:
    merged = {**config_literals()[0][1], **dict(config_literals())[overlay]}
    for key in list(merged):
        monkeypatch.delenv(key, raising=False)
    for key, value in merged.items():
        monkeypatch.setenv(key, value)
    # what the proctor-kafka Secret adds in every pod
    monkeypatch.setenv("PROCTOR_KAFKA_SASL_USERNAME", "grader")
    monkeypatch.setenv("PROCTOR_KAFKA_SASL_PASSWORD", "from-the-secret")
    settings = GraderSettings()
    assert settings.kafka_bootstrap == merged["PROCTOR_KAFKA_BOOTSTRAP"]
    assert settings.replication_factor == int(merged["PROCTOR_REPLICATION_FACTOR"])
    assert settings.kafka_security.protocol == merged["PROCTOR_KAFKA_SECURITY_PROTOCOL"]
    for key in merged:
        assert not re.search(r"PASSWORD|SECRET|TOKEN|USER_INFO", key), f"{key} belongs in a Secret"


# --- commands and collectors --------------------------------------------------------------
def all_containers() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.rglob("*.yaml")):
        if "schemas" in path.parts or path.name == "kustomization.yaml":
            continue
        for obj, c in containers([d for d in docs(path) if isinstance(d, dict)]):
            # patches (defaults.yaml, overlay patches) name no image: not a container yet
            if (
                obj.get("kind") in ("Deployment", "Job", "StatefulSet", "DaemonSet")
                and "image" in c
            ):
                out.append((path, c))
    return out


def test_every_container_runs_a_proctor_command() -> None:
    found = all_containers()
    assert len(found) >= 8
    for path, c in found:
        args = c.get("args") or []
        assert args and args[0] in COMMANDS, f"{path.name}: {args} is not a proctor command"
        if args[0] == "collect":
            assert args[1] in SOURCES, f"{path.name}: no collector source {args[1]!r}"


def test_a_receiver_per_push_source() -> None:
    deployed = {}
    for path in RECEIVERS.glob("*.yaml"):
        for obj in docs(path):
            if (
                obj["kind"] == "Deployment"
                and obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")
                == "receiver"
            ):
                args = obj["spec"]["template"]["spec"]["containers"][0]["args"]
                assert obj["metadata"]["name"] == f"proctor-collect-{args[1]}"
                deployed[args[1]] = obj
    assert set(deployed) == {s.name for s in ALL_SOURCES}
    for name in deployed:
        services = [d for d in docs(RECEIVERS / f"{name}.yaml") if d["kind"] == "Service"]
        assert [s["metadata"]["name"] for s in services] == [f"proctor-collect-{name}"]
        assert services[0]["spec"]["ports"][0]["port"] == 9464


def test_argocd_template_posts_to_the_receiver_service() -> None:
    template = docs(K8S / "argocd" / "notifications-template.yaml")[0]
    service = yaml.safe_load(template["data"]["service.webhook.proctor"])
    assert service["url"].startswith(
        "http://proctor-collect-argocd.proctor.svc.cluster.local:9464/"
    )


@pytest.mark.parametrize(
    "path", [POLLERS_EXAMPLE / "collectors.yaml", REPO / "deploy" / "compose" / "collectors.yaml"]
)
def test_pollers_configs_parse(path: Path) -> None:
    config = load_config(path)
    assert config.metrics_port == 9464
    assert config.state_dir == Path("/var/lib/proctor/collectors")
    for source, raw in config.sources.items():
        module = polling_module(source)
        parse_model(module.Settings, raw, f"{path}: {source}")


def test_pollers_deployment_matches_its_config() -> None:
    objs = docs(K8S / "pollers" / "base" / "deployment.yaml")
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = pod["containers"][0]
    config_path = Path(c["args"][c["args"].index("--config") + 1])
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert str(config_path.parent) == mounts["config"]
    assert config_path.name == "collectors.yaml"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env[STATE_DIR_ENV] == mounts["state"]
    state = next(v for v in pod["volumes"] if v["name"] == "state")
    assert state["persistentVolumeClaim"]["claimName"] in {
        o["metadata"]["name"] for o in objs if o["kind"] == "PersistentVolumeClaim"
    }
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


# --- images, secrets, Argo CD -------------------------------------------------------------
def test_images_carry_the_package_version() -> None:
    for kustomization in [
        K8S / "base" / "proctor",
        K8S / "pollers" / "base",
        K8S / "overlays" / "prod",
    ]:
        data = yaml.safe_load((kustomization / "kustomization.yaml").read_text())
        tags = {i["name"]: i["newTag"] for i in data["images"]}
        assert tags == {"proctor": __version__}, kustomization


def test_prod_mounts_only_secrets_it_makes(build: Any) -> None:
    objs = build(K8S / "overlays" / "prod")
    made = {o["spec"]["target"]["name"] for o in objs if o["kind"] == "ExternalSecret"}
    assert not [o for o in objs if o["kind"] == "Secret"]
    used: set[str] = set()
    for obj in objs:
        pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        for c in pod.get("containers") or []:
            used |= {e["secretRef"]["name"] for e in c.get("envFrom") or [] if "secretRef" in e}
            used |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in c.get("env") or []
                if "secretKeyRef" in (e.get("valueFrom") or {})
            }
        used |= {v["secret"]["secretName"] for v in pod.get("volumes") or [] if "secret" in v}
    assert used == made == {"proctor-kafka", "proctor-catalog", "proctor-webhooks"}


def test_worker_replicas_and_partitions(build: Any) -> None:
    for overlay, replicas in (("local", 1), ("prod", 3)):
        objs = build(K8S / "overlays" / overlay)
        worker = next(
            o
            for o in objs
            if o["kind"] == "Deployment" and o["metadata"]["name"] == "proctor-worker"
        )
        assert worker["spec"]["replicas"] == replicas
        assert 1 <= replicas <= PLATFORM_PARTITIONS


def test_argocd_application_syncs_the_prod_overlay() -> None:
    app = docs(K8S / "argocd" / "application.yaml")[0]
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    path = app["spec"]["source"]["path"]
    assert path == "k8s/overlays/prod" and (REPO / path / "kustomization.yaml").is_file()
    automated = app["spec"]["syncPolicy"]["automated"]
    assert automated == {"prune": True, "selfHeal": True}


def _wave(obj: dict[str, Any]) -> int:
    return int(
        ((obj["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave")) or 0
    )


@pytest.mark.parametrize("overlay", ["local", "prod"])
def test_schema_registration_runs_after_its_inputs_and_before_the_workloads(
    build: Any, overlay: str
) -> None:
    objs = build(K8S / "overlays" / overlay)
    (job,) = [o for o in objs if o["kind"] == "Job"]
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["schemas", "register"]
    assert pod["restartPolicy"] == "Never"
    # What the Job's pod needs exists in an earlier wave (a PreSync hook would run before
    # all of it, and on a fresh cluster never start).
    needs = {("Namespace", "proctor"), ("ServiceAccount", pod["serviceAccountName"])}
    needs |= {
        ("ConfigMap", e["configMapRef"]["name"])
        for e in pod["containers"][0]["envFrom"]
        if "configMapRef" in e
    }
    made_by = {o["spec"]["target"]["name"]: o for o in objs if o["kind"] == "ExternalSecret"}
    for e in pod["containers"][0]["envFrom"]:
        if "secretRef" in e and e["secretRef"]["name"] in made_by:
            needs.add(("ExternalSecret", made_by[e["secretRef"]["name"]]["metadata"]["name"]))
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    for key in needs:
        assert key in by_key, f"{overlay}: the Job needs {key}, which is not in the build"
        assert _wave(by_key[key]) < _wave(job), f"{overlay}: {key} must sync before the Job"
    for obj in objs:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            assert _wave(obj) > _wave(job), f"{obj['metadata']['name']} must roll out after the Job"
