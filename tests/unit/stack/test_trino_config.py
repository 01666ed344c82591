"""Trino's rendered configuration and its cached installation, without starting Trino."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from services.errors import StackError
from services.stack import maven, trino
from services.stack.catalog import CATALOG_NAME, catalog_properties
from services.stack.config import StackConfig
from services.stack.trino import (
    TrinoComponent,
    config_properties,
    iceberg_catalog_properties,
    jvm_options,
    node_properties,
    render_properties,
    unpack,
    warehouse_path,
)

pytestmark = pytest.mark.unit


def _config(tmp_path: Path) -> StackConfig:
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text("")
    return StackConfig(
        state_dir=tmp_path / "state",
        host="127.0.0.2",
        postgres_port=25432,
        trino_port=28080,
        java25_home=java_home,
    )


def _parse(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    assert all(len(p) == 2 for p in pairs), text
    return {k: v for k, v in pairs}


def test_render_properties_writes_one_pair_a_line_in_order() -> None:
    assert render_properties({"b": "2", "a": "x=y"}) == "b=2\na=x=y\n"


@pytest.mark.parametrize("key,value", [("a\nb", "1"), ("a", "1\nc=2"), ("a=b", "1")])
def test_render_properties_rejects_values_that_would_inject_lines(key: str, value: str) -> None:
    with pytest.raises(StackError, match="cannot write property"):
        render_properties({key: value})


def test_config_properties_use_the_configured_port_and_absolute_dirs(tmp_path: Path) -> None:
    config = _config(tmp_path)
    props = config_properties(config, tmp_path / "home", tmp_path / "etc")
    assert props["http-server.http.port"] == "28080"
    assert props["discovery.uri"] == "http://127.0.0.2:28080"
    assert props["coordinator"] == "true"
    assert props["node-scheduler.include-coordinator"] == "true"
    assert props["plugin.dir"] == str(tmp_path / "home" / "plugin")
    assert props["catalog.config-dir"] == str(tmp_path / "etc" / "catalog")
    assert props["query.max-memory-per-node"] == props["query.max-memory"] == "1GB"


def test_node_binds_and_announces_the_loopback_host_only(tmp_path: Path) -> None:
    props = node_properties(_config(tmp_path), tmp_path / "data")
    assert props["node.bind-ip"] == "127.0.0.2"
    assert props["node.internal-address"] == "127.0.0.2"
    assert props["node.data-dir"] == str(tmp_path / "data")


def test_jvm_options_set_the_heap_and_the_vector_module() -> None:
    options = jvm_options("2G")
    assert "-Xmx2G" in options
    assert "--add-modules=jdk.incubator.vector" in options
    assert "-Duser.timezone=UTC" in options
    assert not any(o.startswith("-Xmx") and o != "-Xmx2G" for o in options)


def test_iceberg_catalog_points_at_the_catalog_pyiceberg_uses(tmp_path: Path) -> None:
    config = _config(tmp_path)
    props = iceberg_catalog_properties(config)
    assert props["connector.name"] == "iceberg"
    assert props["iceberg.catalog.type"] == "jdbc"
    assert props["iceberg.jdbc-catalog.catalog-name"] == CATALOG_NAME
    assert (
        props["iceberg.jdbc-catalog.connection-url"] == "jdbc:postgresql://127.0.0.2:25432/iceberg"
    )
    assert props["iceberg.jdbc-catalog.connection-user"] == config.postgres_user
    assert props["iceberg.jdbc-catalog.schema-version"] == "V1"
    # The same warehouse as pyiceberg, on Trino's local file system rooted at "/".
    assert (
        props["iceberg.jdbc-catalog.default-warehouse-dir"]
        == catalog_properties(config)["warehouse"]
    )
    assert props["fs.native-local.enabled"] == "true"
    assert props["local.location"] == "/"
    # pyiceberg connects to the very same database.
    assert catalog_properties(config)["uri"].endswith("@127.0.0.2:25432/iceberg")


def test_warehouse_path_round_trips_a_directory_with_spaces(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path / "a b%c")
    assert config.warehouse.startswith("file:///")
    assert warehouse_path(config) == tmp_path / "a b%c" / "warehouse"


def test_prepare_writes_every_file_and_drops_foreign_catalogs(tmp_path: Path) -> None:
    config = _config(tmp_path)
    component = TrinoComponent(config, cache=tmp_path / "cache")
    stray = component.etc_dir / "catalog" / "memory.properties"
    stray.parent.mkdir(parents=True)
    stray.write_text("connector.name=memory\n")

    component.prepare(print)

    etc = component.etc_dir
    assert _parse((etc / "config.properties").read_text())["http-server.http.port"] == "28080"
    assert _parse((etc / "node.properties").read_text())["node.id"] == "proctor-local"
    assert (etc / "jvm.config").read_text().splitlines() == jvm_options()
    catalog = _parse((etc / "catalog" / "iceberg.properties").read_text())
    assert catalog == iceberg_catalog_properties(config)
    assert not stray.exists()
    assert warehouse_path(config).is_dir()


def test_command_runs_the_jvm_itself_with_node_properties(tmp_path: Path) -> None:
    config = _config(tmp_path)
    component = TrinoComponent(config, cache=tmp_path / "cache")
    argv = list(component.command())
    assert argv[0] == str(config.java25_home / "bin" / "java")
    assert argv[-1] == "io.trino.server.TrinoServer"
    assert argv[argv.index("-cp") + 1] == str(component.home / "lib" / "*")
    assert "-Dnode.bind-ip=127.0.0.2" in argv
    assert f"-Dconfig={component.etc_dir / 'config.properties'}" in argv


def test_missing_java_is_one_clear_error(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path, java25_home=tmp_path / "no-jdk")
    with pytest.raises(StackError, match=r"Java 25 not found.*PROCTOR_JAVA25_HOME"):
        TrinoComponent(config, cache=tmp_path / "cache").install(print)


# Unpacking ----------------------------------------------------------------------------------
def _server_archive(path: Path, top: str = "trino-server-core-476") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {
            f"{top}/lib/io.trino_trino-main-476.jar": b"main",
            f"{top}/bin/launcher": b"#!/bin/sh\n",
            f"{top}/plugin/geospatial/geo.jar": b"geo",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def _full_server_archive(path: Path) -> Path:
    """A full server archive whose event listener jar is a hard link into lib/, as Trino ships it."""
    with tarfile.open(path, "w:gz") as tar:
        jar = "trino-server-476/lib/io.trino_trino-http-event-listener-476.jar"
        info = tarfile.TarInfo(jar)
        info.size = len(b"listener")
        tar.addfile(info, io.BytesIO(b"listener"))
        link = tarfile.TarInfo(
            "trino-server-476/plugin/http-event-listener/io.trino_trino-http-event-listener-476.jar"
        )
        link.type = tarfile.LNKTYPE
        link.linkname = jar
        tar.addfile(link)
    return path


def _plugin_archive(path: Path, jar: str = "io.trino_trino-iceberg-476.jar") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("trino-iceberg-476/", "")
        zf.writestr(f"trino-iceberg-476/{jar}", b"iceberg")
        zf.writestr("trino-iceberg-476/org.postgresql_postgresql-42.jar", b"pg")
    return path


def test_unpack_keeps_the_iceberg_plugin_and_drops_bundled_plugins(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "trino-server-476"
    unpack(
        _server_archive(tmp_path / "s.tar.gz"), _plugin_archive(tmp_path / "p.zip"), target, print
    )
    assert (target / "lib" / "io.trino_trino-main-476.jar").read_bytes() == b"main"
    assert (target / "bin" / "launcher").stat().st_mode & 0o100
    assert sorted(p.name for p in (target / "plugin").iterdir()) == ["iceberg"]
    assert sorted(p.name for p in (target / "plugin" / "iceberg").iterdir()) == [
        "io.trino_trino-iceberg-476.jar",
        "org.postgresql_postgresql-42.jar",
    ]
    assert not target.with_name(target.name + ".partial").exists()


def test_unpack_of_a_complete_install_touches_nothing(tmp_path: Path) -> None:
    target = tmp_path / "trino-server-476"
    unpack(
        _server_archive(tmp_path / "s.tar.gz"), _plugin_archive(tmp_path / "p.zip"), target, print
    )
    marker = (target / "lib" / "io.trino_trino-main-476.jar").stat().st_mtime_ns
    # The archives are gone: a second unpack must not even open them.
    unpack(tmp_path / "gone.tar.gz", tmp_path / "gone.zip", target, print)
    assert (target / "lib" / "io.trino_trino-main-476.jar").stat().st_mtime_ns == marker


def test_unpack_rejects_a_zip_without_the_iceberg_connector(tmp_path: Path) -> None:
    target = tmp_path / "trino-server-476"
    with pytest.raises(StackError, match="does not look like a Trino server"):
        unpack(
            _server_archive(tmp_path / "s.tar.gz"),
            _plugin_archive(tmp_path / "p.zip", jar="something-else.jar"),
            target,
            print,
        )
    assert not target.exists()
    assert not target.with_name(target.name + ".partial").exists()


def test_unpack_of_a_corrupt_archive_is_a_stack_error(tmp_path: Path) -> None:
    bad = tmp_path / "s.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(StackError, match="could not unpack"):
        unpack(bad, _plugin_archive(tmp_path / "p.zip"), tmp_path / "t", print)
    assert not (tmp_path / "t").exists()


def test_install_from_a_warm_cache_downloads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    component = TrinoComponent(config, cache=tmp_path / "cache")
    unpack(
        _server_archive(tmp_path / "s.tar.gz"),
        _plugin_archive(tmp_path / "p.zip"),
        component.home,
        print,
    )
    trino.install_event_listener(
        _full_server_archive(tmp_path / "full.tar.gz"), component.home, print
    )

    def no_download(coords: str, progress: object) -> Path:
        raise AssertionError(f"downloaded {coords} although the cache is complete")

    monkeypatch.setattr(maven, "fetch", no_download)
    component.install(print)
    assert trino.install_dir(trino.TRINO_VERSION, tmp_path / "cache") == component.home


def test_install_from_a_cold_cache_fetches_both_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    component = TrinoComponent(config, cache=tmp_path / "cache")
    archives = {
        trino.SERVER_ARTIFACT: _server_archive(tmp_path / "s.tar.gz"),
        trino.ICEBERG_ARTIFACT: _plugin_archive(tmp_path / "p.zip"),
        trino.FULL_SERVER_ARTIFACT: _full_server_archive(tmp_path / "full.tar.gz"),
    }
    fetched: list[str] = []

    def fake_fetch(coords: str, progress: object) -> Path:
        fetched.append(coords)
        return archives[coords]

    monkeypatch.setattr(maven, "fetch", fake_fetch)
    component.install(print)
    assert fetched == [trino.SERVER_ARTIFACT, trino.ICEBERG_ARTIFACT, trino.FULL_SERVER_ARTIFACT]
    assert (component.home / "plugin" / "iceberg" / "io.trino_trino-iceberg-476.jar").is_file()
    listener = component.home / "plugin" / trino.EVENT_LISTENER_PLUGIN
    assert (listener / "io.trino_trino-http-event-listener-476.jar").read_bytes() == b"listener"
