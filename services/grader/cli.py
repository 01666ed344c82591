"""``proctor worker``: run the grader service. Flags override PROCTOR_* variables."""

from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from services import connections
from services.contract.settings import connection_options
from services.errors import ConfigError, ProctorError
from services.grader.settings import GraderSettings, nested
from services.settings import load_settings


def catalog_factory(settings: GraderSettings) -> Any:
    """The worker's Iceberg catalog, opened anew per call (services.connections)."""
    return connections.catalog_factory(settings.catalog_settings())


def trino_factory(settings: GraderSettings) -> Any:
    return connections.trino_factory(settings.trino_settings())


def build_admission(settings: GraderSettings) -> Any:
    """The trust check of the worker (docs/trust.md), or None with ``insecure_no_trust``.

    Raises ConfigError naming what is missing: the worker never grades unauthenticated
    input by accident.
    """
    import logging

    if settings.insecure_no_trust:
        logging.getLogger(__name__).warning(
            "INSECURE: --insecure-no-trust is set; every decoded record grades, signed or "
            "not. Anyone who can write to the topics can forge grades. Local experiments only."
        )
        return None
    from services.contract.settings import ClientSettings
    from services.trust.admission import TrustAdmission, trust_config
    from services.trust.roster import RosterView

    missing = [
        name
        for name, value in (
            ("PROCTOR_TRUSTED_KEYS", settings.trusted_keys),
            ("PROCTOR_ROSTER_SECRET", settings.roster_secret),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"the worker grades only authenticated input and needs {' and '.join(missing)} "
            "(docs/trust.md: `proctor keys generate` prints the trusted-keys line, the roster "
            "secret is at least 16 random characters); --insecure-no-trust skips every check "
            "for local experiments"
        )
    env = {
        "PROCTOR_TRUSTED_KEYS": settings.trusted_keys or "",
        "PROCTOR_ROSTER_SECRET": settings.roster_secret.get_secret_value()
        if settings.roster_secret
        else "",
        "PROCTOR_MAX_SKEW_S": str(settings.max_skew_s),
        "PROCTOR_MAX_ARTIFACT_BYTES": str(settings.max_artifact_bytes),
    }
    user_info = settings.schema_registry_user_info
    client = ClientSettings(
        bootstrap=settings.kafka_bootstrap,
        registry_url=settings.schema_registry_url,
        topic_prefix=settings.topic_prefix,
        registry_user_info=user_info.get_secret_value() if user_info else None,
        security=settings.kafka_security,
    )
    keyring, master, limits = trust_config(env)
    roster = RosterView(client, keyring)
    roster.refresh()
    admission = TrustAdmission(keyring, roster, master, limits)
    logging.getLogger(__name__).info(
        "trust: %d trusted keys, %d platforms in the roster (%d records ignored)",
        len(admission.keyring),
        len(roster),
        roster.ignored,
    )
    return admission


def build_worker(settings: GraderSettings, engines: Any = None) -> Any:
    """The worker with its codec, catalog and Trino connections from ``settings``."""
    from services.contract.wire import WireCodec, registry_client
    from services.grader.app import GraderWorker
    from services.grader.engines import core_engine_store

    user_info = settings.schema_registry_user_info
    registry = registry_client(
        settings.schema_registry_url,
        basic_auth_user_info=user_info.get_secret_value() if user_info else None,
    )
    codec = WireCodec(registry, topic_prefix=settings.topic_prefix)
    return GraderWorker(
        settings,
        engines
        if engines is not None
        else core_engine_store(
            state_max_bytes=settings.state_max_bytes, judge=settings.judge_settings()
        ),
        codec,
        catalog_factory(settings),
        trino_factory(settings),
        admission=build_admission(settings),
    )


def run(settings: GraderSettings, engines: Any = None) -> None:
    """Run the worker until it is stopped (SIGTERM/SIGINT)."""
    import faust

    from services.logs import logging_config, setup_logging
    from services.tracing import setup_tracing

    setup_logging(settings.log_level)
    setup_tracing("proctor-grader", settings.otlp_endpoint, settings.traces_sampler)
    worker = build_worker(settings, engines)
    # Faust sets logging up again when its worker starts: give it the same JSON lines.
    worker.app.conf.logging_config = logging_config(settings.log_level)
    faust.Worker(worker.app, loglevel=settings.log_level, quiet=True).execute_from_commandline()


@click.command("worker")
@connection_options(
    bootstrap="Kafka bootstrap servers [{env}].",
    registry="Schema registry URL [{env}].",
    prefix="Topic prefix [{env}].",
    prefix_default=None,
)
@click.option("--catalog-uri", help="Iceberg catalog: SQL URI or REST URL [PROCTOR_CATALOG_URI].")
@click.option("--warehouse", help="Iceberg warehouse location [PROCTOR_WAREHOUSE].")
@click.option("--table", help="namespace.table of the transitions [PROCTOR_TABLE].")
@click.option("--trino-url", help="Trino URL for maintenance [PROCTOR_TRINO_URL].")
@click.option("--commit-rows", type=int, help="Rows per Iceberg commit [PROCTOR_COMMIT_ROWS].")
@click.option(
    "--commit-interval",
    "commit_interval_s",
    type=float,
    help="Seconds between Iceberg commits [PROCTOR_COMMIT_INTERVAL_S].",
)
@click.option(
    "--batch-records",
    type=int,
    help="Most records graded per step of the agent [PROCTOR_BATCH_RECORDS].",
)
@click.option("--app-id", help="Faust app id (consumer group) [PROCTOR_APP_ID].")
@click.option("--data-dir", help="Local table state directory [PROCTOR_DATA_DIR].")
@click.option(
    "--store", type=click.Choice(["rocksdb", "memory"]), help="Table store [PROCTOR_STORE]."
)
@click.option(
    "--http-port", type=int, help="Port of /healthz, /readyz, /metrics [PROCTOR_HTTP_PORT]."
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    help="[PROCTOR_LOG_LEVEL]",
)
@click.option(
    "--trusted-keys",
    help="File of 'key_id role base64-public-key' lines the worker trusts [PROCTOR_TRUSTED_KEYS].",
)
@click.option(
    "--max-skew",
    "max_skew_s",
    type=float,
    help="Seconds an event may be dated past its broker timestamp [PROCTOR_MAX_SKEW_S; 120].",
)
@click.option(
    "--insecure-no-trust",
    is_flag=True,
    default=None,
    help="Grade unsigned input (no signature, MAC or roster check): local experiments only "
    "[PROCTOR_INSECURE_NO_TRUST].",
)
@click.option(
    "--review-threshold",
    type=click.FloatRange(0, 1),
    help="A text criterion judged at a lower confidence waits for a proctor's review "
    "[PROCTOR_REVIEW_THRESHOLD; 0.7].",
)
def worker(**flags: Any) -> None:
    """Grade live: consume exam.control and platform.*, write grading.* and Iceberg.

    Secrets (SASL password, registry credentials, PROCTOR_ROSTER_SECRET) come from the
    environment only. Only authenticated input grades (docs/trust.md): control events
    signed by a trusted key, signals MACed with their platform's key from the roster.
    """
    given = {
        {
            "bootstrap": "kafka_bootstrap",
            "registry_url": "schema_registry_url",
            "prefix": "topic_prefix",
        }.get(k, k): v
        for k, v in flags.items()
        if v is not None
    }
    try:
        settings = GraderSettings.of(load_settings(overrides=nested(given)))
    except ValidationError as exc:
        raise click.UsageError(f"invalid grader setting: {exc}") from exc
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        run(settings)
    except (ConfigError, ProctorError) as exc:
        raise click.ClickException(str(exc)) from exc
