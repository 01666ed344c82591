"""What a producer adds to every record so the worker admits it (docs/trust.md).

:class:`RecordAuth` signs control events with the process's Ed25519 key and MACs signals
with the platform's signal key. A proctor's producer also enrolls the platforms it
publishes for in the roster when they are missing, and learns each platform's current
generation from it, so a recording or a simulation published by the proctor grades.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

from services.contract.schemas import SIGNAL_TYPES, Contract, load_contract
from services.contract.settings import ClientSettings
from services.core.events import Event
from services.errors import ConfigError
from services.settings import environment
from services.trust.credentials import (
    ROSTER_SECRET_ENV,
    SIGNAL_KEY_ENV,
    SignalKeys,
)
from services.trust.keys import TRUSTED_KEYS_ENV, Keyring, SigningKey, signing_key_from_env
from services.trust.signing import sign_event

log = logging.getLogger(__name__)
_SIGNALS = frozenset(SIGNAL_TYPES)


class RecordAuth:
    """Authentication headers for produced records, from one process's credentials."""

    def __init__(
        self,
        signer: SigningKey | None = None,
        signal_keys: SignalKeys | None = None,
        *,
        keyring: Keyring | None = None,
        contract: Contract | None = None,
    ) -> None:
        self.signer = signer
        self.signal_keys = signal_keys
        self.keyring = keyring
        self.contract = contract or load_contract()
        self._known: set[str] = set()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RecordAuth | None:
        """From ``PROCTOR_SIGNING_KEY``(+``_ID``), ``PROCTOR_ROSTER_SECRET`` or
        ``PROCTOR_SIGNAL_KEY``, and ``PROCTOR_TRUSTED_KEYS``; None when none is set."""
        env = environment() if env is None else env
        signer = signing_key_from_env(env)
        signal_keys = SignalKeys.from_env(env)
        if signer is None and signal_keys is None:
            return None
        keyring = Keyring.from_env(env) if env.get(TRUSTED_KEYS_ENV, "").strip() else None
        return cls(signer, signal_keys, keyring=keyring)

    @property
    def is_proctor(self) -> bool:
        """Whether the signing key is a proctor's (per the keyring, else by its id)."""
        if self.signer is None:
            return False
        if self.keyring is not None:
            trusted = self.keyring.get(self.signer.key_id)
            return trusted is not None and trusted.role == "proctor"
        return self.signer.key_id.startswith("proctor")

    def headers(
        self, event: Event, topic: str, key: bytes | None, value: bytes
    ) -> list[tuple[str, bytes]]:
        """The headers of the record of ``event`` (ConfigError if no credential fits it)."""
        if event.type in _SIGNALS:
            if self.signal_keys is None:
                raise ConfigError(
                    f"cannot MAC the {event.type} signal of {event.platform_id!r}: set "
                    f"{ROSTER_SECRET_ENV} or {SIGNAL_KEY_ENV}"
                )
            return self.signal_keys.headers(event.platform_id, topic, key, value)
        if self.signer is None:
            raise ConfigError(
                f"cannot sign {event.type} {event.event_id!r}: set PROCTOR_SIGNING_KEY and "
                "PROCTOR_SIGNING_KEY_ID (`proctor keys generate`)"
            )
        return sign_event(self.contract.validate(event), self.signer)

    def prepare_platforms(
        self,
        settings: ClientSettings,
        events: Iterable[Event],
        say: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Learn the roster generation of the platforms of ``events``; a proctor enrolls the
        missing ones (returned). Each platform is looked up once per RecordAuth."""
        from services.trust.roster import RosterEntry, publish_entries, read_roster

        platforms: dict[str, tuple[str, str]] = {}
        for event in events:
            if event.platform_id in self._known:
                continue
            exam, candidate = platforms.get(event.platform_id, ("", ""))
            exam = exam or str(event.data.get("exam_id") or "")
            candidate = candidate or str(event.data.get("candidate_id") or "")
            platforms[event.platform_id] = (exam, candidate)
        if not platforms:
            return []
        needs_generations = self.signal_keys is not None and self.signal_keys.master is not None
        keyring = self.keyring or (
            Keyring.of((self.signer, "proctor")) if self.is_proctor and self.signer else None
        )
        if keyring is None or not (self.is_proctor or needs_generations):
            # nothing to enroll, or no keys to read the roster with (generation 1)
            self._known.update(platforms)
            return []
        entries = read_roster(settings, keyring)
        enrolled: list[str] = []
        if self.is_proctor and self.signer is not None:
            enrolled = [p for p in sorted(platforms) if p not in entries]
            if enrolled:
                now = int(time.time() * 1000)
                new = [
                    RosterEntry(
                        p, platforms[p][0] or "unknown", platforms[p][1] or p, issued_ms=now
                    )
                    for p in enrolled
                ]
                publish_entries(settings, new, self.signer)
                entries.update({e.platform_id: e for e in new})
                if say is not None:
                    say(f"enrolled in the roster: {', '.join(enrolled)}")
        if self.signal_keys is not None:
            for platform in platforms:
                entry = entries.get(platform)
                if entry is not None:
                    self.signal_keys.generations[platform] = entry.generation
        self._known.update(platforms)
        return enrolled
