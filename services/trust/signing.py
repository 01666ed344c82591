"""Signatures of events: who said it, over bytes that survive re-encoding.

A signature covers :func:`canonical_bytes` of the event (its contract JSON form, sorted
keys, no spaces), so the same signature verifies whether the event travelled as Avro on
a topic or as a line of a recording. On a topic it rides in the record headers
``proctor-signer``/``proctor-signature``; in a recording as ``_signer``/``_signature``
(base64).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from services.contract.admission import Refusal
from services.core.events import Event, event_to_json_obj
from services.trust.keys import Keyring, SigningKey

SIGNER_HEADER = "proctor-signer"
SIGNATURE_HEADER = "proctor-signature"
#: The JSON Lines keys of a signature (not event data; services.contract.jsonl skips them).
JSON_SIGNER = "_signer"
JSON_SIGNATURE = "_signature"

SIGNATURE_LEN = 64


def canonical_bytes(event: Event) -> bytes:
    """The signed form of an event: its JSON form, sorted keys, no spaces, UTF-8.

    Sign the validated event (defaults filled, as it decodes from Avro) so the bytes the
    worker rebuilds are the bytes that were signed.
    """
    return json.dumps(
        event_to_json_obj(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def sign_event(event: Event, key: SigningKey) -> list[tuple[str, bytes]]:
    """The record headers that sign ``event`` with ``key``."""
    return [
        (SIGNER_HEADER, key.key_id.encode("utf-8")),
        (SIGNATURE_HEADER, key.sign(canonical_bytes(event))),
    ]


def header_value(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> bytes | None:
    """The first value of header ``name`` (None when absent)."""
    for key, value in headers or ():
        if key == name:
            return value
    return None


def verify_signature(
    event: Event,
    signer: str | None,
    signature: bytes | None,
    keyring: Keyring,
    roles: Collection[str],
    message: bytes | None = None,
) -> Refusal | None:
    """None when ``signature`` by ``signer`` is valid for ``event`` and its role is in ``roles``.

    ``message`` is the canonical bytes when the caller has them already.
    """
    if not signer or signature is None:
        return Refusal(
            "unauthenticated",
            f"{event.type} {event.event_id!r} carries no {SIGNER_HEADER}/{SIGNATURE_HEADER}; "
            "only a signed event may grade",
        )
    key = keyring.get(signer)
    if key is None:
        return Refusal(
            "unauthenticated",
            f"{event.type} {event.event_id!r} is signed by {signer!r}, a key not in the keyring",
        )
    if len(signature) != SIGNATURE_LEN or not key.verify(
        signature, message if message is not None else canonical_bytes(event)
    ):
        return Refusal(
            "unauthenticated",
            f"{event.type} {event.event_id!r}: the signature by {signer!r} does not match the "
            "event (altered, or signed for another event)",
        )
    if key.role not in roles:
        return Refusal(
            "forbidden",
            f"{event.type} {event.event_id!r} is signed by {signer!r} whose role {key.role!r} "
            f"may not say it (needs {' or '.join(sorted(roles))})",
        )
    return None


def verify_event(
    event: Event,
    headers: Sequence[tuple[str, bytes | None]] | None,
    keyring: Keyring,
    roles: Collection[str],
) -> Refusal | None:
    """Verify the signature headers of a record carrying ``event``."""
    raw_signer = header_value(headers, SIGNER_HEADER)
    try:
        signer = raw_signer.decode("utf-8") if raw_signer else None
    except UnicodeDecodeError:
        signer = None
    return verify_signature(event, signer, header_value(headers, SIGNATURE_HEADER), keyring, roles)


# ---- JSON Lines form ---------------------------------------------------------------------


def sign_json_obj(event: Event, key: SigningKey) -> dict[str, Any]:
    """The JSON Lines object of ``event`` with its ``_signer``/``_signature``."""
    obj = event_to_json_obj(event)
    obj[JSON_SIGNER] = key.key_id
    obj[JSON_SIGNATURE] = base64.b64encode(key.sign(canonical_bytes(event))).decode("ascii")
    return obj


def json_signature(obj: Mapping[str, Any]) -> tuple[str | None, bytes | None]:
    """(signer, signature) of a JSON Lines object; (None, None) parts where absent or bad."""
    signer = obj.get(JSON_SIGNER)
    raw = obj.get(JSON_SIGNATURE)
    signature: bytes | None = None
    if isinstance(raw, str):
        try:
            signature = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
    return (signer if isinstance(signer, str) else None), signature


def verify_json(
    event: Event, signature: Mapping[str, Any], keyring: Keyring, roles: Collection[str]
) -> Refusal | None:
    """Verify the ``_signer``/``_signature`` kept beside an event read from a recording."""
    signer, raw = json_signature(signature)
    return verify_signature(event, signer, raw, keyring, roles)
