"""``proctor stack``: help text, and one clear line (exit 1) for what a user can fix.

The error cases stop before anything is downloaded or started: a taken port is found
before install, and a missing Java or mvn is found by install itself.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import cli

pytestmark = pytest.mark.unit


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state dir and free ports, so nothing touches a running stack."""
    state = tmp_path / "stack"
    monkeypatch.setenv("PROCTOR_STACK_DIR", str(state))
    monkeypatch.delenv("PROCTOR_STACK_MODE", raising=False)
    for var in (
        "PROCTOR_KAFKA_PORT",
        "PROCTOR_KAFKA_CONTROLLER_PORT",
        "PROCTOR_REGISTRY_PORT",
        "PROCTOR_POSTGRES_PORT",
        "PROCTOR_TRINO_PORT",
    ):
        monkeypatch.setenv(var, str(_free_port()))
    return state


@pytest.fixture
def squatter() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["stack", *args])
    return result.exit_code, result.output


def test_help_lists_every_subcommand_and_the_ports() -> None:
    code, out = run("--help")
    assert code == 0
    for word in ("up", "down", "status", "logs", "19092", "18081"):
        assert word in out
    code, out = run("logs", "--help")
    assert code == 0 and "--follow" in out and "--lines" in out


def test_port_taken_is_one_line_and_exit_1(
    env: Path, squatter: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_KAFKA_PORT", str(squatter))
    code, out = run("up", "kafka")
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert f"port {squatter}" in errors[0] and "taken" in errors[0]
    assert not (env / "kafka" / "pid").exists()


def test_missing_java_names_the_package(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_JAVA17_HOME", str(tmp_path / "no-jdk"))
    code, out = run("up", "kafka")
    assert code == 1
    assert "error: Java 17 not found" in out and "apt-get install openjdk-17-jre-headless" in out


def test_missing_mvn_names_the_package(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No cached class path in a fresh state dir, and no mvn on PATH.
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out = run("up", "kafka")
    assert code == 1
    assert "error: mvn not found" in out and "apt-get install maven" in out


def test_unknown_component_is_an_error(env: Path) -> None:
    code, out = run("up", "zookeeper")
    assert code == 1
    assert "unknown component 'zookeeper'" in out and "kafka" in out


def test_status_of_a_stopped_stack_exits_1_and_shows_every_component(env: Path) -> None:
    code, out = run("status")
    assert code == 1
    for name in ("postgres", "kafka", "registry", "trino"):
        assert name in out
    assert "stopped" in out


def test_down_of_a_stopped_stack_is_clean(env: Path) -> None:
    code, out = run("down")
    assert code == 0
    assert "no process of the stack is running" in out


def test_logs_before_start_says_how_to_start(env: Path) -> None:
    code, out = run("logs", "kafka")
    assert code == 1
    assert "proctor stack up kafka" in out


def test_docker_mode_without_engine_says_what_to_do(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker binary at all
    code, out = run("up", "--docker")
    assert code == 1
    assert "no Docker engine" in out and "proctor stack up" in out
