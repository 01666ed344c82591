"""The polling runner's /metrics binds PROCTOR_HTTP_HOST, like the receivers, else loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from services.collectors.runner import RunOptions, run_pollers
from services.collectors.settings import DEFAULT_HTTP_HOST, HTTP_HOST_ENV
from services.contract.settings import ClientSettings
from services.settings import load_settings

pytestmark = pytest.mark.unit

OTHER_LOOPBACK = "127.0.0.2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((DEFAULT_HTTP_HOST, 0))
        return int(s.getsockname()[1])


class _Probe:
    """Stands in for a poller: while the runner runs, asks /metrics at each address."""

    healthy = True

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: dict[str, int | str] = {}

    def attempt(self) -> float:
        for host in (DEFAULT_HTTP_HOST, OTHER_LOOPBACK):
            try:
                r = httpx.get(f"http://{host}:{self.port}/metrics", timeout=5)
                self.answers[host] = r.status_code
            except httpx.ConnectError:
                self.answers[host] = "refused"
        return 0.0

    def heartbeat(self) -> None:
        pass

    def close(self) -> None:
        pass


def _serve_once(tmp_path: Path) -> dict[str, int | str]:
    port = _free_port()
    probe = _Probe(port)
    client = ClientSettings("127.0.0.1:1", "http://127.0.0.1:1")
    host = load_settings().telemetry.http_host  # as the entry point reads it
    opts = RunOptions(
        "basecamp-alice", tmp_path, client, metrics_port=port, once=True, http_host=host
    )
    assert run_pollers([probe], opts) == 0  # type: ignore[list-item]
    return probe.answers


@pytest.mark.parametrize("value", [None, ""])
def test_metrics_listen_on_loopback_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(HTTP_HOST_ENV, raising=False)
    else:
        monkeypatch.setenv(HTTP_HOST_ENV, value)
    assert _serve_once(tmp_path) == {DEFAULT_HTTP_HOST: 200, OTHER_LOOPBACK: "refused"}


def test_metrics_listen_on_the_configured_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HTTP_HOST_ENV, OTHER_LOOPBACK)
    assert _serve_once(tmp_path) == {DEFAULT_HTTP_HOST: "refused", OTHER_LOOPBACK: 200}
