"""Per-platform credentials, all derived from the roster master secret and a generation.

Nothing per platform is stored: the signal key of a platform's collectors, the secrets of
its webhooks and its candidate's submission token are HMAC-SHA256 of the master secret
(``PROCTOR_ROSTER_SECRET``) over a purpose string that names the platform and its roster
generation, so bumping the generation (``proctor roster revoke``) voids them all.

A produced signal carries ``proctor-platform: <platform_id>:<generation>`` and
``proctor-mac``: HMAC-SHA256 with the signal key over ``topic \\0 key \\0 value``.
Verifying costs two HMACs at most (the derived key is cached).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from services.errors import ConfigError
from services.settings import environment

ROSTER_SECRET_ENV = "PROCTOR_ROSTER_SECRET"
#: A single-platform collector's credential: ``<platform_id>:<generation>:<hex key>``.
SIGNAL_KEY_ENV = "PROCTOR_SIGNAL_KEY"

PLATFORM_HEADER = "proctor-platform"
MAC_HEADER = "proctor-mac"
MAC_LEN = 32
MIN_MASTER_LEN = 16
TOKEN_PREFIX = "pst1"


def master_from_env(env: Mapping[str, str] | None = None, *, required: bool = True) -> bytes | None:
    """The roster master secret from ``PROCTOR_ROSTER_SECRET`` (None if absent and optional)."""
    env = environment() if env is None else env
    value = env.get(ROSTER_SECRET_ENV, "").strip()
    if not value:
        if not required:
            return None
        raise ConfigError(
            f"no roster master secret: set {ROSTER_SECRET_ENV} to at least {MIN_MASTER_LEN} "
            "random characters (e.g. `openssl rand -hex 32`); every platform credential is "
            "derived from it"
        )
    if len(value) < MIN_MASTER_LEN:
        raise ConfigError(
            f"{ROSTER_SECRET_ENV} is {len(value)} characters; use at least {MIN_MASTER_LEN} "
            "random ones (e.g. `openssl rand -hex 32`)"
        )
    return value.encode("utf-8")


def derive(master: bytes, purpose: str) -> bytes:
    """HMAC-SHA256(master, purpose): one credential per purpose string."""
    return hmac.new(master, purpose.encode("utf-8"), hashlib.sha256).digest()


@lru_cache(maxsize=65_536)
def signal_key(master: bytes, platform_id: str, generation: int) -> bytes:
    """The signal key of a platform's collectors (``proctor-signal/<platform>/<generation>``)."""
    return derive(master, f"proctor-signal/{platform_id}/{generation}")


def mac(key: bytes, topic: str, record_key: bytes | None, value: bytes) -> bytes:
    """HMAC-SHA256 over ``topic \\0 key \\0 value`` (the actual broker topic name)."""
    h = hmac.new(key, topic.encode("utf-8"), hashlib.sha256)
    h.update(b"\0")
    h.update(record_key or b"")
    h.update(b"\0")
    h.update(value)
    return h.digest()


@dataclass(frozen=True, slots=True)
class SignalKey:
    """A platform's signal key at one generation: what its collectors MAC records with."""

    platform_id: str
    generation: int
    key: bytes

    @classmethod
    def derive(cls, master: bytes, platform_id: str, generation: int) -> SignalKey:
        return cls(platform_id, generation, signal_key(master, platform_id, generation))

    def headers(
        self, topic: str, record_key: bytes | None, value: bytes
    ) -> list[tuple[str, bytes]]:
        """The ``proctor-platform``/``proctor-mac`` headers of a record this platform produces."""
        return [
            (PLATFORM_HEADER, f"{self.platform_id}:{self.generation}".encode()),
            (MAC_HEADER, mac(self.key, topic, record_key, value)),
        ]

    @property
    def token(self) -> str:
        """The text form handed to a collector (``PROCTOR_SIGNAL_KEY``)."""
        return f"{self.platform_id}:{self.generation}:{self.key.hex()}"

    @classmethod
    def parse(cls, token: str, variable: str = SIGNAL_KEY_ENV) -> SignalKey:
        platform_id, generation, key = _split_platform(token.strip(), parts=3)
        try:
            raw = bytes.fromhex(key)
        except ValueError:
            raw = b""
        if platform_id is None or generation is None or len(raw) != 32:
            raise ConfigError(
                f"{variable} is not '<platform_id>:<generation>:<64 hex>'; use the signal key "
                "`proctor roster add` printed for the platform"
            )
        return cls(platform_id, generation, raw)


def _split_platform(text: str, parts: int) -> tuple[str | None, int | None, str]:
    pieces = text.rsplit(":", parts - 1)
    if len(pieces) != parts or not pieces[0]:
        return None, None, ""
    try:
        generation = int(pieces[1])
    except ValueError:
        return None, None, ""
    if generation < 0:
        return None, None, ""
    return pieces[0], generation, pieces[2] if parts == 3 else ""


def parse_platform_header(raw: bytes | None) -> tuple[str, int] | None:
    """``<platform_id>:<generation>`` of a ``proctor-platform`` header, None when malformed."""
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    platform_id, _, gen = text.rpartition(":")
    if not platform_id or not gen.isdigit():
        return None
    return platform_id, int(gen)


def mac_headers_of(
    headers: Sequence[tuple[str, bytes | None]] | None,
) -> tuple[bytes | None, bytes | None]:
    """(platform header, mac) of a record; None where absent."""
    platform = tag = None
    for name, value in headers or ():
        if name == PLATFORM_HEADER and platform is None:
            platform = value
        elif name == MAC_HEADER and tag is None:
            tag = value
    return platform, tag


def check_mac(key: bytes, tag: bytes, topic: str, record_key: bytes | None, value: bytes) -> bool:
    return len(tag) == MAC_LEN and hmac.compare_digest(tag, mac(key, topic, record_key, value))


def signal_key_from_env(env: Mapping[str, str] | None = None) -> SignalKey | None:
    """A single-platform collector's key from ``PROCTOR_SIGNAL_KEY`` (None when unset)."""
    env = environment() if env is None else env
    value = env.get(SIGNAL_KEY_ENV, "").strip()
    return SignalKey.parse(value) if value else None


class SignalKeys:
    """Signal keys for a producer: per platform from the master secret (a multi-platform
    collector process), or the one key of ``PROCTOR_SIGNAL_KEY`` (a single-platform one).

    ``generations`` maps platforms whose generation is not 1 (after a revoke); a
    single-platform key carries its own.
    """

    def __init__(
        self,
        master: bytes | None = None,
        single: SignalKey | None = None,
        generations: Mapping[str, int] | None = None,
    ) -> None:
        if master is None and single is None:
            raise ConfigError(
                f"no signal key: set {ROSTER_SECRET_ENV} (a collector process for many "
                f"platforms) or {SIGNAL_KEY_ENV} (the key `proctor roster add` printed for one)"
            )
        self.master = master
        self.single = single
        self.generations = dict(generations or {})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SignalKeys | None:
        """From the environment; None when neither variable is set."""
        single = signal_key_from_env(env)
        master = master_from_env(env, required=False)
        if single is None and master is None:
            return None
        return cls(master, single)

    def for_platform(self, platform_id: str) -> SignalKey:
        if self.single is not None and (
            self.master is None or self.single.platform_id == platform_id
        ):
            if self.single.platform_id != platform_id:
                raise ConfigError(
                    f"{SIGNAL_KEY_ENV} is the key of {self.single.platform_id!r}; it cannot "
                    f"sign signals of {platform_id!r}"
                )
            return self.single
        assert self.master is not None
        return SignalKey.derive(self.master, platform_id, self.generations.get(platform_id, 1))

    def headers(
        self, platform_id: str, topic: str, record_key: bytes | None, value: bytes
    ) -> list[tuple[str, bytes]]:
        return self.for_platform(platform_id).headers(topic, record_key, value)


# ---- webhook secrets and submission tokens ------------------------------------------------


def webhook_secret(
    master: str | bytes, source: str, platform_id: str, generation: int | None = None
) -> str:
    """A platform's webhook secret for ``source`` (hex, 64 characters).

    Purpose ``proctor-webhook/<source>/<platform_id>/<generation>``; without a generation
    the older ``proctor-webhook/<source>/<platform_id>`` (secrets handed out before the
    roster). The receivers derive it through ``webhook_auth.derive_secret``.
    """
    key = master.encode("utf-8") if isinstance(master, str) else master
    purpose = f"proctor-webhook/{source}/{platform_id}"
    if generation is not None:
        purpose += f"/{generation}"
    return hmac.new(key, purpose.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SubmissionGrant:
    """What a valid submission token allows: submissions for one platform and exam."""

    platform_id: str
    exam_id: str
    generation: int


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")


def _token_mac(master: bytes, platform_id: str, exam_id: str, generation: int) -> bytes:
    return derive(master, f"proctor-submission/{platform_id}/{exam_id}/{generation}")[:20]


def submission_token(master: bytes, platform_id: str, exam_id: str, generation: int) -> str:
    """The candidate's token: ``pst1.<platform>.<exam>.<generation>.<mac>`` (base64url parts)."""
    tag = base64.urlsafe_b64encode(_token_mac(master, platform_id, exam_id, generation))
    return ".".join(
        (
            TOKEN_PREFIX,
            _b64(platform_id),
            _b64(exam_id),
            str(generation),
            tag.decode("ascii").rstrip("="),
        )
    )


def verify_submission_token(master: bytes, token: str) -> SubmissionGrant | None:
    """The grant of a token made with ``master``, None when forged or malformed.

    Stateless: the caller still checks the roster (generation current, not revoked).
    """
    parts = token.strip().split(".")
    if len(parts) != 5 or parts[0] != TOKEN_PREFIX or not parts[3].isdigit():
        return None
    try:
        platform_id, exam_id = _unb64(parts[1]), _unb64(parts[2])
        tag = base64.urlsafe_b64decode(parts[4] + "=" * (-len(parts[4]) % 4))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    generation = int(parts[3])
    if not hmac.compare_digest(tag, _token_mac(master, platform_id, exam_id, generation)):
        return None
    return SubmissionGrant(platform_id, exam_id, generation)
