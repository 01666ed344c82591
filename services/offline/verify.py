"""``proctor replay --verify``: check the signatures a recording carries (docs/trust.md).

A recording keeps a control event's signature as ``_signer``/``_signature`` (base64) beside
it; this checks each against the keyring (``PROCTOR_TRUSTED_KEYS``) with the live worker's
rules: proctor types need a ``proctor`` key, submission types a ``submission`` (or
``proctor``) key. Platform signals are authenticated on the wire by a MAC over the record
bytes, which a recording does not keep, so ``--verify`` has nothing to check for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.contract.admission import Refusal
from services.core.events import Event
from services.offline.reader import Verifier
from services.trust.admission import _PROCTOR_ROLES, _SUBMISSION_ROLES, SIGNALS, SUBMISSION_TYPES
from services.trust.keys import Keyring
from services.trust.signing import verify_json


def roles_for(event_type: str) -> tuple[str, ...] | None:
    """The roles that may sign ``event_type`` (the worker's table); None for a signal."""
    if event_type in SIGNALS:
        return None
    return _SUBMISSION_ROLES if event_type in SUBMISSION_TYPES else _PROCTOR_ROLES


def recording_verifier(keyring: Keyring) -> Verifier:
    """A reader's verifier: a control line is refused (``unauthenticated``/``forbidden``)
    unless it carries a valid signature by a key of a role that may say it."""

    def verify(event: Event, signature: Mapping[str, Any]) -> Refusal | None:
        roles = roles_for(event.type)
        if roles is None:
            return None
        return verify_json(event, signature, keyring, roles)

    return verify


def verifier_from_env(env: Mapping[str, str] | None = None) -> Verifier:
    """The verifier of ``PROCTOR_TRUSTED_KEYS`` (a ConfigError says how to set it)."""
    return recording_verifier(Keyring.from_env(env))
