"""Who may post to a receiver: a bearer token or an HMAC-SHA256 signature of the body.

Secrets come only from the environment: ``PROCTOR_WEBHOOK_SECRET_<SOURCE>`` (the source
name upper-cased, ``-`` as ``_``), else the shared ``PROCTOR_WEBHOOK_SECRET``. With
per-platform secrets (the receivers' default) the environment holds a master secret and
each platform's secret is derived from it (HMAC-SHA256 of the source, platform id and
roster generation), so one candidate's token cannot post signals for another candidate's
platform, and a revoke voids it; ``--print-secret PLATFORM`` shows the secret to hand to
that platform.

Everything that can be decided from the headers is (:func:`check_headers`), before a
byte of the body is read; a signature over the body is then fed the body as it streams.

Comparisons are constant-time, and every refusal says which header was wrong without
echoing what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from services.errors import ConfigError
from services.settings import environment
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
    ``X-Hub-Signature-256: sha256=<hex>`` and Gitea's and Gogs' bare-hex
    ``X-Gitea-Signature``/``X-Gogs-Signature``; ``tokens`` lists headers that carry the
    secret itself (GitLab's ``X-Gitlab-Token``), compared in constant time.

    Every scheme also takes proctor's own signature (:data:`PROCTOR_SIGNATURE`), which
    covers a timestamp and the platform besides the body, for senders that can compute it.
    """

    kind: Literal["bearer", "hmac-sha256"]
    signatures: tuple[tuple[str, str], ...] = ()
    tokens: tuple[str, ...] = ()


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
        env = environment() if env is None else env
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
    scheme: AuthScheme,
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    platform_id: str = "",
) -> AuthFailure | None:
    """None when the request is authentic, else why not. ``headers`` keys are lower-case."""
    verdict = check_headers(scheme, secret, headers, platform_id)
    if verdict is None or isinstance(verdict, AuthFailure):
        return verdict
    verdict.update(body)
    return verdict.verify()


#: proctor's own signature: ``sha256=<hex HMAC(secret, "<timestamp>.<platform_id>." + body)>``
#: with the Unix seconds in X-Proctor-Timestamp, so a captured delivery neither replays later
#: (the window) nor onto another platform.
PROCTOR_SIGNATURE = "x-proctor-signature"
PROCTOR_TIMESTAMP = "x-proctor-timestamp"


@dataclass(slots=True)
class PendingSignature:
    """The headers are in order; the HMAC of the body (fed in chunks) decides.

    ``signed_ts`` is the delivery's timestamp when the signature covers one.
    """

    header: str
    digest: str
    mac: hmac.HMAC
    signed_ts: float | None = None

    def update(self, chunk: bytes) -> None:
        self.mac.update(chunk)

    def verify(self) -> AuthFailure | None:
        if hmac.compare_digest(self.digest.encode(), self.mac.hexdigest().encode()):
            return None
        return AuthFailure(
            "mismatch",
            f"{self.header} does not match the body signed with this platform's secret",
        )


def check_headers(
    scheme: AuthScheme, secret: str, headers: Mapping[str, str], platform_id: str = ""
) -> AuthFailure | PendingSignature | None:
    """Everything that can be checked before reading the body.

    None: authentic already (a bearer token or a token header). AuthFailure: refused, the
    body need not be read. PendingSignature: feed it the body, then ``verify()``.
    """
    if headers.get(PROCTOR_SIGNATURE) is not None:
        return _proctor_signature(secret, headers, platform_id)
    if scheme.kind == "bearer":
        return _check_bearer(secret, headers)
    for header in scheme.tokens:
        value = headers.get(header.lower())
        if value is None:
            continue
        if not hmac.compare_digest(value.strip().encode(), secret.encode()):
            return AuthFailure("mismatch", f"{header} is not this platform's secret token")
        return None
    names = ", ".join([*(h for h, _ in scheme.signatures), *scheme.tokens])
    for header, prefix in scheme.signatures:
        value = headers.get(header.lower())
        if value is None:
            continue
        value = value.strip()
        if prefix and not value.startswith(prefix):
            return AuthFailure("malformed", f"{header} does not start with {prefix!r}")
        digest = value[len(prefix) :].lower()
        if len(digest) != 64:
            return AuthFailure("malformed", f"{header} is not a hex SHA-256 HMAC")
        return PendingSignature(header, digest, hmac.new(secret.encode(), None, hashlib.sha256))
    return AuthFailure("missing", f"no signature header; expected one of: {names}")


def _proctor_signature(
    secret: str, headers: Mapping[str, str], platform_id: str
) -> AuthFailure | PendingSignature:
    value = headers.get(PROCTOR_SIGNATURE, "").strip()
    stamp = headers.get(PROCTOR_TIMESTAMP, "").strip()
    if not value.startswith("sha256=") or len(value) != 7 + 64:
        return AuthFailure("malformed", "X-Proctor-Signature is not 'sha256=<64 hex digits>'")
    try:
        ts = float(stamp)
    except ValueError:
        return AuthFailure(
            "malformed", "X-Proctor-Signature needs X-Proctor-Timestamp (Unix seconds)"
        )
    mac = hmac.new(secret.encode(), f"{stamp}.{platform_id}.".encode(), hashlib.sha256)
    return PendingSignature("X-Proctor-Signature", value[7:].lower(), mac, ts)


def sign_proctor(secret: str, platform_id: str, body: bytes, ts: float) -> dict[str, str]:
    """The headers a proctor-aware sender adds: timestamp and signature."""
    stamp = f"{ts:.0f}"
    mac = hmac.new(secret.encode(), f"{stamp}.{platform_id}.".encode() + body, hashlib.sha256)
    return {"X-Proctor-Timestamp": stamp, "X-Proctor-Signature": "sha256=" + mac.hexdigest()}


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


def sign(secret: str, body: bytes, prefix: str = "sha256=") -> str:
    """The signature header value a sender computes (GitHub style by default)."""
    return prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
