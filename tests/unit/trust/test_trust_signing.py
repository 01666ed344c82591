"""Signatures: every altered field, an unknown signer, a wrong role, and a signature moved
to another event are refused; a signature survives Avro and JSON Lines round trips."""

from __future__ import annotations

import dataclasses
import json

import pytest

from services.contract.dlq import RawRecord, safe_decode
from services.contract.jsonl import event_to_line, parse_signed_line
from services.contract.schemas import Contract
from services.contract.wire import WireCodec
from services.core.events import Event
from services.trust.keys import Keyring, SigningKey, generate
from services.trust.signing import (
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    canonical_bytes,
    sign_event,
    sign_json_obj,
    verify_event,
    verify_json,
)

pytestmark = pytest.mark.unit
PROCTOR = ("proctor",)


def _diag(examples: dict[str, Event]) -> Event:
    return examples["diagnosis.submitted"]


def test_canonical_bytes_sorted_compact(examples: dict[str, Event]) -> None:
    raw = canonical_bytes(_diag(examples))
    obj = json.loads(raw)
    assert list(obj) == sorted(obj)
    assert b", " not in raw and b": " not in raw
    assert obj["ts"].endswith("Z")


def test_valid_signature(
    examples: dict[str, Event], proctor_key: SigningKey, keyring: Keyring
) -> None:
    e = examples["fault.injected"]
    assert verify_event(e, sign_event(e, proctor_key), keyring, PROCTOR) is None


@pytest.mark.parametrize("field", ["type", "platform_id", "event_id", "ts_ms", "data"])
def test_each_tampered_field_is_refused(
    examples: dict[str, Event], proctor_key: SigningKey, keyring: Keyring, field: str
) -> None:
    e = examples["fault.injected"]
    headers = sign_event(e, proctor_key)
    changes = {
        "type": {"type": "row.broken"},
        "platform_id": {"platform_id": "someone-else"},
        "event_id": {"event_id": "forged-1"},
        "ts_ms": {"ts_ms": e.ts_ms - 60_000},
        "data": {"data": {**e.data, "exam_id": "other-exam"}},
    }[field]
    refusal = verify_event(dataclasses.replace(e, **changes), headers, keyring, PROCTOR)
    assert refusal is not None and refusal.error_class == "unauthenticated"
    assert "does not match" in refusal.reason


def test_every_data_field_is_covered(
    examples: dict[str, Event], proctor_key: SigningKey, keyring: Keyring
) -> None:
    e = _diag(examples)
    headers = sign_event(e, proctor_key)
    for name, value in e.data.items():
        other = "x" if value != "x" else "y"
        forged = dataclasses.replace(e, data={**e.data, name: other})
        assert verify_event(forged, headers, keyring, PROCTOR) is not None, name


def test_unsigned_unknown_signer_bad_length(
    examples: dict[str, Event], proctor_key: SigningKey, keyring: Keyring
) -> None:
    e = examples["exam.ended"]
    assert verify_event(e, [], keyring, PROCTOR).error_class == "unauthenticated"  # type: ignore[union-attr]
    stranger = generate("proctor", "stranger")
    r = verify_event(e, sign_event(e, stranger), keyring, PROCTOR)
    assert r is not None and r.error_class == "unauthenticated" and "not in the keyring" in r.reason
    truncated = [(SIGNER_HEADER, proctor_key.key_id.encode()), (SIGNATURE_HEADER, b"\0" * 10)]
    assert verify_event(e, truncated, keyring, PROCTOR) is not None
    # a stranger's key presented under the proctor's id
    impostor = [(SIGNER_HEADER, proctor_key.key_id.encode()), sign_event(e, stranger)[1]]
    assert verify_event(e, impostor, keyring, PROCTOR).error_class == "unauthenticated"  # type: ignore[union-attr]


def test_wrong_role_is_forbidden(
    examples: dict[str, Event], submission_key: SigningKey, keyring: Keyring
) -> None:
    e = examples["fault.injected"]
    r = verify_event(e, sign_event(e, submission_key), keyring, PROCTOR)
    assert r is not None and r.error_class == "forbidden" and "submission" in r.reason


def test_signature_replayed_on_another_platform(
    examples: dict[str, Event], submission_key: SigningKey, keyring: Keyring
) -> None:
    e = _diag(examples)
    headers = sign_event(e, submission_key)
    moved = dataclasses.replace(e, platform_id="basecamp-bob")
    r = verify_event(moved, headers, keyring, ("submission", "proctor"))
    assert r is not None and r.error_class == "unauthenticated"


def test_signature_survives_avro(
    examples: dict[str, Event], codec: WireCodec, proctor_key: SigningKey, keyring: Keyring
) -> None:
    from services.contract.schemas import TYPE_TOPICS

    for e in examples.values():
        if TYPE_TOPICS.get(e.type) is None or e.type.startswith("grading."):
            continue
        headers = sign_event(e, proctor_key)
        value = codec.encode(e)
        topic = codec.topic_for(e.type)
        decoded = safe_decode(RawRecord(topic, 0, 1, b"k", value, tuple(headers)), codec)
        assert isinstance(decoded, Event)
        assert verify_event(decoded, headers, keyring, PROCTOR) is None, e.type


def test_signature_survives_json_lines(
    examples: dict[str, Event], contract: Contract, proctor_key: SigningKey, keyring: Keyring
) -> None:
    e = examples["fault.injected"]
    obj = sign_json_obj(e, proctor_key)
    line = event_to_line(e, contract, {k: obj[k] for k in ("_signer", "_signature")})
    assert '"_signature"' in line
    back, signature = parse_signed_line(line, contract)
    assert "_signer" not in back.data and "_signature" not in back.data
    assert verify_json(back, signature, keyring, PROCTOR) is None
    forged = line.replace(e.platform_id, "basecamp-bob")
    back2, sig2 = parse_signed_line(forged, contract)
    assert verify_json(back2, sig2, keyring, PROCTOR) is not None
    bad = json.loads(line)
    bad["_signature"] = "%%%"
    back3, sig3 = parse_signed_line(json.dumps(bad), contract)
    assert verify_json(back3, sig3, keyring, PROCTOR).error_class == "unauthenticated"  # type: ignore[union-attr]
