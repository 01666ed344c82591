"""Receiver authentication: bearer tokens, body signatures, secrets from the environment."""

from __future__ import annotations

import pytest

from services.collectors.webhook_auth import (
    SHARED_SECRET_ENV,
    AuthScheme,
    SecretBook,
    check,
    derive_secret,
    secret_env,
    sign,
)
from services.errors import ConfigError

pytestmark = pytest.mark.unit

SECRET = "s3cret-token-0123456789abcdef"
BEARER = AuthScheme("bearer")
HMAC = AuthScheme("hmac-sha256", (("X-Hub-Signature-256", "sha256="), ("X-Gitea-Signature", "")))
BODY = b'{"action": "closed"}'


def test_bearer_token_accepted() -> None:
    assert check(BEARER, SECRET, BODY, {"authorization": f"Bearer {SECRET}"}) is None
    assert check(BEARER, SECRET, BODY, {"authorization": f"bearer  {SECRET} "}) is None


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing"),
        ({"authorization": ""}, "missing"),
        ({"authorization": f"Basic {SECRET}"}, "malformed"),
        ({"authorization": "Bearer"}, "malformed"),
        ({"authorization": "Bearer wrong-token"}, "mismatch"),
        ({"authorization": f"Bearer {SECRET}x"}, "mismatch"),
    ],
)
def test_bearer_refusals(headers: dict[str, str], code: str) -> None:
    failure = check(BEARER, SECRET, BODY, headers)
    assert failure is not None and failure.code == code
    assert SECRET not in failure.message


def test_github_and_gitea_signatures_accepted() -> None:
    github = {"x-hub-signature-256": sign(SECRET, BODY)}
    gitea = {"x-gitea-signature": sign(SECRET, BODY, prefix="")}
    assert check(HMAC, SECRET, BODY, github) is None
    assert check(HMAC, SECRET, BODY, gitea) is None
    upper = {"x-hub-signature-256": "sha256=" + sign(SECRET, BODY)[7:].upper()}
    assert check(HMAC, SECRET, BODY, upper) is None


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing"),
        ({"x-hub-signature": "sha1=abc"}, "missing"),
        ({"x-hub-signature-256": sign(SECRET, BODY)[7:]}, "malformed"),
        ({"x-hub-signature-256": sign("another-secret-0123456", BODY)}, "mismatch"),
        ({"x-hub-signature-256": sign(SECRET, BODY + b" ")}, "mismatch"),
        ({"x-gitea-signature": "00" * 32}, "mismatch"),
    ],
)
def test_signature_refusals(headers: dict[str, str], code: str) -> None:
    failure = check(HMAC, SECRET, BODY, headers)
    assert failure is not None and failure.code == code


def test_secrets_come_from_the_environment() -> None:
    env = {secret_env("argocd"): SECRET, SHARED_SECRET_ENV: "shared-secret-0123456789"}
    book = SecretBook.from_env(["argocd", "k8s-audit"], env=env)
    assert secret_env("k8s-audit") == "PROCTOR_WEBHOOK_SECRET_K8S_AUDIT"
    assert book.secret("argocd", "basecamp-alice") == SECRET
    assert book.secret("k8s-audit", "basecamp-alice") == "shared-secret-0123456789"


def test_missing_or_short_secret_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="PROCTOR_WEBHOOK_SECRET_GITOPS"):
        SecretBook.from_env(["gitops"], env={})
    with pytest.raises(ConfigError, match="at least 16"):
        SecretBook.from_env(["gitops"], env={secret_env("gitops"): "short"})


def test_per_platform_secrets_differ_per_platform_and_source() -> None:
    book = SecretBook.from_env(["argocd"], per_platform=True, env={secret_env("argocd"): SECRET})
    alice = book.secret("argocd", "basecamp-alice")
    assert alice == derive_secret(SECRET, "argocd", "basecamp-alice")
    assert alice != book.secret("argocd", "basecamp-bob")
    assert alice != derive_secret(SECRET, "gitops", "basecamp-alice")
    assert SECRET not in alice and len(alice) == 64
