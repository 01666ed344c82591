"""``proctor submit-server`` (the endpoint) and ``proctor submit ...`` (the candidate's client)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from services.collectors.settings import DEFAULT_HTTP_HOST, HTTP_HOST_ENV
from services.collectors.webhook_guard import StaticRoster
from services.contract.settings import ClientSettings, connection_params
from services.errors import ConfigError, ProctorError
from services.logs import setup_logging
from services.settings import load_settings
from services.submission.client import TOKEN_ENV, URL_ENV, submit
from services.submission.server import (
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
    SubmissionServer,
    SubmissionSettings,
)
from services.tracing import setup_service_tracing
from services.trust.credentials import ROSTER_SECRET_ENV, master_from_env
from services.trust.keys import SIGNING_KEY_ENV, SIGNING_KEY_ID_ENV, load_signing_key

PLATFORMS_FILE_ENV = "PROCTOR_PLATFORMS_FILE"


def _roster(platforms: Sequence[str], path: str | None, generation: int) -> StaticRoster:
    known = list(platforms)
    if path is not None:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            entry = line.split("#", 1)[0].strip()
            if entry:
                known.append(entry)
    if not known:
        raise ConfigError(
            "no platforms: give --platform (repeatable) or --platforms-file; a token of a "
            "platform not listed is refused"
        )
    return StaticRoster.of(known, generation)


@click.command(
    "submit-server",
    help="Run the submission endpoint: candidates POST /v1/submissions/<type> with their "
    "token; accepted submissions are stamped, signed (role submission) and produced to "
    f"exam.control.\n\nSecrets from the environment: {ROSTER_SECRET_ENV} (the roster master "
    f"secret the tokens derive from), {SIGNING_KEY_ENV} and {SIGNING_KEY_ID_ENV} (the "
    "endpoint's Ed25519 key, role submission).",
)
@click.option("--host", envvar=HTTP_HOST_ENV, default=DEFAULT_HTTP_HOST, show_default=True)
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    help="A platform whose candidate may submit (repeatable).",
)
@click.option(
    "--platforms-file",
    type=click.Path(exists=True, dir_okay=False),
    envvar=PLATFORMS_FILE_ENV,
    help=f"Platforms whose candidates may submit, one a line [env {PLATFORMS_FILE_ENV}].",
)
@click.option(
    "--generation",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Roster generation of the listed platforms (tokens of another are refused).",
)
@click.option(
    "--roster/--no-roster",
    "use_roster",
    default=False,
    envvar="PROCTOR_RECEIVER_ROSTER",
    help="Take the platforms, their generation and exam from the signed roster topic "
    "(verified with PROCTOR_TRUSTED_KEYS) instead of --platform/--platforms-file.",
)
@click.option("--max-body-bytes", type=click.IntRange(min=1024), default=DEFAULT_MAX_BODY)
@click.option("--body-timeout", type=float, default=30.0, show_default=True)
@click.option("--header-timeout", type=float, default=10.0, show_default=True)
def submit_server(**opts: Any) -> None:
    setup_logging("WARNING")  # JSON lines (services/logs.py), as every service
    try:
        loaded = load_settings(
            overrides={
                "kafka": {"bootstrap": opts["bootstrap"], "topic_prefix": opts["prefix"]},
                "registry": {"url": opts["registry_url"]},
            }
        )
        setup_service_tracing("proctor-submission", loaded.telemetry)
        trust = loaded.trust.as_env()
        master = master_from_env(trust)
        assert master is not None
        key = load_signing_key(trust)
        if not key.key_id.startswith("submission"):
            raise ConfigError(
                f"the signing key {key.key_id!r} is not a submission key; generate one with "
                "`proctor keys generate --role submission`"
            )
        client = ClientSettings.of(loaded)
        settings = SubmissionSettings(
            host=opts["host"],
            port=opts["port"],
            max_body_bytes=opts["max_body_bytes"],
            header_timeout_s=opts["header_timeout"],
            body_timeout_s=opts["body_timeout"],
        )
        live = None
        if opts["use_roster"]:
            from services.collectors.webhook_roster import LiveRoster

            live = LiveRoster.from_env(client, trust)
            server = SubmissionServer.build(client, master, key, live, settings, live.exam_of)
        else:
            roster = _roster(opts["platforms"], opts["platforms_file"], opts["generation"])
            server = SubmissionServer.build(client, master, key, roster, settings)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"submit-server: listening on http://{settings.host}:{settings.port}", err=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.start()
        if live is not None:
            live.start()
        try:
            await stop.wait()
        finally:
            if live is not None:
                await loop.run_in_executor(None, live.stop)
            await server.stop()

    asyncio.run(main())


submit_server.params.extend(
    connection_params(
        bootstrap="Kafka bootstrap servers [env {env}].",
        registry="Schema registry URL [env {env}].",
    )
)


# ---- the candidate's client -----------------------------------------------------------------


@click.group(
    "submit", help="Submit to the proctor: your pipeline, a diagnosis, an artifact, a self-grade."
)
@click.option(
    "--url", envvar=URL_ENV, required=True, help=f"The submission endpoint [env {URL_ENV}]."
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    required=True,
    help=f"Your submission token [env {TOKEN_ENV}; prefer the variable to the flag].",
)
@click.pass_context
def submit_group(ctx: click.Context, url: str, token: str) -> None:
    ctx.obj = {"url": url, "token": token}


def _send(ctx: click.Context, event_type: str, fields: dict[str, Any]) -> None:
    try:
        done = submit(ctx.obj["url"], ctx.obj["token"], event_type, fields)
    except ProctorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"event_id": done.event_id, "ts": done.ts_ms, "type": done.event_type}))


@submit_group.command("diagnosis", help="Your root cause of the injected fault.")
@click.option("--layer", required=True, help="The layer at fault, e.g. cdc, flink, dbt.")
@click.option("--kind", required=True, help="What went wrong, e.g. schema_drift.")
@click.option("--summary", default="", help="One or two sentences.")
@click.option("--fault-id", help="The fault's id, when the proctor announced one.")
@click.pass_context
def diagnosis(
    ctx: click.Context, layer: str, kind: str, summary: str, fault_id: str | None
) -> None:
    _send(
        ctx,
        "diagnosis.submitted",
        {"layer": layer, "kind": kind, "summary": summary, "fault_id": fault_id},
    )


@submit_group.command("artifact", help="A postmortem, design review or README (a text file).")
@click.option("--part", type=int, required=True, help="The exam part it belongs to.")
@click.option("--kind", type=click.Choice(["postmortem", "design_review", "readme"]), required=True)
@click.option("--uri", help="Where it also lives (a URL).")
@click.argument("path", type=click.File("r", encoding="utf-8"))
@click.pass_context
def artifact(ctx: click.Context, part: int, kind: str, uri: str | None, path: Any) -> None:
    _send(
        ctx,
        "artifact.submitted",
        {"part": part, "kind": kind, "content": path.read(), "uri": uri},
    )


@submit_group.command("self-grade", help="Your own estimate of your score, in percent.")
@click.argument("score_pct", type=click.FloatRange(0, 100))
@click.pass_context
def self_grade(ctx: click.Context, score_pct: float) -> None:
    _send(ctx, "self_grade.submitted", {"score_pct": score_pct})


@submit_group.command("pipeline", help="Declare your pipeline's assets (a JSON file of them).")
@click.argument("path", type=click.File("r", encoding="utf-8"))
@click.pass_context
def pipeline(ctx: click.Context, path: Any) -> None:
    try:
        assets = json.load(path)
    except ValueError as exc:
        raise click.ClickException(f"{path.name} is not JSON: {exc}") from exc
    _send(ctx, "pipeline.declared", {"assets": assets})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(submit_group())
