"""Run polling collectors: one from its flags, or several from a YAML file (`collect all`).

Each collector runs in its own thread with its own producer, so a slow source never
holds another back; SIGINT/SIGTERM stop them all between polls.
"""

from __future__ import annotations

import functools
import importlib
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar

import click
from prometheus_client import start_http_server

from services import logs
from services.collectors.polling import Collector, Poller, PositionStore
from services.collectors.settings import (
    DEFAULT_HTTP_HOST,
    HTTP_HOST_ENV,
    PLATFORM_ENV,
    STATE_DIR_ENV,
    SourceSettings,
    load_config,
    parse_model,
)
from services.contract.settings import BOOTSTRAP_ENV, PREFIX_ENV, REGISTRY_ENV, ClientSettings
from services.errors import ConfigError
from services.publisher.publisher import Publisher
from services.settings import Settings, load_settings
from services.tracing import setup_service_tracing
from services.trust.producing import RecordAuth

log = logging.getLogger("proctor.collectors")

F = TypeVar("F", bound=Callable[..., Any])


class PollingModule(Protocol):
    Settings: type[SourceSettings]

    def build(self, settings: Any, platform_id: str) -> Collector: ...


@dataclass(frozen=True, slots=True)
class RunOptions:
    platform_id: str
    state_dir: Path
    client: ClientSettings
    metrics_port: int | None = None
    once: bool = False
    http_host: str = DEFAULT_HTTP_HOST
    #: how the records are signed (docs/trust.md): the settings' trust keys at the entry
    #: point; "env" reads them when the publisher is built (tests)
    auth: RecordAuth | Literal["env"] | None = "env"


def setup_logging(level: str = "INFO") -> None:
    """The services' JSON logs (services/logs.py), at the settings' level."""
    logs.setup_logging(level, {"httpx2": "WARNING"})


def make_poller(collector: Collector, interval_s: float, opts: RunOptions) -> Poller:
    return Poller(
        collector,
        Publisher(opts.client, auth=opts.auth),
        PositionStore(opts.state_dir, collector.store_key, collector.platform_id),
        interval_s=interval_s,
    )


def run_pollers(
    pollers: Sequence[Poller], opts: RunOptions, stop: threading.Event | None = None
) -> int:
    """Run until SIGINT/SIGTERM or ``stop`` (one round with ``once``); returns an exit code."""
    server = None
    if opts.metrics_port is not None:
        host = opts.http_host
        server, _ = start_http_server(opts.metrics_port, addr=host)
        log.info("metrics on http://%s:%d/metrics", host, opts.metrics_port)
    try:
        return _once(pollers) if opts.once else _forever(pollers, stop or threading.Event())
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def _once(pollers: Sequence[Poller]) -> int:
    failed = 0
    for p in pollers:
        p.attempt()  # an error already sent its unhealthy heartbeat
        if p.healthy:
            p.heartbeat()
        p.close()
        failed += not p.healthy
    return 1 if failed else 0


def _forever(pollers: Sequence[Poller], stop: threading.Event) -> int:
    def handle(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping %d collector(s)", signum, len(pollers))
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)
    threads = [
        threading.Thread(target=p.run, args=(stop,), name=f"collector-{p.collector.store_key}")
        for p in pollers
    ]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    return 0


def polling_module(source: str) -> PollingModule:
    from services.collectors.cli import SOURCES

    entry = SOURCES.get(source)
    if entry is None:
        raise ConfigError(f"unknown source {source!r}; known: {', '.join(sorted(SOURCES))}")
    module: ModuleType = importlib.import_module(entry[0])
    if not hasattr(module, "Settings") or not hasattr(module, "build"):
        raise ConfigError(
            f"source {source!r} is not a polling collector; run it with `proctor collect {source}`"
        )
    return module


def pollers_from_config(
    path: Path, once: bool = False, settings: Settings | None = None
) -> tuple[list[Poller], RunOptions]:
    loaded = settings or load_settings()
    config = load_config(path, loaded)
    assert config.state_dir is not None  # load_config fills it in
    opts = RunOptions(
        config.platform_id,
        config.state_dir,
        config.kafka.client(ClientSettings.of(loaded)),
        config.metrics_port,
        once,
        loaded.telemetry.http_host,
        RecordAuth.from_env(loaded.trust.as_env()),
    )
    pollers = []
    for source, raw in config.sources.items():
        module = polling_module(source)
        source_settings = parse_model(module.Settings, raw, f"{path}: sources.{source}")
        collector = module.build(source_settings, opts.platform_id)
        pollers.append(make_poller(collector, source_settings.interval_s, opts))
    return pollers, opts


# -- click ---------------------------------------------------------------------------------
def common_options(fn: F) -> F:
    """Flags every single-source command shares (platform, state, broker, metrics)."""
    options = [
        click.option("--platform-id", envvar=PLATFORM_ENV, required=True, help="platform watched"),
        click.option(
            "--interval",
            "interval_s",
            type=float,
            default=15.0,
            show_default=True,
            help="seconds between polls",
        ),
        click.option(
            "--state-dir",
            type=click.Path(path_type=Path),
            envvar=STATE_DIR_ENV,
            default=None,
            help="where position files live (default .stack/collectors)",
        ),
        click.option(
            "--metrics-port",
            type=int,
            default=None,
            help=f"serve Prometheus metrics on this port of {HTTP_HOST_ENV} "
            f"(default {DEFAULT_HTTP_HOST})",
        ),
        click.option("--once", is_flag=True, help="poll once, send a heartbeat and exit"),
        click.option(
            "--bootstrap",
            envvar=BOOTSTRAP_ENV,
            default=None,
            help="proctor's broker (not the watched one)",
        ),
        click.option(
            "--registry-url", envvar=REGISTRY_ENV, default=None, help="proctor's schema registry"
        ),
        click.option("--topic-prefix", envvar=PREFIX_ENV, default=None, help="topic prefix"),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), fn)


def run_one(collector_factory: Callable[[str], Collector], common: dict[str, Any]) -> None:
    """Build one collector from its command's flags and run it (exit code on --once)."""
    settings = load_settings(
        overrides={
            "kafka": {"bootstrap": common["bootstrap"], "topic_prefix": common["topic_prefix"]},
            "registry": {"url": common["registry_url"]},
            "collectors": {"state_dir": common["state_dir"]},
        }
    )
    setup_logging(settings.telemetry.log_level)
    setup_service_tracing("proctor-collectors", settings.telemetry)
    opts = RunOptions(
        common["platform_id"],
        settings.collectors.state_dir,
        ClientSettings.of(settings),
        common["metrics_port"],
        common["once"],
        settings.telemetry.http_host,
        RecordAuth.from_env(settings.trust.as_env()),
    )
    poller = make_poller(collector_factory(opts.platform_id), common["interval_s"], opts)
    code = run_pollers([poller], opts)
    if code:
        raise SystemExit(code)


COMMON_KEYS = (
    "platform_id",
    "interval_s",
    "state_dir",
    "metrics_port",
    "once",
    "bootstrap",
    "registry_url",
    "topic_prefix",
)


def split_common(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    common = {k: kwargs.pop(k) for k in COMMON_KEYS}
    return common, kwargs


@click.command("all")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True),
    required=True,
    help="collectors YAML (platform_id, sources and their settings)",
)
@click.option("--once", is_flag=True, help="poll every source once and exit")
def command(config_path: Path, once: bool) -> None:
    """Run every polling collector of a YAML config together (one thread each)."""
    settings = load_settings()
    setup_logging(settings.telemetry.log_level)
    setup_service_tracing("proctor-collectors", settings.telemetry)
    pollers, opts = pollers_from_config(config_path, once, settings)
    code = run_pollers(pollers, opts)
    if code:
        raise SystemExit(code)
