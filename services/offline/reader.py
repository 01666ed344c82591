"""A small, fast reader of JSON Lines recordings for replay.

It checks only the envelope (type, platform_id, event_id, ts) and leaves field
validation to the engine's total readers; ``services.contract.jsonl`` is the full,
Avro-validating reader (the lead may switch replay to it). Errors name the file and line.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from services.core.events import Event, event_from_owned_json_obj
from services.errors import ContractError


@dataclass(frozen=True, slots=True)
class BadLine:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


#: every control event has an exam_id; no platform signal has one (contract/events.md)
CONTROL_MARK = b'"exam_id"'


def iter_events(
    path: Path, bad: list[BadLine] | None = None, *, lines: str = "all"
) -> Iterator[Event]:
    """Events of a recording in file order, read line by line (never all in memory).

    ``lines`` picks a cheap pre-filter: "control" parses only lines that mention
    ``"exam_id"`` (where every control event is), "rest" only the others, "all" every
    line; a replay reads "control" first, then "rest".

    With ``bad`` given, a bad line is recorded there and skipped; without it, the first
    bad line raises :class:`ContractError` naming the file, the line and the problem.
    """
    want = {"all": None, "control": True, "rest": False}[lines]
    loads = orjson.loads
    build = event_from_owned_json_obj
    try:
        f = path.open("rb")
    except OSError as exc:
        raise ContractError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with f:
        for lineno, raw in enumerate(f, 1):
            if want is not None and (CONTROL_MARK in raw) is not want:
                continue
            try:
                obj = loads(raw)
                if type(obj) is not dict:
                    raise ValueError("a line must be a JSON object")
                yield build(obj)
            except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
                if raw.isspace():
                    continue
                reason = str(exc.args[0]) if exc.args else type(exc).__name__
                if bad is None:
                    raise ContractError(
                        f"{path}:{lineno}: {reason} (each line must be one event in the contract's JSON form)"
                    ) from exc
                bad.append(BadLine(str(path), lineno, reason))


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
