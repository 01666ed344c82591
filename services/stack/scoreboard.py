"""``proctor scoreboard up|down|status``: the scoreboard's Superset and health sampler as
processes of the local stack.

The scoreboard's own commands (``watch``, ``sample``) are in services/scoreboard/cli.py;
this module adds the ones that start and stop local processes to that group, so the
scoreboard itself never imports the dev stack.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from services.errors import ProctorError, StackError
from services.scoreboard.cli import _fail, _progress, console, scoreboard
from services.settings import load_settings
from services.stack.catalog import catalog_settings, trino_settings
from services.stack.config import StackConfig

__all__ = ["components", "login_hint", "scoreboard", "scoreboard_up"]


def grader_tables() -> Any:
    """The grader's table and view makers, handed to the scoreboard."""
    from services.grader.sink import ensure_table
    from services.grader.views import create_exam_scores_view
    from services.scoreboard.tables import GraderTables

    return GraderTables(ensure_table, create_exam_scores_view)


def components(config: StackConfig, with_superset: bool = True) -> list[Any]:
    from services.stack.sampler import HealthSamplerComponent

    # the sampler measures the grader's consumer group, which is the worker's app id
    group = load_settings().grader.app_id
    found: list[Any] = [HealthSamplerComponent(config, group=group)]
    if with_superset:
        from services.stack.superset import SupersetComponent

        found.insert(0, SupersetComponent(config))
    return found


def scoreboard_up(
    config: StackConfig, progress: Any = _progress, superset: bool = True
) -> list[Any]:
    """Start Superset (installing it once) and the health sampler; import the bundle."""
    from services.scoreboard.tables import ensure_scoreboard_tables
    from services.stack.manager import StackManager

    StackManager(config, progress=progress).up(["kafka", "trino"])
    ensure_scoreboard_tables(catalog_settings(config), trino_settings(config), grader_tables())
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


@click.command("up")
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


@click.command("down")
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


@click.command("status")
def status() -> None:
    """Show Superset and the sampler: address, pid, health. Exits 1 unless both are healthy."""
    config = StackConfig.from_env()
    from rich.table import Table

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


@click.command("grant")
@click.argument("candidate")
def grant(candidate: str) -> None:
    """Give CANDIDATE a Superset login that sees only their own rows (row-level security).

    The user is named after the candidate; the password comes from
    PROCTOR_SUPERSET_CANDIDATE_PASSWORD, else one is made and printed once. Running it
    again resets the password and brings the rule up to date. Superset must be up.
    """
    import os
    import secrets

    from services.stack.superset import SupersetComponent

    superset = SupersetComponent(StackConfig.from_env())
    if superset.pid() is None or not superset.healthy():
        _fail(StackError("Superset is not running: `proctor scoreboard up` first"))
        return
    given = os.environ.get("PROCTOR_SUPERSET_CANDIDATE_PASSWORD")
    password = given or secrets.token_urlsafe(18)
    try:
        superset.grant_candidate(candidate, password)
    except StackError as exc:
        _fail(exc)
        return
    click.echo(f"{candidate} may log in at {superset.address} and sees only their own rows")
    if not given:
        click.echo(f"password (shown once): {password}")


for _command in (up, down, status, grant):
    scoreboard.add_command(_command)
