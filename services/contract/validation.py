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
from services.contract.rules import RULES, Rule
from services.contract.schemas import Contract
from services.core.events import Event
from services.errors import RecordDecodeError

ENVELOPE: tuple[str, ...] = ("type", "platform_id", "event_id", "ts")
MISSING_FIELD = "missing required field"


def field_error_class(exc: FieldError) -> str:
    """The dead-letter class of a field that does not fit its schema."""
    return "missing_required_field" if exc.detail == MISSING_FIELD else "invalid_field"


def check_decoded(event_type: str, datum: Mapping[str, Any], event_id: str | None = None) -> None:
    """What the schema cannot say: ids are non-empty and the contract's rules hold
    (:mod:`services.contract.rules`). ``datum`` holds the fields in Avro form (or the JSON
    form, where the two agree on every field a rule reads)."""
    for name in ("platform_id", "event_id"):
        if name in datum and not datum[name]:
            raise RecordDecodeError(f"field {name!r}: must be a non-empty string", "invalid_field")
    rules = RULES.get(event_type)
    if rules:
        _apply_rules(event_type, rules, datum, event_id)


def _apply_rules(
    event_type: str, rules: tuple[Rule, ...], datum: Mapping[str, Any], event_id: str | None
) -> None:
    try:
        for rule in rules:
            rule(datum)
    except FieldError as exc:
        raise RecordDecodeError(f"{_label(event_type, event_id)}: {exc}", "invalid_field") from exc


def _label(event_type: str, event_id: str | None) -> str:
    return event_type if event_id is None else f"{event_type} event {event_id!r}"


def _envelope_error(obj: dict[str, Any], values: tuple[Any, ...]) -> RecordDecodeError:
    for key, value in zip(ENVELOPE, values, strict=True):
        if value is None:
            return RecordDecodeError(
                f"field {key!r}: missing (every line needs type, platform_id, event_id, ts)",
                "missing_required_field",
            )
        if type(value) is not str or not value:
            return RecordDecodeError(
                f"field {key!r}: must be a non-empty string, got {value!r}", "invalid_field"
            )
    raise AssertionError("the envelope is valid")  # pragma: no cover


def event_from_json_obj(
    obj: dict[str, Any], contract: Contract, types: Collection[str] | None = None
) -> Event:
    """The validated event of one JSON-form object (a line of a recording), or why not.

    Takes ownership of ``obj`` (its envelope keys are popped, its fields normalised in
    place). The event equals ``contract.validate`` of the line (defaults filled, values
    normalised), which is what the same event decodes to from a topic. ``types``, when
    given, are the only types accepted (a recording holds what the grader reads; any
    other type is ``wrong_topic``). Raises RecordDecodeError with the dead-letter class.
    """
    pop = obj.pop
    typ, pid, eid, ts = (
        pop("type", None),
        pop("platform_id", None),
        pop("event_id", None),
        pop("ts", None),
    )
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
        raise _envelope_error(obj, (typ, pid, eid, ts))
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
    owned = schema.data_json_owned
    try:
        datum = schema.data_to_avro(obj, "") if owned is None else owned(obj)
    except FieldError as exc:
        raise RecordDecodeError(f"{_label(typ, eid)}: {exc}", field_error_class(exc)) from exc
    # the owned form is the JSON form; a type has one only where its rules read the same
    # values in both forms (no timestamp or bytes field, or no rule: schemas.py)
    rules = RULES.get(typ)
    if rules:  # the ids are checked above: only the rules of check_decoded are left
        _apply_rules(typ, rules, datum, eid)
    convert = schema.data_to_json
    if owned is None and convert is not None:
        datum = convert(datum)
    return Event(typ, pid, eid, ts_ms, datum)
