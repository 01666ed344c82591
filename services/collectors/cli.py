"""``proctor collect <source>``: one subcommand per collector, imported on first use.

Each collector module exposes a click command named ``command``; this table is the only
place that lists them, so adding a source is one line here plus its module.
"""

from __future__ import annotations

import importlib

import click

#: source name -> (module, one-line help)
SOURCES: dict[str, tuple[str, str]] = {
    "all": ("services.collectors.runner", "Run the polling collectors of a YAML config together."),
    "cdc-offsets": ("services.collectors.offsets", "Poll CDC topic offsets (Kafka admin API)."),
    "schemas": ("services.collectors.registry", "Poll schema registry subjects and versions."),
    "iceberg": ("services.collectors.iceberg", "Poll Iceberg snapshots and table properties."),
    "flink": ("services.collectors.flink", "Poll Flink jobs, plans and checkpoints (REST)."),
    "dbt": ("services.collectors.dbt", "Publish dbt runs from run_results.json + manifest.json."),
    "superset": ("services.collectors.superset", "Poll Superset charts and alerts (REST)."),
    "trino-rules": ("services.collectors.trino_rules", "Poll Trino access rules for column masks."),
    "observability": (
        "services.collectors.observability",
        "Poll Prometheus, Loki, Tempo for pillars.",
    ),
    "access-logs": ("services.collectors.accesslogs", "Tail tool access logs for tool.used."),
    "argocd": ("services.collectors.argocd", "Receive Argo CD sync notifications (webhook)."),
    "k8s-audit": ("services.collectors.k8s_audit", "Receive Kubernetes audit events (webhook)."),
    "gitops": ("services.collectors.gitops", "Receive Git host webhooks (merges, pushes)."),
    "openlineage": (
        "services.collectors.openlineage_cli",
        "Receive OpenLineage run events (HTTP, Kafka).",
    ),
    "trino": ("services.collectors.trino_events", "Receive Trino query-completed events (HTTP)."),
    "webhooks": ("services.collectors.receivers", "Receive every push source on one port."),
}


class _LazySources(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SOURCES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = SOURCES.get(cmd_name)
        if entry is None:
            return None
        command: click.Command = importlib.import_module(entry[0]).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # List sources from the table so `--help` does not import every collector.
        rows = [(name, SOURCES[name][1]) for name in sorted(SOURCES)]
        if rows:
            with formatter.section("Sources"):
                formatter.write_dl(rows)


@click.group(cls=_LazySources)
def collect() -> None:
    """Run a collector: watch one source of the candidate's platform and publish signals.

    Every collector publishes through the contract (validated Avro, keyed by platform_id),
    remembers its position so a restart neither repeats nor skips, exposes Prometheus
    metrics and backs off on errors. `proctor collect all` runs every configured one.
    """
