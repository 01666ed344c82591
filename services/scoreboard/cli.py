"""``proctor scoreboard up|down|status|watch|sample``: the live scoreboard."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from services.errors import ProctorError, StackError
from services.stack.config import StackConfig

console = Console()


def _progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


def _fail(exc: ProctorError) -> None:
    first, _, rest = str(exc).partition("\n")
    click.echo(f"error: {first}", err=True)
    if rest:
        click.echo(rest, err=True)
    sys.exit(1)


def components(config: StackConfig, with_superset: bool = True) -> list[Any]:
    from services.scoreboard.sampler import HealthSamplerComponent

    # the sampler measures the grader's consumer group, which is the worker's app id
    group = os.environ.get("PROCTOR_APP_ID", "proctor-grader")
    found: list[Any] = [HealthSamplerComponent(config, group=group)]
    if with_superset:
        from services.scoreboard.superset import SupersetComponent

        found.insert(0, SupersetComponent(config))
    return found


def scoreboard_up(
    config: StackConfig, progress: Any = _progress, superset: bool = True
) -> list[Any]:
    """Start Superset (installing it once) and the health sampler; import the bundle."""
    from services.scoreboard.tables import ensure_scoreboard_tables
    from services.stack.manager import StackManager

    StackManager(config, progress=progress).up(["kafka", "trino"])
    ensure_scoreboard_tables(config)
    progress(
        "scoreboard: tables grading.criterion_transitions, pipeline_health and view exam_scores ready"
    )
    started = components(config, superset)
    for component in started:
        running = component.pid() is not None and component.healthy()
        component.start(progress)
        if running and hasattr(component, "import_bundle"):
            component.import_bundle(progress)  # already up: bring the bundle up to date
    return started


def login_hint(superset: Any) -> str:
    return (
        f"scoreboard: {superset.dashboard_url()}  (user {superset.settings.user}, "
        f"password from {superset.password_source()})"
    )


@click.group("scoreboard")
def scoreboard() -> None:
    """The live scoreboard: Superset over Trino (`up`), or a terminal table (`watch`).

    Superset 6.1 runs in its own virtual environment (~/.cache/proctor), with its
    metadata in SQLite under the stack's state directory, on 127.0.0.1:18088
    (PROCTOR_SUPERSET_PORT). The admin password comes from PROCTOR_SUPERSET_PASSWORD,
    else one is made and kept (0600) in .stack/superset/admin-password.
    """


@scoreboard.command("up")
@click.option("--no-superset", is_flag=True, help="Only the health sampler (for `watch`).")
def up(no_superset: bool) -> None:
    """Install (once) and start Superset and the health sampler; import the dashboard."""
    config = StackConfig.from_env()
    started = time.monotonic()
    try:
        running = scoreboard_up(config, superset=not no_superset)
    except ProctorError as exc:
        _fail(exc)
        return
    click.echo(f"scoreboard up in {time.monotonic() - started:.1f}s", err=True)
    for component in running:
        if hasattr(component, "dashboard_url"):
            click.echo(login_hint(component))


@scoreboard.command("down")
def down() -> None:
    """Stop Superset and the health sampler (the rest of the stack keeps running)."""
    config = StackConfig.from_env()
    try:
        for component in reversed(components(config)):
            component.stop(_progress)
    except StackError as exc:
        _fail(exc)
        return
    click.echo("scoreboard down", err=True)


@scoreboard.command("status")
def status() -> None:
    """Show Superset and the sampler: address, pid, health. Exits 1 unless both are healthy."""
    config = StackConfig.from_env()
    table = Table(title="proctor scoreboard")
    for col in ("component", "address", "pid", "health"):
        table.add_column(col)
    healthy = True
    for component in components(config):
        s = component.status()
        healthy &= s.healthy
        state = "healthy" if s.healthy else ("starting" if s.running else "stopped")
        table.add_row(s.name, s.address, str(s.pid or "-"), state)
    console.print(table)
    if not healthy:
        sys.exit(1)


@scoreboard.command("watch")
@click.option("--interval", type=click.FloatRange(0.5, 600), default=2.0, show_default=True)
@click.option("--exam", "exams", multiple=True, help="Only these exam ids (repeat).")
@click.option("--once", is_flag=True, help="Print the table once and exit.")
def watch_cmd(interval: float, exams: tuple[str, ...], once: bool) -> None:
    """A live table of every exam's parts, total and verdict, from Trino (no Superset needed)."""
    from services.scoreboard.watch import fetch_rows, render, watch
    from services.stack.catalog import trino_connect

    config = StackConfig.from_env()
    if once:
        try:
            rows = fetch_rows(trino_connect(config), exams)
        except ProctorError as exc:
            _fail(exc)
            return
        console.print(render(rows))
        return
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    watch(lambda: trino_connect(config), interval_s=interval, exam_ids=exams, stop=stop)


@scoreboard.command("sample", hidden=True)
@click.option("--interval", type=click.FloatRange(1, 3600), default=10.0)
@click.option("--group", default="proctor-grader", help="The grader's consumer group (its app id).")
@click.option("--beat-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--once", is_flag=True, help="Take one sample and exit.")
def sample(interval: float, group: str, beat_file: Path | None, once: bool) -> None:
    """Sample the grader's lag and the dead letters into grading.pipeline_health."""
    from services.contract.settings import ClientSettings
    from services.scoreboard.health import HealthSampler, ensure_health_table, group_consumer
    from services.stack.catalog import load_catalog

    config = StackConfig.from_env()
    settings = ClientSettings.from_env()
    try:
        table = ensure_health_table(load_catalog(config))
    except ProctorError as exc:
        _fail(exc)
        return
    consumer = group_consumer(
        settings.bootstrap, group, {k: str(v) for k, v in settings.kafka_security.items()}
    )
    sampler = HealthSampler(
        consumer, table, group, prefix=settings.topic_prefix, interval_s=interval
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
