"""Replay guard, known platforms, and the header-first auth schemes (GitLab, Gogs, proctor)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pytest

from services.collectors import gitops
from services.collectors.webhook_auth import (
    AuthFailure,
    AuthScheme,
    PendingSignature,
    check,
    check_headers,
    sign,
    sign_proctor,
)
from services.collectors.webhook_guard import (
    ReplayGuard,
    StaticRoster,
    delivery_id,
    roster_platforms,
)

pytestmark = pytest.mark.unit

SECRET = "s" * 32
BODY = b'{"ref": "refs/heads/main"}'


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_delivery_id_seen_within_the_window_is_a_409() -> None:
    guard = ReplayGuard(300, clock=Clock())
    assert guard.reserve("gitops", "alice", "d-1") is None
    replay = guard.reserve("gitops", "alice", "d-1")
    assert replay is not None and replay.status == 409


def test_the_same_delivery_id_on_another_platform_or_source_is_its_own() -> None:
    guard = ReplayGuard(300, clock=Clock())
    assert guard.reserve("gitops", "alice", "d-1") is None
    assert guard.reserve("gitops", "bob", "d-1") is None
    assert guard.reserve("argocd", "alice", "d-1") is None


def test_the_seen_set_forgets_by_age_and_stays_bounded() -> None:
    clock = Clock()
    guard = ReplayGuard(300, clock=clock)
    for i in range(1000):
        guard.reserve("gitops", "alice", f"d-{i}")
    assert len(guard) == 1000
    clock.now += 301
    guard.reserve("gitops", "alice", "fresh")
    assert len(guard) == 1  # all 1,000 evicted: older than the window


def test_the_seen_set_has_a_hard_ceiling() -> None:
    guard = ReplayGuard(300, clock=Clock(), max_seen=10)
    for i in range(50):
        guard.reserve("gitops", "alice", f"d-{i}")
    assert len(guard) <= 11


def test_a_released_delivery_may_come_again() -> None:
    guard = ReplayGuard(300, clock=Clock())
    guard.reserve("gitops", "alice", "d-1")
    guard.release("gitops", "alice", "d-1")
    assert guard.reserve("gitops", "alice", "d-1") is None


@pytest.mark.parametrize("offset", [-301.0, 301.0])
def test_a_signed_timestamp_outside_the_window_is_a_401(offset: float) -> None:
    clock = Clock()
    guard = ReplayGuard(300, clock=clock)
    stale = guard.check_time(clock.now + offset)
    assert stale is not None and stale.status == 401
    assert guard.check_time(clock.now - 10) is None
    assert guard.check_time(None) is None


def test_delivery_ids_of_every_git_host_and_proctor() -> None:
    assert delivery_id({"x-github-delivery": "g"}) == "x-github-delivery:g"
    assert delivery_id({"x-gitlab-event-uuid": "l"}) == "x-gitlab-event-uuid:l"
    assert delivery_id({"x-gogs-delivery": "o"}) == "x-gogs-delivery:o"
    assert delivery_id({"x-gitea-delivery": "t"}) == "x-gitea-delivery:t"
    assert delivery_id({"x-proctor-delivery": "p"}) == "x-proctor-delivery:p"
    assert delivery_id({"content-type": "application/json"}) is None


def test_a_static_roster_knows_only_its_platforms() -> None:
    roster = StaticRoster.of(["alice", "bob"], generation=3)
    assert roster("alice") == 3 and roster("bob") == 3
    assert roster("VICTIM") is None


@dataclass(frozen=True)
class Entry:
    generation: int
    revoked: bool


class View:
    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries

    def get(self, platform_id: str) -> Entry | None:
        return self.entries.get(platform_id)


def test_a_roster_view_knows_live_entries_at_their_generation() -> None:
    known = roster_platforms(View({"alice": Entry(2, False), "gone": Entry(1, True)}))
    assert known("alice") == 2
    assert known("gone") is None
    assert known("nobody") is None


# ---- header-first authentication ------------------------------------------------------------


def test_a_missing_signature_is_refused_before_the_body() -> None:
    verdict = check_headers(gitops.SOURCE.auth, SECRET, {"x-github-event": "push"})
    assert isinstance(verdict, AuthFailure) and verdict.code == "missing"
    assert "X-Gitlab-Token" in verdict.message and "X-Gogs-Signature" in verdict.message


def test_a_malformed_signature_is_refused_before_the_body() -> None:
    verdict = check_headers(gitops.SOURCE.auth, SECRET, {"x-gogs-signature": "nothex"})
    assert isinstance(verdict, AuthFailure) and verdict.code == "malformed"


def test_a_bearer_token_is_decided_from_the_headers() -> None:
    scheme = AuthScheme("bearer")
    assert check_headers(scheme, SECRET, {"authorization": f"Bearer {SECRET}"}) is None
    wrong = check_headers(scheme, SECRET, {"authorization": "Bearer nope-nope-nope-nope"})
    assert isinstance(wrong, AuthFailure) and wrong.code == "mismatch"


def test_gitlab_token_is_compared_to_the_platforms_secret() -> None:
    assert check(gitops.SOURCE.auth, SECRET, BODY, {"x-gitlab-token": SECRET}) is None
    refused = check(gitops.SOURCE.auth, SECRET, BODY, {"x-gitlab-token": "t" * 32})
    assert refused is not None and refused.code == "mismatch"


def test_gogs_signature_is_bare_hex_hmac_of_the_body() -> None:
    digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert check(gitops.SOURCE.auth, SECRET, BODY, {"x-gogs-signature": digest}) is None
    tampered = check(gitops.SOURCE.auth, SECRET, BODY + b" ", {"x-gogs-signature": digest})
    assert tampered is not None and tampered.code == "mismatch"


def test_a_signature_is_verified_over_the_streamed_body() -> None:
    verdict = check_headers(gitops.SOURCE.auth, SECRET, {"x-hub-signature-256": sign(SECRET, BODY)})
    assert isinstance(verdict, PendingSignature)
    for i in range(0, len(BODY), 5):
        verdict.update(BODY[i : i + 5])
    assert verdict.verify() is None


def test_proctor_signature_binds_platform_and_time() -> None:
    headers = {k.lower(): v for k, v in sign_proctor(SECRET, "alice", BODY, 1_000.0).items()}
    scheme = AuthScheme("bearer")
    assert check(scheme, SECRET, BODY, headers, platform_id="alice") is None
    other = check(scheme, SECRET, BODY, headers, platform_id="bob")
    assert other is not None and other.code == "mismatch"
    verdict = check_headers(scheme, SECRET, headers, "alice")
    assert isinstance(verdict, PendingSignature) and verdict.signed_ts == 1000.0
    later = dict(headers, **{"x-proctor-timestamp": "2000"})
    moved = check(scheme, SECRET, BODY, later, platform_id="alice")
    assert moved is not None and moved.code == "mismatch"
