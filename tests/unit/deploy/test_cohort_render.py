"""`proctor deploy render`: a 3-candidate cohort's Kustomize tree, built, and every rubric
criterion's collectors deployed for every candidate."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from services.collectors.polling import Collector
from services.collectors.receivers import ALL_SOURCES
from services.deploy.cli import deploy, templates_for, write_tree
from services.deploy.cohort import Cohort, parse_cohort
from services.deploy.render import POLLING_MODULES, RECEIVERS, Templates, render
from services.errors import ConfigError
from services.rubrics import resolver
from tests.unit.deploy.conftest import K8S, kustomize_build

pytestmark = pytest.mark.unit

EXAMPLE = K8S / "cohorts" / "example"
COHORT_FILE = EXAMPLE / "cohort.yaml"
#: criteria decided from signed submissions or control events (the submission endpoint,
#: the proctor), not from a collector
SUBMITTED_KINDS = {"root_cause", "root_cause_on_time", "text_points", "self_grade_agreement"}
#: criteria decided from other criteria
DERIVED_KINDS = {"all_met"}


def example() -> Cohort:
    return parse_cohort(yaml.safe_load(COHORT_FILE.read_text()), str(COHORT_FILE))


def heartbeat_names() -> dict[str, str]:
    """Every collector source -> the heartbeat name the rubric lists it under, read from
    the collectors themselves (polling modules' Collector classes, the receivers)."""
    out: dict[str, str] = {}
    for source, module_name in POLLING_MODULES.items():
        module = importlib.import_module(module_name)
        names = {
            cls.name
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, Collector) and cls.__module__ == module_name and "name" in vars(cls)
        }
        assert len(names) == 1, f"{module_name}: expected one collector name, got {names}"
        out[source] = names.pop()
    for src in ALL_SOURCES:
        out[src.name] = src.name
    return out


def deployed(objs: list[dict[str, Any]], platform_id: str, namespace: str) -> set[str]:
    """The sources built objects really run for one platform: the pollers Deployment in
    its namespace running `collect all` with a config whose sources are listed, plus each
    receiver Deployment of namespace proctor serving a platforms list naming it."""
    by = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs}
    dep = by.get(("Deployment", namespace, f"proctor-pollers-{platform_id}"))
    assert dep is not None, f"no pollers Deployment for {platform_id} in {namespace}"
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:2] == ["collect", "all"]
    config_path = Path(container["args"][container["args"].index("--config") + 1])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    cm = by[("ConfigMap", namespace, volume["configMap"]["name"])]
    config = yaml.safe_load(cm["data"][config_path.name])
    assert config["platform_id"] == platform_id
    sources = set(config["sources"])
    platforms_cm = next(
        o
        for o in objs
        if o["kind"] == "ConfigMap"
        and o["metadata"]["name"].startswith("proctor-receiver-platforms")
    )
    served = platforms_cm["data"]["platforms.txt"].split()
    for o in objs:
        labels = o["metadata"].get("labels", {})
        if o["kind"] == "Deployment" and labels.get("app.kubernetes.io/component") == "receiver":
            (rc,) = o["spec"]["template"]["spec"]["containers"]
            if platform_id in served:
                sources.add(rc["args"][1])
    return sources


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """A fresh render of the example cohort into a temporary directory, built."""
    out = tmp_path_factory.mktemp("cohort") / "rendered"
    write_tree(render(example(), templates_for(out, COHORT_FILE)), out)
    return kustomize_build(out)


def test_committed_example_is_a_fresh_render() -> None:
    rendered = EXAMPLE / "rendered"
    fresh = render(example(), templates_for(rendered, COHORT_FILE))
    committed = {
        str(p.relative_to(rendered)): p.read_text() for p in rendered.rglob("*") if p.is_file()
    }
    stale = sorted(k for k in set(fresh) | set(committed) if fresh.get(k) != committed.get(k))
    assert not stale, (
        f"k8s/cohorts/example/rendered differs from a fresh render in {stale}: run "
        "proctor deploy render --cohort k8s/cohorts/example/cohort.yaml "
        "--out k8s/cohorts/example/rendered"
    )


def test_every_candidate_has_collectors_for_all_twelve_sources(built: list[dict[str, Any]]) -> None:
    spec = resolver()("y3-final", "1")
    rubric_names = {name for c in spec.criteria for name in c.collectors}
    assert len(rubric_names) == 12
    names = heartbeat_names()
    for cand in example().candidates:
        sources = deployed(built, cand.platform_id, cand.namespace)
        assert sources == set(POLLING_MODULES) | set(RECEIVERS)
        # every source reporting under a rubric name runs (trino = rules + query events,
        # observability = pillars + tool access logs)
        for rubric_name in rubric_names:
            needed = {s for s, n in names.items() if n == rubric_name}
            assert needed, f"no collector reports as {rubric_name!r}"
            assert needed <= sources, f"{cand.platform_id}: {needed - sources} not deployed"


def criteria_without_source(sources: set[str]) -> list[str]:
    names = heartbeat_names()
    # a rubric name is covered only when every source reporting under it runs: trino is
    # the rules (column masks) and the query events, observability the pillars and the
    # tools' access logs (tool.used)
    up = {n for n in set(names.values()) if {s for s, m in names.items() if m == n} <= sources}
    missing = []
    for c in resolver()("y3-final", "1").criteria:
        if c.collectors:
            if not set(c.collectors) <= up:
                missing.append(f"{c.criterion_id} (needs {sorted(set(c.collectors) - up)})")
        elif c.kind not in SUBMITTED_KINDS | DERIVED_KINDS:
            missing.append(f"{c.criterion_id} (kind {c.kind} names no collector)")
    return missing


def test_every_rubric_criterion_maps_to_a_deployed_source(built: list[dict[str, Any]]) -> None:
    for cand in example().candidates:
        missing = criteria_without_source(deployed(built, cand.platform_id, cand.namespace))
        assert not missing, f"{cand.platform_id}: criteria with no deployed collector: {missing}"


def test_the_mapping_names_the_criterion_when_a_source_is_not_deployed() -> None:
    everything = set(POLLING_MODULES) | set(RECEIVERS)
    missing = criteria_without_source(everything - {"access-logs"})
    assert any(m.startswith("p2.triage_observability") for m in missing)
    missing = criteria_without_source(everything - {"dbt"})
    assert {m.split()[0] for m in missing} == {
        "p1.dbt_rollup_tested",
        "p1.e2e_100k",
        "p1.dbt_catches_broken_row",
    }


def test_file_sources_read_read_only_mounts(built: list[dict[str, Any]]) -> None:
    """dbt artifacts, tool logs and Trino's rules are read from volumes the pollers mount
    read-only: the evidence volume and the candidate's own rules ConfigMap."""
    for cand in example().candidates:
        (dep,) = [
            o
            for o in built
            if o["kind"] == "Deployment"
            and o["metadata"]["name"] == f"proctor-pollers-{cand.platform_id}"
        ]
        pod = dep["spec"]["template"]["spec"]
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        cm = next(
            o
            for o in built
            if o["kind"] == "ConfigMap"
            and o["metadata"]["namespace"] == cand.namespace
            and o["metadata"]["name"].startswith(f"proctor-pollers-{cand.platform_id}")
        )
        sources = yaml.safe_load(cm["data"]["collectors.yaml"])["sources"]
        paths = [sources["dbt"]["path"], sources["trino-rules"]["path"]]
        paths += [log["path"] for log in sources["access-logs"]["logs"]]
        for path in paths:
            mount = next(m for p, m in mounts.items() if path.startswith(p + "/"))
            assert mount.get("readOnly") is True, path
        rules = volumes[mounts["/etc/proctor/trino-rules"]["name"]]["configMap"]
        assert rules["name"] == cand.trino_rules_configmap
        assert rules["items"] == [{"key": cand.trino_rules_key, "path": "rules.json"}]
        evidence = volumes[mounts["/var/lib/proctor/evidence"]["name"]]
        claim = evidence["persistentVolumeClaim"]
        assert claim["readOnly"] is True
        assert any(
            o["kind"] == "PersistentVolumeClaim"
            and o["metadata"]["name"] == claim["claimName"]
            and o["metadata"]["namespace"] == cand.namespace
            for o in built
        )


def test_senders_post_to_their_platforms_receiver_paths(built: list[dict[str, Any]]) -> None:
    cohort = example()
    for cand in cohort.candidates:
        (audit,) = [
            o
            for o in built
            if o["kind"] == "ConfigMap"
            and o["metadata"]["name"] == f"proctor-apiserver-audit-{cand.platform_id}"
        ]
        kubeconfig = json.loads(audit["data"]["audit-webhook.kubeconfig"])
        server = kubeconfig["clusters"][0]["cluster"]["server"]
        assert server == f"{cohort.k8s_audit_url}/platforms/{cand.platform_id}/k8s-audit"
        assert server.startswith("https://")
        user = kubeconfig["users"][0]["user"]
        assert set(user) == {"tokenFile"}, "the token must come from a file, never inline"
        policy = yaml.safe_load(audit["data"]["audit-policy.yaml"])
        assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
        assert policy["rules"][-1] == {"level": "Metadata"}
        (senders_cm,) = [
            o
            for o in built
            if o["kind"] == "ConfigMap"
            and o["metadata"]["name"] == f"proctor-senders-{cand.platform_id}"
        ]
        ol = yaml.safe_load(senders_cm["data"]["openlineage.yml"])["transport"]
        assert ol["url"].endswith(f"/platforms/{cand.platform_id}")
        assert ol["endpoint"] == "api/v1/lineage"
        props = senders_cm["data"]["event-listener.properties"]
        assert f"/platforms/{cand.platform_id}/trino\n" in props
        assert "${ENV:" in props


def test_argocd_patch_is_the_template_for_the_platform() -> None:
    template = yaml.safe_load((K8S / "argocd" / "notifications-template.yaml").read_text())
    for cand in example().candidates:
        path = EXAMPLE / "rendered" / cand.platform_id / "argocd" / "notifications-cm-patch.yaml"
        patch = yaml.safe_load(path.read_text())
        assert patch["metadata"] == {"name": "argocd-notifications-cm", "namespace": "argocd"}
        assert set(patch["data"]) == set(template["data"])
        assert f"/platforms/{cand.platform_id}\n" in patch["data"]["service.webhook.proctor"]
        assert "<platform_id>" not in path.read_text()


def test_overrides_merge_over_the_defaults() -> None:
    carol = example().candidates[2]
    files = render(example(), templates_for(EXAMPLE / "rendered", COHORT_FILE))
    sources = yaml.safe_load(files[f"{carol.platform_id}/collectors.yaml"])["sources"]
    assert sources["iceberg"]["tables"] == ["analytics.orders", "analytics.orders_hourly"]
    assert sources["iceberg"]["catalog_name"] == "lakehouse"  # default kept
    assert sources["superset"]["password_env"] == "CAROL_SUPERSET_PASSWORD"


# -- failure paths ---------------------------------------------------------------------------
def cohort_raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(COHORT_FILE.read_text())
    raw.update(changes)
    return raw


def test_duplicate_platform_ids_are_refused() -> None:
    raw = cohort_raw()
    raw["candidates"][1]["platform_id"] = raw["candidates"][0]["platform_id"]
    with pytest.raises(ConfigError, match="platform_id 'basecamp-alice' is given to two"):
        parse_cohort(raw, "cohort.yaml")


def test_duplicate_namespaces_are_refused() -> None:
    raw = cohort_raw()
    raw["candidates"][2]["namespace"] = "basecamp-bob"
    with pytest.raises(ConfigError, match="namespace 'basecamp-bob' is given to two"):
        parse_cohort(raw, "cohort.yaml")


@pytest.mark.parametrize("bad", ["Basecamp-Alice", "basecamp_alice", "-alice", "a" * 64, ""])
def test_a_platform_id_that_is_not_a_dns_label_is_refused(bad: str) -> None:
    raw = cohort_raw()
    raw["candidates"][0]["platform_id"] = bad
    with pytest.raises(ConfigError, match="is not a DNS label"):
        parse_cohort(raw, "cohort.yaml")


@pytest.mark.parametrize(
    ("override", "says"),
    [
        (
            {"superset": {"password": "hunter2-hunter2"}},
            "superset.password: a secret given as a value",
        ),
        ({"superset": {"password_env": "hunter2 hunter2"}}, "is not an environment variable name"),
        (
            {"iceberg": {"properties": {"s3.secret-access-key": "AKIA..."}}},
            "a secret given as a value",
        ),
        ({"iceberg": {"properties_env": {"s3.access-key-id": "abc/def"}}}, "not an environment"),
    ],
)
def test_a_secret_given_as_a_value_is_refused(override: dict[str, Any], says: str) -> None:
    raw = cohort_raw()
    raw["candidates"][0]["overrides"] = override
    with pytest.raises(ConfigError, match=says):
        parse_cohort(raw, "cohort.yaml")


def test_an_override_the_collector_does_not_know_fails_the_render() -> None:
    raw = cohort_raw()
    raw["candidates"][0]["overrides"] = {"flink": {"ulr": "http://flink:8081"}}
    with pytest.raises(ConfigError, match="basecamp-alice, source flink: ulr"):
        render(parse_cohort(raw, "c"), templates_for(EXAMPLE / "rendered", COHORT_FILE))
    raw["candidates"][0]["overrides"] = {"spark": {"url": "http://spark"}}
    with pytest.raises(ConfigError, match="unknown source"):
        render(parse_cohort(raw, "c"), templates_for(EXAMPLE / "rendered", COHORT_FILE))


def test_an_http_audit_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="bearer token only to a TLS server"):
        parse_cohort(cohort_raw(k8s_audit_url="http://proctor-audit"), "cohort.yaml")


def test_a_template_without_the_placeholder_is_refused() -> None:
    templates = Templates("apiVersion: v1\nkind: ConfigMap\n", "../base", "../../pollers/base")
    with pytest.raises(ConfigError, match="no <platform_id> placeholder"):
        render(example(), templates)


def test_command_renders_and_refuses_to_overwrite_a_foreign_directory(tmp_path: Path) -> None:
    out = tmp_path / "tree"
    result = CliRunner().invoke(deploy, ["render", "--cohort", str(COHORT_FILE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 platform(s)" in result.output
    assert (out / "basecamp-carol" / "collectors.yaml").is_file()
    again = CliRunner().invoke(deploy, ["render", "--cohort", str(COHORT_FILE), "--out", str(out)])
    assert again.exit_code == 0, again.output  # its own earlier render is replaced
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    refused = CliRunner().invoke(
        deploy, ["render", "--cohort", str(COHORT_FILE), "--out", str(foreign)]
    )
    assert refused.exit_code != 0
    assert "holds no earlier render" in refused.output
    assert (foreign / "keep.txt").read_text() == "mine"
    bad = tmp_path / "bad.yaml"
    bad.write_text("cohort: x\ncandidates: []\n")
    failed = CliRunner().invoke(
        deploy, ["render", "--cohort", str(bad), "--out", str(tmp_path / "o")]
    )
    assert failed.exit_code != 0 and "candidates" in failed.output


def test_candidates_trino_may_post_to_the_trino_receiver(built: list[dict[str, Any]]) -> None:
    (policy,) = [
        o
        for o in built
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "receive-trino-from-cohort"
    ]
    assert policy["metadata"]["namespace"] == "proctor"
    (source,) = policy["spec"]["ingress"][0]["from"]
    (expr,) = source["namespaceSelector"]["matchExpressions"]
    assert expr["values"] == [c.namespace for c in example().candidates]


def test_the_audit_url_must_be_given() -> None:
    raw = cohort_raw()
    del raw["k8s_audit_url"]
    with pytest.raises(ConfigError, match="k8s_audit_url: Field required"):
        parse_cohort(raw, "cohort.yaml")


def test_pollers_run_as_a_service_account_of_their_namespace(built: list[dict[str, Any]]) -> None:
    for cand in example().candidates:
        (dep,) = [
            o
            for o in built
            if o["kind"] == "Deployment"
            and o["metadata"]["name"] == f"proctor-pollers-{cand.platform_id}"
        ]
        pod = dep["spec"]["template"]["spec"]
        (account,) = [
            o
            for o in built
            if o["kind"] == "ServiceAccount"
            and o["metadata"]["namespace"] == cand.namespace
            and o["metadata"]["name"] == pod["serviceAccountName"]
        ]
        assert account["automountServiceAccountToken"] is False
        assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    "override",
    [
        {"dbt": {"path": "/home/candidate/target"}},
        {"trino-rules": {"path": "/etc/trino/rules.json"}},
        {"access-logs": {"logs": [{"tool": "grafana", "path": "/var/log/grafana.log"}]}},
        # a prefix of the mount is not inside it
        {"dbt": {"path": "/var/lib/proctor/evidence-other/dbt"}},
    ],
)
def test_a_file_source_outside_the_mounted_volumes_is_refused(override: dict[str, Any]) -> None:
    raw = cohort_raw()
    raw["candidates"][1]["overrides"] = override
    with pytest.raises(ConfigError, match=r"basecamp-bob, source .*on no volume the pollers mount"):
        render(parse_cohort(raw, "c"), templates_for(EXAMPLE / "rendered", COHORT_FILE))


def test_no_platforms_files_name_another_platform() -> None:
    """Each platform's senders post to its own paths only, its pollers watch its own
    namespace only: no file of one candidate names another candidate's id or namespace."""
    cohort = example()
    files = render(cohort, templates_for(EXAMPLE / "rendered", COHORT_FILE))
    for cand in cohort.candidates:
        others = [o for o in cohort.candidates if o != cand]
        mine = {k: v for k, v in files.items() if k.startswith(f"{cand.platform_id}/")}
        assert len(mine) == 10
        for path, text in mine.items():
            for other in others:
                assert other.platform_id not in text, f"{path} names {other.platform_id}"
                assert other.namespace not in text, f"{path} names {other.namespace}"


def test_a_platform_id_too_long_for_the_pollers_service_name_is_refused() -> None:
    raw = cohort_raw()
    raw["candidates"][0]["platform_id"] = "a" * 48  # a DNS label, but the Service name is 64
    with pytest.raises(ConfigError, match="at most 47"):
        parse_cohort(raw, "cohort.yaml")
    raw["candidates"][0]["platform_id"] = "a" * 47
    cohort = parse_cohort(raw, "cohort.yaml")
    files = render(cohort, templates_for(EXAMPLE / "rendered", COHORT_FILE))
    assert f"{'a' * 47}/kustomization.yaml" in files
