"""``proctor scoreboard up|down|status|watch|sample``: the live scoreboard."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import click
from rich.console import Console

from services.errors import ProctorError
from services.settings import load_settings

console = Console()


def _progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


def _fail(exc: ProctorError) -> None:
    first, _, rest = str(exc).partition("\n")
    click.echo(f"error: {first}", err=True)
    if rest:
        click.echo(rest, err=True)
    sys.exit(1)


@click.group("scoreboard")
def scoreboard() -> None:
    """The live scoreboard: Superset over Trino (`up`), or a terminal table (`watch`).

    `up`, `down` and `status` run Superset on the local stack (services/stack/scoreboard.py
    adds them to this group).

    Superset 6.1 runs in its own virtual environment (~/.cache/proctor), with its
    metadata in SQLite under the stack's state directory, on 127.0.0.1:18088
    (PROCTOR_SUPERSET_PORT). The admin password comes from PROCTOR_SUPERSET_PASSWORD,
    else one is made and kept (0600) in .stack/superset/admin-password.
    """


@scoreboard.command("watch")
@click.option("--interval", type=click.FloatRange(0.5, 600), default=2.0, show_default=True)
@click.option("--exam", "exams", multiple=True, help="Only these exam ids (repeat).")
@click.option("--once", is_flag=True, help="Print the table once and exit.")
def watch_cmd(interval: float, exams: tuple[str, ...], once: bool) -> None:
    """A live table of every exam's parts, total and verdict, from Trino (no Superset needed)."""
    from services.connections import trino_connect
    from services.scoreboard.watch import fetch_rows, render, watch

    trino = load_settings().trino
    if once:
        try:
            rows = fetch_rows(trino_connect(trino), exams)
        except ProctorError as exc:
            _fail(exc)
            return
        console.print(render(rows))
        return
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    watch(lambda: trino_connect(trino), interval_s=interval, exam_ids=exams, stop=stop)


@scoreboard.command("sample", hidden=True)
@click.option("--interval", type=click.FloatRange(1, 3600), default=10.0)
@click.option("--group", default="proctor-grader", help="The grader's consumer group (its app id).")
@click.option("--beat-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--once", is_flag=True, help="Take one sample and exit.")
def sample(interval: float, group: str, beat_file: Path | None, once: bool) -> None:
    """Sample the grader's lag and the dead letters into grading.pipeline_health, each
    platform's collectors' heartbeats into grading.collector_health and, with the
    proctor's keyring (PROCTOR_TRUSTED_KEYS), the verified roster into
    grading.cohort_roster (the pages' cohort filter)."""
    from services.connections import open_catalog
    from services.contract.schemas import topic_name
    from services.contract.settings import ClientSettings
    from services.contract.wire import WireCodec, registry_client
    from services.logs import setup_logging
    from services.scoreboard.health import (
        COLLECTORS_SCHEMA,
        COLLECTORS_TABLE,
        HEARTBEAT_TOPIC,
        CollectorWatch,
        HealthSampler,
        ensure_health_table,
        group_consumer,
    )

    loaded = load_settings()
    setup_logging(loaded.telemetry.log_level)
    settings = ClientSettings.of(loaded)
    try:
        catalog = open_catalog(loaded.catalog)
        table = ensure_health_table(catalog)
        beats_table = ensure_health_table(catalog, COLLECTORS_TABLE, COLLECTORS_SCHEMA)
    except ProctorError as exc:
        _fail(exc)
        return
    security = {k: str(v) for k, v in settings.kafka_security.items()}
    consumer = group_consumer(settings.bootstrap, group, security)
    # its own group, never committed: it assigns every partition from the start
    beats_consumer = group_consumer(settings.bootstrap, f"{group}-scoreboard-collectors", security)
    codec = WireCodec(
        registry_client(settings.registry_url, basic_auth_user_info=settings.registry_user_info),
        topic_prefix=settings.topic_prefix,
    )
    watch = CollectorWatch(
        beats_consumer,
        lambda m: codec.decode(m.value(), m.topic(), m.partition(), m.offset()),
        topic_name(HEARTBEAT_TOPIC, settings.topic_prefix),
    )
    roster = None
    if loaded.trust.trusted_keys:
        from services.scoreboard.roster_table import RosterSnapshot, ensure_roster_table
        from services.trust.keys import Keyring
        from services.trust.roster import RosterView

        try:
            view = RosterView(settings, Keyring.from_file(loaded.trust.trusted_keys))
            roster = RosterSnapshot(view, ensure_roster_table(catalog))
        except ProctorError as exc:
            _fail(exc)
            return
    else:
        click.echo(
            "no PROCTOR_TRUSTED_KEYS: the roster is not sampled, the pages show no cohort",
            err=True,
        )
    sampler = HealthSampler(
        consumer,
        table,
        group,
        prefix=settings.topic_prefix,
        interval_s=interval,
        collectors=watch,
        collectors_table=beats_table,
        roster=roster,
    )

    def beat(n: int) -> None:
        if beat_file is not None:
            beat_file.write_text(f"{time.time():.0f} {n}\n")

    try:
        if once:
            beat(sampler.once())
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        sampler.run(stop, beat)
    finally:
        consumer.close()
        beats_consumer.close()
