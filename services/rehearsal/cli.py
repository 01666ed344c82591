"""``proctor rehearse``: rehearse the exam on the local stack before a cohort sits it."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from services.errors import ProctorError

console = Console()


def _say(message: str) -> None:
    console.print(Text("[rehearse] ", style="bold") + Text(message), highlight=False)


@click.command(
    "rehearse",
    help="Rehearse the exam on real systems: scripted candidates build the reference "
    "solution's pipeline (Debezium on Kafka Connect, a Flink job with a lookup join "
    "writing Iceberg, dbt on Trino, the candidate's Trino with a column mask, a Superset "
    "chart and alert, deploys through a Kubernetes API server) on the stack, faults are "
    "injected on those systems for real and announced by signed fault.injected events, "
    "the real collectors and the submission endpoint carry what happens to the grader "
    "worker, and every criterion's live grade is checked against what the candidate "
    "should get. Exit 0 when every expectation holds, 2 when a criterion was graded "
    "otherwise (the report names the collector or rule that missed it), 1 on an error.",
)
@click.option(
    "--candidate",
    "candidates",
    multiple=True,
    default=("reference",),
    show_default=True,
    help="Scripted candidates (repeatable): reference, no-maintenance, wrong-root-cause, "
    "layer-only, manual-apply, no-dbt-test, at-least-once, no-column-mask.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    help="Fault kinds to inject (repeatable; default: every kind injectable here: "
    "stale_snapshot, unmerged_branch, stale_statistics).",
)
@click.option(
    "--small",
    is_flag=True,
    help="Smaller volumes (2,000 rows in 2 commits) for CI; the default loads 20,000.",
)
@click.option(
    "--kube/--no-kube",
    default=None,
    help="Deploy through a real Kubernetes API server (default: when scripts/build-kube.sh "
    "has built one).",
)
@click.option(
    "--dbt/--no-dbt",
    default=True,
    show_default=True,
    help="Build the candidate's dbt project for real on the first exam of each candidate "
    "(dbt-trino and openlineage-dbt in a cached venv; the first run installs it).",
)
@click.option(
    "--cdc/--no-cdc",
    default=True,
    show_default=True,
    help="Debezium on Kafka Connect with a source PostgreSQL for the first exam (jars "
    "fetched with mvn on first use).",
)
@click.option(
    "--flink/--no-flink",
    default=True,
    show_default=True,
    help="A Flink session (MiniCluster) running each candidate's job on their first exam: "
    "lookup join, checkpoints, Iceberg sink (jars fetched with mvn and the job compiled "
    "on first use).",
)
@click.option(
    "--trino/--no-trino",
    "candidate_trino",
    default=True,
    show_default=True,
    help="The candidate's own Trino (file-based access control, event listener) on the "
    "first exam of each candidate: one 1 GB JVM each.",
)
@click.option(
    "--superset/--no-superset",
    default=True,
    show_default=True,
    help="The candidate's Superset with a chart and an alert on the dbt model, on the "
    "first exam with dbt (needs --dbt; the Superset venv is built on first use).",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--keep", is_flag=True, help="Keep the rehearsal's topics and tables.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=30),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the final grades after the last exam ended.",
)
def rehearse(
    candidates: tuple[str, ...],
    faults: tuple[str, ...],
    small: bool,
    kube: bool | None,
    dbt: bool,
    cdc: bool,
    flink: bool,
    candidate_trino: bool,
    superset: bool,
    json_path: Path | None,
    keep: bool,
    timeout: float,
) -> None:
    from services.contract.settings import ClientSettings
    from services.platform.connect import apicurio_v2_url
    from services.rehearsal.candidates import variant
    from services.rehearsal.faults import INJECTORS
    from services.rehearsal.runner import Rehearsal, RehearsalPlan
    from services.rehearsal.session import RehearsalSession, SessionSettings
    from services.settings import load_settings
    from services.stack.catalog import load_catalog, trino_connect
    from services.stack.config import StackConfig
    from services.tracing import setup_service_tracing

    try:
        setup_service_tracing("proctor-rehearsal", load_settings().telemetry)
        config = StackConfig.from_env()
        plan = RehearsalPlan(
            [variant(c) for c in candidates],
            list(faults or INJECTORS),
            rows=2_000 if small else 20_000,
            commits=2 if small else 4,
            grade_timeout_s=timeout,
            kube=kube,
            dbt=dbt,
            cdc=cdc,
            flink=flink,
            trino=candidate_trino,
            superset=superset,
        )
        settings = SessionSettings(
            config.catalog_uri,
            config.warehouse,
            config.trino_url,
            config.state_dir,
            registry_v2_url=apicurio_v2_url(config),
            keep=keep,
        )
        session = RehearsalSession(ClientSettings.from_env(), settings, _say)
        catalog = load_catalog(config)
        with contextlib.closing(trino_connect(config)) as trino:
            report = Rehearsal(session, catalog, trino, plan, _say).run()
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    report.render(console)
    if json_path is not None:
        json_path.write_text(report.dumps() + "\n", encoding="utf-8")
        _say(f"report written to {json_path}")
    sys.exit(0 if report.passed else 2)
