"""Render a cohort into a Kustomize tree: pure, every output file as text.

Per candidate (directory ``<platform_id>/``, deployed into the candidate's namespace):
the pollers of ``k8s/pollers/base`` with every polling source wired, the evidence volume
the candidate's dbt job and tool ingress write to (mounted read-only by the pollers),
the candidate's Trino rules ConfigMap mounted where the ``trino-rules`` source reads it,
the API server's audit Policy and webhook kubeconfig, the OpenLineage transport config,
and the Argo CD notification template as a strategic-merge patch. At the top: proctor's
base with the receivers' platforms list replaced by the cohort's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from services.collectors.settings import CollectorsConfig, parse_model
from services.deploy.cohort import Candidate, Cohort
from services.errors import ConfigError

#: polling source -> the module whose ``Settings`` validates it (services/collectors/cli.py)
POLLING_MODULES: dict[str, str] = {
    "cdc-offsets": "services.collectors.offsets",
    "schemas": "services.collectors.registry",
    "iceberg": "services.collectors.iceberg",
    "flink": "services.collectors.flink",
    "dbt": "services.collectors.dbt",
    "superset": "services.collectors.superset",
    "trino-rules": "services.collectors.trino_rules",
    "observability": "services.collectors.observability",
    "access-logs": "services.collectors.accesslogs",
}
#: the push sources the shared receivers (namespace proctor) serve for every platform
RECEIVERS: tuple[str, ...] = ("argocd", "k8s-audit", "gitops", "openlineage", "trino")

EVIDENCE_DIR = "/var/lib/proctor/evidence"
TRINO_RULES_DIR = "/etc/proctor/trino-rules"
AUDIT_TOKEN_FILE = "/etc/kubernetes/proctor-audit/token"
AUDIT_CA_FILE = "/etc/kubernetes/proctor-audit/ca.crt"
#: tool -> access-log format (services/collectors/accesslogs.py): where the ingress or the
#: tool itself writes its request log on the evidence volume
ACCESS_LOGS: tuple[tuple[str, str], ...] = (
    ("grafana", "grafana"),
    ("loki", "combined"),
    ("tempo", "combined"),
    ("datahub", "combined"),
    ("argocd", "combined"),
    ("trino", "trino"),
)
#: the audit Policy the API server applies: Metadata for writes (all the k8s-audit
#: collector reads); reads, health checks and the control plane's own chatter left out
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
TRINO_TOKEN_ENV = "PROCTOR_TRINO_EVENTS_TOKEN"
HEADER = "# Rendered by `proctor deploy render` from {source}; do not edit, render again.\n"


@dataclass(frozen=True, slots=True)
class Templates:
    """What the renderer needs from the repository (read by the caller, not here)."""

    #: k8s/argocd/notifications-template.yaml
    argocd_notifications: str
    #: paths from the output tree to k8s/base and k8s/pollers/base
    proctor_base: str
    pollers_base: str
    #: how the cohort file is named in the headers
    source: str = "the cohort file"


def svc(name: str, namespace: str, port: int, scheme: str = "http") -> str:
    host = f"{name}.{namespace}.svc.cluster.local:{port}"
    return f"{scheme}://{host}" if scheme else host


def default_sources(c: Candidate) -> dict[str, dict[str, Any]]:
    """Every polling source of one platform, at the example platform's service names."""
    ns, env = c.namespace, c.env_prefix
    return {
        "cdc-offsets": {"bootstrap": svc("redpanda", ns, 9093, ""), "topic_pattern": "^cdc\\."},
        "schemas": {"url": svc("redpanda", ns, 8081)},
        "iceberg": {
            "catalog_name": "lakehouse",
            "properties": {
                "type": "rest",
                "uri": svc("iceberg-rest", ns, 8181),
                "s3.endpoint": svc("minio", ns, 9000),
            },
            "properties_env": {
                "s3.access-key-id": f"{env}_S3_ACCESS_KEY_ID",
                "s3.secret-access-key": f"{env}_S3_SECRET_ACCESS_KEY",
            },
            "tables": ["analytics.orders", "analytics.orders_daily"],
        },
        "flink": {"url": svc("flink-jobmanager-rest", ns, 8081)},
        "dbt": {"path": f"{EVIDENCE_DIR}/dbt"},
        "superset": {
            "url": svc("superset", ns, 8088),
            "username": "proctor",
            "password_env": f"{env}_SUPERSET_PASSWORD",
        },
        "trino-rules": {"path": f"{TRINO_RULES_DIR}/rules.json"},
        "observability": {
            "prometheus_url": svc("prometheus", ns, 9090),
            "loki_url": svc("loki", ns, 3100),
            "tempo_url": svc("tempo", ns, 3200),
            "services": [
                {
                    "service": "orders-pipeline",
                    "metrics": ['flink_jobmanager_job_uptime{job_name="orders-cdc"}'],
                    "logs": [f'{{namespace="{ns}", app="orders-cdc"}}'],
                    "traces": ['{resource.service.name="orders-pipeline"}'],
                }
            ],
        },
        "access-logs": {
            "logs": [
                {"tool": tool, "path": f"{EVIDENCE_DIR}/access-logs/{tool}.log", "format": fmt}
                for tool, fmt in ACCESS_LOGS
            ]
        },
    }


def sources_for(c: Candidate) -> dict[str, dict[str, Any]]:
    """The defaults with the candidate's overrides merged over them, each validated by
    its collector's own ``Settings`` (so a typo fails the render, not the pod)."""
    import importlib

    sources = default_sources(c)
    unknown = sorted(set(c.overrides) - set(sources))
    if unknown:
        raise ConfigError(
            f"candidate {c.platform_id}: overrides for unknown source(s) {', '.join(unknown)}; "
            f"the polling sources are {', '.join(sorted(sources))}"
        )
    for name, override in c.overrides.items():
        sources[name] = {**sources[name], **override}
    for name, raw in sources.items():
        module = importlib.import_module(POLLING_MODULES[name])
        parse_model(module.Settings, raw, f"candidate {c.platform_id}, source {name}")
    _check_mounted(c, sources)
    return sources


def _check_mounted(c: Candidate, sources: Mapping[str, Mapping[str, Any]]) -> None:
    """File sources must read what the pollers mount (the evidence volume, the rules
    ConfigMap): any other path exists in no pod, and its criteria would go blind."""
    paths = [
        ("dbt", sources["dbt"].get("path")),
        ("trino-rules", sources["trino-rules"].get("path")),
    ]
    paths += [("access-logs", log.get("path")) for log in sources["access-logs"].get("logs", [])]
    for name, path in paths:
        if path is None:
            continue
        if not any(str(path).startswith(d + "/") for d in (EVIDENCE_DIR, TRINO_RULES_DIR)):
            raise ConfigError(
                f"candidate {c.platform_id}, source {name}: {path} is on no volume the pollers "
                f"mount; use a path under {EVIDENCE_DIR}/ (the evidence volume) or "
                f"{TRINO_RULES_DIR}/ (the Trino rules ConfigMap)"
            )


def collectors_yaml(c: Candidate, templates: Templates) -> str:
    config = {
        "platform_id": c.platform_id,
        "state_dir": "/var/lib/proctor/collectors",
        "metrics_port": 9464,
        "sources": sources_for(c),
    }
    parse_model(CollectorsConfig, config, f"candidate {c.platform_id}")
    return _header(templates, "`proctor collect all --config` of this platform.") + _dump(config)


def _header(templates: Templates, what: str) -> str:
    return HEADER.format(source=templates.source) + f"# {what}\n"


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, width=100)


def _dump_all(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, width=100)


def audit_kubeconfig(cohort: Cohort, c: Candidate) -> str:
    """The API server's ``--audit-webhook-config-file``: the k8s-audit receiver's path of
    this platform; the token is read from a file made from a Secret, never written here."""
    name = "proctor-k8s-audit"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": f"{cohort.k8s_audit_url}/platforms/{c.platform_id}/k8s-audit",
                    "certificate-authority": AUDIT_CA_FILE,
                },
            }
        ],
        "users": [{"name": name, "user": {"tokenFile": AUDIT_TOKEN_FILE}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return json.dumps(doc, indent=2) + "\n"


def openlineage_config(cohort: Cohort, c: Candidate) -> str:
    """The OpenLineage client's ``openlineage.yml``: HTTP transport to the receiver; the
    API key comes from ``OPENLINEAGE__TRANSPORT__AUTH__API_KEY`` (a Secret), not the file."""
    url = svc("proctor-collect-openlineage", cohort.proctor_namespace, 9464)
    doc = {
        "transport": {
            "type": "http",
            "url": f"{url}/platforms/{c.platform_id}",
            "endpoint": "api/v1/lineage",
            "auth": {"type": "api_key"},
        }
    }
    return _dump(doc)


def trino_event_listener(cohort: Cohort, c: Candidate) -> str:
    """The candidate Trino's ``etc/event-listener.properties`` (its HTTP event listener):
    completed queries to the trino receiver; the token from an environment variable Trino
    expands at start (``${ENV:...}``), set from a Secret."""
    url = svc("proctor-collect-trino", cohort.proctor_namespace, 9464)
    return (
        "event-listener.name=http\n"
        "http-event-listener.log-completed=true\n"
        f"http-event-listener.connect-ingest-uri={url}/platforms/{c.platform_id}/trino\n"
        "http-event-listener.connect-http-headers="
        f"Authorization: Bearer ${{ENV:{TRINO_TOKEN_ENV}}}\n"
    )


def senders(cohort: Cohort, c: Candidate) -> dict[str, dict[str, str]]:
    """Each push source: where this platform's sender posts and where that is configured."""
    base = {
        name: svc(f"proctor-collect-{name}", cohort.proctor_namespace, 9464)
        + f"/platforms/{c.platform_id}"
        for name in RECEIVERS
    }
    print_secret = "proctor collect {source} --print-secret " + c.platform_id + " --generation <n>"
    return {
        "argocd": {
            "url": base["argocd"] + "/argocd",
            "configured_in": "argocd/notifications-cm-patch.yaml",
            "secret": print_secret.format(source="argocd"),
        },
        "k8s-audit": {
            "url": f"{cohort.k8s_audit_url}/platforms/{c.platform_id}/k8s-audit",
            "configured_in": "apiserver/audit-webhook.kubeconfig",
            "secret": print_secret.format(source="k8s-audit"),
        },
        "gitops": {
            "url": base["gitops"] + "/gitops",
            "configured_in": "the Git host's repository webhook (push and pull/merge request events)",
            "secret": print_secret.format(source="gitops"),
        },
        "openlineage": {
            "url": base["openlineage"] + "/api/v1/lineage",
            "configured_in": "openlineage.yml",
            "secret": print_secret.format(source="openlineage"),
        },
        "trino": {
            "url": base["trino"] + "/trino",
            "configured_in": "trino/event-listener.properties",
            "secret": print_secret.format(source="trino"),
        },
    }


def argocd_patch(templates: Templates, c: Candidate) -> str:
    """The notification template as a strategic-merge patch of the candidate's
    ``argocd-notifications-cm``: the template's entries, this platform's URL."""
    body = templates.argocd_notifications
    lines = body.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    text = "".join(lines[start:])
    if "<platform_id>" not in text:
        raise ConfigError("the Argo CD notification template has no <platform_id> placeholder")
    head = (
        HEADER.format(source=templates.source)
        + f"# Strategic-merge patch of the argocd-notifications-cm of {c.platform_id}'s Argo CD:\n"
        + "# list it under `patches:` of the kustomization that installs that Argo CD. The token\n"
        + "# is key proctor-webhook-token of argocd-notifications-secret, the output of\n"
        + f"#   proctor collect argocd --print-secret {c.platform_id} --generation <n>\n"
    )
    return head + text.replace("<platform_id>", c.platform_id)


def pollers_patch(cohort: Cohort, c: Candidate) -> str:
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "proctor-pollers"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "pollers",
                            "volumeMounts": [
                                {"name": "evidence", "mountPath": EVIDENCE_DIR, "readOnly": True},
                                {
                                    "name": "trino-rules",
                                    "mountPath": TRINO_RULES_DIR,
                                    "readOnly": True,
                                },
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "evidence",
                            "persistentVolumeClaim": {
                                "claimName": "proctor-evidence",
                                "readOnly": True,
                            },
                        },
                        {
                            "name": "trino-rules",
                            "configMap": {
                                "name": c.trino_rules_configmap,
                                "items": [{"key": c.trino_rules_key, "path": "rules.json"}],
                            },
                        },
                    ],
                }
            }
        },
    }
    return _dump(doc)


def evidence_yaml(cohort: Cohort, c: Candidate) -> str:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": cohort.evidence_size}},
    }
    if cohort.evidence_storage_class:
        spec["storageClassName"] = cohort.evidence_storage_class
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "proctor-evidence",
            "labels": {"app.kubernetes.io/name": "proctor-evidence"},
            "annotations": {
                "proctor.io/writers": "the dbt job (dbt/, its target dir per invocation) and "
                "the tools' ingress (access-logs/<tool>.log)",
            },
        },
        "spec": spec,
    }
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "proctor-pollers-to-proctor"},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "proctor-pollers"}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "redpanda"}
                            }
                        }
                    ],
                    "ports": [
                        {"port": 9093, "protocol": "TCP"},
                        {"port": 8081, "protocol": "TCP"},
                    ],
                },
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                },
            ],
        },
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "proctor", "labels": {"app.kubernetes.io/name": "proctor-pollers"}},
        # the pollers call no Kubernetes API: no token in the pod
        "automountServiceAccountToken": False,
    }
    return _dump_all([account, pvc, policy])


def candidate_kustomization(cohort: Cohort, c: Candidate, templates: Templates) -> str:
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": c.namespace,
        "nameSuffix": f"-{c.platform_id}",
        "labels": [
            {
                "pairs": {"proctor.io/platform": c.platform_id, "proctor.io/cohort": cohort.cohort},
                "includeSelectors": True,
                "includeTemplates": True,
            }
        ],
        "resources": [templates.pollers_base, "evidence.yaml"],
        "patches": [{"path": "pollers-patch.yaml"}],
        "configMapGenerator": [
            {"name": "proctor-pollers", "files": ["collectors.yaml"]},
            {
                "name": "proctor-config",
                "literals": [
                    "PROCTOR_KAFKA_BOOTSTRAP=redpanda.redpanda.svc.cluster.local:9093",
                    "PROCTOR_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
                    "PROCTOR_SCHEMA_REGISTRY_URL=http://redpanda.redpanda.svc.cluster.local:8081",
                    f"PROCTOR_PLATFORM_ID={c.platform_id}",
                    "PROCTOR_LOG_LEVEL=INFO",
                ],
            },
            {
                "name": "proctor-apiserver-audit",
                "files": ["apiserver/audit-policy.yaml", "apiserver/audit-webhook.kubeconfig"],
                "options": {"disableNameSuffixHash": True},
            },
            {
                "name": "proctor-senders",
                "files": ["openlineage.yml", "trino/event-listener.properties"],
                "options": {"disableNameSuffixHash": True},
            },
        ],
    }
    what = (
        f"Collectors of platform {c.platform_id} (namespace {c.namespace}): the pollers,\n"
        "# the evidence volume, the API server's audit files and the OpenLineage config."
    )
    return _header(templates, what) + _dump(doc)


def receivers_ingress(cohort: Cohort) -> str:
    """The candidates' own Trino coordinators (in their platform namespaces) may post
    query events to the trino receiver; k8s/base admits only proctor's Trino namespace."""
    doc = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "receive-trino-from-cohort", "namespace": cohort.proctor_namespace},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "proctor-collect-trino"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/metadata.name",
                                        "operator": "In",
                                        "values": [c.namespace for c in cohort.candidates],
                                    }
                                ]
                            },
                            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "trino"}},
                        }
                    ],
                    "ports": [{"port": "http", "protocol": "TCP"}],
                }
            ],
        },
    }
    return _dump(doc)


def top_kustomization(cohort: Cohort, templates: Templates) -> str:
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [
            templates.proctor_base,
            "receivers-ingress.yaml",
            *(c.platform_id for c in cohort.candidates),
        ],
        "configMapGenerator": [
            {
                "name": "proctor-receiver-platforms",
                "namespace": cohort.proctor_namespace,
                "behavior": "replace",
                "files": ["platforms.txt"],
            }
        ],
    }
    what = f"Cohort {cohort.cohort}: proctor with its receivers serving these platforms only."
    return _header(templates, what) + _dump(doc)


def render(cohort: Cohort, templates: Templates) -> dict[str, str]:
    """Every file of the cohort's tree, by path relative to the output directory."""
    out: dict[str, str] = {
        "kustomization.yaml": top_kustomization(cohort, templates),
        "platforms.txt": "".join(f"{c.platform_id}\n" for c in cohort.candidates),
        "receivers-ingress.yaml": receivers_ingress(cohort),
    }
    for c in cohort.candidates:
        d = c.platform_id
        out[f"{d}/kustomization.yaml"] = candidate_kustomization(cohort, c, templates)
        out[f"{d}/collectors.yaml"] = collectors_yaml(c, templates)
        out[f"{d}/pollers-patch.yaml"] = pollers_patch(cohort, c)
        out[f"{d}/evidence.yaml"] = evidence_yaml(cohort, c)
        out[f"{d}/apiserver/audit-policy.yaml"] = AUDIT_POLICY
        out[f"{d}/apiserver/audit-webhook.kubeconfig"] = audit_kubeconfig(cohort, c)
        out[f"{d}/openlineage.yml"] = openlineage_config(cohort, c)
        out[f"{d}/argocd/notifications-cm-patch.yaml"] = argocd_patch(templates, c)
        out[f"{d}/trino/event-listener.properties"] = trino_event_listener(cohort, c)
        out[f"{d}/senders.yaml"] = _header(
            templates,
            "Where each push source of this platform posts (POST, the receivers in namespace "
            f"{cohort.proctor_namespace}),\n# where that is configured, and how to print its secret.",
        ) + _dump(senders(cohort, c))
    return out
