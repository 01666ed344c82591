"""Who may post to a receiver: a bearer token or an HMAC-SHA256 signature of the body.

Secrets come only from the environment: ``PROCTOR_WEBHOOK_SECRET_<SOURCE>`` (the source
name upper-cased, ``-`` as ``_``), else the shared ``PROCTOR_WEBHOOK_SECRET``. With
per-platform secrets the environment holds a master secret and each platform's secret is
derived from it (HMAC-SHA256 of the source and platform id), so one candidate's token
cannot post signals for another candidate's platform; ``--print-secret PLATFORM`` shows
the secret to hand to that platform.

Comparisons are constant-time, and every refusal says which header was wrong without
echoing what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from services.errors import ConfigError
from services.trust.credentials import webhook_secret

SHARED_SECRET_ENV = "PROCTOR_WEBHOOK_SECRET"
#: Shortest secret accepted: a guessable token is no authentication.
MIN_SECRET_LEN = 16


@dataclass(frozen=True, slots=True)
class AuthScheme:
    """How a source's sender authenticates.

    ``bearer``: ``Authorization: Bearer <secret>`` (Argo CD webhook headers, the API
    server's kubeconfig token, OpenLineage's api_key, Trino's connect-http-headers).
    ``hmac-sha256``: a signature header over the raw body; ``signatures`` lists
    (header, prefix) pairs in order of preference, e.g. GitHub's
    ``X-Hub-Signature-256: sha256=<hex>`` and Gitea's bare-hex ``X-Gitea-Signature``.
    """

    kind: Literal["bearer", "hmac-sha256"]
    signatures: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request was refused: a short code (a metric label) and a sentence."""

    code: str
    message: str


def secret_env(source: str) -> str:
    """The environment variable of a source's secret, e.g. PROCTOR_WEBHOOK_SECRET_K8S_AUDIT."""
    return f"{SHARED_SECRET_ENV}_{source.upper().replace('-', '_')}"


def derive_secret(master: str, source: str, platform_id: str, generation: int | None = None) -> str:
    """A platform's own secret, derived from the master secret (hex, 64 characters).

    With the platform's roster ``generation`` (docs/trust.md) a revoke voids the secret;
    without it, the secret handed out before the roster existed.
    """
    return webhook_secret(master, source, platform_id, generation)


@dataclass(frozen=True, slots=True)
class SecretBook:
    """The master secret of each source and whether platforms get derived secrets."""

    masters: Mapping[str, str]
    per_platform: bool = False

    @classmethod
    def from_env(
        cls,
        sources: list[str],
        per_platform: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> SecretBook:
        """Read every source's secret; a missing or short secret is a ConfigError naming it."""
        env = os.environ if env is None else env
        masters: dict[str, str] = {}
        for source in sources:
            name = secret_env(source)
            value = env.get(name) or env.get(SHARED_SECRET_ENV)
            if not value:
                raise ConfigError(
                    f"no secret for the {source} receiver: set {name} (or {SHARED_SECRET_ENV} "
                    "for every receiver); a receiver never runs without authentication"
                )
            if len(value) < MIN_SECRET_LEN:
                raise ConfigError(
                    f"the secret in {name if env.get(name) else SHARED_SECRET_ENV} is "
                    f"{len(value)} characters; use at least {MIN_SECRET_LEN} random ones "
                    "(e.g. `openssl rand -hex 32`)"
                )
            masters[source] = value
        return cls(masters, per_platform)

    def secret(self, source: str, platform_id: str, generation: int | None = None) -> str:
        master = self.masters[source]
        if not self.per_platform:
            return master
        return derive_secret(master, source, platform_id, generation)


def check(
    scheme: AuthScheme, secret: str, body: bytes, headers: Mapping[str, str]
) -> AuthFailure | None:
    """None when the request is authentic, else why not. ``headers`` keys are lower-case."""
    if scheme.kind == "bearer":
        return _check_bearer(secret, headers)
    return _check_signature(scheme, secret, body, headers)


def _check_bearer(secret: str, headers: Mapping[str, str]) -> AuthFailure | None:
    value = headers.get("authorization")
    if not value:
        return AuthFailure(
            "missing", "no Authorization header; send 'Authorization: Bearer <token>'"
        )
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return AuthFailure("malformed", "the Authorization header is not 'Bearer <token>'")
    if not hmac.compare_digest(token.strip().encode(), secret.encode()):
        return AuthFailure("mismatch", "the bearer token is not this receiver's token")
    return None


def _check_signature(
    scheme: AuthScheme, secret: str, body: bytes, headers: Mapping[str, str]
) -> AuthFailure | None:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    names = ", ".join(h for h, _ in scheme.signatures)
    for header, prefix in scheme.signatures:
        value = headers.get(header.lower())
        if value is None:
            continue
        value = value.strip()
        if prefix and not value.startswith(prefix):
            return AuthFailure("malformed", f"{header} does not start with {prefix!r}")
        digest = value[len(prefix) :].lower()
        if not hmac.compare_digest(digest.encode(), expected.encode()):
            return AuthFailure(
                "mismatch", f"{header} does not match the body signed with this receiver's secret"
            )
        return None
    return AuthFailure("missing", f"no signature header; expected one of: {names}")


def sign(secret: str, body: bytes, prefix: str = "sha256=") -> str:
    """The signature header value a sender computes (GitHub style by default)."""
    return prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
