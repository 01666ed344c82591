"""Credentials derived from the master secret: signal MACs, webhook secrets, submission tokens."""

from __future__ import annotations

import pytest

from services.collectors.webhook_auth import derive_secret
from services.errors import ConfigError
from services.trust.credentials import (
    MAC_HEADER,
    PLATFORM_HEADER,
    SignalKey,
    SignalKeys,
    check_mac,
    mac_headers_of,
    master_from_env,
    parse_platform_header,
    submission_token,
    verify_submission_token,
    webhook_secret,
)

pytestmark = pytest.mark.unit
MASTER = b"unit-test-master-secret-0123456789"


def test_signal_mac_round_trip_and_tamper() -> None:
    key = SignalKey.derive(MASTER, "basecamp-alice", 1)
    headers = key.headers("platform.flink", b"basecamp-alice", b"value")
    platform, tag = mac_headers_of(headers)
    assert parse_platform_header(platform) == ("basecamp-alice", 1)
    assert tag is not None and check_mac(
        key.key, tag, "platform.flink", b"basecamp-alice", b"value"
    )
    assert not check_mac(key.key, tag, "platform.flink", b"basecamp-alice", b"valuf")
    assert not check_mac(key.key, tag, "platform.dbt", b"basecamp-alice", b"value")
    assert not check_mac(key.key, tag, "platform.flink", b"basecamp-bob", b"value")
    assert not check_mac(key.key, tag[:16], "platform.flink", b"basecamp-alice", b"value")
    # topic/key/value boundaries cannot be shifted
    assert not check_mac(key.key, tag, "platform.flin", b"kbasecamp-alice", b"value")


def test_keys_differ_per_platform_generation_and_master() -> None:
    a1 = SignalKey.derive(MASTER, "a", 1).key
    assert a1 != SignalKey.derive(MASTER, "a", 2).key
    assert a1 != SignalKey.derive(MASTER, "b", 1).key
    assert a1 != SignalKey.derive(b"another-master-secret-xyz", "a", 1).key


def test_signal_key_token_round_trip_and_errors() -> None:
    key = SignalKey.derive(MASTER, "plat:with:colons", 3)
    assert SignalKey.parse(key.token) == key
    for bad in ("nope", "p:x:abcd", "p:1:zz", "p:1:" + "ab" * 16):
        with pytest.raises(ConfigError, match="PROCTOR_SIGNAL_KEY"):
            SignalKey.parse(bad)
    assert parse_platform_header(b"no-generation") is None
    assert parse_platform_header(b"\xff:1") is None
    assert parse_platform_header(None) is None


def test_signal_keys_modes() -> None:
    multi = SignalKeys(MASTER, generations={"b": 2})
    assert multi.for_platform("a") == SignalKey.derive(MASTER, "a", 1)
    assert multi.for_platform("b").generation == 2
    single = SignalKeys(single=SignalKey.derive(MASTER, "a", 1))
    assert single.for_platform("a").platform_id == "a"
    with pytest.raises(ConfigError, match="cannot sign signals of 'b'"):
        single.for_platform("b")
    with pytest.raises(ConfigError, match="PROCTOR_ROSTER_SECRET"):
        SignalKeys()
    assert SignalKeys.from_env({}) is None
    env = {"PROCTOR_SIGNAL_KEY": SignalKey.derive(MASTER, "a", 4).token}
    assert SignalKeys.from_env(env).for_platform("a").generation == 4  # type: ignore[union-attr]
    assert PLATFORM_HEADER != MAC_HEADER


def test_master_secret_settings() -> None:
    with pytest.raises(ConfigError, match="PROCTOR_ROSTER_SECRET"):
        master_from_env({})
    with pytest.raises(ConfigError, match="at least 16"):
        master_from_env({"PROCTOR_ROSTER_SECRET": "short"})
    assert master_from_env({}, required=False) is None
    assert master_from_env({"PROCTOR_ROSTER_SECRET": "x" * 16}) == b"x" * 16


def test_webhook_secret_is_the_receivers_derivation() -> None:
    master = MASTER.decode()
    assert derive_secret(master, "argocd", "a") == webhook_secret(MASTER, "argocd", "a")
    assert derive_secret(master, "argocd", "a", 2) == webhook_secret(master, "argocd", "a", 2)
    assert webhook_secret(MASTER, "argocd", "a", 1) != webhook_secret(MASTER, "argocd", "a", 2)
    assert webhook_secret(MASTER, "argocd", "a", 1) != webhook_secret(MASTER, "dbt", "a", 1)


def test_submission_token() -> None:
    token = submission_token(MASTER, "basecamp.alice", "y3-final", 2)
    grant = verify_submission_token(MASTER, token)
    assert grant is not None
    assert (grant.platform_id, grant.exam_id, grant.generation) == ("basecamp.alice", "y3-final", 2)
    assert verify_submission_token(b"another-master-secret-xyz", token) is None
    head, plat, exam, gen, tag = token.split(".")
    assert verify_submission_token(MASTER, ".".join((head, plat, exam, "3", tag))) is None
    other = submission_token(MASTER, "basecamp-bob", "y3-final", 2).split(".")[1]
    assert verify_submission_token(MASTER, ".".join((head, other, exam, gen, tag))) is None
    for junk in ("", "pst1", "pst1.a.b.c.d", "x.y.z.1.w", token + "x"):
        assert verify_submission_token(MASTER, junk) is None
