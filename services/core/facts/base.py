"""What every fact (an incremental, order-insensitive aggregate of signals) looks like.

A *fact* folds the signals of one exam into the little that its criteria need: the
earliest matching event per asset, the three earliest checkpoints, the growth of a
counter. Every fact obeys three laws, which the property tests check against
:meth:`FactSpec.scan` (the same definition applied to the full history at once):

* **order-insensitive**: folding the same events in any order gives the same value
  (only min/max by (ts, event id), unions keyed by natural ids, and prefixes that are
  pure functions of the event set);
* **idempotent**: folding an event twice changes nothing (no counters, no sums outside
  a set keyed by a natural id such as the snapshot id);
* **gated on anchors**: a fact whose meaning depends on an anchor (the part start for
  "growth since the part started", the fault for "after the fault") declares a
  ``gate``; the engine holds its signals back until the anchor is known.

A :class:`FactSpec` is frozen and hashable: criteria that ask for the same aggregate
share one instance per exam.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from services.core.context import ExamContext, Point
from services.core.events import Event


class Fact(ABC):
    """The mutable aggregate of one :class:`FactSpec` in one exam."""

    __slots__ = ()

    @abstractmethod
    def accepts(self, ev: Event) -> bool:
        """Whether the event can matter at all (used before holding it back at a gate)."""

    @abstractmethod
    def fold(self, ev: Event, ctx: ExamContext) -> bool:
        """Add one event; True when the value changed."""

    @abstractmethod
    def dump(self) -> Any:
        """A compact JSON-able form of the value (see state_codec)."""

    @abstractmethod
    def load(self, obj: Any) -> None:
        """Restore what :meth:`dump` wrote."""


class FactSpec(ABC):
    """The definition of a fact: which events, which filter, which key."""

    #: the event types the fact reads
    types: ClassVar[tuple[str, ...]] = ()

    @property
    def gate(self) -> str | None:
        """Anchor that must be known before events are folded (None: fold at once)."""
        return None

    @property
    def event_types(self) -> tuple[str, ...]:
        return self.types

    @abstractmethod
    def make(self) -> Fact:
        """A fresh, empty aggregate."""

    def scan(self, events: Sequence[Event], ctx: ExamContext) -> Fact:
        """The reference value from the whole history (the oracle of the property tests).

        The default folds the events sorted by (ts, event id) once each, after
        de-duplicating by event id, with the gate already open: the definition of the
        fact on an ordered, duplicate-free stream. Specs whose incremental fold is
        subtle override this with a direct, literal computation.
        """
        fact = self.make()
        seen: set[str] = set()
        for ev in sorted(events, key=lambda e: (e.ts_ms, e.event_id)):
            if ev.event_id in seen or ev.type not in self.event_types:
                continue
            seen.add(ev.event_id)
            fact.fold(ev, ctx)
        return fact


def earlier(a: Point | None, b: Point) -> bool:
    """Whether ``b`` is a strictly better (earlier) point than ``a``."""
    return a is None or b < a


def point_list(p: Point) -> list[Any]:
    return [p[0], p[1]]


def to_point(obj: Any) -> Point:
    return (int(obj[0]), str(obj[1]))
