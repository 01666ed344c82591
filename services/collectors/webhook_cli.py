"""``proctor collect <source>`` for push sources: one click command per receiver, made here.

Every receiver command takes the same options (where to listen, which platform, where the
broker is, how long to wait for it); secrets come only from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click
from prometheus_client import CollectorRegistry

from services.collectors.settings import DEFAULT_HTTP_HOST, HTTP_HOST_ENV
from services.collectors.webhook import (
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    HEARTBEAT_S,
    Receiver,
    ReceiverSettings,
    WebhookSource,
)
from services.collectors.webhook_auth import SHARED_SECRET_ENV, derive_secret, secret_env
from services.collectors.webhook_guard import (
    DEFAULT_REPLAY_WINDOW_S,
    KnownPlatforms,
    StaticRoster,
)
from services.collectors.webhook_run import Companion, build_receiver, serve
from services.contract.settings import ClientSettings, connection_params
from services.errors import ProctorError
from services.logs import setup_logging
from services.settings import load_settings
from services.tracing import setup_service_tracing

PLATFORM_ENV = "PROCTOR_PLATFORM_ID"
PORT_ENV = "PROCTOR_HTTP_PORT"
PER_PLATFORM_ENV = "PROCTOR_WEBHOOK_PER_PLATFORM_SECRETS"
PLATFORMS_FILE_ENV = "PROCTOR_PLATFORMS_FILE"
ROSTER_ENV = "PROCTOR_RECEIVER_ROSTER"

log = logging.getLogger("proctor.collectors.webhook")

#: Builds companions (e.g. the OpenLineage Kafka bridge) from the command's options; the
#: registry is the receiver's, so their metrics are served on the same /metrics.
CompanionFactory = Callable[[dict[str, Any], ClientSettings, CollectorRegistry], list[Companion]]


def _options() -> list[click.Parameter]:
    return [
        click.Option(
            ["--host"],
            envvar=HTTP_HOST_ENV,
            default=DEFAULT_HTTP_HOST,
            show_default=True,
            help=f"Address to listen on [env {HTTP_HOST_ENV}].",
        ),
        click.Option(
            ["--port"],
            type=int,
            envvar=PORT_ENV,
            help=f"Port to listen on [env {PORT_ENV}; default: the source's own].",
        ),
        click.Option(
            ["--platform", "platforms"],
            multiple=True,
            envvar=PLATFORM_ENV,
            help="A platform this receiver serves (repeatable; with --platforms-file, the "
            "known platforms: any other is a 404). The first given is the platform of "
            "requests posted without /platforms/<id>/; heartbeats are sent for these from "
            f"the start [env {PLATFORM_ENV}].",
        ),
        *connection_params(
            bootstrap="Kafka bootstrap servers [env {env}].",
            registry="Schema registry URL [env {env}].",
        ),
        click.Option(
            ["--ack-timeout"],
            type=float,
            default=DEFAULT_ACK_TIMEOUT_S,
            show_default=True,
            help="Seconds to wait for the broker before answering 503 (the sender retries).",
        ),
        click.Option(
            ["--heartbeat-interval"],
            type=float,
            default=HEARTBEAT_S,
            show_default=True,
            help="Seconds between collector.heartbeat events.",
        ),
        click.Option(
            ["--per-platform-secrets/--shared-secret", "per_platform_secrets"],
            default=True,
            show_default=True,
            envvar=PER_PLATFORM_ENV,
            help="The environment secret is a master: each platform gets its own derived "
            "secret (see --print-secret), so one platform cannot post for another. "
            "--shared-secret is for a single-platform deployment only "
            f"[env {PER_PLATFORM_ENV}].",
        ),
        click.Option(
            ["--platforms-file"],
            type=click.Path(exists=True, dir_okay=False),
            envvar=PLATFORMS_FILE_ENV,
            help="The platforms this receiver serves, one id a line (with the --platform ones); "
            f"any other platform is a 404 [env {PLATFORMS_FILE_ENV}].",
        ),
        click.Option(
            ["--roster/--no-roster", "use_roster"],
            default=False,
            envvar=ROSTER_ENV,
            help="Serve the platforms of the signed roster topic (proctor.roster, verified with "
            "PROCTOR_TRUSTED_KEYS) at their current generation, instead of --platform and "
            f"--platforms-file [env {ROSTER_ENV}].",
        ),
        click.Option(
            ["--max-body-bytes"],
            type=click.IntRange(min=1024),
            help="Body cap of every source (default: each source's own, 1 MiB): over it, 413 "
            "and a dead letter.",
        ),
        click.Option(
            ["--header-timeout"],
            type=float,
            default=DEFAULT_HEADER_TIMEOUT_S,
            show_default=True,
            help="Seconds a connection may take to send its request's headers.",
        ),
        click.Option(
            ["--body-timeout"],
            type=float,
            default=DEFAULT_BODY_TIMEOUT_S,
            show_default=True,
            help="Seconds a sender may take to send its body (408 after that).",
        ),
        click.Option(
            ["--replay-window"],
            type=float,
            default=DEFAULT_REPLAY_WINDOW_S,
            show_default=True,
            help="Seconds a delivery id is remembered and a signed timestamp is valid.",
        ),
        click.Option(
            ["--print-secret", "print_secret"],
            metavar="PLATFORM",
            help="Print the derived secret of PLATFORM for each source and exit.",
        ),
        click.Option(
            ["--generation"],
            type=click.IntRange(min=0),
            default=1,
            show_default=True,
            help="Roster generation of the platform of --print-secret, and of the platforms "
            "of --platform/--platforms-file (bumped by `proctor roster revoke`).",
        ),
        click.Option(["--verbose", "-v"], is_flag=True, help="Log every request decision."),
    ]


def receiver_command(
    name: str,
    sources: Sequence[WebhookSource],
    help_text: str,
    *,
    extra: Sequence[click.Parameter] = (),
    companions: CompanionFactory | None = None,
    default_port: int | None = None,
) -> click.Command:
    """A click command running a receiver for ``sources`` until SIGINT or SIGTERM."""
    envs = ", ".join(secret_env(s.name) for s in sources)

    def callback(**opts: Any) -> None:
        # JSON lines (services/logs.py); quiet unless --verbose, as a receiver logs per request
        setup_logging("WARNING", {"proctor": "INFO"} if opts["verbose"] else None)
        try:
            loaded = load_settings(
                overrides={
                    "kafka": {"bootstrap": opts["bootstrap"], "topic_prefix": opts["prefix"]},
                    "registry": {"url": opts["registry_url"]},
                }
            )
            setup_service_tracing("proctor-receivers", loaded.telemetry)
            if opts["print_secret"]:
                _print_secrets(sources, opts["print_secret"], opts["generation"], loaded.environ)
                return
            client = ClientSettings.of(loaded)
            settings = ReceiverSettings(
                host=opts["host"],
                port=opts["port"]
                if opts["port"] is not None
                else (default_port or sources[0].default_port),
                platforms=tuple(opts["platforms"]),
                ack_timeout_s=opts["ack_timeout"],
                heartbeat_s=opts["heartbeat_interval"],
                max_body_bytes=opts["max_body_bytes"],
                header_timeout_s=opts["header_timeout"],
                body_timeout_s=opts["body_timeout"],
                replay_window_s=opts["replay_window"],
            )
            if not opts["per_platform_secrets"]:
                click.echo(
                    f"{name}: WARNING: --shared-secret: every platform shares one secret, so "
                    "any platform's sender can post for any other. Use it only when this "
                    "receiver serves a single platform.",
                    err=True,
                )
                log.warning("shared webhook secret in use: per-platform secrets are off")
            live: list[Companion] = []
            if opts["use_roster"]:
                from services.collectors.webhook_roster import LiveRoster

                roster: KnownPlatforms = LiveRoster.from_env(client, loaded.trust.as_env())
                live.append(roster)  # type: ignore[arg-type]
            else:
                roster = _static_roster(
                    opts["platforms"], opts["platforms_file"], opts["generation"]
                )
            receiver: Receiver = build_receiver(
                sources,
                client,
                settings,
                per_platform_secrets=opts["per_platform_secrets"],
                known_platforms=roster,
                env=loaded.environ,
            )
            extra_runners = live + (
                companions(opts, client, receiver.metrics.registry)
                if companions is not None
                else []
            )
            for companion in extra_runners:
                check = getattr(companion, "health_error", None)
                if check is not None and hasattr(companion, "platform_id"):
                    receiver.watch(companion.collector, companion.platform_id, check)  # type: ignore[attr-defined]
            routes = ", ".join(f"POST [/platforms/<id>]{s.path}" for s in sources)
            click.echo(
                f"{name}: listening on http://{settings.host}:{settings.port} ({routes})", err=True
            )
            serve(receiver, extra_runners)
        except ProctorError as exc:
            raise click.ClickException(str(exc)) from exc

    return click.Command(
        name,
        callback=callback,
        params=[*_options(), *extra],
        help=f"{help_text}\n\nSecret from the environment: {envs} (or {SHARED_SECRET_ENV}).",
        short_help=sources[0].summary if len(sources) == 1 else help_text.split(".")[0],
    )


def _static_roster(platforms: Sequence[str], path: str | None, generation: int) -> StaticRoster:
    """The allow-list: --platform ids and the lines of --platforms-file (# comments)."""
    known = list(platforms)
    if path is not None:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                entry = line.split("#", 1)[0].strip()
                if entry:
                    known.append(entry)
    return StaticRoster.of(known, generation)


def _print_secrets(
    sources: Sequence[WebhookSource], platform: str, generation: int, env: Mapping[str, str]
) -> None:
    for source in sources:
        master = env.get(secret_env(source.name)) or env.get(SHARED_SECRET_ENV)
        if not master:
            raise click.ClickException(
                f"set {secret_env(source.name)} (or {SHARED_SECRET_ENV}) first"
            )
        click.echo(f"{source.name}\t{derive_secret(master, source.name, platform, generation)}")
