"""Ed25519 keys: the proctor's and the submission endpoint's signing keys, and the keyring
of trusted public keys the worker verifies with.

A private key lives in a PEM file readable by its owner only (``PROCTOR_SIGNING_KEY``, with
its id in ``PROCTOR_SIGNING_KEY_ID``); the worker holds only public keys
(``PROCTOR_TRUSTED_KEYS``: a file of ``key_id role base64-public-key`` lines). Keys are never
kept in the repository.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from services.errors import ConfigError
from services.settings import environment

SIGNING_KEY_ENV = "PROCTOR_SIGNING_KEY"
SIGNING_KEY_ID_ENV = "PROCTOR_SIGNING_KEY_ID"
TRUSTED_KEYS_ENV = "PROCTOR_TRUSTED_KEYS"

Role = Literal["proctor", "submission"]
ROLES: tuple[Role, ...] = ("proctor", "submission")

_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private Ed25519 key and the id verifiers know it by."""

    key_id: str
    private: Ed25519PrivateKey

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    @property
    def public_b64(self) -> str:
        return public_key_b64(self.private.public_key())


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key the worker trusts, and the role that says what its signatures may say."""

    key_id: str
    role: Role
    public: Ed25519PublicKey

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def line(self) -> str:
        """Its keyring line: ``key_id role base64-public-key``."""
        return f"{self.key_id} {self.role} {public_key_b64(self.public)}"


def public_key_b64(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def check_key_id(key_id: str) -> str:
    if not _KEY_ID.match(key_id):
        raise ConfigError(
            f"key id {key_id!r} is not valid: use 1-64 letters, digits, '.', '_' or '-'"
        )
    return key_id


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ConfigError(f"role {role!r} is not one of: {', '.join(ROLES)}")
    return role


def generate(role: Role, key_id: str | None = None) -> SigningKey:
    """A new key; its default id is ``<role>-<first 8 hex of the public key's SHA-256>``."""
    check_role(role)
    private = Ed25519PrivateKey.generate()
    if key_id is None:
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        key_id = f"{role}-{hashlib.sha256(raw).hexdigest()[:8]}"
    return SigningKey(check_key_id(key_id), private)


def write_private_key(key: SigningKey, out_dir: str | Path) -> Path:
    """Write ``<key_id>.pem`` (PKCS#8, mode 0600) into ``out_dir``; never overwrites."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key.key_id}.pem"
    pem = key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path} exists already; choose another --out or key id") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return path


def _check_private_mode(path: Path, variable: str) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{variable}={path} is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`"
        )


def load_private_key(path: str | Path, key_id: str, variable: str = SIGNING_KEY_ENV) -> SigningKey:
    """Load a PEM private key whose file only its owner may read."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"{variable}={p} is not a file; point it at a key from `proctor keys generate`"
        )
    _check_private_mode(p, variable)
    try:
        private = serialization.load_pem_private_key(p.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{variable}={p} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError(f"{variable}={p} is not an Ed25519 key; use `proctor keys generate`")
    return SigningKey(check_key_id(key_id), private)


def load_signing_key(env: Mapping[str, str] | None = None) -> SigningKey:
    """The process's signing key from ``PROCTOR_SIGNING_KEY`` and ``PROCTOR_SIGNING_KEY_ID``."""
    env = environment() if env is None else env
    path = env.get(SIGNING_KEY_ENV, "").strip()
    if not path:
        raise ConfigError(
            f"no signing key: set {SIGNING_KEY_ENV} to the PEM file from "
            f"`proctor keys generate --role proctor --out DIR` and {SIGNING_KEY_ID_ENV} to its id"
        )
    key_id = env.get(SIGNING_KEY_ID_ENV, "").strip() or Path(path).stem
    return load_private_key(path, key_id)


def signing_key_from_env(env: Mapping[str, str] | None = None) -> SigningKey | None:
    """The signing key when ``PROCTOR_SIGNING_KEY`` is set, else None (bad settings raise)."""
    env = environment() if env is None else env
    return load_signing_key(env) if env.get(SIGNING_KEY_ENV, "").strip() else None


class Keyring:
    """The public keys the worker trusts, by key id."""

    def __init__(self, keys: Iterable[TrustedKey] = ()) -> None:
        self._keys: dict[str, TrustedKey] = {}
        for key in keys:
            if key.key_id in self._keys:
                raise ConfigError(f"key id {key.key_id!r} appears twice in the keyring")
            self._keys[key.key_id] = key

    def get(self, key_id: str) -> TrustedKey | None:
        return self._keys.get(key_id)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._keys.values())

    def roles(self) -> set[str]:
        return {k.role for k in self._keys.values()}

    @classmethod
    def of(cls, *keys: SigningKey | tuple[SigningKey, Role]) -> Keyring:
        """A keyring of the public halves of signing keys (role from the tuple or the id)."""
        out = []
        for item in keys:
            key, role = item if isinstance(item, tuple) else (item, _role_from_id(item.key_id))
            out.append(TrustedKey(key.key_id, role, key.private.public_key()))
        return cls(out)

    @classmethod
    def parse(cls, text: str, source: str = "keyring") -> Keyring:
        keys = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 3:
                raise ConfigError(
                    f"{source} line {number}: expected 'key_id role base64-public-key', "
                    f"got {len(parts)} fields"
                )
            key_id, role, b64 = parts
            try:
                raw_key = base64.b64decode(b64, validate=True)
                public = Ed25519PublicKey.from_public_bytes(raw_key)
            except ValueError as exc:
                raise ConfigError(
                    f"{source} line {number}: the public key is not a base64 Ed25519 key ({exc})"
                ) from exc
            try:
                keys.append(TrustedKey(check_key_id(key_id), check_role(role), public))
            except ConfigError as exc:
                raise ConfigError(f"{source} line {number}: {exc}") from exc
        return cls(keys)

    @classmethod
    def from_file(cls, path: str | Path, variable: str = TRUSTED_KEYS_ENV) -> Keyring:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{variable}={p} cannot be read ({exc.strerror or exc}); point it at a file of "
                "'key_id role base64-public-key' lines (printed by `proctor keys generate`)"
            ) from exc
        ring = cls.parse(text, f"{variable}={p}")
        if not len(ring):
            raise ConfigError(f"{variable}={p} holds no keys; add the proctor's keyring line")
        return ring

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Keyring:
        env = environment() if env is None else env
        path = env.get(TRUSTED_KEYS_ENV, "").strip()
        if not path:
            raise ConfigError(
                f"no trusted keys: set {TRUSTED_KEYS_ENV} to a file of 'key_id role "
                "base64-public-key' lines (printed by `proctor keys generate`)"
            )
        return cls.from_file(path)


def _role_from_id(key_id: str) -> Role:
    for role in ROLES:
        if key_id.startswith(role):
            return role
    raise ConfigError(f"cannot tell the role of key {key_id!r}; pass (key, role)")
