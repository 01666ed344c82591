"""Trino's HTTP event listener: plugin unpacked from the full archive, configured when present."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from services.errors import StackError
from services.stack.config import StackConfig
from services.stack.trino import (
    EVENT_LISTENER_PLUGIN,
    EVENT_LISTENER_PORT,
    TrinoComponent,
    event_listener_properties,
    install_event_listener,
)

pytestmark = pytest.mark.unit

TOP = "trino-server-476"
JAR = "io.trino_trino-http-event-listener-476.jar"


def _config(tmp_path: Path) -> StackConfig:
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text("")
    return StackConfig(state_dir=tmp_path / "state", host="127.0.0.2", java25_home=java_home)


def _full_archive(path: Path, with_plugin: bool = True) -> Path:
    """A server archive whose plugin jars are hard links to lib/, as Trino's is."""
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add(f"{TOP}/lib/com.google.guava_guava-33.jar", b"guava")
        add(f"{TOP}/plugin/iceberg/io.trino_trino-iceberg-476.jar", b"iceberg")
        if with_plugin:
            add(f"{TOP}/plugin/{EVENT_LISTENER_PLUGIN}/{JAR}", b"listener")
            link = tarfile.TarInfo(
                f"{TOP}/plugin/{EVENT_LISTENER_PLUGIN}/com.google.guava_guava-33.jar"
            )
            link.type = tarfile.LNKTYPE
            link.linkname = f"{TOP}/lib/com.google.guava_guava-33.jar"
            tar.addfile(link)
    return path


def test_plugin_is_unpacked_with_hard_links_resolved(tmp_path: Path) -> None:
    home = tmp_path / "home"
    target = install_event_listener(_full_archive(tmp_path / "s.tar.gz"), home, print)
    assert target == home / "plugin" / EVENT_LISTENER_PLUGIN
    assert (target / JAR).read_bytes() == b"listener"
    assert (target / "com.google.guava_guava-33.jar").read_bytes() == b"guava"
    assert sorted(p.name for p in (home / "plugin").iterdir()) == [EVENT_LISTENER_PLUGIN]
    # Installed once: a second call does not need the archive any more.
    assert install_event_listener(tmp_path / "gone.tar.gz", home, print) == target


def test_an_archive_without_the_plugin_is_a_stack_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(StackError, match="has no http-event-listener plugin"):
        install_event_listener(_full_archive(tmp_path / "s.tar.gz", with_plugin=False), home, print)
    assert not (home / "plugin").exists() or not any((home / "plugin").iterdir())


def test_listener_posts_completed_queries_with_a_bearer_token(tmp_path: Path) -> None:
    props = event_listener_properties(_config(tmp_path), "t0k3n")
    assert props["event-listener.name"] == "http"
    assert props["http-event-listener.log-completed"] == "true"
    assert props["http-event-listener.connect-ingest-uri"] == (
        f"http://127.0.0.2:{EVENT_LISTENER_PORT}/trino"
    )
    assert props["http-event-listener.connect-http-headers"] == "Authorization: Bearer t0k3n"


def _properties(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def test_prepare_configures_the_listener_only_when_the_plugin_is_installed(tmp_path: Path) -> None:
    component = TrinoComponent(_config(tmp_path), cache=tmp_path / "cache")
    component.prepare(print)
    config = _properties(component.etc_dir / "config.properties")
    assert "event-listener.config-files" not in config
    assert not (component.etc_dir / f"{EVENT_LISTENER_PLUGIN}.properties").exists()

    (component.home / "plugin" / EVENT_LISTENER_PLUGIN).mkdir(parents=True)
    component.prepare(print)
    listener_file = component.etc_dir / f"{EVENT_LISTENER_PLUGIN}.properties"
    config = _properties(component.etc_dir / "config.properties")
    assert config["event-listener.config-files"] == str(listener_file)
    token = component.event_listener_token()
    assert len(token) == 64
    assert _properties(listener_file)["http-event-listener.connect-http-headers"] == (
        f"Authorization: Bearer {token}"
    )
    token_file = component.dir / "event-listener.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    component.prepare(print)  # the token is kept across restarts
    assert component.event_listener_token() == token
