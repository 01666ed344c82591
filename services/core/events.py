"""The in-memory form of every contract event, shared by the engine and every driver.

One generic, frozen event type rather than a class per contract type: the contract layer
(``services.contract``) validates each event against its Avro schema before it gets here,
so the engine can read ``event.data`` by field name without paying for a second
validation on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: JSON Lines keys that are envelope fields, not event data.
ENVELOPE_KEYS: frozenset[str] = frozenset({"type", "platform_id", "event_id", "ts"})
#: JSON Lines keys that carry a line's signature (docs/trust.md): never event data.
SIGNATURE_KEYS: tuple[str, str] = ("_signer", "_signature")


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where a record was read from, kept as evidence next to its event id."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class Event:
    """One contract event: envelope plus the type's own fields.

    ``ts_ms`` is event time in epoch milliseconds (UTC); grading never looks at arrival time.
    """

    type: str
    platform_id: str
    event_id: str
    ts_ms: int
    data: Mapping[str, Any] = field(default_factory=dict)
    source: SourcePosition | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


def ms_to_rfc3339(ts_ms: int) -> str:
    """Format epoch milliseconds as the contract's RFC 3339 form, e.g. 2026-11-27T09:00:00.000Z."""
    dt = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def rfc3339_to_ms(text: str) -> int:
    """Parse an RFC 3339 timestamp (``Z`` or an offset) into epoch milliseconds (UTC)."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone; use UTC with a trailing 'Z'")
    return round(dt.timestamp() * 1000)


_SECOND_BASE: dict[str, int] = {}


def fast_rfc3339_to_ms(text: str) -> int:
    """:func:`rfc3339_to_ms` with a fast path for the canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    Recordings carry millions of timestamps that share their second; the epoch of each
    second is computed once and cached (bounded: cleared past 200,000 entries).
    """
    if len(text) == 24 and text[23] == "Z" and text[19] == ".":
        ms = text[20:23]
        if ms.isascii() and ms.isdigit():
            head = text[:19]
            base = _SECOND_BASE.get(head)
            if base is None:
                if len(_SECOND_BASE) > 200_000:
                    _SECOND_BASE.clear()
                base = _SECOND_BASE[head] = rfc3339_to_ms(head + ".000Z")
            return base + int(ms)
    return rfc3339_to_ms(text)


def event_from_owned_json_obj(obj: dict[str, Any]) -> Event:
    """:func:`event_from_json_obj` for a dict the caller hands over (it is reused as ``data``).

    The fast path of replay: no copy of the fields, the envelope keys are popped.
    """
    typ = obj.pop("type", None)
    pid = obj.pop("platform_id", None)
    eid = obj.pop("event_id", None)
    ts = obj.pop("ts", None)
    if "_signature" in obj or "_signer" in obj:
        obj.pop("_signature", None)
        obj.pop("_signer", None)
    if not (
        type(typ) is str
        and typ
        and type(pid) is str
        and pid
        and type(eid) is str
        and eid
        and type(ts) is str
        and ts
    ):
        for key, v in (("type", typ), ("platform_id", pid), ("event_id", eid), ("ts", ts)):
            if v is None:
                raise KeyError(f"missing envelope field {key!r}")
            if not isinstance(v, str) or not v:
                raise ValueError(f"envelope field {key!r} must be a non-empty string")
    return Event(typ, pid, eid, fast_rfc3339_to_ms(ts), obj)


def event_from_json_obj(obj: Mapping[str, Any]) -> Event:
    """Build an :class:`Event` from the contract's JSON Lines form (no schema validation).

    Raises ``KeyError``/``ValueError`` naming the envelope field that is missing or bad;
    ``services.contract`` wraps these with the line number and validates the fields.
    """
    for key in ("type", "platform_id", "event_id", "ts"):
        if key not in obj:
            raise KeyError(f"missing envelope field {key!r}")
        if not isinstance(obj[key], str) or not obj[key]:
            raise ValueError(f"envelope field {key!r} must be a non-empty string")
    data = {k: v for k, v in obj.items() if k not in ENVELOPE_KEYS and k not in SIGNATURE_KEYS}
    return Event(
        type=obj["type"],
        platform_id=obj["platform_id"],
        event_id=obj["event_id"],
        ts_ms=rfc3339_to_ms(obj["ts"]),
        data=data,
    )


def event_to_json_obj(event: Event) -> dict[str, Any]:
    """The contract's JSON Lines form of an event: envelope first, then its fields."""
    out: dict[str, Any] = {
        "type": event.type,
        "platform_id": event.platform_id,
        "event_id": event.event_id,
        "ts": ms_to_rfc3339(event.ts_ms),
    }
    out.update(event.data)
    return out
