"""``proctor stack``: bring the local stack up, down, and look at it."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table

from services.errors import StackError
from services.stack.component import Status
from services.stack.config import StackConfig

_console = Console()


def _progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


def _fail(exc: StackError) -> None:
    first, _, rest = str(exc).partition("\n")
    click.echo(f"error: {first}", err=True)
    if rest:
        click.echo(rest, err=True)
    sys.exit(1)


def _use_docker(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return os.environ.get("PROCTOR_STACK_MODE", "local").strip().lower() == "docker"


_DOCKER_HELP = (
    "Run the stack as containers (Redpanda with its schema registry, PostgreSQL, Trino) "
    "from docker-compose.test.yml instead of local processes; needs a Docker engine. "
    "Default: local, or PROCTOR_STACK_MODE=docker."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def stack() -> None:
    """Run the local stack: Kafka (KRaft), an Apicurio schema registry, PostgreSQL, Trino.

    Components run as local processes with their state and logs under .stack/ (or
    PROCTOR_STACK_DIR), on loopback ports: Kafka 19092, registry 18081, PostgreSQL
    15432, Trino 18080. JVM software is fetched with mvn and cached in ~/.m2.
    """


@stack.command(short_help="Start components and wait until healthy.")
@click.argument("components", nargs=-1)
@click.option("--docker/--local", "docker", default=None, help=_DOCKER_HELP)
@click.option(
    "--secure",
    is_flag=True,
    help="Also start kafka-secure: SASL_SSL (SCRAM-SHA-512) and ACLs on port 19094 "
    "(PROCTOR_KAFKA_SECURE_PORT); see docs/broker-security.md.",
)
def up(components: Sequence[str], docker: bool | None, secure: bool) -> None:
    """Start COMPONENTS (all when none are named) and wait until they are healthy.

    Components a named one needs start first (the registry needs PostgreSQL). Running
    components are left alone, so `up` can be repeated safely. The secured broker
    (kafka-secure) starts only when named or with --secure.
    """
    config = StackConfig.from_env()
    started = time.monotonic()
    try:
        if _use_docker(docker):
            from services.stack.containers import DockerStack

            if components or secure:
                raise StackError("--docker starts the whole stack; name no components")
            rows = DockerStack(config).up(_progress)
        else:
            from services.stack.manager import StackManager

            manager = StackManager(config, progress=_progress)
            names = list(components)
            if secure:
                names = [*(names or [c.name for c in manager.plan([])]), "kafka-secure"]
            rows = manager.up(names)
    except StackError as exc:
        _fail(exc)
        return
    _console.print(_table(rows))
    click.echo(f"stack up in {time.monotonic() - started:.1f}s", err=True)


@stack.command(short_help="Stop the stack; check nothing of it is left.")
@click.option("--docker/--local", "docker", default=None, help=_DOCKER_HELP)
def down(docker: bool | None) -> None:
    """Stop every component (reverse order) and check that none of its processes is left."""
    config = StackConfig.from_env()
    try:
        if _use_docker(docker):
            from services.stack.containers import DockerStack

            DockerStack(config).down(_progress)
        else:
            from services.stack.manager import StackManager

            StackManager(config, progress=_progress).down()
    except StackError as exc:
        _fail(exc)
        return
    click.echo("stack down: no process of the stack is running", err=True)


@stack.command(short_help="Show each component, address, pid, health.")
@click.option("--docker/--local", "docker", default=None, help=_DOCKER_HELP)
def status(docker: bool | None) -> None:
    """Show each component, its address, pid and health. Exits 1 unless all are healthy."""
    config = StackConfig.from_env()
    try:
        if _use_docker(docker):
            from services.stack.containers import DockerStack

            rows = DockerStack(config).status()
        else:
            from services.stack.manager import StackManager

            rows = StackManager(config).status()
    except StackError as exc:
        _fail(exc)
        return
    _console.print(_table(rows))
    if not all(r.healthy for r in rows):
        sys.exit(1)


@stack.command(short_help="Print (or follow) a component's log.")
@click.argument("component")
@click.option("-n", "--lines", default=50, show_default=True, help="How many last lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
def logs(component: str, lines: int, follow: bool) -> None:
    """Print the last lines of COMPONENT's log (kafka, registry, postgres, trino)."""
    from services.stack.manager import StackManager

    manager = StackManager(StackConfig.from_env())
    try:
        for line in manager.logs(component, lines, follow):
            click.echo(line)
    except StackError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        pass


@stack.command(short_help="Print a principal's client settings for kafka-secure.")
@click.argument("principal")
def credentials(principal: str) -> None:
    """Print `export PROCTOR_KAFKA_*=...` lines that make proctor's clients PRINCIPAL on
    the secured broker (admin, proctor, submission, collector, grader, candidate).

    Use as `eval "$(proctor stack credentials grader)"`: the password goes from the
    stack's state directory to the environment, never onto a command line.
    """
    import shlex

    from services.stack.kafka_secure import SecureKafkaComponent

    try:
        env = SecureKafkaComponent(StackConfig.from_env()).client_env(principal)
    except StackError as exc:
        _fail(exc)
        return
    for name, value in env.items():
        click.echo(f"export {name}={shlex.quote(value)}")


def _table(rows: Sequence[Status]) -> Table:
    table = Table(title="proctor stack")
    table.add_column("component")
    table.add_column("address")
    table.add_column("pid", justify="right")
    table.add_column("health")
    for row in rows:
        if row.healthy:
            health = "[green]healthy[/green]"
        elif row.running:
            health = "[yellow]running, not healthy[/yellow]"
        else:
            health = "[red]stopped[/red]"
        if row.detail:
            health += f" ({row.detail})"
        table.add_row(row.name, row.address, str(row.pid or "-"), health)
    return table
