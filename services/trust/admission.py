"""The worker's admission check (docs/trust.md): may this decoded record grade?

- proctor-only control types need a valid signature by a ``proctor`` key;
- submission types need one by a ``submission`` (or ``proctor``) key, for a platform in
  the roster that is not revoked and the exam it is enrolled for;
- ``platform.*`` signals and heartbeats need a MAC of the platform they name, at its
  current generation, not revoked;
- every record: event time at most ``max_skew_ms`` past the broker timestamp;
- an artifact over ``max_artifact_bytes`` is ``oversized``; an event id seen before with
  another body is a ``conflicting_duplicate``.

The fast path for a signal is a header scan, one roster lookup and one HMAC (a few µs);
a control event adds an Ed25519 verification (tens of µs; control events are rare).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from services.contract.admission import RecordFacts, Refusal
from services.contract.schemas import CONTROL_TYPES, SIGNAL_TYPES
from services.core.events import Event
from services.errors import ConfigError
from services.settings import environment
from services.trust.credentials import (
    check_mac,
    mac_headers_of,
    master_from_env,
    parse_platform_header,
    signal_key,
)
from services.trust.keys import Keyring
from services.trust.roster import RosterEntry
from services.trust.signing import (
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    canonical_bytes,
    verify_signature,
)

log = logging.getLogger(__name__)

MAX_SKEW_ENV = "PROCTOR_MAX_SKEW_S"
MAX_ARTIFACT_ENV = "PROCTOR_MAX_ARTIFACT_BYTES"
DEFAULT_MAX_SKEW_MS = 120_000
DEFAULT_MAX_ARTIFACT_BYTES = 256 * 1024

SUBMISSION_TYPES: frozenset[str] = frozenset(
    {"pipeline.declared", "diagnosis.submitted", "artifact.submitted", "self_grade.submitted"}
)
#: Everything else on the control topic (and any type added to it later) is the proctor's.
PROCTOR_TYPES: frozenset[str] = frozenset(CONTROL_TYPES) - SUBMISSION_TYPES
SIGNALS: frozenset[str] = frozenset(SIGNAL_TYPES)
_PROCTOR_ROLES = ("proctor",)
_SUBMISSION_ROLES = ("submission", "proctor")


class RosterLookup(Protocol):
    def get(self, platform_id: str) -> RosterEntry | None: ...


@dataclass(frozen=True, slots=True)
class TrustLimits:
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrustLimits:
        env = environment() if env is None else env
        return cls(
            max_skew_ms=round(_number(env, MAX_SKEW_ENV, DEFAULT_MAX_SKEW_MS / 1000) * 1000),
            max_artifact_bytes=int(_number(env, MAX_ARTIFACT_ENV, DEFAULT_MAX_ARTIFACT_BYTES)),
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ConfigError(f"{name}={raw!r} is not a non-negative number")
    return value


def trust_config(env: Mapping[str, str] | None = None) -> tuple[Keyring, bytes, TrustLimits]:
    """(keyring, master secret, limits) from ``PROCTOR_TRUSTED_KEYS``, ``PROCTOR_ROSTER_SECRET``,
    ``PROCTOR_MAX_SKEW_S`` and ``PROCTOR_MAX_ARTIFACT_BYTES``; ConfigError naming what is wrong."""
    master = master_from_env(env)
    assert master is not None
    keyring = Keyring.from_env(env)
    if "proctor" not in keyring.roles():
        raise ConfigError(
            "the trusted keys hold no proctor key; add the line `proctor keys generate "
            "--role proctor` printed"
        )
    return keyring, master, TrustLimits.from_env(env)


class TrustAdmission:
    """The real :class:`~services.contract.admission.Admission` of the worker."""

    def __init__(
        self,
        keyring: Keyring,
        roster: RosterLookup,
        master: bytes,
        limits: TrustLimits | None = None,
        *,
        duplicate_capacity: int = 200_000,
        min_refresh_interval_s: float = 0.5,
    ) -> None:
        self.keyring = keyring
        self.roster = roster
        self.master = master
        self.limits = limits or TrustLimits()
        self._seen: dict[str, bytes] = {}
        self._capacity = duplicate_capacity
        self._min_refresh_s = min_refresh_interval_s
        self._refresh_lock = threading.Lock()
        self._last_refresh_mono = 0.0

    @classmethod
    def from_env(cls, roster: RosterLookup, env: Mapping[str, str] | None = None) -> TrustAdmission:
        """Keyring, master secret and limits from the environment (ConfigError if missing)."""
        keyring, master, limits = trust_config(env)
        return cls(keyring, roster, master, limits)

    # ---- the check -------------------------------------------------------------------

    def admit(self, event: Event, facts: RecordFacts) -> Refusal | None:
        broker_ts = facts.broker_ts_ms
        if broker_ts is not None and event.ts_ms > broker_ts + self.limits.max_skew_ms:
            return Refusal(
                "from_the_future",
                f"{event.type} {event.event_id!r} is dated {event.ts_ms - broker_ts} ms after "
                f"the broker received it (allowance {self.limits.max_skew_ms} ms)",
            )
        typ = event.type
        if typ in SIGNALS:
            return self._signal(event, facts)
        if typ in SUBMISSION_TYPES:
            return self._control(event, facts, _SUBMISSION_ROLES, submission=True)
        return self._control(event, facts, _PROCTOR_ROLES, submission=False)

    def _signal(self, event: Event, facts: RecordFacts) -> Refusal | None:
        raw_platform, tag = mac_headers_of(facts.headers)
        named = parse_platform_header(raw_platform)
        if named is None or tag is None:
            return Refusal(
                "unauthenticated",
                f"{event.type} {event.event_id!r} carries no valid proctor-platform/proctor-mac "
                "headers; collectors MAC every signal with their platform's signal key",
            )
        platform_id, generation = named
        if platform_id != event.platform_id:
            return Refusal(
                "forbidden",
                f"{event.type} {event.event_id!r} for {event.platform_id!r} is MACed as "
                f"platform {platform_id!r}; a platform may only speak for itself",
            )
        entry = self.roster.get(platform_id)
        if entry is None:
            return Refusal(
                "unknown_platform",
                f"{event.type} {event.event_id!r}: platform {platform_id!r} is not in the "
                "roster (`proctor roster add`)",
            )
        if entry.revoked or generation != entry.generation:
            return Refusal(
                "forbidden",
                f"{event.type} {event.event_id!r}: the signal key of {platform_id!r} generation "
                f"{generation} is not current (roster: generation {entry.generation}"
                f"{', revoked' if entry.revoked else ''})",
            )
        key = signal_key(self.master, platform_id, generation)
        if not check_mac(key, tag, facts.topic, facts.key, facts.value):
            return Refusal(
                "unauthenticated",
                f"{event.type} {event.event_id!r}: the MAC does not match {platform_id!r}'s "
                "signal key over this record",
            )
        return None

    def _control(
        self, event: Event, facts: RecordFacts, roles: tuple[str, ...], *, submission: bool
    ) -> Refusal | None:
        if event.type == "artifact.submitted":
            content = event.data.get("content")
            if isinstance(content, str) and len(content) * 4 > self.limits.max_artifact_bytes:
                size = len(content.encode("utf-8"))
                if size > self.limits.max_artifact_bytes:
                    return Refusal(
                        "oversized",
                        f"artifact {event.event_id!r} is {size} bytes; the limit is "
                        f"{self.limits.max_artifact_bytes} ({MAX_ARTIFACT_ENV})",
                    )
        signer = signature = None
        for name, value in facts.headers:
            if name == SIGNER_HEADER and signer is None and value:
                signer = value.decode("utf-8", "replace")
            elif name == SIGNATURE_HEADER and signature is None:
                signature = value
        message = canonical_bytes(event)
        refusal = verify_signature(event, signer, signature, self.keyring, roles, message)
        if refusal is not None:
            return refusal
        entry = self.roster.get(event.platform_id)
        if entry is None:
            return Refusal(
                "unknown_platform",
                f"{event.type} {event.event_id!r}: platform {event.platform_id!r} is not in "
                "the roster (`proctor roster add`)",
            )
        signer_role = self.keyring.get(signer or "")
        if submission and signer_role is not None and signer_role.role != "proctor":
            if entry.revoked:
                return Refusal(
                    "forbidden",
                    f"{event.type} {event.event_id!r}: platform {event.platform_id!r} is revoked",
                )
            exam = event.data.get("exam_id")
            if exam is not None and exam != entry.exam_id:
                return Refusal(
                    "forbidden",
                    f"{event.type} {event.event_id!r} names exam {exam!r}; platform "
                    f"{event.platform_id!r} is enrolled for {entry.exam_id!r}",
                )
        return self._duplicate(event, message)

    def _duplicate(self, event: Event, message: bytes) -> Refusal | None:
        digest = hashlib.blake2b(message, digest_size=16).digest()
        key = f"{event.platform_id}\0{event.event_id}"
        held = self._seen.get(key)
        if held is None:
            if len(self._seen) >= self._capacity:
                self._seen.clear()
            self._seen[key] = digest
            return None
        if held != digest:
            return Refusal(
                "conflicting_duplicate",
                f"{event.type} {event.event_id!r} was seen before with another body; the "
                "first one stands",
            )
        return None

    # ---- the roster ------------------------------------------------------------------

    def roster_may_be_stale(self, facts: RecordFacts, slack_ms: int = 5_000) -> bool:
        """Whether the roster was last read before this record was produced (plus slack)."""
        refreshed_at = getattr(self.roster, "refreshed_at", None)
        if refreshed_at is None or not hasattr(self.roster, "refresh"):
            return False
        if facts.broker_ts_ms is None:
            return True
        return bool(refreshed_at * 1000 < facts.broker_ts_ms + slack_ms)

    def refresh_roster(self) -> None:
        """Blocking and rate-limited: read what is new on the roster topic."""
        refresh = getattr(self.roster, "refresh", None)
        if refresh is None:
            return
        with self._refresh_lock:
            wait = self._last_refresh_mono + self._min_refresh_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_refresh_mono = time.monotonic()
            refresh()

    def admit_after_refresh(self, event: Event, facts: RecordFacts) -> Refusal | None:
        """Blocking: :meth:`admit`, and for an unknown platform refresh the roster once
        (when it may predate the record) and ask again. Run it off the event loop."""
        refusal = self.admit(event, facts)
        if (
            refusal is not None
            and refusal.error_class == "unknown_platform"
            and self.roster_may_be_stale(facts)
        ):
            self.refresh_roster()
            refusal = self.admit(event, facts)
        return refusal
