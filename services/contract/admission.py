"""The admission check between decoding and grading: may this record grade at all?

Decoding says a record is well formed; admission says its sender may say it (see
docs/trust.md). The worker's batch pipeline asks an :class:`Admission` for every decoded
record and dead-letters a refusal with its class and reason; the trust package provides
the real one, tests and recordings may use :class:`AdmitAll`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.core.events import Event


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What the broker says about a record, beside the event decoded from it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes | None]]
    #: the broker's (or producer's create-) timestamp; None where the record has none
    broker_ts_ms: int | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a decoded record may not grade: a dead-letter class and a sentence to act on."""

    error_class: str
    reason: str


class Admission(Protocol):
    def admit(self, event: Event, facts: RecordFacts) -> Refusal | None:
        """None to grade the record, else why not."""
        ...


class AdmitAll:
    """Admits every record: for replaying a recording, which holds only accepted events."""

    def admit(self, event: Event, facts: RecordFacts) -> Refusal | None:
        return None
