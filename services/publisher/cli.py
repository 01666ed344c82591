"""``proctor publish``: exam control events from the command line, or a whole recording.

One subcommand per control event type, with options made from the type's Avro schema
(names, docs, enums, defaults), so the command can never drift from the contract:

    proctor publish exam.started --platform basecamp-alice --exam-id e1 \\
        --candidate-id alice --rubric-id y3-final --rubric-version 1
    proctor publish fault.injected --platform basecamp-alice --exam-id e1 \\
        --layer trino --kind stale_statistics --target lake.orders
    proctor publish artifact --platform basecamp-alice --exam-id e1 --kind postmortem --file pm.md
    proctor publish --file exam.jsonl
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.contract.convert import FieldError, parse_timestamp
from services.contract.jsonl import event_to_line, read_jsonl
from services.contract.rules import ARTIFACT_PARTS
from services.contract.schemas import CONTROL_TYPES, EventSchema, load_contract
from services.contract.settings import ClientSettings, connection_params
from services.core.events import Event
from services.errors import ProctorError
from services.publisher.publisher import Delivery, Publisher, new_event
from services.settings import load_settings
from services.tracing import setup_service_tracing

PLATFORM_ENV = "PROCTOR_PLATFORM_ID"
EXAM_ENV = "PROCTOR_EXAM_ID"
#: Short names for the commands candidates type most.
ALIASES = {
    "artifact": "artifact.submitted",
    "diagnosis": "diagnosis.submitted",
    "self-grade": "self_grade.submitted",
}

err = Console(stderr=True)


def _connection_params() -> list[click.Parameter]:
    """Fresh copies of the options every publish command shares."""
    return [
        *connection_params(),
        click.Option(
            ["--auto-register"],
            is_flag=True,
            help="Register a missing schema instead of failing (BACKWARD still applies).",
        ),
        click.Option(
            ["--dry-run"], is_flag=True, help="Validate and print the JSON line(s); send nothing."
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="Print deliveries as JSON lines."),
    ]


def _connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    params: list[click.Parameter] = getattr(func, "__click_params__", [])
    # click.command reverses decorator-added params; add ours reversed to keep this order.
    params.extend(reversed(_connection_params()))
    func.__click_params__ = params  # type: ignore[attr-defined]
    return func


def _print_delivery(delivery: Delivery, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "type": delivery.type,
                    "event_id": delivery.event_id,
                    "platform_id": delivery.platform_id,
                    "topic": delivery.topic,
                    "partition": delivery.partition,
                    "offset": delivery.offset,
                }
            )
        )
    else:
        click.echo(str(delivery))


def _publisher(opts: dict[str, Any]) -> Publisher:
    from services.trust.producing import RecordAuth

    loaded = load_settings(
        overrides={
            "kafka": {"bootstrap": opts["bootstrap"], "topic_prefix": opts["prefix"]},
            "registry": {"url": opts["registry_url"]},
        }
    )
    setup_service_tracing("proctor-publisher", loaded.telemetry)
    return Publisher(
        ClientSettings.of(loaded),
        auth=RecordAuth.from_env(loaded.trust.as_env()),
        auto_register=opts["auto_register"],
        say=lambda text: click.echo(text, err=True),
    )


def _send(events: list[Event], opts: dict[str, Any]) -> None:
    contract = load_contract()
    if opts["dry_run"]:
        for event in events:
            click.echo(event_to_line(event, contract))
        return
    with _publisher(opts) as publisher:
        for delivery in publisher.publish_many(events):
            _print_delivery(delivery, opts["as_json"])


# ---- options made from a schema -------------------------------------------------------


def _option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _click_type(avro: Any, named: dict[str, Any]) -> tuple[Any, bool]:
    """(click type, multiple) for an Avro field type; nullable unions unwrap."""
    if isinstance(avro, list):
        others = [b for b in avro if b != "null"]
        return _click_type(others[0], named)
    if isinstance(avro, str) and avro in named:
        return _click_type(named[avro], named)
    if isinstance(avro, dict):
        kind = avro["type"]
        if kind == "enum":
            return click.Choice(avro["symbols"]), False
        if kind == "array":
            return _click_type(avro["items"], named)[0], True
        if avro.get("logicalType") == "timestamp-millis":
            return str, False
        return _click_type(kind, named)
    return {"int": int, "long": int, "double": float, "float": float, "boolean": bool}.get(
        avro, str
    ), False


def _fields(schema: EventSchema) -> list[tuple[str, tuple[str, ...], dict[str, Any]]]:
    """(option dest, path in data, field) for every data field, flattening nested records."""
    named = dict(schema.parsed.get("__named_schemas", {}))
    out: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []
    for f in schema.parsed["fields"]:
        if f["name"] in ("type", "platform_id", "event_id", "ts"):
            continue
        ftype = named.get(f["type"], f["type"]) if isinstance(f["type"], str) else f["type"]
        if isinstance(ftype, dict) and ftype.get("type") == "record":
            for sub in ftype["fields"]:
                out.append((sub["name"], (f["name"], sub["name"]), sub))
        else:
            out.append((f["name"], (f["name"],), f))
    return out


def _make_command(event_type: str, name: str) -> click.Command:
    schema = load_contract().schema(event_type)
    named = dict(schema.parsed.get("__named_schemas", {}))
    fields = _fields(schema)
    artifact = event_type == "artifact.submitted"

    def callback(**opts: Any) -> None:
        data: dict[str, Any] = {}
        for dest, path, _field in fields:
            value = opts.get(dest)
            if isinstance(value, tuple):
                value = list(value)
                if not value:
                    continue
            if value is None:
                continue
            target = data
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = value
        if artifact:
            _artifact_content(data, opts.pop("file"))
        if event_type == "fault.injected" and "fault_id" not in data:
            data["fault_id"] = f"fault-{uuid.uuid4().hex[:8]}"
        try:
            ts_ms = parse_timestamp(opts["ts"], "--ts") if opts["ts"] else None
        except FieldError as exc:
            raise click.BadParameter(str(exc), param_hint="--ts") from exc
        event = new_event(
            event_type, opts["platform"], data, event_id=opts["event_id"], ts_ms=ts_ms
        )
        try:
            _send([event], opts)
        except ProctorError as exc:
            raise click.ClickException(str(exc)) from exc

    params: list[click.Parameter] = [
        click.Option(
            ["--platform"],
            envvar=PLATFORM_ENV,
            required=True,
            help=f"platform_id: the candidate's platform, e.g. basecamp-alice [env {PLATFORM_ENV}].",
        ),
        click.Option(["--event-id"], help="event_id (default: a fresh UUID)."),
        click.Option(
            ["--ts"], help="Event time, RFC 3339 (default: now), e.g. 2026-11-27T09:00:00.000Z."
        ),
    ]
    for dest, _path, f in fields:
        ctype, multiple = _click_type(f["type"], named)
        has_default = "default" in f
        nullable = isinstance(f["type"], list) and "null" in f["type"]
        required = not has_default and not nullable and not multiple
        if artifact and dest in ("content", "part", "uri"):
            required = False  # filled from --file and --kind
        if event_type == "fault.injected" and dest == "fault_id":
            required = False  # generated when not given
        option = _option_name(dest[:-1] if multiple and dest.endswith("s") else dest)
        kwargs: dict[str, Any] = {
            "help": f.get("doc", ""),
            "required": required,
            "multiple": multiple,
        }
        if ctype is bool:
            kwargs = {"help": f.get("doc", ""), "default": None}
            params.append(click.Option([f"{option}/--no-{option[2:]}", dest], **kwargs))
            continue
        kwargs["type"] = ctype
        if dest == "exam_id":
            kwargs["envvar"] = EXAM_ENV
            kwargs["help"] += f" [env {EXAM_ENV}]"
        params.append(click.Option([option, dest], **kwargs))
    if artifact:
        params.append(
            click.Option(
                ["--file", "file"],
                type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                help="Read the content from this file ('-' for stdin); --uri defaults to its path.",
            )
        )
    command = click.Command(
        name,
        callback=callback,
        params=[*params, *_connection_params()],
        help=f"{schema.raw.get('doc', '')}\n\nPublishes a {event_type} event to {schema.topic}.",
        short_help=f"Publish {event_type}.",
    )
    return command


def _artifact_content(data: dict[str, Any], file: Path | None) -> None:
    if file is not None:
        if "content" in data:
            raise click.UsageError("give --content or --file, not both")
        try:
            data["content"] = (
                sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
            )
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {file}: {exc}", param_hint="--file") from exc
        if str(file) != "-":
            data.setdefault("uri", str(file))
    if "content" not in data:
        raise click.UsageError("an artifact needs --file PATH or --content TEXT")
    if "part" not in data:
        data["part"] = ARTIFACT_PARTS[data["kind"]]


class PublishGroup(click.Group):
    """Subcommands are made on demand from the control schemas (plus short aliases)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*CONTROL_TYPES, *ALIASES]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        event_type = ALIASES.get(cmd_name, cmd_name)
        if event_type not in CONTROL_TYPES:
            return None
        return _make_command(event_type, cmd_name)


@click.group("publish", cls=PublishGroup, invoke_without_command=True)
@click.option(
    "--file",
    "recording",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Publish a whole JSON Lines recording, in order (validated first: a bad line sends nothing).",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="With --file: only the summary, not each delivery."
)
@_connection_options
@click.pass_context
def publish(ctx: click.Context, /, recording: Path | None, quiet: bool, **opts: Any) -> None:
    """Publish exam events: one control event (a subcommand), or a recording with --file.

    Every event is validated against its schema before anything is sent, keyed by its
    platform_id, through an idempotent producer; where each landed is printed
    (topic/partition/offset).
    """
    if ctx.invoked_subcommand is not None:
        if recording is not None:
            raise click.UsageError(
                "--file publishes a recording; do not combine it with a subcommand"
            )
        return
    if recording is None:
        click.echo(ctx.get_help())
        return
    try:
        events = read_jsonl(recording)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    if opts["dry_run"]:
        _send(events, opts)
        return
    try:
        _publish_recording(events, opts, quiet)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc


def _publish_recording(events: list[Event], opts: dict[str, Any], quiet: bool) -> None:
    columns = (
        TextColumn("[bold]publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    topics: dict[str, int] = {}
    with _publisher(opts) as publisher:
        prepared = publisher.prepare(events)  # validate everything before the first send
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("publish", total=len(prepared))

            def landed(delivery: Delivery) -> None:
                topics[delivery.topic] = topics.get(delivery.topic, 0) + 1
                progress.advance(task)
                if not quiet:
                    # Progress redirects stdout above the bar, so lines and bar do not mix.
                    _print_delivery(delivery, opts["as_json"])

            publisher.send(prepared, on_delivery=landed)
    summary = ", ".join(f"{n} to {t}" for t, n in sorted(topics.items()))
    err.print(f"published {len(events)} events: {summary}", highlight=False)
