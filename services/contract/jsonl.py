"""The offline form of the contract: JSON Lines, one event per line.

A line is a JSON object with the envelope (``type``, ``platform_id``, ``event_id``, ``ts``
as RFC 3339 UTC with milliseconds) and the type's fields at the top level. Every line is
validated against its Avro schema, so a recording that reads cleanly is one the broker
would accept, and JSON -> Event -> Avro -> Event -> JSON is the identity for lines in the
canonical form this module writes (defaults filled in, fields in schema order).

Errors name the file, the line and the field, e.g.
``exam.jsonl line 12: part.started event 'e-7': field 'part': 4 is not an exam part``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from services.contract.convert import FieldError
from services.contract.schemas import Contract, load_contract
from services.contract.validation import event_from_json_obj
from services.core.events import SIGNATURE_KEYS, Event, event_to_json_obj
from services.errors import ContractError

#: How many bad lines ``read_jsonl`` reports before it stops listing them.
MAX_REPORTED = 20

Source = str | Path | IO[str] | Iterable[str]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FieldError(key, "appears twice on the line; keep one")
        out[key] = value
    return out


def parse_line(text: str, contract: Contract | None = None) -> Event:
    """Parse and validate one JSON Lines record (no line number in the error; see read_*)."""
    return parse_signed_line(text, contract)[0]


def parse_signed_line(text: str, contract: Contract | None = None) -> tuple[Event, dict[str, Any]]:
    """:func:`parse_line` plus the line's signature keys (``_signer``, ``_signature``), if any."""
    contract = contract or load_contract()
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except FieldError as exc:
        raise ContractError(str(exc)) from exc
    except ValueError as exc:
        raise ContractError(f"not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ContractError(f"a line must be a JSON object, not {type(obj).__name__}")
    signature = {k: obj.pop(k) for k in SIGNATURE_KEYS if k in obj}
    return event_from_json_obj(obj, contract), signature


def _lines(source: Source) -> tuple[str, Iterator[str], IO[str] | None]:
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            fh: IO[str] = path.open(encoding="utf-8")
        except OSError as exc:
            raise ContractError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return path.name, iter(fh), fh
    name = getattr(source, "name", "<input>")
    return (name if isinstance(name, str) else "<input>"), iter(source), None


def iter_jsonl(source: Source, contract: Contract | None = None) -> Iterator[Event]:
    """Stream events from a recording, failing at the first bad line (for large files)."""
    contract = contract or load_contract()
    name, lines, fh = _lines(source)
    try:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                yield parse_line(text, contract)
            except ContractError as exc:
                raise ContractError(f"{name} line {number}: {exc}") from exc
            except UnicodeDecodeError as exc:
                raise ContractError(f"{name} line {number}: not UTF-8 text: {exc}") from exc
    finally:
        if fh is not None:
            fh.close()


def read_jsonl(source: Source, contract: Contract | None = None) -> list[Event]:
    """Read a whole recording, reporting every bad line (up to MAX_REPORTED) in one error.

    Used before publishing: nothing is sent unless the whole file is valid.
    """
    contract = contract or load_contract()
    name, lines, fh = _lines(source)
    events: list[Event] = []
    problems: list[str] = []
    bad = 0
    try:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                events.append(parse_line(text, contract))
            except ContractError as exc:
                bad += 1
                if len(problems) < MAX_REPORTED:
                    problems.append(f"{name} line {number}: {exc}")
    except UnicodeDecodeError as exc:
        bad += 1
        problems.append(f"{name}: not UTF-8 text: {exc}")
    finally:
        if fh is not None:
            fh.close()
    if problems:
        more = f"\n... and {bad - len(problems)} more bad lines" if bad > len(problems) else ""
        raise ContractError("\n".join(problems) + more)
    return events


def event_to_line(
    event: Event, contract: Contract | None = None, signature: dict[str, Any] | None = None
) -> str:
    """The canonical JSON Lines text of an event (validated; no trailing newline).

    ``signature`` (``_signer``/``_signature``) is appended after the event's fields.
    """
    contract = contract or load_contract()
    normalised = contract.validate(event)
    obj = event_to_json_obj(normalised)
    if signature:
        obj.update({k: signature[k] for k in SIGNATURE_KEYS if k in signature})
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(
    events: Iterable[Event], target: str | Path | IO[str], contract: Contract | None = None
) -> int:
    """Write events as a recording; returns how many were written. Validates each one."""
    contract = contract or load_contract()
    count = 0
    if isinstance(target, str | Path):
        with Path(target).open("w", encoding="utf-8") as fh:
            return write_jsonl(events, fh, contract)
    for event in events:
        target.write(event_to_line(event, contract) + "\n")
        count += 1
    return count
