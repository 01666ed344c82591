"""Trino, one coordinator that is also its only worker, reading the stack's Iceberg catalog.

The server comes from ``mvn`` as ``trino-server-core`` (the engine without connectors,
185 MB) plus the ``trino-iceberg`` plugin zip (330 MB), instead of the 820 MB full server;
the bundled optional plugins are not unpacked, so the server loads only Iceberg. 476 is
the newest release whose server archive ``mvn`` can fetch (477 to 483 publish none). It
runs on Java 25 (476 needs 24 or newer).

The ``iceberg`` catalog is of type jdbc on the stack's PostgreSQL, under the same catalog
name pyiceberg's ``SqlCatalog`` uses, so tables written by either side are one set of
tables. Storage is the local file system: Trino's native local file system serves both
``local://`` and ``file://`` locations, resolving a location's path against
``local.location``; with ``/`` as that root, pyiceberg's ``file:///abs/path`` locations
resolve to the same absolute paths. The JVM is sized for a 2-core, 24 GB machine that
also runs Kafka, the registry and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse
from urllib.request import url2pathname

import httpx
from trino.dbapi import Connection

from services.errors import StackError
from services.stack import jvm, maven
from services.stack.catalog import CATALOG_NAME, TRINO_CATALOG, TRINO_USER
from services.stack.component import Component, Progress
from services.stack.config import StackConfig

TRINO_VERSION = "476"
SERVER_ARTIFACT = f"io.trino:trino-server-core:{TRINO_VERSION}:tar.gz"
ICEBERG_ARTIFACT = f"io.trino:trino-iceberg:{TRINO_VERSION}:zip"
#: unpacked servers live here, outside the state dir, so a fresh state dir starts fast
CACHE_DIR = Path.home() / ".cache" / "proctor"
#: file written last when unpacking; a directory without it is a half-done unpack
_COMPLETE = ".proctor-complete"
MAIN_CLASS = "io.trino.server.TrinoServer"
#: Java major version the server needs
JAVA_MAJOR = 25

#: heap of the coordinator-worker; queries get a third of it
HEAP = "3G"
QUERY_MEMORY = "1GB"
HEAP_HEADROOM = "768MB"

#: Trino's HTTP event listener posts every completed query to proctor's receiver
#: (`proctor collect trino`). Its plugin ships only in the full server archive, from which
#: `install_event_listener` unpacks it; `prepare` configures it once it is installed.
FULL_SERVER_ARTIFACT = f"io.trino:trino-server:{TRINO_VERSION}:tar.gz"
EVENT_LISTENER_PLUGIN = "http-event-listener"
EVENT_LISTENER_PORT = 18095


# Rendered configuration (pure, unit tested) -------------------------------------------------
def render_properties(props: Mapping[str, str]) -> str:
    """A Java properties file, one ``key=value`` a line, in the order given."""
    for key, value in props.items():
        if "\n" in key or "\n" in value or "=" in key:
            raise StackError(f"trino: cannot write property {key!r}={value!r}")
    return "".join(f"{key}={value}\n" for key, value in props.items())


def warehouse_path(config: StackConfig) -> Path:
    """The local directory behind the ``file://`` warehouse URI."""
    uri = urlparse(config.warehouse)
    if uri.scheme != "file":
        raise StackError(f"warehouse {config.warehouse!r} is not a file:// URI")
    return Path(url2pathname(uri.path))


def node_properties(config: StackConfig, data_dir: Path) -> dict[str, str]:
    return {
        "node.environment": "proctor",
        "node.id": "proctor-local",
        "node.data-dir": str(data_dir),
        # Loopback only: bind there and announce that address to itself.
        "node.bind-ip": config.host,
        "node.internal-address": config.host,
    }


def jvm_options(heap: str = HEAP) -> list[str]:
    """jvm.config lines: Trino's recommended flags with a heap that leaves room for the rest."""
    return [
        "-server",
        f"-Xmx{heap}",
        "-Xms512M",
        "-XX:+UseG1GC",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:-OmitStackTraceInFastThrow",
        "-XX:ReservedCodeCacheSize=256M",
        "-XX:PerMethodRecompilationCutoff=10000",
        "-XX:PerBytecodeRecompilationCutoff=10000",
        "-XX:+EnableDynamicAgentLoading",
        "--add-modules=jdk.incubator.vector",
        "--enable-native-access=ALL-UNNAMED",
        "-Djdk.attach.allowAttachSelf=true",
        "-Djdk.nio.maxCachedBufferSize=2000000",
        "-Dfile.encoding=UTF-8",
        "-Duser.timezone=UTC",
    ]


def config_properties(config: StackConfig, home: Path, etc_dir: Path) -> dict[str, str]:
    """config.properties; plugin and catalog dirs are absolute, never relative to the cwd."""
    return {
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true",
        "http-server.http.port": str(config.trino_port),
        "discovery.uri": config.trino_url,
        "query.max-memory": QUERY_MEMORY,
        "query.max-memory-per-node": QUERY_MEMORY,
        "memory.heap-headroom-per-node": HEAP_HEADROOM,
        # The request log would grow with every health check; the server log is enough.
        "http-server.log.enabled": "false",
        "plugin.dir": str(home / "plugin"),
        "catalog.config-dir": str(etc_dir / "catalog"),
    }


def iceberg_catalog_properties(config: StackConfig) -> dict[str, str]:
    """etc/catalog/iceberg.properties: the JDBC catalog pyiceberg writes, on local files."""
    return {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "jdbc",
        "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
        "iceberg.jdbc-catalog.connection-url": (
            f"jdbc:postgresql://{config.host}:{config.postgres_port}/{config.postgres_db}"
        ),
        "iceberg.jdbc-catalog.connection-user": config.postgres_user,
        "iceberg.jdbc-catalog.catalog-name": CATALOG_NAME,
        "iceberg.jdbc-catalog.default-warehouse-dir": config.warehouse,
        # pyiceberg 0.12 creates the catalog tables with the iceberg_type column (V1).
        "iceberg.jdbc-catalog.schema-version": "V1",
        "fs.native-local.enabled": "true",
        # Locations are resolved against this root; "/" maps file:///x to /x.
        "local.location": "/",
        # A test stack: let maintenance procedures expire and clean up right away.
        "iceberg.expire-snapshots.min-retention": "0s",
        "iceberg.remove-orphan-files.min-retention": "0s",
    }


def event_listener_properties(config: StackConfig, token: str) -> dict[str, str]:
    """etc/http-event-listener.properties: completed queries to the local receiver, with a token."""
    return {
        "event-listener.name": "http",
        "http-event-listener.log-completed": "true",
        "http-event-listener.connect-ingest-uri": f"http://{config.host}:{EVENT_LISTENER_PORT}/trino",
        "http-event-listener.connect-http-headers": f"Authorization: Bearer {token}",
        "http-event-listener.connect-retry-count": "3",
    }


# Installation -------------------------------------------------------------------------------
def install_dir(version: str = TRINO_VERSION, cache: Path = CACHE_DIR) -> Path:
    return cache / f"trino-server-{version}"


def unpack(server_archive: Path, plugin_archive: Path, target: Path, progress: Progress) -> Path:
    """Unpack the server (without its optional plugins) and the Iceberg plugin into ``target``.

    Work happens in a sibling directory renamed into place at the end, so an interrupted
    unpack never looks complete.
    """
    if (target / _COMPLETE).is_file():
        return target
    progress(f"trino: unpacking into {target}")
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        with tarfile.open(server_archive, "r:gz") as tar:
            members = []
            for member in tar.getmembers():
                parts = PurePosixPath(member.name).parts
                # Skip the top folder itself and the bundled optional plugins.
                if len(parts) < 2 or parts[1] == "plugin":
                    continue
                member.name = str(PurePosixPath(*parts[1:]))
                members.append(member)
            tar.extractall(work, members=members, filter="data")
        plugin_dir = work / "plugin" / "iceberg"
        plugin_dir.mkdir(parents=True)
        with zipfile.ZipFile(plugin_archive) as zf:
            for info in zf.infolist():
                name = PurePosixPath(info.filename)
                if info.is_dir() or len(name.parts) != 2:
                    continue
                with zf.open(info) as src, open(plugin_dir / name.name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        if not (work / "lib").is_dir() or not any(plugin_dir.glob("io.trino_trino-iceberg-*.jar")):
            raise StackError(
                f"trino: {server_archive.name} or {plugin_archive.name} does not look like a "
                "Trino server and its Iceberg plugin; delete them from ~/.m2 and retry"
            )
        (work / _COMPLETE).write_text(TRINO_VERSION + "\n")
        work.rename(target)
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise StackError(f"trino: could not unpack into {target}: {exc}") from exc
    finally:
        # Gone after a successful rename; otherwise never leave half an unpack behind.
        shutil.rmtree(work, ignore_errors=True)
    return target


def install_event_listener(server_archive: Path, home: Path, progress: Progress) -> Path:
    """Unpack the http-event-listener plugin of the full server archive into ``home/plugin``.

    In the archive its jars are hard links to ``lib/``, so the linked members are read too.
    """
    target = home / "plugin" / EVENT_LISTENER_PLUGIN
    if target.is_dir():
        return target
    progress(f"trino: adding the {EVENT_LISTENER_PLUGIN} plugin from {server_archive.name}")
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        with tarfile.open(server_archive, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            for member in members.values():
                parts = PurePosixPath(member.name).parts
                if len(parts) != 4 or parts[1:3] != ("plugin", EVENT_LISTENER_PLUGIN):
                    continue
                source = members.get(member.linkname, member) if member.islnk() else member
                data = tar.extractfile(source)
                if data is None:
                    continue
                with data, open(work / parts[3], "wb") as dst:
                    shutil.copyfileobj(data, dst, 1 << 20)
        if not any(work.glob("io.trino_trino-http-event-listener-*.jar")):
            raise StackError(f"trino: {server_archive.name} has no {EVENT_LISTENER_PLUGIN} plugin")
        work.rename(target)
    except (OSError, tarfile.TarError) as exc:
        raise StackError(f"trino: could not unpack the event listener plugin: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


class TrinoComponent(Component):
    """Trino on the stack's HTTP port with the ``iceberg`` catalog."""

    name = "trino"
    start_timeout = 240.0
    requires = ("postgres",)

    def __init__(self, config: StackConfig, cache: Path = CACHE_DIR) -> None:
        super().__init__(config)
        self.home = install_dir(TRINO_VERSION, cache)

    @property
    def port(self) -> int:
        return self.config.trino_port

    @property
    def address(self) -> str:
        return self.config.trino_url

    @property
    def etc_dir(self) -> Path:
        return self.dir / "etc"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def install(self, progress: Progress) -> None:
        jvm.java(self.config.java25_home, JAVA_MAJOR)
        if not (self.home / _COMPLETE).is_file():
            server = maven.fetch(SERVER_ARTIFACT, progress)
            plugin = maven.fetch(ICEBERG_ARTIFACT, progress)
            unpack(server, plugin, self.home, progress)
        if not (self.home / "plugin" / EVENT_LISTENER_PLUGIN).is_dir():
            # Trino publishes this plugin only inside the full server archive; its query
            # events feed the Trino collector (`proctor collect trino`).
            install_event_listener(maven.fetch(FULL_SERVER_ARTIFACT, progress), self.home, progress)

    def prepare(self, progress: Progress) -> None:
        catalog_dir = self.etc_dir / "catalog"
        catalog_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        warehouse_path(self.config).mkdir(parents=True, exist_ok=True)
        server_props = config_properties(self.config, self.home, self.etc_dir)
        listener: dict[Path, str] = {}
        if (self.home / "plugin" / EVENT_LISTENER_PLUGIN).is_dir():
            path = self.etc_dir / f"{EVENT_LISTENER_PLUGIN}.properties"
            server_props["event-listener.config-files"] = str(path)
            props = event_listener_properties(self.config, self.event_listener_token())
            listener[path] = render_properties(props)
        files = {
            self.etc_dir / "node.properties": render_properties(
                node_properties(self.config, self.data_dir)
            ),
            self.etc_dir / "jvm.config": "".join(f"{opt}\n" for opt in jvm_options()),
            self.etc_dir / "config.properties": render_properties(server_props),
            **listener,
            self.etc_dir / "log.properties": "io.trino=INFO\n",
            catalog_dir / f"{TRINO_CATALOG}.properties": render_properties(
                iceberg_catalog_properties(self.config)
            ),
        }
        for path, text in files.items():
            path.write_text(text)
        # Catalogs are loaded from every file in etc/catalog; keep only ours.
        for stale in catalog_dir.glob("*.properties"):
            if stale not in files:
                stale.unlink()

    def event_listener_token(self) -> str:
        """The bearer token Trino's event listener sends, made once and kept in the state dir."""
        path = self.dir / "event-listener.token"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32) + "\n")
        return path.read_text().strip()

    def command(self) -> Sequence[str]:
        """What Trino's launcher runs, spelled out so the recorded pid is the JVM's."""
        java = jvm.java(self.config.java25_home, JAVA_MAJOR)
        system = [
            f"-D{key}={value}" for key, value in node_properties(self.config, self.data_dir).items()
        ]
        return [
            str(java),
            "-cp",
            str(self.home / "lib" / "*"),
            *jvm_options(),
            *system,
            f"-Dconfig={self.etc_dir / 'config.properties'}",
            f"-Dlog.levels-file={self.etc_dir / 'log.properties'}",
            MAIN_CLASS,
        ]

    def environment(self) -> Mapping[str, str]:
        return {"JAVA_HOME": str(self.config.java25_home)}

    def healthy(self) -> bool:
        """Started (``/v1/info`` says so) and answers ``SELECT 1``."""
        try:
            info = httpx.get(f"{self.config.trino_url}/v1/info", timeout=2.0)
            if info.status_code != 200 or info.json().get("starting") is not False:
                return False
        except (httpx.HTTPError, ValueError):
            return False
        conn = Connection(
            host=self.config.host,
            port=self.config.trino_port,
            user=TRINO_USER,
            http_scheme="http",
            max_attempts=1,
            request_timeout=10.0,
        )
        try:
            with contextlib.closing(conn):
                cur = conn.cursor()
                cur.execute("SELECT 1")
                return bool(cur.fetchall() == [[1]])
        except Exception:  # any client or server error means "not healthy yet"
            return False

    def rss_bytes(self) -> int | None:
        """Resident memory of the running JVM, for ``stack status`` and sizing reports."""
        pid = self.pid()
        if pid is None:
            return None
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None
