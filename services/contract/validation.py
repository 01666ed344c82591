"""The checks every record passes before it may grade, live or replayed: one place for both.

The live worker decodes Avro (the schema is enforced by decoding) and then calls
:func:`check_decoded`; a recording's JSON line goes through :func:`event_from_json_obj`,
which validates the JSON form against the same schema with the contract's converter (the
one producers run before anything reaches a topic) and then calls the same
:func:`check_decoded`. Both raise :class:`~services.errors.RecordDecodeError` carrying the
dead-letter class of :data:`services.contract.dlq.ERROR_CLASSES`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from services.contract.convert import FieldError, parse_timestamp_fast
from services.contract.rules import check_rules
from services.contract.schemas import Contract
from services.core.events import Event
from services.errors import RecordDecodeError

ENVELOPE: tuple[str, ...] = ("type", "platform_id", "event_id", "ts")
MISSING_FIELD = "missing required field"


def field_error_class(exc: FieldError) -> str:
    """The dead-letter class of a field that does not fit its schema."""
    return "missing_required_field" if exc.detail == MISSING_FIELD else "invalid_field"


def check_decoded(event_type: str, datum: Mapping[str, Any], label: str | None = None) -> None:
    """What the schema cannot say: ids are non-empty and the contract's rules hold
    (:mod:`services.contract.rules`). ``datum`` holds the fields in Avro form; ``label``
    names the record in the message (default: its type)."""
    for name in ("platform_id", "event_id"):
        if name in datum and not datum[name]:
            raise RecordDecodeError(f"field {name!r}: must be a non-empty string", "invalid_field")
    try:
        check_rules(event_type, datum)
    except FieldError as exc:
        raise RecordDecodeError(f"{label or event_type}: {exc}", "invalid_field") from exc


def event_from_json_obj(
    obj: dict[str, Any], contract: Contract, types: Collection[str] | None = None
) -> Event:
    """The validated event of one JSON-form object (a line of a recording), or why not.

    Takes ownership of ``obj`` (its envelope keys are popped). The event equals
    ``contract.validate`` of the line (defaults filled, values normalised), which is what
    the same event decodes to from a topic. ``types``, when given, are the only types
    accepted (a recording holds what the grader reads; others are ``wrong_topic``).
    """
    envelope = []
    for key in ENVELOPE:
        value = obj.pop(key, None)
        if type(value) is not str or not value:
            if value is None:
                raise RecordDecodeError(
                    f"field {key!r}: missing (every line needs type, platform_id, event_id, ts)",
                    "missing_required_field",
                )
            raise RecordDecodeError(
                f"field {key!r}: must be a non-empty string, got {value!r}", "invalid_field"
            )
        envelope.append(value)
    typ, pid, eid, ts = envelope
    schema = contract.schemas.get(typ)
    if schema is None:
        raise RecordDecodeError(
            f"field 'type': unknown event type {typ!r}; known types: {', '.join(contract.types)}",
            "unknown_event_type",
        )
    if types is not None and typ not in types:
        raise RecordDecodeError(
            f"{typ} is not a type the grader reads (it travels on "
            f"{schema.topic or 'no topic'}); a recording holds only graded input",
            "wrong_topic",
        )
    try:
        ts_ms = parse_timestamp_fast(ts, "ts")
    except FieldError as exc:
        raise RecordDecodeError(str(exc), "invalid_field") from exc
    try:
        datum = schema.data_to_avro(obj, "")
    except FieldError as exc:
        raise RecordDecodeError(f"{typ} event {eid!r}: {exc}", field_error_class(exc)) from exc
    check_decoded(typ, datum, f"{typ} event {eid!r}")
    convert = schema.data_to_json
    return Event(typ, pid, eid, ts_ms, datum if convert is None else convert(datum))
