"""A push source proves it can see: the Kubernetes audit canary.

A push source that goes quiet looks exactly like a candidate who did nothing: with
API-server auditing switched off, "no manual kubectl apply" would be met by absence. So
the collector makes its own request to the candidate's API server every ``every_s``
seconds (a GET of a ConfigMap, read-only, answered 404 if it does not exist: the audit
log records it all the same), with a user agent carrying a fresh random nonce. The
receiver notes the canaries it sees in the audit stream (only nonces it issued: a
candidate cannot hide a request behind the canary's user agent) and does not publish
them as candidate activity. When no canary was seen for longer than ``bound_s``, the
source is blind, proctor-side: its heartbeat is unhealthy with "auditing is off or the
webhook is not delivering", and the grader turns a criterion met by absence into
``unknown`` (services/core/rules/base.py).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click
import httpx

from services.collectors.webhook import Parser, WebhookSource
from services.collectors.webhook_payload import Inbound, Parsed
from services.core.events import ms_to_rfc3339
from services.errors import ConfigError
from services.settings import environment

log = logging.getLogger("proctor.collectors.canary")

#: user agents of canary requests start with this; the rest is the request's nonce
USER_AGENT_PREFIX = "proctor-canary/"
DEFAULT_EVERY_S = 30.0
DEFAULT_BOUND_S = 120.0
#: nonces remembered per platform (a few bounds' worth of requests)
MAX_NONCES = 256

SERVER_ENV = "PROCTOR_K8S_CANARY_SERVER"
TOKEN_ENV = "PROCTOR_K8S_CANARY_TOKEN"
CA_ENV = "PROCTOR_K8S_CANARY_CA"
EVERY_ENV = "PROCTOR_K8S_CANARY_EVERY_S"
BOUND_ENV = "PROCTOR_K8S_CANARY_BOUND_S"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class _Canaries:
    since_ms: int
    issued: OrderedDict[str, int] = dataclasses.field(default_factory=OrderedDict)
    #: the latest send time among canaries seen in the audit stream
    proven_ms: int | None = None
    last_failure: str | None = None


class CanaryWatch:
    """Which canaries were sent and seen, per platform; thread-safe (the requester runs
    in a thread, the receiver on its event loop)."""

    def __init__(self, bound_s: float = DEFAULT_BOUND_S) -> None:
        if bound_s <= 0:
            raise ConfigError(f"the canary bound must be positive, not {bound_s}")
        self.bound_ms = int(bound_s * 1000)
        self._lock = threading.Lock()
        self._platforms: dict[str, _Canaries] = {}

    def watch(self, platform_id: str, at_ms: int | None = None) -> None:
        """Start expecting canaries on a platform (blind after ``bound_s`` without one)."""
        with self._lock:
            self._platforms.setdefault(platform_id, _Canaries(now_ms() if at_ms is None else at_ms))

    @property
    def platforms(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._platforms))

    def issue(self, platform_id: str, at_ms: int | None = None) -> str:
        """A fresh nonce for a canary request about to be sent; returns its user agent."""
        nonce = secrets.token_hex(12)
        with self._lock:
            c = self._platforms.setdefault(platform_id, _Canaries(now_ms()))
            c.issued[nonce] = now_ms() if at_ms is None else at_ms
            while len(c.issued) > MAX_NONCES:
                c.issued.popitem(last=False)
        return USER_AGENT_PREFIX + nonce

    def failed(self, platform_id: str, reason: str) -> None:
        with self._lock:
            c = self._platforms.get(platform_id)
            if c is not None:
                c.last_failure = reason[:300]

    def succeeded(self, platform_id: str) -> None:
        with self._lock:
            c = self._platforms.get(platform_id)
            if c is not None:
                c.last_failure = None

    def observe(self, platform_id: str, user_agent: str) -> bool:
        """Whether an audited request is one of our canaries (and note that it was seen)."""
        if not user_agent.startswith(USER_AGENT_PREFIX):
            return False
        nonce = user_agent[len(USER_AGENT_PREFIX) :].split(" ", 1)[0]
        with self._lock:
            c = self._platforms.get(platform_id)
            sent = c.issued.get(nonce) if c is not None else None
            if c is None or sent is None:
                return False  # not ours: a candidate's request wearing our user agent
            c.proven_ms = sent if c.proven_ms is None else max(c.proven_ms, sent)
            return True

    def blind_reason(self, platform_id: str, at_ms: int) -> str | None:
        """Why the audit source cannot be trusted to see at ``at_ms``; None if it can."""
        with self._lock:
            c = self._platforms.get(platform_id)
            if c is None:
                return None  # no canary configured for this platform
            last = c.proven_ms if c.proven_ms is not None else c.since_ms
            if at_ms - last <= self.bound_ms:
                return None
            seen = "none seen yet" if c.proven_ms is None else f"last {ms_to_rfc3339(c.proven_ms)}"
            why = (
                "auditing is off or the webhook is not delivering: no canary request in the "
                f"audit stream for {(at_ms - last) // 1000} s ({seen}; bound "
                f"{self.bound_ms // 1000} s)"
            )
            if c.last_failure:
                why += f"; the last canary request failed: {c.last_failure}"
            return why

    def filtering(self, parse: Parser) -> Parser:
        """``parse`` without our canaries: they are noted, counted as ignored, not published."""

        def parse_without_canaries(inbound: Inbound) -> Parsed:
            parsed = parse(inbound)
            keep = [
                i
                for i, ev in enumerate(parsed.events)
                if not self.observe(inbound.platform_id, str(ev.data.get("user_agent") or ""))
            ]
            if len(keep) == len(parsed.events):
                return parsed
            dropped = len(parsed.events) - len(keep)
            return Parsed(
                tuple(parsed.events[i] for i in keep),
                parsed.rejected,
                (*parsed.ignored, *(["proctor canary"] * dropped)),
                tuple(parsed.items[i] for i in keep) if parsed.items else parsed.items,
            )

        return parse_without_canaries


def watched(source: WebhookSource, watch: CanaryWatch) -> WebhookSource:
    """The source with its canaries filtered out and its heartbeat blind without them."""
    return dataclasses.replace(
        source, parse=watch.filtering(source.parse), blind=watch.blind_reason
    )


@dataclass(frozen=True, slots=True)
class CanaryTarget:
    """Where a platform's canary goes: the candidate's API server, as the collector."""

    platform_id: str
    server: str
    token: str
    namespace: str = "default"
    name: str = "proctor-canary"
    verify: str | bool = True

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps/{self.name}"


class CanaryRequester:
    """Sends one canary request per target every ``every_s`` seconds (a companion thread)."""

    def __init__(
        self,
        targets: list[CanaryTarget],
        watch: CanaryWatch,
        every_s: float = DEFAULT_EVERY_S,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if every_s <= 0:
            raise ConfigError(f"the canary interval must be positive, not {every_s}")
        if every_s * 2 > watch.bound_ms / 1000:
            raise ConfigError(
                f"the canary bound ({watch.bound_ms / 1000:g} s) must be at least twice its "
                f"interval ({every_s:g} s), or one delayed audit batch makes the source blind"
            )
        self.targets = targets
        self.watch = watch
        self.every_s = every_s
        self._clients = {
            t.platform_id: httpx.Client(
                base_url=t.server.rstrip("/"),
                timeout=timeout_s,
                verify=t.verify,
                headers={"Authorization": f"Bearer {t.token}", "Accept": "application/json"},
                transport=transport,
            )
            for t in targets
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for t in targets:
            watch.watch(t.platform_id)

    def send_once(self) -> None:
        """One canary per target; a failure is noted (it shows in the blind reason)."""
        for t in self.targets:
            agent = self.watch.issue(t.platform_id)
            try:
                resp = self._clients[t.platform_id].get(t.path, headers={"User-Agent": agent})
            except httpx.HTTPError as exc:
                self.watch.failed(
                    t.platform_id, f"GET {t.server}{t.path}: {type(exc).__name__}: {exc}"
                )
                log.warning("canary for %s not sent: %s", t.platform_id, exc)
                continue
            # Any answer (a 404 for a missing ConfigMap, even a 403) was audited.
            if resp.status_code in (401,):
                self.watch.failed(
                    t.platform_id, f"GET {t.server}{t.path} answered 401: the token is refused"
                )
            else:
                self.watch.succeeded(t.platform_id)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.send_once()
            self._stop.wait(self.every_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="k8s-canary", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for c in self._clients.values():
            c.close()


#: the receiver process's canary watch (the k8s-audit command's source uses it)
WATCH = CanaryWatch()


def options() -> list[click.Parameter]:
    """The k8s-audit command's canary options (the token only from the environment)."""
    return [
        click.Option(
            ["--canary-server"],
            envvar=SERVER_ENV,
            default=None,
            help=f"the candidate's API server URL for the audit canary (env {SERVER_ENV}; "
            f"bearer token from {TOKEN_ENV}, CA file from {CA_ENV}); without it no canary",
        ),
        click.Option(
            ["--canary-every"],
            envvar=EVERY_ENV,
            type=float,
            default=DEFAULT_EVERY_S,
            show_default=True,
            help="seconds between canary requests",
        ),
        click.Option(
            ["--canary-bound"],
            envvar=BOUND_ENV,
            type=float,
            default=DEFAULT_BOUND_S,
            show_default=True,
            help="seconds without a canary in the audit stream before the source is blind",
        ),
        click.Option(
            ["--canary-namespace"],
            default="default",
            show_default=True,
            help="namespace of the ConfigMap the canary reads",
        ),
    ]


def companions(
    opts: Mapping[str, Any], _client: Any, _registry: Any, env: Mapping[str, str] | None = None
) -> list[Any]:
    """The canary requester for the receiver's default platform, when a server is set."""
    server = opts.get("canary_server")
    if not server:
        return []
    env = environment() if env is None else env
    token = env.get(TOKEN_ENV, "")
    if not token:
        raise ConfigError(f"--canary-server is set but {TOKEN_ENV} is empty: set the token")
    platforms = opts.get("platforms") or ()
    if not platforms:
        raise ConfigError("the audit canary needs the receiver's platform: pass --platform")
    WATCH.bound_ms = int(float(opts.get("canary_bound") or DEFAULT_BOUND_S) * 1000)
    target = CanaryTarget(
        platform_id=str(platforms[0]),
        server=str(server),
        token=token,
        namespace=str(opts.get("canary_namespace") or "default"),
        verify=env.get(CA_ENV) or True,
    )
    return [CanaryRequester([target], WATCH, float(opts.get("canary_every") or DEFAULT_EVERY_S))]
