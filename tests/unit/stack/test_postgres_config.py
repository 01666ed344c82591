"""PostgreSQL's binaries lookup, settings and argv, without starting a server."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
from pathlib import Path

import pytest

from services.errors import StackError
from services.stack import postgres
from services.stack.config import StackConfig
from services.stack.postgres import PostgresComponent, find_bin_dir, hba_conf, server_settings

pytestmark = pytest.mark.unit


def _install(root: Path, version: str, with_server: bool = True) -> Path:
    bin_dir = root / version / "bin"
    bin_dir.mkdir(parents=True)
    if with_server:
        (bin_dir / "postgres").write_text("")
    return bin_dir


def test_find_bin_dir_takes_the_newest_major_version(tmp_path: Path) -> None:
    _install(tmp_path, "13")
    newest = _install(tmp_path, "15")
    _install(tmp_path, "9")
    _install(tmp_path, "16", with_server=False)  # client-only package: no server binary
    (tmp_path / "common").mkdir()
    assert find_bin_dir(tmp_path) == newest


def test_missing_server_names_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"apt-get install postgresql"):
        find_bin_dir(tmp_path / "nothing-here")


def test_settings_listen_on_the_configured_loopback_port(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path, host="127.0.0.3", postgres_port=25432)
    settings = server_settings(config, tmp_path / "run")
    assert settings["listen_addresses"] == "127.0.0.3"
    assert settings["port"] == "25432"
    assert settings["unix_socket_directories"] == str(tmp_path / "run")


def test_hba_trusts_only_the_socket_and_the_stack_host() -> None:
    rules = [
        line.split()
        for line in hba_conf(StackConfig(host="127.0.0.1")).splitlines()
        if line and not line.startswith("#")
    ]
    assert rules == [
        ["local", "all", "all", "trust"],
        ["host", "all", "all", "127.0.0.1/32", "trust"],
    ]


def _component(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, euid: int) -> PostgresComponent:
    monkeypatch.setattr(postgres, "POSTGRES_LIB", tmp_path / "lib")
    _install(tmp_path / "lib", "15")
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    return PostgresComponent(StackConfig(state_dir=tmp_path / "state", postgres_port=25432))


def test_as_root_the_server_runs_as_the_postgres_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    argv = list(_component(tmp_path, monkeypatch, euid=0).command())
    assert argv[:2] == ["/usr/bin/setpriv", "--reuid=postgres"]
    server = argv.index("--") + 1
    assert argv[server] == str(tmp_path / "lib" / "15" / "bin" / "postgres")
    assert "port=25432" in argv


def test_not_root_the_server_runs_as_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = list(_component(tmp_path, monkeypatch, euid=1000).command())
    assert argv[0] == str(tmp_path / "lib" / "15" / "bin" / "postgres")
    assert argv[argv.index("-D") + 1] == str(tmp_path / "state" / "postgres" / "data")


def test_as_root_without_setpriv_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(StackError, match="setpriv not found"):
        _component(tmp_path, monkeypatch, euid=0).command()


def test_as_root_without_the_postgres_user_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_user(name: str) -> object:
        raise KeyError(name)

    monkeypatch.setattr(pwd, "getpwnam", no_user)
    with pytest.raises(StackError, match=r"user 'postgres' is missing.*apt-get install postgresql"):
        _component(tmp_path, monkeypatch, euid=0).install(print)


def test_a_socket_path_too_long_for_unix_sockets_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "POSTGRES_LIB", tmp_path / "lib")
    _install(tmp_path / "lib", "15")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    deep = tmp_path / ("d" * 100)
    component = PostgresComponent(StackConfig(state_dir=deep))
    with pytest.raises(StackError, match="shorter directory"):
        component.prepare(print)
    assert not component.data_dir.exists()


def test_healthy_is_false_when_nothing_listens(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    component = PostgresComponent(StackConfig(state_dir=tmp_path, postgres_port=free_port))
    assert component.healthy() is False


def _fallback_component(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reachable: set[Path]
) -> PostgresComponent:
    monkeypatch.setattr(postgres, "FALLBACK_ROOT", tmp_path / "fallback")
    component = PostgresComponent(StackConfig(state_dir=tmp_path / "private" / "state"))
    component.dir.mkdir(parents=True)
    monkeypatch.setattr(component, "_server_user_can_reach", lambda path: path in reachable)
    return component


def test_a_reachable_state_dir_keeps_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    component = _fallback_component(tmp_path, monkeypatch, reachable=set())
    monkeypatch.setattr(component, "_server_user_can_reach", lambda path: True)
    component._choose_cluster_root(print)
    assert component.data_dir == component.dir / "data"
    assert not (tmp_path / "fallback").exists()


def test_an_unreachable_state_dir_moves_the_cluster_to_a_fresh_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    component = _fallback_component(tmp_path, monkeypatch, reachable=set())
    monkeypatch.setattr(
        component, "_server_user_can_reach", lambda path: path.parent == tmp_path / "fallback"
    )
    component._choose_cluster_root(print)
    root = component.cluster_root
    assert root.parent == tmp_path / "fallback"
    assert component.data_dir == root / "data"
    (root / "data").mkdir()
    (root / "data" / "PG_VERSION").write_text("15\n")

    # Same state dir again: the recorded cluster is kept.
    component._choose_cluster_root(print)
    assert (root / "data" / "PG_VERSION").is_file()

    # A new state dir at the same path (the old one deleted): never reuse the old cluster.
    (component.dir / "cluster-location").unlink()
    component._choose_cluster_root(print)
    assert component.cluster_root == root
    assert not (root / "data").exists()


def test_a_cluster_nobody_can_reach_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    component = _fallback_component(tmp_path, monkeypatch, reachable=set())
    with pytest.raises(StackError, match="can reach neither"):
        component._choose_cluster_root(print)
