"""The reader of JSON Lines recordings for replay: every line checked as the live path does.

Each line is validated by :func:`services.contract.validation.event_from_json_obj`, the
schema and rule checks of the live worker, and refused with the live dead-letter class
(:data:`services.contract.dlq.ERROR_CLASSES`) when it would not have graded: a value that
does not fit its schema (``invalid_field``), a missing field (``missing_required_field``),
an unknown type (``unknown_event_type``), a type the grader does not read
(``wrong_topic``), text that is not a JSON object (``corrupt_bytes``), and an event id
seen before with another body (``conflicting_duplicate``). An exact repeat of an event is
delivered once. A recording holds what was accepted, so replaying one needs no roster and
no keys; signatures (``_signer``/``_signature``) are checked only when a verifier is given.
"""

from __future__ import annotations

import gc
import mmap
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from services.contract.admission import Refusal
from services.contract.schemas import INPUT_TOPICS, Contract, load_contract
from services.contract.validation import event_from_json_obj
from services.core.events import SIGNATURE_KEYS, Event
from services.errors import ContractError, RecordDecodeError

#: checks a line's signature: (event, its ``_signer``/``_signature`` keys) -> None or why not
Verifier = Callable[[Event, Mapping[str, Any]], Refusal | None]


@dataclass(frozen=True, slots=True)
class BadLine:
    """A refused line: where, the dead-letter class and the reason, as the live DLQ says."""

    path: str
    line: int
    reason: str
    error_class: str = "corrupt_bytes"
    event_id: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.error_class}] {self.reason}"


SIGNER_KEY, SIGNATURE_KEY = SIGNATURE_KEYS
NO_SIGNATURE: Mapping[str, Any] = {}

#: every control event has an exam_id; no platform signal has one (contract/events.md)
CONTROL_MARK = b'"exam_id"'


def graded_types(contract: Contract) -> frozenset[str]:
    """The event types the grader reads (those of its input topics)."""
    return frozenset(t for t, s in contract.schemas.items() if s.topic in INPUT_TOPICS)


@dataclass
class Recording:
    """One recording read in one or more passes (each over a share of its lines), with the
    duplicate check shared by all passes: the first line of an event id in file order wins.

    A conflict found in a later pass whose first line was read in an earlier pass (a
    signal line before a control line of the same id) is "late": the earlier pass already
    delivered the line that must be refused; :attr:`late` lists those offsets and the
    replay reads the recording again with them refused up front (``refuse``).
    """

    path: Path
    contract: Contract = field(default_factory=load_contract)
    verify: Verifier | None = None
    refuse: dict[int, BadLine] = field(default_factory=dict)
    refused: list[BadLine] = field(default_factory=list)
    late: dict[int, BadLine] = field(default_factory=dict)
    #: exact repeats of an event (delivered once)
    repeats: int = 0
    #: hash of (platform_id, event_id) -> its first line's ``offset << 32 | line number``
    #: (a third of the memory of the ids themselves; a hit is checked against the line)
    _seen: dict[int, int] = field(default_factory=dict)
    #: the same for ids whose hash another id has (exact keys; practically never used)
    _exact: dict[tuple[str, str], int] = field(default_factory=dict)
    _map: mmap.mmap | None = None
    _fh: IO[bytes] | None = None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def events(self, lines: str = "all") -> Iterator[Event]:
        """The accepted events of a share of the lines, in file order.

        ``lines`` is a cheap pre-filter: "control" reads only lines that mention
        ``"exam_id"`` (where every control event is), "rest" the others, "all" every line.
        """
        want = {"all": None, "control": True, "rest": False}[lines]
        loads = orjson.loads
        build = event_from_json_obj
        contract = self.contract
        types = graded_types(contract)
        verify = self.verify
        seen = self._seen
        refuse = self.refuse
        try:
            f = self.path.open("rb")
        except OSError as exc:
            raise ContractError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        pos = 0
        with f:
            for lineno, raw in enumerate(f, 1):
                start = pos
                pos += len(raw)
                if want is not None and (CONTROL_MARK in raw) is not want:
                    continue
                if refuse and start in refuse:
                    self.refused.append(refuse[start])
                    continue
                try:
                    obj = loads(raw)
                except orjson.JSONDecodeError as exc:
                    if raw.isspace():
                        continue
                    self._bad(lineno, f"not a JSON object: {exc}", "corrupt_bytes")
                    continue
                if type(obj) is not dict:
                    self._bad(
                        lineno,
                        f"a line must be a JSON object, not {type(obj).__name__}",
                        "corrupt_bytes",
                    )
                    continue
                signature = NO_SIGNATURE
                if SIGNER_KEY in obj or SIGNATURE_KEY in obj:
                    signature = {k: obj.pop(k) for k in SIGNATURE_KEYS if k in obj}
                try:
                    ev = build(obj, contract, types)
                except RecordDecodeError as exc:
                    self._bad(lineno, str(exc), exc.error_class)
                    continue
                if verify is not None:
                    refusal = verify(ev, signature)
                    if refusal is not None:
                        self._bad(lineno, refusal.reason, refusal.error_class, ev.event_id)
                        continue
                here = start << 32 | lineno
                first = seen.setdefault(hash((ev.platform_id, ev.event_id)), here)
                if first != here and not self._first_of(ev, raw, first, lineno, start):
                    continue
                yield ev

    def _first_of(self, ev: Event, raw: bytes, seen: int, lineno: int, start: int) -> bool:
        """Whether a line whose event id was seen before is to be delivered (never an
        exact repeat; a conflict refuses the later line of the two in file order).
        ``seen`` is the first line's offset and number, packed as ``offset << 32 | line``."""
        here = start << 32 | lineno
        ids = (ev.platform_id, ev.event_id)
        index: dict[Any, int] = self._seen
        key: Any = hash(ids)
        before = self._line_at(seen >> 32)
        if not self._same_ids(before, ev):
            # two event ids share a hash: such ids are kept by their exact value
            index, key = self._exact, ids
            seen = index.setdefault(key, here)
            if seen == here:
                return True
            before = self._line_at(seen >> 32)
        first, first_no = seen >> 32, seen & 0xFFFFFFFF
        if before == raw or self._same_event(before, ev):
            self.repeats += 1
            return False
        if first < start:
            self._bad(
                lineno,
                f"event id {ev.event_id!r} was first seen on line {first_no} with another "
                "body; an event id names one event",
                "conflicting_duplicate",
                ev.event_id,
            )
            return False
        self.late[first] = BadLine(
            str(self.path),
            first_no,
            f"event id {ev.event_id!r} was first seen on line {lineno} with another body; "
            "an event id names one event",
            "conflicting_duplicate",
            ev.event_id,
        )
        index[key] = here
        return True

    @staticmethod
    def _same_ids(raw: bytes, ev: Event) -> bool:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return False
        return bool(obj.get("platform_id") == ev.platform_id and obj.get("event_id") == ev.event_id)

    def _same_event(self, raw: bytes, ev: Event) -> bool:
        try:
            obj = orjson.loads(raw)
            for key in SIGNATURE_KEYS:
                obj.pop(key, None)
            return bool(event_from_json_obj(obj, self.contract) == ev)
        except (orjson.JSONDecodeError, RecordDecodeError, AttributeError):
            return False

    def _line_at(self, offset: int) -> bytes:
        if self._map is None:
            self._fh = self.path.open("rb")
            self._map = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        end = self._map.find(b"\n", offset)
        return self._map[offset : (len(self._map) if end < 0 else end + 1)]

    def _bad(self, lineno: int, reason: str, error_class: str, event_id: str | None = None) -> None:
        self.refused.append(BadLine(str(self.path), lineno, reason, error_class, event_id))


def iter_events(
    path: Path, bad: list[BadLine] | None = None, *, lines: str = "all"
) -> Iterator[Event]:
    """The accepted events of a recording in file order (see :class:`Recording`).

    With ``bad`` given, refused lines are recorded there and skipped; without it, the
    first refused line raises :class:`ContractError` naming the file, the line and why.
    """
    rec = Recording(path)
    try:
        for ev in rec.events(lines):
            if rec.refused and bad is None:
                break
            yield ev
        if rec.refused and bad is None:
            b = rec.refused[0]
            raise ContractError(f"{b} (each line must be one event in the contract's JSON form)")
        if bad is not None:
            bad += rec.refused
    finally:
        rec.close()


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a recording is loaded.

    Parsing creates millions of small containers and no cycles; the collector would
    rescan them over and over (it more than doubles the load time of a large recording).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def recordings(paths: list[Path]) -> list[Path]:
    """Expand folders into the *.jsonl files inside them (sorted); files stay as given."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(p.rglob("*.jsonl"))
        else:
            out.append(p)
    return out


def count_by_class(bad: list[BadLine]) -> dict[str, int]:
    """Refused lines per dead-letter class, most frequent first."""
    counts: dict[str, int] = {}
    for b in bad:
        counts[b.error_class] = counts.get(b.error_class, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
