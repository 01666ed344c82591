"""Collectors say whose failure an error is; the audit source proves it sees with a canary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.collectors import canary as canary_mod
from services.collectors.blindness import PAYLOAD, PLATFORM, PROCTOR_SIDE, delivery_kind, error_kind
from services.collectors.canary import (
    USER_AGENT_PREFIX,
    CanaryRequester,
    CanaryTarget,
    CanaryWatch,
    watched,
)
from services.collectors.http import JsonClient, SourceError, expect
from services.collectors.k8s_audit import SOURCE
from services.collectors.polling import Collector, Poller, PollResult, PositionStore
from services.collectors.webhook_payload import Inbound
from services.core.events import Event
from services.errors import ConfigError, DeliveryError, PayloadError

pytestmark = pytest.mark.unit

PLATFORM_ID = "basecamp-alice"


# ------------------------------------------------------------------ error kinds
def test_error_kinds_of_sources_and_deliveries() -> None:
    assert error_kind(PayloadError("bad json")) == PAYLOAD
    assert error_kind(SourceError("GET x answered 503", PLATFORM)) == PLATFORM
    assert error_kind(SourceError("connect refused")) == PROCTOR_SIDE
    too_large = "cannot produce to platform.argocd: KafkaError{code=MSG_SIZE_TOO_LARGE}"
    assert error_kind(DeliveryError(too_large)) == PAYLOAD
    assert error_kind(DeliveryError("1 of 1 records not acknowledged within 10s")) == PROCTOR_SIDE
    assert error_kind(OSError("network unreachable")) == PROCTOR_SIDE
    assert delivery_kind("Broker: Message size too large") == PAYLOAD
    assert delivery_kind("the producer queue is full: the broker is down") == PROCTOR_SIDE


def _client(handler: Any) -> JsonClient:
    c = JsonClient("http://flink.basecamp:8081")
    c.client = httpx.Client(base_url=c.base_url, transport=httpx.MockTransport(handler))
    return c


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(503, text="down"), PLATFORM),
        (httpx.Response(500, text="boom"), PLATFORM),
        (httpx.Response(401, text="no"), PROCTOR_SIDE),
        (httpx.Response(200, text="<html>"), PAYLOAD),
    ],
)
def test_json_client_errors_carry_their_kind(answer: httpx.Response, kind: str) -> None:
    with pytest.raises(SourceError) as info:
        _client(lambda _req: answer).get("/jobs")
    assert info.value.kind == kind


def test_an_unreachable_source_is_proctor_side() -> None:
    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=req)

    with pytest.raises(SourceError) as info:
        _client(refuse).get("/jobs")
    assert info.value.kind == PROCTOR_SIDE
    with pytest.raises(SourceError) as info:
        expect([], dict, "GET /jobs")
    assert info.value.kind == PAYLOAD


class _Failing(Collector):
    name = "flink"

    def __init__(self, exc: Exception) -> None:
        super().__init__(PLATFORM_ID)
        self.exc = exc

    @property
    def source(self) -> str:
        return "http://flink.basecamp:8081"

    def poll(self, position: Any) -> PollResult:
        raise self.exc


class _Publisher:
    def __init__(self) -> None:
        self.sent: list[Event] = []

    def publish(self, event: Event, timeout_s: float = 10) -> None:
        self.sent.append(event)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (SourceError("GET /jobs answered 502: bad gateway", PLATFORM), PLATFORM),
        (SourceError("GET /jobs: ConnectError: refused"), PROCTOR_SIDE),
        (PayloadError("not JSON"), PAYLOAD),
    ],
)
def test_the_poller_heartbeat_says_whose_failure(tmp_path: Path, exc: Exception, kind: str) -> None:
    pub = _Publisher()
    poller = Poller(_Failing(exc), pub, PositionStore(tmp_path, "flink", PLATFORM_ID))  # type: ignore[arg-type]
    poller.attempt()
    beat = pub.sent[-1]
    assert beat.type == "collector.heartbeat"
    assert beat.data["healthy"] is False and beat.data["error_kind"] == kind
    poller.healthy, poller.last_error, poller.last_error_kind = True, None, None
    poller.heartbeat()
    assert pub.sent[-1].data["error_kind"] is None and pub.sent[-1].data["healthy"] is True


# ------------------------------------------------------------------ the canary watch
def test_no_canary_for_longer_than_the_bound_is_blind_with_the_reason() -> None:
    watch = CanaryWatch(bound_s=120)
    watch.watch(PLATFORM_ID, at_ms=0)
    assert watch.blind_reason(PLATFORM_ID, 120_000) is None  # warm-up: within the bound
    why = watch.blind_reason(PLATFORM_ID, 121_000)
    assert why is not None and why.startswith("auditing is off or the webhook is not delivering")
    assert "none seen yet" in why
    assert watch.blind_reason("other-platform", 10**9) is None  # not watched: no claim


def test_a_seen_canary_proves_sight_from_its_send_time() -> None:
    watch = CanaryWatch(bound_s=120)
    watch.watch(PLATFORM_ID, at_ms=0)
    agent = watch.issue(PLATFORM_ID, at_ms=100_000)
    assert watch.observe(PLATFORM_ID, agent)
    assert watch.blind_reason(PLATFORM_ID, 220_000) is None
    assert watch.blind_reason(PLATFORM_ID, 221_000) is not None
    watch.failed(PLATFORM_ID, "GET https://api: ConnectError")
    assert "the last canary request failed: GET https://api" in (
        watch.blind_reason(PLATFORM_ID, 300_000) or ""
    )


def test_a_request_wearing_the_canary_agent_without_our_nonce_is_not_a_canary() -> None:
    watch = CanaryWatch()
    watch.watch(PLATFORM_ID, at_ms=0)
    assert not watch.observe(PLATFORM_ID, USER_AGENT_PREFIX + "guessed")
    assert not watch.observe(PLATFORM_ID, "kubectl/v1.31.0")
    agent = watch.issue(PLATFORM_ID)
    assert not watch.observe("basecamp-bob", agent)  # another platform's stream


def _audit_item(audit_id: str, agent: str, verb: str = "get") -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/configmaps/proctor-canary",
        "verb": verb,
        "user": {"username": "system:serviceaccount:proctor:collector", "groups": []},
        "userAgent": agent,
        "objectRef": {"resource": "configmaps", "namespace": "default", "name": "proctor-canary"},
        "responseStatus": {"code": 404},
        "stageTimestamp": "2026-11-27T09:10:00.000000Z",
    }


def _inbound(*items: dict[str, Any]) -> Inbound:
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(items)}
    return Inbound(PLATFORM_ID, json.dumps(body).encode(), {}, 0)


def test_the_receiver_drops_its_own_canaries_and_keeps_the_candidates_requests() -> None:
    watch = CanaryWatch()
    watch.watch(PLATFORM_ID, at_ms=0)
    agent = watch.issue(PLATFORM_ID, at_ms=1_000)
    source = watched(SOURCE, watch)
    fake = USER_AGENT_PREFIX + "0123456789abcdef01234567"
    parsed = source.parse(
        _inbound(
            _audit_item("a-1", agent),
            _audit_item("a-2", "kubectl/v1.31.0", verb="patch"),
            _audit_item("a-3", fake, verb="patch"),
        )
    )
    assert [e.data["audit_id"] for e in parsed.events] == ["a-2", "a-3"]
    assert len(parsed.items) == 2 and "proctor canary" in parsed.ignored
    assert source.blind is not None and source.blind(PLATFORM_ID, 100_000) is None
    assert watch.blind_reason(PLATFORM_ID, 1_000 + watch.bound_ms + 1) is not None


# ------------------------------------------------------------------ the requester
def test_the_requester_sends_an_authenticated_get_with_a_fresh_nonce_each_time() -> None:
    seen: list[httpx.Request] = []

    def api_server(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(404, json={"kind": "Status", "reason": "NotFound"})

    watch = CanaryWatch(bound_s=120)
    target = CanaryTarget(PLATFORM_ID, "https://api.basecamp:6443", "t0ken", namespace="proctor")
    req = CanaryRequester([target], watch, every_s=30, transport=httpx.MockTransport(api_server))
    try:
        req.send_once()
        req.send_once()
    finally:
        req.stop()
    assert [r.url.path for r in seen] == [
        "/api/v1/namespaces/proctor/configmaps/proctor-canary"
    ] * 2
    assert all(r.method == "GET" for r in seen)
    assert all(r.headers["authorization"] == "Bearer t0ken" for r in seen)
    agents = [r.headers["user-agent"] for r in seen]
    assert all(a.startswith(USER_AGENT_PREFIX) for a in agents) and agents[0] != agents[1]
    assert all(watch.observe(PLATFORM_ID, a) for a in agents)  # the nonces were issued


def test_a_requester_that_cannot_reach_the_api_server_says_so_in_the_reason() -> None:
    def down(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=req)

    watch = CanaryWatch(bound_s=60)
    target = CanaryTarget(PLATFORM_ID, "https://api.basecamp:6443", "t")
    req = CanaryRequester([target], watch, every_s=30, transport=httpx.MockTransport(down))
    try:
        req.send_once()
    finally:
        req.stop()
    why = watch.blind_reason(PLATFORM_ID, canary_mod.now_ms() + 61_000)
    assert why is not None and "connection refused" in why


def test_canary_configuration_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="at least twice"):
        CanaryRequester([], CanaryWatch(bound_s=30), every_s=30)
    with pytest.raises(ConfigError, match="positive"):
        CanaryWatch(bound_s=0)
    with pytest.raises(ConfigError, match="PROCTOR_K8S_CANARY_TOKEN"):
        canary_mod.companions(
            {"canary_server": "https://api", "platforms": ("p",)}, None, None, env={}
        )
    with pytest.raises(ConfigError, match="--platform"):
        canary_mod.companions(
            {"canary_server": "https://api", "platforms": ()},
            None,
            None,
            env={canary_mod.TOKEN_ENV: "t"},
        )
    assert canary_mod.companions({"canary_server": None}, None, None, env={}) == []


def test_the_contract_refuses_an_unknown_error_kind() -> None:
    from services.contract.convert import FieldError
    from services.contract.rules import check_rules

    check_rules("collector.heartbeat", {"error_kind": None})
    for kind in (PROCTOR_SIDE, PLATFORM, PAYLOAD):
        check_rules("collector.heartbeat", {"error_kind": kind})
    with pytest.raises(FieldError, match="error_kind"):
        check_rules("collector.heartbeat", {"error_kind": "candidate_says_so"})
