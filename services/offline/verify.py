"""Per-line signature checks for a replay: ``replay_file(..., verify=recording_verifier(k))``.

``proctor replay --verify`` gates the whole recording first (services.trust.recording:
nothing grades if one control event fails); this verifier instead refuses each badly
signed line like the live worker (dead letter, the rest graded), for callers that want that.

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
from services.trust.admission import SIGNALS
from services.trust.keys import Keyring
from services.trust.recording import roles_for
from services.trust.signing import verify_json


def recording_verifier(keyring: Keyring) -> Verifier:
    """A reader's verifier: a control line is refused (``unauthenticated``/``forbidden``)
    unless it carries a valid signature by a key of a role that may say it."""

    def verify(event: Event, signature: Mapping[str, Any]) -> Refusal | None:
        if event.type in SIGNALS:
            return None
        return verify_json(event, signature, keyring, roles_for(event.type))

    return verify


def verifier_from_env(env: Mapping[str, str] | None = None) -> Verifier:
    """The verifier of ``PROCTOR_TRUSTED_KEYS`` (a ConfigError says how to set it)."""
    return recording_verifier(Keyring.from_env(env))
