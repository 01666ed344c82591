"""The shared HTTP receiver of the push sources (Argo CD, audit webhook, Git host, OpenLineage, Trino).

One asyncio server (aiohttp) hosts one or more sources. For every POST it:

1. finds the platform: ``/platforms/<platform_id><path>``, or ``<path>`` for the
   receiver's default platform (``--platform``); a platform the roster does not know is
   a 404 that leaves no state (no heartbeat is ever sent for it);
2. authenticates the caller from the headers before reading any of the body (bearer
   token, token header, or HMAC-SHA256 signature whose header must be present and
   well-formed), with the platform's own derived secret, see
   :mod:`~services.collectors.webhook_auth`: 401 and nothing published otherwise;
3. streams the body under a read timeout, keeping at most the source's size cap (1 MiB by
   default): an authentic body over the cap is a 413 with a dead letter (truncated), a
   body that does not arrive in time a 408;
4. refuses replays: a delivery id seen within the replay window is a 409, a signed
   timestamp outside it a 401, both publish nothing;
5. parses the payload into contract events with deterministic event ids, so a sender's
   retry is de-duplicated downstream; a malformed payload is dead-lettered on
   ``grading.dlq`` with the reason and answered 400, an event too large for its topic is
   a 413 and a dead letter (never a failed produce);
6. produces the events and waits for the broker's acknowledgement: 200 only after that,
   503 (with Retry-After) when the broker does not acknowledge in time, so the sender
   retries and nothing accepted is ever lost.

Headers must arrive within the header timeout (the connection is closed otherwise).
``GET /healthz`` answers while the loop runs, ``GET /readyz`` says whether the broker
acknowledged the last heartbeat, and ``GET /metrics`` serves Prometheus metrics. Every
source sends a ``collector.heartbeat`` per known platform it has served every 30 s and on
errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from services.collectors.blindness import PROCTOR_SIDE, delivery_kind
from services.collectors.webhook_auth import (
    AuthFailure,
    AuthScheme,
    PendingSignature,
    SecretBook,
    check_headers,
)
from services.collectors.webhook_delivery import AckingSender, OutRecord
from services.collectors.webhook_guard import (
    DEFAULT_REPLAY_WINDOW_S,
    Body,
    BodyTimeout,
    KnownPlatforms,
    ReplayGuard,
    StaticRoster,
    delivery_id,
    read_capped,
)
from services.collectors.webhook_metrics import Metrics
from services.collectors.webhook_payload import Inbound, Parsed, Rejected, event_id
from services.contract.dlq import DeadLetter, dead_letter_record
from services.core.events import Event, ms_to_rfc3339
from services.errors import (
    ConfigError,
    ContractError,
    DeliveryError,
    PayloadError,
    RegistryError,
)
from services.publisher.publisher import TYPE_HEADER, Publisher

log = logging.getLogger("proctor.collectors.webhook")

PLATFORM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Request headers kept in a dead letter (never Authorization or signatures).
KEPT_HEADERS = (
    "content-type",
    "content-encoding",
    "user-agent",
    "x-github-event",
    "x-github-delivery",
    "x-gitea-event",
    "x-gitea-delivery",
    "x-gitlab-event",
    "x-gitlab-event-uuid",
    "x-gogs-event",
    "x-gogs-delivery",
    "x-proctor-delivery",
)
#: Raw bytes kept in a dead letter; the DLQ topic takes records up to 4 MiB.
DLQ_MAX_RAW = 3 * 1024 * 1024
#: Heartbeat rounds are at least this far apart, so repeated errors do not flood the topic.
ERROR_BEAT_MIN_S = 5.0
#: What a request waits for the broker by default before answering 503.
DEFAULT_ACK_TIMEOUT_S = 10.0
HEARTBEAT_S = 30.0
#: Per-source body cap: a webhook payload of a signal is far smaller than this.
DEFAULT_MAX_BODY = 1024 * 1024
#: How long a sender may take over its headers, and over its body.
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 30.0
#: An HMAC over a body past the cap is still checked (streamed, not kept) up to this many
#: times the cap, so an authentic oversized delivery is dead-lettered; beyond, it is refused.
HMAC_DRAIN_FACTOR = 4
#: The largest record value produced to a signal topic: the broker's default
#: max.message.bytes (1,048,588) less room for the key, headers and batch overhead.
SIGNAL_RECORD_MAX = 1_000_000
#: The dead-letter topic takes 4 MiB records (services/contract/schemas.py); the producer's
#: message.max.bytes is set to it so no produce ever fails on size.
DLQ_RECORD_MAX = 4 * 1024 * 1024
PRODUCER_MAX_BYTES = DLQ_RECORD_MAX + 64 * 1024


class Parser(Protocol):
    def __call__(self, inbound: Inbound) -> Parsed: ...


@dataclass(frozen=True, slots=True)
class WebhookSource:
    """A push source: its collector name, path, event types, authentication and parser."""

    name: str
    path: str
    event_types: tuple[str, ...]
    auth: AuthScheme
    parse: Parser
    default_port: int
    summary: str
    max_body_bytes: int = DEFAULT_MAX_BODY
    #: the source's own proof that it can see, per platform at a time: why it cannot
    #: (e.g. its canary went missing), or None (services/collectors/canary.py)
    blind: Callable[[str, int], str | None] | None = None


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """How a receiver listens and how long it waits for the broker."""

    host: str = "127.0.0.1"
    port: int = 0
    platforms: tuple[str, ...] = ()
    ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S
    heartbeat_s: float = HEARTBEAT_S
    #: Overrides every source's own cap when set.
    max_body_bytes: int | None = None
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    replay_window_s: float = DEFAULT_REPLAY_WINDOW_S

    @property
    def default_platform(self) -> str | None:
        return self.platforms[0] if self.platforms else None


@dataclass(slots=True)
class _Health:
    """What one (source, platform) heartbeat reports."""

    accepted: int = 0
    last_event_ms: int | None = None
    error: str | None = None
    #: whose failure ``error`` is (services/collectors/blindness.py)
    error_kind: str | None = None


@dataclass(slots=True)
class _State:
    health: dict[tuple[str, str], _Health] = field(default_factory=dict)
    broker_ok: bool | None = None


class Receiver:
    """An aiohttp application serving ``sources`` and publishing through ``publisher``."""

    def __init__(
        self,
        sources: Sequence[WebhookSource],
        publisher: Publisher,
        secrets: SecretBook,
        settings: ReceiverSettings = ReceiverSettings(),
        known_platforms: KnownPlatforms | None = None,
    ) -> None:
        if not sources:
            raise ConfigError("a receiver needs at least one source")
        self.sources = tuple(sources)
        self.publisher = publisher
        self.codec = publisher.codec
        self.secrets = secrets
        self.settings = settings
        #: The roster: platforms not in it get 404. Without one, the --platform list.
        self.known_platforms: KnownPlatforms = known_platforms or StaticRoster.of(
            settings.platforms
        )
        self.replays = ReplayGuard(settings.replay_window_s)
        #: (source, platform, check): a companion's health (the Kafka bridge), in heartbeats.
        self._watched: list[tuple[str, str, Callable[[], str | None]]] = []
        self.metrics = Metrics()
        self.sender = AckingSender(publisher.producer)
        self.state = _State()
        self._wake = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._beats: asyncio.Task[None] | None = None
        self.port: int | None = None
        for source in self.sources:
            for platform in settings.platforms:
                self.state.health[(source.name, platform)] = _Health()

    # -- lifecycle ---------------------------------------------------------------------
    def warm_up(self) -> None:
        """Look the schema ids up once, so requests never wait for the registry.

        A schema that is not registered raises ContractError here, at
        start, not a 503 on every request; an unreachable registry is only logged (the
        ids are looked up again on the first request).
        """
        types = {t for s in self.sources for t in s.event_types}
        types |= {"grading.dead_letter", "collector.heartbeat"}
        for event_type in sorted(types):
            try:
                self.codec.schema_id(event_type)
            except RegistryError as exc:
                log.warning(
                    "schema registry not reachable at start (%s); will retry per request", exc
                )
                return

    def app(self) -> web.Application:
        # Bodies are streamed by read_capped; client_max_size only guards request.read().
        cap = max(self._cap(s) for s in self.sources)
        app = web.Application(client_max_size=cap * HMAC_DRAIN_FACTOR)
        for source in self.sources:
            handler = self._handler(source)
            app.router.add_post(source.path, handler)
            app.router.add_post(f"/platforms/{{platform}}{source.path}", handler)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> int:
        """Listen and start heartbeats; returns the bound port (useful with port 0)."""
        self.warm_up()
        self._wake = asyncio.Event()
        # keepalive_timeout also bounds a new connection's wait for its first request's
        # headers (aiohttp arms it at connection_made): a 1 byte/s sender is cut there.
        # lingering_time bounds the unread body aiohttp drains after a refusal.
        self._runner = web.AppRunner(
            self.app(),
            access_log=None,
            shutdown_timeout=10,
            keepalive_timeout=self.settings.header_timeout_s,
            lingering_time=1.0,
            max_field_size=8190,
            max_headers=64,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.settings.port
        self._beats = asyncio.create_task(self._heartbeat_loop())
        log.info(
            "receiving %s on http://%s:%s",
            ", ".join(s.name for s in self.sources),
            self.settings.host,
            self.port,
        )
        return self.port

    async def stop(self) -> None:
        """Finish requests in flight, send a last heartbeat, flush the producer."""
        if self._beats is not None:
            self._beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beats
        if self._runner is not None:
            await self._runner.cleanup()
        with contextlib.suppress(DeliveryError, ContractError, RegistryError):
            await self._send_heartbeats()
        # Every event answered 2xx is already acknowledged; what may still be in flight are
        # heartbeats and records of requests answered 503 (their senders retry), so the
        # flush need not wait longer than a request would.
        wait = self.settings.ack_timeout_s
        left = await asyncio.get_running_loop().run_in_executor(None, self.sender.close, wait)
        if left:
            log.warning("%d records unconfirmed at shutdown (answered 503 or heartbeats)", left)

    def watch(self, source: str, platform: str, check: Callable[[], str | None]) -> None:
        """Report ``check()`` (an error, or None) in the heartbeats of (source, platform).

        A companion's thread that died cannot send its own unhealthy heartbeat; the
        receiver's heartbeat of the same collector says it instead.
        """
        self._watched.append((source, platform, check))
        self.state.health.setdefault((source, platform), _Health())

    # -- requests ----------------------------------------------------------------------
    def _handler(self, source: WebhookSource) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            started = time.perf_counter()
            response = await self._handle(source, request)
            self.metrics.requests.labels(source.name, str(response.status)).inc()
            self.metrics.latency.labels(source.name).observe(time.perf_counter() - started)
            return response

        return handle

    def _cap(self, source: WebhookSource) -> int:
        return self.settings.max_body_bytes or source.max_body_bytes

    async def _handle(self, source: WebhookSource, request: web.Request) -> web.Response:
        platform = request.match_info.get("platform") or self.settings.default_platform
        if platform is None:
            return _closing(
                404,
                f"no platform: post to /platforms/<platform_id>{source.path}, or start the "
                "receiver with --platform",
            )
        if not PLATFORM_RE.match(platform):
            return _closing(404, "not a platform id (letters, digits, . _ -)")
        generation = self.known_platforms(platform)
        if generation is None:
            # No state, no heartbeat, no echo of the made-up id in a metric label.
            self.metrics.auth_failures.labels(source.name, "unknown_platform").inc()
            return _closing(404, "no such platform in the roster")
        headers = {k.lower(): v for k, v in request.headers.items()}
        # The platform's own secret at its roster generation: a revoke voids the old one.
        secret = self.secrets.secret(source.name, platform, generation)
        verdict = check_headers(source.auth, secret, headers, platform)
        if isinstance(verdict, AuthFailure):
            return self._unauthorized(source, request, platform, verdict)
        received_ms = int(time.time() * 1000)
        try:
            body = await self._read(source, request, verdict)
        except BodyTimeout as exc:
            return _closing(408, str(exc))
        if isinstance(body, web.Response):
            return body
        if verdict is not None:
            failure = verdict.verify()
            if failure is not None:
                return self._unauthorized(source, request, platform, failure)
            stale = self.replays.check_time(verdict.signed_ts)
            if stale is not None:
                self.metrics.auth_failures.labels(source.name, "replay").inc()
                return _closing(stale.status, stale.message)
        # A delivery is its id, and for a signature over the body alone (the Git hosts'),
        # the signature too: a captured delivery re-sent under a new id is the same bytes.
        ids = [delivery_id(headers)]
        if verdict is not None and verdict.signed_ts is None:
            ids.append(f"signature:{verdict.digest}")
        reserved: list[str] = []
        for delivery in ids:
            replay = self.replays.reserve(source.name, platform, delivery)
            if replay is not None:
                for held in reserved:
                    self.replays.release(source.name, platform, held)
                self.metrics.auth_failures.labels(source.name, "replay").inc()
                log.warning(
                    "%s: %d for %s: replayed delivery", source.name, replay.status, platform
                )
                return _closing(replay.status, replay.message)
            if delivery is not None:
                reserved.append(delivery)
        inbound = Inbound(platform, body.kept, headers, received_ms)
        response = await self._accept(source, inbound, body)
        if response.status >= 500:
            for held in reserved:  # not accepted: the sender's retry must get in
                self.replays.release(source.name, platform, held)
        return response

    async def _read(
        self, source: WebhookSource, request: web.Request, pending: PendingSignature | None
    ) -> Body | web.Response:
        """The body, streamed under the read timeout; an answer when it cannot be taken."""
        cap = self._cap(source)
        drain = cap * HMAC_DRAIN_FACTOR if pending is not None else None
        length = request.content_length
        if drain is not None and length is not None and length > drain:
            return _closing(413, f"the body is {length} bytes; this receiver takes {cap}")
        body = await read_capped(
            request,
            cap,
            self.settings.body_timeout_s,
            drain_to=drain,
            feed=pending.update if pending is not None else None,
        )
        if pending is not None and not body.complete:
            return _closing(413, f"the body is over {drain} bytes; this receiver takes {cap}")
        return body

    def _unauthorized(
        self, source: WebhookSource, request: web.Request, platform: str, failure: AuthFailure
    ) -> web.Response:
        self.metrics.auth_failures.labels(source.name, failure.code).inc()
        log.warning(
            "%s: 401 from %s for %s: %s", source.name, request.remote, platform, failure.message
        )
        extra = {"WWW-Authenticate": "Bearer"} if source.auth.kind == "bearer" else {}
        return _closing(401, failure.message, headers=extra)

    async def _accept(self, source: WebhookSource, inbound: Inbound, body: Body) -> web.Response:
        """An authentic delivery: parse, validate, produce; every failure a dead letter."""
        if body.oversized:
            cap = self._cap(source)
            size = f"{body.total} bytes" if body.complete else f"over {cap} bytes"
            reason = (
                f"the body is {size}; the {source.name} receiver takes at most {cap} "
                f"(truncated: this dead letter keeps its first {len(body.kept)} bytes)"
            )
            response = await self._refuse(source, inbound, reason, "oversized", 413)
            response.force_close()
            return response
        try:
            parsed = source.parse(inbound)
            events, rejected = self._validate(parsed)
        except PayloadError as exc:
            return await self._refuse(source, inbound, str(exc), exc.error_class, 400)
        except Exception as exc:  # a parser bug: keep the payload, tell the sender it was us
            log.exception("%s: parser failed", source.name)
            reason = (
                f"the {source.name} receiver failed on this payload ({type(exc).__name__}: {exc})"
            )
            return await self._refuse(source, inbound, reason, "other", 500)
        platform = inbound.platform_id
        try:
            records = [self._record(e) for e in events]
            records += [
                self._dead_record(source, inbound, r.reason, r.error_class, r.raw) for r in rejected
            ]
        except (RegistryError, ContractError) as exc:
            # Events were valid, so this is the registry (unreachable, or schema missing).
            return self._unavailable(source, platform, f"cannot encode: {exc}")
        except Exception as exc:  # an encoder bug on this payload: keep it, say it was us
            log.exception("%s: encoding failed", source.name)
            reason = f"the {source.name} receiver could not encode this payload ({exc!r})"
            return await self._refuse(source, inbound, reason, "other", 500)
        too_big = [r for r in records if len(r.value) + len(r.key or b"") > _record_max(r)]
        if too_big:
            reason = (
                f"an event of this payload encodes to {len(too_big[0].value)} bytes, over the "
                f"{_record_max(too_big[0])} bytes its topic takes"
            )
            return await self._refuse(source, inbound, reason, "oversized", 413)
        try:
            await self.sender.send(records, self.settings.ack_timeout_s)
        except DeliveryError as exc:
            return self._unavailable(source, platform, str(exc))
        self._count(source, platform, inbound, events, rejected, parsed.ignored)
        return _answer(
            200,
            None,
            accepted=len(events),
            event_ids=[e.event_id for e in events],
            dead_lettered=len(rejected),
            ignored=len(parsed.ignored),
        )

    def _validate(self, parsed: Parsed) -> tuple[list[Event], list[Rejected]]:
        """Events the contract accepts; in a batch a refused event is rejected alone."""
        events: list[Event] = []
        rejected = list(parsed.rejected)
        contract = self.publisher.contract
        for index, event in enumerate(parsed.events):
            try:
                contract.to_datum(event)
            except ContractError as exc:
                if not parsed.items:
                    raise PayloadError(str(exc), "invalid_field") from exc
                rejected.append(Rejected(str(exc), "invalid_field", parsed.items[index]))
                continue
            events.append(event)
        return events, rejected

    def _record(self, event: Event) -> OutRecord:
        return OutRecord(
            self.codec.topic_for(event.type),
            self.codec.key_for(event),
            self.codec.encode(event),
            ((TYPE_HEADER, event.type.encode()),),
        )

    def _dead_record(
        self, source: WebhookSource, inbound: Inbound, reason: str, error_class: str, raw: bytes
    ) -> OutRecord:
        kept = raw[:DLQ_MAX_RAW]
        if len(raw) > len(kept):
            reason += f" (body of {len(raw)} bytes truncated to {len(kept)} in this dead letter)"
        dead = DeadLetter(
            reason=reason,
            error_class=error_class,
            ts_ms=inbound.received_ms,
            source=f"webhook:{source.name}",
            raw_key=inbound.platform_id.encode(),
            raw_value=kept,
            headers=tuple(
                (k, inbound.headers[k].encode()) for k in KEPT_HEADERS if k in inbound.headers
            ),
        )
        topic, key, value = dead_letter_record(dead, self.codec)
        return OutRecord(topic, key, value, ((TYPE_HEADER, b"grading.dead_letter"),))

    async def _refuse(
        self, source: WebhookSource, inbound: Inbound, reason: str, error_class: str, status: int
    ) -> web.Response:
        """Dead-letter the whole payload, then answer; 503 if even the DLQ cannot take it."""
        log.info("%s: %d for %s: %s", source.name, status, inbound.platform_id, reason)
        try:
            record = self._dead_record(source, inbound, reason, error_class, inbound.body)
            await self.sender.send([record], self.settings.ack_timeout_s)
        except (DeliveryError, RegistryError) as exc:
            return self._unavailable(source, inbound.platform_id, f"cannot dead-letter: {exc}")
        except Exception as exc:  # the dead letter itself is bad: refuse, stay healthy
            log.exception("%s: cannot build the dead letter", source.name)
            return _answer(status, f"{reason} (and it could not be dead-lettered: {exc!r})")
        self.metrics.dead_letters.labels(source.name, error_class).inc()
        return _answer(status, reason, dead_lettered=1)

    def _unavailable(self, source: WebhookSource, platform: str, reason: str) -> web.Response:
        log.warning("%s: 503 for %s: %s", source.name, platform, reason)
        self.state.broker_ok = False
        health = self.state.health.setdefault((source.name, platform), _Health())
        health.error = reason
        health.error_kind = delivery_kind(reason)
        self._wake.set()
        return _answer(503, f"not accepted, retry later: {reason}", headers={"Retry-After": "5"})

    def _count(
        self,
        source: WebhookSource,
        platform: str,
        inbound: Inbound,
        events: list[Event],
        rejected: list[Rejected],
        ignored: tuple[str, ...],
    ) -> None:
        self.state.broker_ok = True
        health = self.state.health.setdefault((source.name, platform), _Health())
        health.accepted += len(events)
        for event in events:
            self.metrics.published.labels(source.name, event.type).inc()
            health.last_event_ms = max(health.last_event_ms or 0, event.ts_ms)
        if events:
            self.metrics.lag.labels(source.name).set(
                (inbound.received_ms - events[-1].ts_ms) / 1000
            )
        for item in rejected:
            self.metrics.dead_letters.labels(source.name, item.error_class).inc()
        if ignored:
            self.metrics.ignored.labels(source.name).inc(len(ignored))

    # -- health ------------------------------------------------------------------------
    async def _healthz(self, request: web.Request) -> web.Response:
        return _answer(200, None, state="serving", sources=[s.name for s in self.sources])

    async def _readyz(self, request: web.Request) -> web.Response:
        ok = self.state.broker_ok is not False
        return _answer(
            200 if ok else 503,
            None if ok else "the broker did not acknowledge the last send",
            ready=ok,
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def _heartbeat_loop(self) -> None:
        """A heartbeat round every heartbeat_s, and soon after an error (at most every 5 s)."""
        gap = min(ERROR_BEAT_MIN_S, self.settings.heartbeat_s)
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.heartbeat_s)
            self._wake.clear()
            try:
                await self._send_heartbeats()
            except (DeliveryError, RegistryError, ContractError) as exc:
                self.state.broker_ok = False
                log.warning("heartbeat not acknowledged: %s", exc)
            await asyncio.sleep(gap)

    async def _send_heartbeats(self) -> None:
        """One heartbeat per (source, platform): unhealthy when a request failed since the last."""
        now_ms = int(time.time() * 1000)
        for name, platform, check in self._watched:
            problem = check()
            if problem is not None:
                self.state.health.setdefault((name, platform), _Health()).error = problem
        by_name = {s.name: s for s in self.sources}
        beats = sorted(
            (key, health)
            for key, health in self.state.health.items()
            if self.known_platforms(key[1]) is not None
        )
        if not beats:
            return
        events = [
            self._heartbeat(by_name[name], platform, health, now_ms)
            for (name, platform), health in beats
        ]
        records = [self._record(e) for e in events]
        labels = [(e.data["collector"], str(e.data["healthy"]).lower()) for e in events]
        for _key, health in beats:
            health.error, health.error_kind = None, None
        await self.sender.send(records, self.settings.ack_timeout_s)
        self.state.broker_ok = True
        for name, healthy in labels:
            self.metrics.heartbeats.labels(name, healthy).inc()

    def _heartbeat(
        self, source: WebhookSource, platform: str, health: _Health, now_ms: int
    ) -> Event:
        last = "none yet" if health.last_event_ms is None else ms_to_rfc3339(health.last_event_ms)
        error, kind = health.error, health.error_kind or PROCTOR_SIDE
        if error is None and source.blind is not None:
            error, kind = source.blind(platform, now_ms), PROCTOR_SIDE
        return Event(
            type="collector.heartbeat",
            platform_id=platform,
            event_id=event_id(f"heartbeat:{source.name}", platform, str(now_ms)),
            ts_ms=now_ms,
            data={
                "collector": source.name,
                "source": f"webhook http://{self.settings.host}:{self.port}{source.path}",
                "position": f"{health.accepted} events accepted since start; last event at {last}",
                "healthy": error is None,
                "error": error,
                "error_kind": None if error is None else kind,
            },
        )


def _record_max(record: OutRecord) -> int:
    return DLQ_RECORD_MAX if record.topic.endswith("grading.dlq") else SIGNAL_RECORD_MAX


def _closing(status: int, error: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A refusal that closes the connection, so no unread body is drained on our time."""
    response = _answer(status, error, headers)
    response.force_close()
    return response


def _answer(
    status: int, error: str | None, headers: Mapping[str, str] | None = None, **fields: Any
) -> web.Response:
    body: dict[str, Any] = dict(fields)
    if error is not None:
        body["error"] = error
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=dict(headers or {}),
    )
