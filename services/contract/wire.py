"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, the Avro body.

Encoding validates the event, looks its subject's schema id up once (then caches it) and
writes the body with fastavro against the contract's schema. Decoding reads the id,
fetches the writer's schema once per id, and reads the body with the contract's schema
as the reader, so records written with an older (compatible) version decode into today's
fields. Every way a record can be wrong raises :class:`RecordDecodeError` with a precise
reason and the dead-letter class; a registry that cannot be reached raises
:class:`RegistryError` instead, because that is not the record's fault.

Keys are the plain UTF-8 text of the key (``platform_id``; ``exam_id:criterion_id`` on
the states topic), not Avro, so compaction and partitioning see readable keys and any
client can produce them.
"""

from __future__ import annotations

import io
import json
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.read import SchemaResolutionError
from fastavro.schema import to_parsing_canonical_form

from services.contract.compat import read_problems
from services.contract.convert import strip_logical_types
from services.contract.schemas import (
    Contract,
    EventSchema,
    load_contract,
    logical_topic,
    parse_schema_text,
    topic_name,
)
from services.contract.validation import check_decoded
from services.core.events import Event, SourcePosition
from services.errors import ContractError, RecordDecodeError, RegistryError

MAGIC = 0
HEADER = struct.Struct(">bI")
#: How long an unknown schema id is remembered before the registry is asked again.
NEGATIVE_TTL_S = 30.0
_STRUCTURAL = frozenset({"missing_field", "type_mismatch", "name_mismatch"})


@dataclass(frozen=True, slots=True)
class _Reader:
    """How to read records of one schema id (computed once per id)."""

    schema_id: int
    event: EventSchema
    writer: Any
    reader: Any  # None when writer and reader are the same schema: no resolution needed


def registry_client(
    url: str,
    *,
    timeout_s: float = 10.0,
    max_retries: int = 3,
    basic_auth_user_info: str | None = None,
) -> SchemaRegistryClient:
    """A schema registry client for ``url`` (``mock://...`` gives the client's in-memory one).

    ``basic_auth_user_info`` is ``user:password``; callers read it from the environment.
    """
    conf: dict[str, Any] = {"url": url}
    if not url.startswith("mock://"):
        conf.update({"timeout": timeout_s, "max.retries": max_retries})
        if basic_auth_user_info:
            conf["basic.auth.user.info"] = basic_auth_user_info
    return SchemaRegistryClient.new_client(conf)


def _is_not_found(exc: SchemaRegistryError) -> bool:
    return exc.http_status_code == 404


class WireCodec:
    """Encode events to and decode them from the wire format, with schema ids cached.

    ``topic_prefix`` maps every contract topic to ``<prefix><topic>`` (and subjects with
    it), so tests and tenants can use their own topics with the same contract.
    """

    def __init__(
        self,
        registry: SchemaRegistryClient,
        contract: Contract | None = None,
        *,
        topic_prefix: str = "",
        auto_register: bool = False,
    ) -> None:
        self.registry = registry
        self.contract = contract or load_contract()
        self.prefix = topic_prefix
        self.auto_register = auto_register
        self._ids: dict[str, int] = {}
        self._readers: dict[int, _Reader | RecordDecodeError] = {}
        self._unknown: dict[int, float] = {}
        self._lock = threading.Lock()

    # -- names -------------------------------------------------------------------------
    def topic_for(self, event_type: str) -> str:
        """The broker topic an event type is produced to."""
        schema = self.contract.schema(event_type)
        if schema.topic is None:
            raise ContractError(f"{event_type} is not carried on a topic (it is a table row)")
        return topic_name(schema.topic, self.prefix)

    @staticmethod
    def key_for(event: Event) -> bytes:
        """Record key: the platform id (states use exam_id:criterion_id, see key_for_state)."""
        if event.type == "grading.criterion_state":
            return f"{event.data['exam_id']}:{event.data['criterion_id']}".encode()
        return event.platform_id.encode()

    # -- encode ------------------------------------------------------------------------
    def schema_id(self, event_type: str) -> int:
        """The registry id of the contract schema of ``event_type`` under its subject."""
        cached = self._ids.get(event_type)
        if cached is not None:
            return cached
        schema = self.contract.schema(event_type)
        subject = schema.subject(self.prefix)
        candidate = Schema(schema.text, "AVRO")
        sid: int | None
        try:
            if self.auto_register:
                sid = self.registry.register_schema(subject, candidate)
            else:
                sid = self.registry.lookup_schema(subject, candidate).schema_id
        except SchemaRegistryError as exc:
            if _is_not_found(exc):
                raise ContractError(
                    f"the {event_type} schema is not registered under subject {subject!r}; "
                    "run `proctor schemas register` (or check that schemas/ matches the registry)"
                ) from exc
            raise ContractError(
                f"registry refused the {event_type} schema ({subject}): {exc}"
            ) from exc
        except Exception as exc:  # connection errors surface as several library types
            raise RegistryError(
                f"schema registry unreachable while looking up {subject}: {exc}"
            ) from exc
        if sid is None:
            raise ContractError(f"registry returned no id for subject {subject!r}")
        self._ids[event_type] = int(sid)
        return int(sid)

    def encode(self, event: Event) -> bytes:
        """Validate ``event`` and return its wire bytes. Raises ContractError naming the field."""
        return self.encode_datum(event.type, self.contract.to_datum(event))

    def encode_datum(self, event_type: str, datum: Mapping[str, Any]) -> bytes:
        """The wire bytes of a datum already in the schema's plain form (timestamps as
        epoch ms), without the contract's validation: for records a service builds from
        its own typed values at a rate where the round trip through an Event costs (the
        grader's criterion states; a test checks they equal ``encode``'s)."""
        schema = self.contract.schema(event_type)
        buf = io.BytesIO()
        buf.write(HEADER.pack(MAGIC, self.schema_id(event_type)))
        fastavro.schemaless_writer(buf, schema.plain, datum)
        return buf.getvalue()

    # -- decode ------------------------------------------------------------------------
    def needs_registry(self, value: bytes | None) -> bool:
        """Whether decoding ``value`` would ask the registry (its schema id is not cached):
        a caller on an event loop decodes those in a thread, so a slow registry does not
        stall it."""
        if value is None or len(value) < HEADER.size or value[0] != 0:
            return False
        sid = HEADER.unpack_from(value)[1]
        if sid in self._readers:
            return False
        seen = self._unknown.get(sid)
        return seen is None or time.monotonic() - seen >= NEGATIVE_TTL_S

    def decode(self, value: bytes | None, topic: str, partition: int, offset: int) -> Event:
        """Decode one record read from ``topic`` into an Event that knows where it came from.

        Raises RecordDecodeError (a ContractError) with the dead-letter class, or
        RegistryError when the registry cannot be asked.
        """
        if value is None:
            raise RecordDecodeError(
                "record has no value (a tombstone); contract events always carry one",
                "corrupt_bytes",
            )
        if len(value) < HEADER.size:
            raise RecordDecodeError(
                f"record is {len(value)} bytes, shorter than the 5-byte wire header "
                "(magic byte + schema id)",
                "corrupt_bytes",
            )
        magic, sid = HEADER.unpack_from(value)
        if magic != MAGIC:
            raise RecordDecodeError(
                f"record starts with byte 0x{value[0]:02x}, not the magic byte 0: it is not in "
                "the Confluent wire format (was it produced without the Avro serializer?)",
                "corrupt_bytes",
            )
        reader = self._reader(sid)
        logical = logical_topic(topic, self.prefix)
        if reader.event.topic != logical:
            raise RecordDecodeError(
                f"schema id {sid} is {reader.event.type} ({reader.event.fullname}), which belongs "
                f"on topic {topic_name(reader.event.topic or '-', self.prefix)}, not {topic}",
                "wrong_topic",
            )
        body = io.BytesIO(value)
        body.seek(HEADER.size)
        try:
            if reader.reader is None:
                datum = fastavro.schemaless_reader(body, reader.writer, None)
            else:
                datum = fastavro.schemaless_reader(body, reader.writer, reader.reader)
        except SchemaResolutionError as exc:
            raise RecordDecodeError(
                f"schema id {sid} cannot be read as {reader.event.type}: {exc}",
                "incompatible_schema",
            ) from exc
        except Exception as exc:  # fastavro raises EOFError, ValueError, UnicodeDecodeError...
            raise RecordDecodeError(
                f"Avro body of {len(value) - HEADER.size} bytes does not decode with schema id "
                f"{sid} ({reader.event.type}): {type(exc).__name__}: {exc}",
                "corrupt_bytes",
            ) from exc
        rest = len(value) - body.tell()
        if rest:
            raise RecordDecodeError(
                f"{rest} bytes left over after the {reader.event.type} record (schema id {sid}): "
                "the body is corrupt or was written with another schema",
                "corrupt_bytes",
            )
        if not isinstance(datum, Mapping):
            raise RecordDecodeError(f"schema id {sid} did not decode to a record", "corrupt_bytes")
        return self._to_event(reader, datum, SourcePosition(topic, partition, offset))

    def _to_event(self, reader: _Reader, datum: Mapping[str, Any], source: SourcePosition) -> Event:
        declared = datum.get("type")
        if declared != reader.event.type:
            if declared not in self.contract.schemas:
                raise RecordDecodeError(
                    f"field 'type' is {declared!r}, which is not an event type of the contract "
                    f"(the record was written with the {reader.event.type} schema)",
                    "unknown_event_type",
                )
            raise RecordDecodeError(
                f"field 'type' says {declared!r} but the record was written with the "
                f"{reader.event.type} schema (id {reader.schema_id})",
                "invalid_field",
            )
        check_decoded(reader.event.type, datum)
        return self.contract.from_datum(reader.event, datum, source)

    def _reader(self, sid: int) -> _Reader:
        found = self._readers.get(sid)
        if isinstance(found, _Reader):
            return found
        if isinstance(found, RecordDecodeError):
            raise found
        seen = self._unknown.get(sid)
        if seen is not None and time.monotonic() - seen < NEGATIVE_TTL_S:
            raise RecordDecodeError(f"schema id {sid} is not in the registry", "unknown_schema_id")
        with self._lock:
            try:
                registered = self.registry.get_schema(sid)
            except SchemaRegistryError as exc:
                if _is_not_found(exc):
                    self._unknown[sid] = time.monotonic()
                    raise RecordDecodeError(
                        f"schema id {sid} is not in the registry (a corrupt header, or a "
                        "record from another registry)",
                        "unknown_schema_id",
                    ) from exc
                raise RegistryError(f"registry failed to return schema id {sid}: {exc}") from exc
            except Exception as exc:
                raise RegistryError(
                    f"schema registry unreachable fetching id {sid}: {exc}"
                ) from exc
            result = self._build_reader(sid, registered)
            self._readers[sid] = result
        if isinstance(result, RecordDecodeError):
            raise result
        return result

    def _build_reader(self, sid: int, registered: Schema) -> _Reader | RecordDecodeError:
        stype = (registered.schema_type or "AVRO").upper()
        if stype != "AVRO":
            return RecordDecodeError(
                f"schema id {sid} is a {stype} schema, not Avro", "unsupported_schema"
            )
        try:
            writer = parse_schema_text(registered.schema_str or "", f"schema id {sid}")
        except ContractError as exc:
            return RecordDecodeError(str(exc), "unsupported_schema")
        name = writer.get("name") if isinstance(writer, dict) else None
        event = self.contract.by_fullname.get(str(name))
        if event is None:
            return RecordDecodeError(
                f"schema id {sid} is record {name!r}, which is not an event type of the contract",
                "unknown_event_type",
            )
        # Problems that hold for every record fail the whole id; value-dependent ones (an
        # enum symbol or union branch the reader lacks) fail only records that use them.
        problems = [p for p in read_problems(event.parsed, writer) if p.kind in _STRUCTURAL]
        if problems:
            cls = (
                "missing_required_field"
                if problems[0].kind == "missing_field"
                else "incompatible_schema"
            )
            listed = "; ".join(str(p) for p in problems[:3])
            return RecordDecodeError(
                f"records written with schema id {sid} cannot be read as {event.type}: {listed}",
                cls,
            )
        writer_plain = fastavro.parse_schema(
            strip_logical_types(json.loads(registered.schema_str or "")), named_schemas={}
        )
        same = to_parsing_canonical_form(writer) == to_parsing_canonical_form(dict(event.parsed))
        return _Reader(sid, event, writer_plain, None if same else event.plain)
