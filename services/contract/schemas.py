"""The contract's schemas, topics and subjects, in one place.

``schemas/*.avsc`` at the repository root is the source of truth: one file per event type,
named ``<type>.avsc``. A wheel ships the same files as ``services/contract/avsc`` (a link
to ``schemas/`` in the source tree, so the two cannot drift).

Subject naming: several event types share a topic (``platform.flink`` carries
``flink.job`` and ``flink.checkpoint``), so subjects follow Confluent's
TopicRecordNameStrategy, ``<topic>-<record full name>``. Each type then evolves on its
own under BACKWARD compatibility, which stays meaningful (a change to ``flink.job`` is
checked against earlier ``flink.job`` versions only), and adding a new type to a topic is
a new subject rather than a change to a shared union that every consumer must re-read.
A record decoded from a topic is checked to be one of that topic's types, so the
strategy gives up no safety. The transition row (an Iceberg table, no topic) is
registered under its record full name (RecordNameStrategy).

Event data: :class:`~services.core.events.Event` carries its fields in the JSON form
(see :mod:`services.contract.convert`) with every schema default filled in, whether it
was read from a recording or decoded from Kafka.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException

from services.contract.convert import (
    FieldError,
    ToAvro,
    ToJson,
    compile_record_json_owned,
    compile_record_to_avro,
    compile_to_json,
    strip_logical_types,
)
from services.contract.rules import RULES, check_rules
from services.core.events import ENVELOPE_KEYS, Event, SourcePosition
from services.errors import ContractError
from services.settings import environment

SCHEMAS_DIR_ENV = "PROCTOR_SCHEMAS_DIR"
REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
PACKAGED_SCHEMAS = Path(__file__).resolve().parent / "avsc"

DAY_MS = 86_400_000

# ---- topics ----------------------------------------------------------------------------

CONTROL_TOPIC = "exam.control"
STATES_TOPIC = "grading.criterion-states"
DLQ_TOPIC = "grading.dlq"
#: Every topic keyed by platform_id has this many partitions: equal counts (and the same
#: murmur2 partitioner everywhere) keep one platform's events in the same partition number
#: across topics, so an exam's state lives in one partition with no repartition.
PLATFORM_PARTITIONS = 6


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic of the contract: partitions, key and broker configs."""

    name: str
    partitions: int
    key: str
    doc: str
    config: Mapping[str, str] = field(default_factory=dict)


def _retention(days: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}


def _input(days: int) -> dict[str, str]:
    """Configs of a topic the grader reads: the broker stamps every record with its own
    append time, so the skew check (an event dated past its record's timestamp plus the
    allowance is refused) does not rest on the sender's clock."""
    return {**_retention(days), "message.timestamp.type": "LogAppendTime"}


def _signal(name: str, doc: str) -> TopicSpec:
    return TopicSpec(name, PLATFORM_PARTITIONS, "platform_id", doc, _input(30))


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        CONTROL_TOPIC,
        PLATFORM_PARTITIONS,
        "platform_id",
        "Exam control events from the proctor and the candidate; kept long for audits.",
        _input(90),
    ),
    _signal("platform.cdc-offsets", "Offsets of the candidate's CDC topics."),
    _signal("platform.schemas", "Subjects and versions of the candidate's schema registry."),
    _signal("platform.flink", "Flink jobs and checkpoints."),
    _signal("platform.argocd", "Argo CD sync results."),
    _signal("platform.k8s-audit", "Kubernetes API audit events."),
    _signal("platform.iceberg", "Iceberg commits and table properties."),
    _signal("platform.dbt", "dbt invocations and node results."),
    _signal("platform.openlineage", "OpenLineage run events."),
    _signal("platform.superset", "Superset charts and alerts."),
    _signal("platform.trino", "Trino queries and column masks."),
    _signal("platform.observability", "Telemetry pillars found and tools used."),
    _signal("platform.gitops", "Merges to the GitOps repository."),
    _signal("platform.collectors", "Collector heartbeats (blindness makes criteria unknown)."),
    TopicSpec(
        STATES_TOPIC,
        PLATFORM_PARTITIONS,
        "exam_id:criterion_id",
        "Current state of every criterion; compacted so the latest state per key remains.",
        {
            "cleanup.policy": "compact",
            "min.cleanable.dirty.ratio": "0.1",
            "segment.ms": str(DAY_MS // 24),
            "delete.retention.ms": str(DAY_MS),
        },
    ),
    TopicSpec(
        DLQ_TOPIC,
        3,
        "the bad record's own key",
        "Records that could not be decoded or validated, with reason and raw bytes.",
        # A dead letter carries the raw record, so it may be larger than the record was.
        {**_retention(30), "max.message.bytes": str(4 * 1024 * 1024)},
    ),
)
TOPICS_BY_NAME: Mapping[str, TopicSpec] = {t.name: t for t in TOPICS}

#: Event type -> the topic it travels on (None: not on a topic). The one mapping.
TYPE_TOPICS: Mapping[str, str | None] = {
    # exam control
    "exam.started": CONTROL_TOPIC,
    "part.started": CONTROL_TOPIC,
    "part.ended": CONTROL_TOPIC,
    "part.extended": CONTROL_TOPIC,
    "pipeline.declared": CONTROL_TOPIC,
    "fault.injected": CONTROL_TOPIC,
    "row.broken": CONTROL_TOPIC,
    "diagnosis.submitted": CONTROL_TOPIC,
    "artifact.submitted": CONTROL_TOPIC,
    "self_grade.submitted": CONTROL_TOPIC,
    "exam.ended": CONTROL_TOPIC,
    "grade.overridden": CONTROL_TOPIC,
    # platform signals
    "cdc.offsets": "platform.cdc-offsets",
    "schema.registered": "platform.schemas",
    "flink.job": "platform.flink",
    "flink.checkpoint": "platform.flink",
    "argocd.sync": "platform.argocd",
    "k8s.audit": "platform.k8s-audit",
    "iceberg.commit": "platform.iceberg",
    "dbt.run": "platform.dbt",
    "openlineage.run": "platform.openlineage",
    "superset.chart": "platform.superset",
    "superset.alert": "platform.superset",
    "trino.query": "platform.trino",
    "trino.column_mask": "platform.trino",
    "pillar.seen": "platform.observability",
    "tool.used": "platform.observability",
    "gitops.merge": "platform.gitops",
    "collector.heartbeat": "platform.collectors",
    # what the service produces
    "grading.criterion_state": STATES_TOPIC,
    "grading.criterion_transition": None,  # Iceberg table grading.criterion_transitions
    "grading.dead_letter": DLQ_TOPIC,
}

CONTROL_TYPES: tuple[str, ...] = tuple(t for t, tp in TYPE_TOPICS.items() if tp == CONTROL_TOPIC)
SIGNAL_TYPES: tuple[str, ...] = tuple(
    t for t, tp in TYPE_TOPICS.items() if tp is not None and tp.startswith("platform.")
)
#: Topics the grader consumes.
INPUT_TOPICS: tuple[str, ...] = tuple(t.name for t in TOPICS if t.key == "platform_id")


def topic_name(logical: str, prefix: str = "") -> str:
    """The broker topic of a contract topic; a prefix isolates tests or tenants."""
    return f"{prefix}{logical}"


def logical_topic(actual: str, prefix: str = "") -> str | None:
    """The contract topic behind a broker topic name, or None if it is not one of ours."""
    if prefix and not actual.startswith(prefix):
        return None
    name = actual[len(prefix) :]
    return name if name in TOPICS_BY_NAME else None


# ---- schemas ---------------------------------------------------------------------------

_ENVELOPE_TYPES: Mapping[str, Any] = {
    "type": "string",
    "platform_id": "string",
    "event_id": "string",
    "ts": {"type": "long", "logicalType": "timestamp-millis"},
}


@dataclass(frozen=True, slots=True, eq=False)
class EventSchema:
    """One event type's schema and everything derived from it once, at load time."""

    type: str
    fullname: str
    topic: str | None
    path: Path
    #: The schema as JSON text, exactly what is registered in the registry.
    text: str
    raw: Mapping[str, Any]
    #: fastavro-parsed with logical types (for resolution and compatibility checks).
    parsed: Mapping[str, Any]
    #: fastavro-parsed without timestamp logical types: what the wire codec reads and writes.
    plain: Any
    data_to_avro: ToAvro
    data_to_json: ToJson | None
    field_names: tuple[str, ...]
    #: validates and normalises a freshly parsed JSON-form ``data`` in place (see
    #: :func:`~services.contract.convert.compile_record_json_owned`); None for a type whose
    #: rules must see the Avro form because its JSON form differs (timestamps, bytes)
    data_json_owned: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def subject(self, prefix: str = "") -> str:
        """Registry subject (TopicRecordNameStrategy; RecordNameStrategy without a topic)."""
        if self.topic is None:
            return f"{prefix}{self.fullname}"
        return f"{topic_name(self.topic, prefix)}-{self.fullname}"

    @property
    def data_fields(self) -> tuple[str, ...]:
        return tuple(n for n in self.field_names if n not in ENVELOPE_KEYS)


def default_schemas_dir() -> Path:
    """``$PROCTOR_SCHEMAS_DIR``, else the packaged copy, else the repository's ``schemas/``.

    In a source checkout or editable install the packaged copy is a link to ``schemas/``;
    in a wheel it holds the files themselves. The repository path is the fallback for
    checkouts without symlinks.
    """
    env = environment().get(SCHEMAS_DIR_ENV)
    if env:
        return Path(env)
    if PACKAGED_SCHEMAS.is_dir():
        return PACKAGED_SCHEMAS
    return REPO_SCHEMAS


def parse_schema_text(text: str, where: str) -> Any:
    """Parse Avro schema JSON text with fastavro, as a ContractError naming ``where``."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ContractError(f"{where}: not JSON: {exc}") from exc
    try:
        return fastavro.parse_schema(raw, named_schemas={})
    except (SchemaParseException, ValueError, TypeError, KeyError) as exc:
        raise ContractError(f"{where}: not a valid Avro schema: {exc}") from exc


def _load_one(event_type: str, path: Path) -> EventSchema:
    text = path.read_text()
    raw = json.loads(text)
    parsed = parse_schema_text(text, str(path))
    if parsed.get("type") != "record":
        raise ContractError(f"{path}: an event schema must be a record")
    named = dict(parsed.get("__named_schemas", {}))
    fields = {f["name"]: f for f in parsed["fields"]}
    for name, want in _ENVELOPE_TYPES.items():
        got = fields.get(name, {}).get("type")
        if got != want:
            raise ContractError(
                f"{path}: envelope field {name!r} must be {json.dumps(want)}, found {got!r}"
            )
    data_view = {
        **parsed,
        "fields": [f for f in parsed["fields"] if f["name"] not in ENVELOPE_KEYS],
    }
    plain = fastavro.parse_schema(strip_logical_types(raw), named_schemas={})
    to_json = compile_to_json(data_view, named)
    return EventSchema(
        type=event_type,
        fullname=parsed["name"],
        topic=TYPE_TOPICS[event_type],
        path=path,
        text=json.dumps(raw, separators=(",", ":")),
        raw=raw,
        parsed=parsed,
        plain=plain,
        data_to_avro=compile_record_to_avro(data_view, named),
        data_to_json=to_json,
        field_names=tuple(fields),
        data_json_owned=None
        if to_json is not None and event_type in RULES
        else compile_record_json_owned(data_view, named),
    )


class Contract:
    """All event schemas, and the conversions and checks every service shares."""

    def __init__(self, schemas: Iterable[EventSchema], directory: Path) -> None:
        self.directory = directory
        self.schemas: Mapping[str, EventSchema] = {s.type: s for s in schemas}
        self.by_fullname: Mapping[str, EventSchema] = {s.fullname: s for s in self.schemas.values()}

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self.schemas)

    def schema(self, event_type: str) -> EventSchema:
        try:
            return self.schemas[event_type]
        except KeyError:
            raise ContractError(
                f"unknown event type {event_type!r}; the contract has: {', '.join(self.schemas)}"
            ) from None

    def types_on(self, topic: str) -> tuple[str, ...]:
        return tuple(s.type for s in self.schemas.values() if s.topic == topic)

    # -- conversions -------------------------------------------------------------------
    def to_datum(self, event: Event) -> dict[str, Any]:
        """Validate an event and build the Avro datum (plain: timestamps as epoch ms).

        Raises ContractError naming the event and the field that is wrong.
        """
        schema = self.schema(event.type)
        _check_envelope(event)
        try:
            datum: dict[str, Any] = schema.data_to_avro(event.data, "")
            check_rules(event.type, datum)
        except FieldError as exc:
            raise ContractError(f"{_label(event)}: {exc}") from exc
        datum["type"] = event.type
        datum["platform_id"] = event.platform_id
        datum["event_id"] = event.event_id
        datum["ts"] = event.ts_ms
        return datum

    def from_datum(
        self, schema: EventSchema, datum: Mapping[str, Any], source: SourcePosition | None = None
    ) -> Event:
        """Build an Event from a datum read with ``schema`` as reader (plain timestamps)."""
        data = {k: v for k, v in datum.items() if k not in ENVELOPE_KEYS}
        if schema.data_to_json is not None:
            data = schema.data_to_json(data)
        return Event(
            type=datum["type"],
            platform_id=datum["platform_id"],
            event_id=datum["event_id"],
            ts_ms=datum["ts"],
            data=data,
            source=source,
        )

    def validate(self, event: Event) -> Event:
        """The event with its fields checked and normalised (defaults filled, numbers typed)."""
        schema = self.schema(event.type)
        return self.from_datum(schema, self.to_datum(event), event.source)


def _label(event: Event) -> str:
    return f"{event.type} event {event.event_id!r}"


def _check_envelope(event: Event) -> None:
    for name in ("platform_id", "event_id"):
        value = getattr(event, name)
        if not isinstance(value, str) or not value:
            raise ContractError(f"{_label(event)}: field {name!r}: must be a non-empty string")
    ts = event.ts_ms
    if isinstance(ts, bool) or not isinstance(ts, int) or not -(2**63) <= ts < 2**63:
        raise ContractError(f"{_label(event)}: field 'ts': {ts!r} is not epoch milliseconds")


def load_contract(directory: Path | str | None = None) -> Contract:
    """Load and parse every schema of the contract (cached per directory)."""
    return _load(Path(directory) if directory is not None else default_schemas_dir())


@cache
def _load(directory: Path) -> Contract:
    if not directory.is_dir():
        raise ContractError(
            f"schema directory {directory} does not exist; set {SCHEMAS_DIR_ENV} or run "
            "from the repository"
        )
    found = {p.name[: -len(".avsc")]: p for p in directory.glob("*.avsc")}
    missing = sorted(set(TYPE_TOPICS) - set(found))
    if missing:
        raise ContractError(f"{directory}: no schema for {', '.join(missing)} (<type>.avsc)")
    extra = sorted(set(found) - set(TYPE_TOPICS))
    if extra:
        raise ContractError(
            f"{directory}: {', '.join(extra)} not in TYPE_TOPICS of services/contract/schemas.py; "
            "add the type there with its topic"
        )
    schemas = [_load_one(t, found[t]) for t in TYPE_TOPICS]
    names = [s.fullname for s in schemas]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ContractError(f"{directory}: record names used by more than one type: {dupes}")
    return Contract(schemas, directory)
