"""What every payload parser needs: the inbound request, its result, and strict JSON readers.

Parsers are pure functions from an :class:`Inbound` request to :class:`Parsed` events, so
they are unit tested on recorded payloads without a server or a broker. Every reader here
raises :class:`~services.errors.PayloadError` naming the JSON path that is wrong, which is
the sentence that goes back to the sender (HTTP 400) and into the dead letter.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.core.events import Event
from services.errors import PayloadError

#: Namespace of every collector event id: uuid5(namespace, "<source>:<platform>:<natural id>").
EVENT_ID_NAMESPACE = uuid.UUID("5d0f0c8e-3a52-4a8e-9a7b-2f4c1e6d8b10")

_FRACTION = re.compile(r"\.(\d+)")


@dataclass(frozen=True, slots=True)
class Inbound:
    """One authenticated request: whose platform, the raw body and the headers (lower-case)."""

    platform_id: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    received_ms: int = 0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class Rejected:
    """One item of a batch that cannot become an event (the rest of the batch is accepted)."""

    reason: str
    error_class: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Parsed:
    """The events of one payload, the batch items rejected, and what carried no signal.

    ``items`` holds the raw JSON of the batch item behind each event (same order) for
    batch sources, so an event the contract refuses is dead-lettered alone; it is empty for
    single-payload sources, where a refused event makes the whole payload a 400.
    """

    events: tuple[Event, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    ignored: tuple[str, ...] = ()
    items: tuple[bytes, ...] = ()


def event_id(source: str, platform_id: str, natural_id: str) -> str:
    """Deterministic event id: a sender's retry of the same delivery gets the same id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}:{platform_id}:{natural_id}"))


def load_json(body: bytes, what: str) -> Any:
    """Parse a JSON body; a body that is not UTF-8 JSON is ``corrupt_bytes``."""
    if not body.strip():
        raise PayloadError(f"{what}: the body is empty; expected a JSON document", "corrupt_bytes")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"{what}: the body is not JSON ({exc})", "corrupt_bytes") from exc


def as_object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{path}: expected a JSON object, got {_kind(value)}")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{path}: expected a JSON array, got {_kind(value)}")
    return value


def obj(m: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """A required nested object."""
    if key not in m or m[key] is None:
        raise PayloadError(f"{at_path(path, key)}: missing", "missing_required_field")
    return as_object(m[key], at_path(path, key))


def opt_obj(m: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """An optional nested object ({} when absent or null)."""
    value = m.get(key)
    return {} if value is None else as_object(value, at_path(path, key))


def req_str(m: Mapping[str, Any], key: str, path: str) -> str:
    """A required, non-empty string."""
    value = m.get(key)
    if value is None or value == "":
        raise PayloadError(f"{at_path(path, key)}: missing", "missing_required_field")
    if not isinstance(value, str):
        raise PayloadError(f"{at_path(path, key)}: expected a string, got {_kind(value)}")
    return value


def opt_str(m: Mapping[str, Any], key: str, path: str) -> str | None:
    """An optional string (None when absent, null or empty)."""
    value = m.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{at_path(path, key)}: expected a string, got {_kind(value)}")
    return value


def req_int(m: Mapping[str, Any], key: str, path: str) -> int:
    value = m.get(key)
    if value is None:
        raise PayloadError(f"{at_path(path, key)}: missing", "missing_required_field")
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{at_path(path, key)}: expected an integer, got {_kind(value)}")
    return value


def timestamp_ms(value: Any, path: str) -> int:
    """Epoch ms of an RFC 3339 / ISO 8601 timestamp with an offset.

    Sources send finer precision than the contract keeps (Kubernetes microseconds, Java
    nanoseconds): it is truncated to the millisecond, never rounded up into the future.
    """
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"{path}: expected an RFC 3339 timestamp, got {_kind(value)}")
    text = value.strip()
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PayloadError(f"{path}: {value!r} is not an RFC 3339 timestamp") from exc
    if parsed.tzinfo is None:
        raise PayloadError(f"{path}: {value!r} has no time zone; expected UTC ('Z') or an offset")
    delta = parsed.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def at_path(path: str, key: str) -> str:
    """The JSON path of ``key`` under ``path`` ("" is the document itself)."""
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
