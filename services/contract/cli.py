"""``proctor schemas register|check|list`` and ``proctor topics create|list``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from services.contract.schemas import TOPICS_BY_NAME, Contract, load_contract, logical_topic
from services.contract.settings import ClientSettings, connection_options
from services.errors import ProctorError

F = TypeVar("F", bound=Callable[..., Any])
console = Console()


def registry_options(func: F) -> F:
    func = click.option(
        "--schemas-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="PROCTOR_SCHEMAS_DIR",
        help="Directory of <type>.avsc files [env PROCTOR_SCHEMAS_DIR; default: schemas/].",
    )(func)
    return connection_options(
        bootstrap=None,
        registry="Confluent-compatible registry base URL [env {env}; default: the local stack's].",
        prefix="Prefix of every topic and subject, to isolate tenants or tests [env {env}].",
    )(func)


def _contract(schemas_dir: Path | None) -> Contract:
    return load_contract(schemas_dir)


def _registry(registry_url: str | None, prefix: str, schemas_dir: Path | None) -> Any:
    from services.contract.registry import Registry
    from services.contract.wire import registry_client

    settings = ClientSettings.from_env(registry_url=registry_url, topic_prefix=prefix)
    client = registry_client(
        settings.registry_url, basic_auth_user_info=settings.registry_user_info
    )
    return Registry(client, settings.registry_url, _contract(schemas_dir), settings.topic_prefix)


def _fail(exc: ProctorError) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group("schemas")
def schemas() -> None:
    """The contract's Avro schemas (schemas/*.avsc) and the registry.

    Subjects follow TopicRecordNameStrategy: <topic>-<record full name>, each with
    BACKWARD compatibility.
    """


@schemas.command("register")
@registry_options
@click.option("--type", "types", multiple=True, help="Only these event types (repeatable).")
def register(
    registry_url: str | None, prefix: str, schemas_dir: Path | None, types: tuple[str, ...]
) -> None:
    """Register every schema under its subject with BACKWARD compatibility (idempotent)."""
    try:
        rows = _registry(registry_url, prefix, schemas_dir).register_all(list(types) or None)
    except ProctorError as exc:
        raise _fail(exc) from exc
    table = Table("type", "subject", "version", "schema id")
    for r in rows:
        table.add_row(r.type, r.subject, str(r.version or "-"), str(r.schema_id))
    console.print(table)
    console.print(f"{len(rows)} schemas registered (BACKWARD).")


@schemas.command("check")
@registry_options
@click.option("--type", "types", multiple=True, help="Only these event types (repeatable).")
def check(
    registry_url: str | None, prefix: str, schemas_dir: Path | None, types: tuple[str, ...]
) -> None:
    """Check local schemas against the registered ones; exit 1 naming each incompatible field."""
    try:
        results = _registry(registry_url, prefix, schemas_dir).check_all(list(types) or None)
    except ProctorError as exc:
        raise _fail(exc) from exc
    table = Table("type", "subject", "registered", "status")
    for r in results:
        style = {"incompatible": "red", "compatible": "yellow", "new": "cyan"}.get(
            r.status, "green"
        )
        table.add_row(
            r.type, r.subject, str(r.registered_version or "-"), f"[{style}]{r.status}[/]"
        )
    console.print(table)
    bad = [r for r in results if not r.ok]
    for r in bad:
        for problem in r.problems:
            click.echo(f"INCOMPATIBLE {r.type} ({r.subject}): {problem}", err=True)
    if bad:
        raise click.ClickException(
            f"{len(bad)} schema(s) would break BACKWARD compatibility: give new fields a default, "
            "keep field types and enum symbols, or version the record (…v2)"
        )
    console.print("All schemas are compatible with the registry.")


@schemas.command("list")
@registry_options
@click.option("--remote/--local", default=False, help="Also show registered versions and ids.")
def list_schemas(
    registry_url: str | None, prefix: str, schemas_dir: Path | None, remote: bool
) -> None:
    """List event types, their topics, record names and subjects."""
    try:
        contract = _contract(schemas_dir)
        registered: dict[str, tuple[int | None, int | None]] = {}
        if remote:
            for subject, version, sid in _registry(
                registry_url, prefix, schemas_dir
            ).list_subjects():
                registered[subject] = (version, sid)
    except ProctorError as exc:
        raise _fail(exc) from exc
    columns = ["type", "topic", "record", "subject"] + (["version", "id"] if remote else [])
    table = Table(*columns)
    for schema in contract.schemas.values():
        subject = schema.subject(prefix)
        row = [schema.type, schema.topic or "(table row)", schema.fullname, subject]
        if remote:
            version, sid = registered.get(subject, (None, None))
            row += [str(version or "-"), str(sid or "-")]
        table.add_row(*row)
    console.print(table)


# ---- topics ----------------------------------------------------------------------------


kafka_options = connection_options(
    bootstrap="Kafka bootstrap servers [env {env}; default: the local stack's].",
    registry=None,
    prefix="Prefix of every topic [env {env}].",
)


def _admin(bootstrap: str | None, prefix: str) -> tuple[Any, ClientSettings]:
    from services.contract.topics import admin_client

    settings = ClientSettings.from_env(bootstrap=bootstrap, topic_prefix=prefix)
    extra = {k: str(v) for k, v in settings.kafka_security.items()}
    return admin_client(settings.bootstrap, extra), settings


@click.group("topics")
def topics() -> None:
    """The contract's Kafka topics: partitions, replication and configs."""


@topics.command("create")
@kafka_options
@click.option("--replication-factor", "-r", default=1, show_default=True, type=click.IntRange(1, 9))
def create(bootstrap: str | None, prefix: str, replication_factor: int) -> None:
    """Create missing topics and set contract configs on existing ones (idempotent).

    grading.criterion-states is compacted; every other topic is deleted by retention.
    """
    from services.contract.topics import ensure_topics

    try:
        admin, settings = _admin(bootstrap, prefix)
        results = ensure_topics(
            admin, prefix=settings.topic_prefix, replication_factor=replication_factor
        )
    except ProctorError as exc:
        raise _fail(exc) from exc
    table = Table("topic", "status", "partitions", "config")
    for r in results:
        spec = TOPICS_BY_NAME[logical_topic(r.name, settings.topic_prefix) or r.name]
        style = {"created": "green", "exists": "white", "mismatch": "red"}[r.status]
        cfg = ", ".join(f"{k}={v}" for k, v in spec.config.items())
        table.add_row(r.name, f"[{style}]{r.status}[/]", str(r.partitions), cfg)
    console.print(table)
    bad = [r for r in results if r.status == "mismatch"]
    for r in bad:
        click.echo(f"MISMATCH {r.name}: {r.detail}", err=True)
    if bad:
        raise click.ClickException(f"{len(bad)} topic(s) differ from the contract")


@topics.command("list")
@kafka_options
def list_topics(bootstrap: str | None, prefix: str) -> None:
    """Show each contract topic: present or missing, partitions and key configs."""
    from services.contract.topics import describe_topics

    try:
        admin, settings = _admin(bootstrap, prefix)
        rows = describe_topics(admin, prefix=settings.topic_prefix)
    except ProctorError as exc:
        raise _fail(exc) from exc
    table = Table("topic", "partitions", "key", "config")
    for name, partitions, config in rows:
        spec = TOPICS_BY_NAME[logical_topic(name, settings.topic_prefix) or name]
        shown = "[red]missing[/]" if partitions is None else str(partitions)
        table.add_row(name, shown, spec.key, ", ".join(f"{k}={v}" for k, v in config.items()))
    console.print(table)
