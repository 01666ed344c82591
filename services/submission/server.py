"""The submission endpoint: what a candidate says, signed by the endpoint (docs/trust.md).

A candidate POSTs ``pipeline.declared``, ``diagnosis.submitted``, ``artifact.submitted``
or ``self_grade.submitted`` to ``/v1/submissions/<type>`` with
``Authorization: Bearer <submission token>``. The token is bound to (platform, exam,
generation); the endpoint:

1. checks the token from the headers before reading the body (401), and that its platform
   is in the roster at the token's generation (a revoked token is a 401);
2. streams the body under a read timeout and a size cap (413);
3. takes ``platform_id`` and ``exam_id`` from the token: a body naming another platform or
   exam is a 403 and publishes nothing;
4. stamps its own receive time as ``ts`` and makes the ``event_id`` (uuid5 of the
   platform, exam, type and the client's ``Idempotency-Key`` when sent, so a retry is the
   same event; else a fresh uuid4): whatever the body says of either is ignored;
5. validates the fields against the contract's Avro schema (400 and a dead letter);
6. signs the event with its own Ed25519 key (role ``submission``) and produces it to
   ``exam.control``, answering 201 only after the broker's acknowledgement (503 else).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from services.collectors.webhook import PRODUCER_MAX_BYTES, SIGNAL_RECORD_MAX
from services.collectors.webhook_delivery import AckingSender, OutRecord
from services.collectors.webhook_guard import (
    BodyTimeout,
    KnownPlatforms,
    read_capped,
)
from services.contract.dlq import DeadLetter, dead_letter_record
from services.contract.settings import ClientSettings
from services.core.events import ENVELOPE_KEYS, Event
from services.errors import ContractError, DeliveryError, RegistryError
from services.publisher.publisher import TYPE_HEADER, Publisher
from services.trust.credentials import SubmissionGrant, verify_submission_token
from services.trust.keys import SigningKey
from services.trust.signing import sign_event

log = logging.getLogger("proctor.submission")

#: What a candidate may submit (docs/trust.md); everything else is the proctor's to say.
SUBMISSION_TYPES = (
    "pipeline.declared",
    "diagnosis.submitted",
    "artifact.submitted",
    "self_grade.submitted",
)
#: event ids of submissions sent with an Idempotency-Key.
SUBMISSION_NAMESPACE = uuid.UUID("0b7e3f3c-52a4-4f6e-9d1c-7c9a2e4b5f61")
DEFAULT_PORT = 18096
DEFAULT_MAX_BODY = 512 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class SubmissionSettings:
    """Where the endpoint listens and how long it waits for senders and the broker."""

    host: str = "127.0.0.1"
    port: int = 0
    max_body_bytes: int = DEFAULT_MAX_BODY
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    ack_timeout_s: float = 10.0


class SubmissionServer:
    """The endpoint: verifies tokens with ``master``, signs with ``key``, publishes via ``publisher``."""

    def __init__(
        self,
        publisher: Publisher,
        master: bytes,
        key: SigningKey,
        known_platforms: KnownPlatforms,
        settings: SubmissionSettings = SubmissionSettings(),
        exam_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.codec = publisher.codec
        self.master = master
        self.key = key
        self.known_platforms = known_platforms
        #: The roster's exam of a platform, when known: a token for another exam is void.
        self.exam_of = exam_of
        self.settings = settings
        # Submissions are signed by the endpoint's key, not MACed as a platform's signals.
        self.sender = AckingSender(publisher.producer, signal_keys=None)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.accepted = 0

    @classmethod
    def build(
        cls,
        client: ClientSettings,
        master: bytes,
        key: SigningKey,
        known_platforms: KnownPlatforms,
        settings: SubmissionSettings = SubmissionSettings(),
        exam_of: Callable[[str], str | None] | None = None,
    ) -> SubmissionServer:
        publisher = Publisher(
            client,
            producer_config={"linger.ms": 1, "message.max.bytes": PRODUCER_MAX_BYTES},
        )
        return cls(publisher, master, key, known_platforms, settings, exam_of)

    # -- lifecycle ---------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        app.router.add_post("/v1/submissions/{type}", self._handle)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def start(self) -> int:
        self._runner = web.AppRunner(
            self.app(),
            access_log=None,
            shutdown_timeout=10,
            keepalive_timeout=self.settings.header_timeout_s,
            lingering_time=1.0,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.settings.port
        log.info("submissions on http://%s:%s", self.settings.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        wait = self.settings.ack_timeout_s
        await asyncio.get_running_loop().run_in_executor(None, self.sender.close, wait)

    # -- requests ----------------------------------------------------------------------
    async def _healthz(self, request: web.Request) -> web.Response:
        return _answer(200, None, state="serving", accepted=self.accepted)

    async def _handle(self, request: web.Request) -> web.Response:
        event_type = request.match_info["type"]
        if event_type not in SUBMISSION_TYPES:
            return _closing(404, f"submissions are one of: {', '.join(SUBMISSION_TYPES)}")
        grant = self._grant(request.headers.get("Authorization", ""))
        if isinstance(grant, str):
            log.warning("submission: 401 from %s: %s", request.remote, grant)
            return _closing(401, grant, {"WWW-Authenticate": "Bearer"})
        received_ms = int(time.time() * 1000)
        try:
            body = await read_capped(
                request, self.settings.max_body_bytes, self.settings.body_timeout_s
            )
        except BodyTimeout as exc:
            return _closing(408, str(exc))
        if body.oversized:
            reason = f"the body is over the {self.settings.max_body_bytes} bytes a submission takes"
            return await self._refuse(grant, body.kept, received_ms, reason, "oversized", 413)
        try:
            doc = json.loads(body.kept)
        except (UnicodeDecodeError, ValueError) as exc:
            reason = f"the body is not JSON ({exc})"
            return await self._refuse(grant, body.kept, received_ms, reason, "corrupt_bytes", 400)
        if not isinstance(doc, dict):
            reason = "the body is not a JSON object of the submission's fields"
            return await self._refuse(grant, body.kept, received_ms, reason, "invalid_field", 400)
        forbidden = _foreign(doc, grant, event_type)
        if forbidden is not None:
            log.warning("submission: 403 for %s: %s", grant.platform_id, forbidden)
            return _answer(403, forbidden)
        idempotency = request.headers.get(IDEMPOTENCY_HEADER, "").strip()[:200] or None
        event = self._event(event_type, grant, doc, received_ms, idempotency)
        try:
            validated = self.publisher.contract.validate(event)
        except ContractError as exc:
            return await self._refuse(grant, body.kept, received_ms, str(exc), "invalid_field", 400)
        try:
            record = self._record(validated)
        except RegistryError as exc:
            return _answer(503, f"not accepted, retry later: {exc}", {"Retry-After": "5"})
        if len(record.value) > SIGNAL_RECORD_MAX:
            reason = (
                f"the submission encodes to {len(record.value)} bytes, over {SIGNAL_RECORD_MAX}"
            )
            return await self._refuse(grant, body.kept, received_ms, reason, "oversized", 413)
        try:
            await self.sender.send([record], self.settings.ack_timeout_s)
        except DeliveryError as exc:
            return _answer(503, f"not accepted, retry later: {exc}", {"Retry-After": "5"})
        self.accepted += 1
        return _answer(
            201,
            None,
            event_id=validated.event_id,
            ts=validated.ts_ms,
            type=validated.type,
            platform_id=validated.platform_id,
            exam_id=grant.exam_id,
        )

    def _grant(self, authorization: str) -> SubmissionGrant | str:
        """The token's grant, or why the request is refused."""
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "no submission token: send 'Authorization: Bearer <token>'"
        grant = verify_submission_token(self.master, token.strip())
        if grant is None:
            return "the submission token is not valid"
        if self.known_platforms(grant.platform_id) != grant.generation:
            return "the submission token was revoked or its platform is not in the roster"
        if self.exam_of is not None and self.exam_of(grant.platform_id) != grant.exam_id:
            return "the submission token is for another exam than the roster's"
        return grant

    def _event(
        self,
        event_type: str,
        grant: SubmissionGrant,
        doc: Mapping[str, Any],
        received_ms: int,
        idempotency: str | None,
    ) -> Event:
        data = {k: v for k, v in doc.items() if k not in ENVELOPE_KEYS and not k.startswith("_")}
        data["exam_id"] = grant.exam_id
        if idempotency is not None:
            name = f"{grant.platform_id}/{grant.exam_id}/{event_type}/{idempotency}"
            event_id = str(uuid.uuid5(SUBMISSION_NAMESPACE, name))
        else:
            event_id = str(uuid.uuid4())
        return Event(event_type, grant.platform_id, event_id, received_ms, data)

    def _record(self, event: Event) -> OutRecord:
        headers = ((TYPE_HEADER, event.type.encode()), *sign_event(event, self.key))
        return OutRecord(
            self.codec.topic_for(event.type),
            self.codec.key_for(event),
            self.codec.encode(event),
            tuple(headers),
        )

    async def _refuse(
        self,
        grant: SubmissionGrant,
        raw: bytes,
        received_ms: int,
        reason: str,
        error_class: str,
        status: int,
    ) -> web.Response:
        """Dead-letter an authentic submission that cannot become an event, then answer."""
        dead = DeadLetter(
            reason=reason,
            error_class=error_class,
            ts_ms=received_ms,
            source="submission",
            raw_key=grant.platform_id.encode(),
            raw_value=raw,
            headers=(),
        )
        try:
            topic, key, value = dead_letter_record(dead, self.codec)
            record = OutRecord(topic, key, value, ((TYPE_HEADER, b"grading.dead_letter"),))
            await self.sender.send([record], self.settings.ack_timeout_s)
        except (DeliveryError, RegistryError) as exc:
            return _answer(503, f"{reason}; and it could not be dead-lettered: {exc}")
        except Exception as exc:  # a dead letter that cannot be built: still a refusal
            log.exception("submission: cannot dead-letter")
            return _answer(status, f"{reason} (not dead-lettered: {exc!r})")
        response = _answer(status, reason, dead_lettered=1)
        if error_class == "oversized":
            response.force_close()
        return response


def _foreign(doc: Mapping[str, Any], grant: SubmissionGrant, event_type: str) -> str | None:
    """Why a body may not be accepted for this token: another platform, exam or type."""
    for field, own in (
        ("platform_id", grant.platform_id),
        ("exam_id", grant.exam_id),
        ("type", event_type),
    ):
        value = doc.get(field)
        if value is not None and value != own:
            return (
                f"this token submits for platform {grant.platform_id!r}, exam "
                f"{grant.exam_id!r} ({event_type}); the body names {field} {value!r}"
            )
    return None


def _closing(status: int, error: str, headers: Mapping[str, str] | None = None) -> web.Response:
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


class BackgroundSubmissionServer:
    """The endpoint on its own loop in a thread (tests)."""

    def __init__(self, server: SubmissionServer) -> None:
        import threading

        self.server = server
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> int:
        self._thread.start()
        port: int = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(60)
        return port

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
