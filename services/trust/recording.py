"""Signatures in recordings (JSON Lines): sign a recording's control events, verify them.

A line may carry ``"_signer"`` and ``"_signature"`` (base64 Ed25519 over the event's
canonical bytes, docs/trust.md). Signals have no line signature: their MAC covers the
Kafka record, which a recording does not keep; ``proctor replay --verify`` checks the
control events, which are what decide who passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.contract.jsonl import event_to_line, parse_signed_line
from services.contract.schemas import CONTROL_TYPES, Contract, load_contract
from services.errors import ContractError
from services.trust.admission import SUBMISSION_TYPES
from services.trust.keys import Keyring, SigningKey
from services.trust.signing import JSON_SIGNATURE, JSON_SIGNER, sign_json_obj, verify_json

_CONTROL = frozenset(CONTROL_TYPES)


def roles_for(event_type: str) -> tuple[str, ...]:
    """The roles whose signature may say ``event_type``."""
    return ("submission", "proctor") if event_type in SUBMISSION_TYPES else ("proctor",)


@dataclass
class RecordingCheck:
    """What ``verify_recording`` found: how many control events verified, and the others."""

    verified: int = 0
    refused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise ContractError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with fh:
        for number, text in enumerate(fh, start=1):
            if text.strip():
                yield number, text


def verify_recording(
    path: Path, keyring: Keyring, contract: Contract | None = None
) -> RecordingCheck:
    """Check the signature of every control event of a recording."""
    contract = contract or load_contract()
    check = RecordingCheck()
    for number, text in _lines(path):
        if '"exam_id"' not in text:  # every control event has an exam_id, no signal does
            continue
        try:
            event, signature = parse_signed_line(text, contract)
        except ContractError as exc:
            raise ContractError(f"{path.name} line {number}: {exc}") from exc
        if event.type not in _CONTROL:
            continue
        refusal = verify_json(event, signature, keyring, roles_for(event.type))
        if refusal is None:
            check.verified += 1
        else:
            check.refused.append(f"line {number}: {refusal.error_class}: {refusal.reason}")
    return check


def sign_recording(
    source: Path, target: Path, key: SigningKey, contract: Contract | None = None
) -> int:
    """Write ``source`` to ``target`` with every control event signed by ``key``; returns
    how many were signed. Signals are copied in canonical form, unsigned."""
    contract = contract or load_contract()
    signed = 0
    with target.open("w", encoding="utf-8") as out:
        for number, text in _lines(source):
            try:
                event, _old = parse_signed_line(text, contract)
            except ContractError as exc:
                raise ContractError(f"{source.name} line {number}: {exc}") from exc
            signature = None
            if event.type in _CONTROL:
                obj = sign_json_obj(event, key)
                signature = {JSON_SIGNER: obj[JSON_SIGNER], JSON_SIGNATURE: obj[JSON_SIGNATURE]}
                signed += 1
            out.write(event_to_line(event, contract, signature) + "\n")
    return signed
