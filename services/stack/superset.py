"""Superset 6.1 as a stack-managed process: its own venv, SQLite metadata, gunicorn on 18088.

Superset needs SQLAlchemy < 2 and pyiceberg needs >= 2, so Superset lives in a virtual
environment of its own, built once from the pinned ``requirements-superset.txt`` under
``~/.cache/proctor`` (its directory name carries a hash of that file, so a changed pin
builds a new one and a fresh ``.stack`` reuses the old). Everything that belongs to one
stack sits in the stack's state directory: the SQLite metadata database, the rendered
``superset_config.py``, the secret key and the admin password (both 0600, both made
here when the environment does not give them), the log and the pid file.

First start: ``superset db upgrade``, ``superset init``, the admin user (created, or its
password reset to the current one), then gunicorn; after it is healthy the dashboard
bundle is imported through the REST API (overwriting), on every ``up``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.settings import SupersetSettingsSection, load_settings
from services.stack.catalog import trino_settings
from services.stack.component import Component, Progress, run_setup
from services.stack.config import StackConfig

SUPERSET_VERSION = "6.1.0"
#: the scoreboard's files Superset's venv and its admin script use
HERE = Path(__file__).resolve().parents[1] / "scoreboard"
REQUIREMENTS = HERE / "requirements-superset.txt"
ADMIN_SCRIPT = HERE / "superset_admin.py"
CANDIDATE_SCRIPT = HERE / "superset_candidate.py"
CACHE_DIR = Path.home() / ".cache" / "proctor"

PORT_ENV = "PROCTOR_SUPERSET_PORT"
USER_ENV = "PROCTOR_SUPERSET_USER"
PASSWORD_ENV = "PROCTOR_SUPERSET_PASSWORD"
SECRET_ENV = "PROCTOR_SUPERSET_SECRET_KEY"
PYTHON_ENV = "PROCTOR_SUPERSET_PYTHON"
DEFAULT_PORT = 18088
DEFAULT_USER = "admin"
#: file written last when the venv is complete; a directory without it is half built
_COMPLETE = ".proctor-complete"


@dataclass(frozen=True, slots=True)
class SupersetSettings:
    """Where Superset listens and who logs in: the settings' superset section."""

    port: int = DEFAULT_PORT
    user: str = DEFAULT_USER

    @classmethod
    def of(cls, section: SupersetSettingsSection) -> SupersetSettings:
        return cls(port=section.port, user=section.user)

    @classmethod
    def from_env(cls) -> SupersetSettings:
        """:meth:`of` the settings loaded now (a ConfigError names a bad variable)."""
        return cls.of(load_settings().superset)


def requirements_hash(path: Path = REQUIREMENTS) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def venv_dir(cache: Path = CACHE_DIR, requirements: Path = REQUIREMENTS) -> Path:
    return cache / f"superset-{SUPERSET_VERSION}-{requirements_hash(requirements)}"


def base_python() -> str:
    """The interpreter that builds Superset's venv: PROCTOR_SUPERSET_PYTHON, else this one's base."""
    chosen = os.environ.get(PYTHON_ENV)
    if chosen:
        return chosen
    base = getattr(sys, "_base_executable", None) or sys.executable
    return str(base)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive file lock, so two `up`s never build the same venv at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _secret_file(path: Path, env_value: str | None, nbytes: int) -> str:
    """The value from the environment, else the one saved in ``path``, else a new one (0600)."""
    if env_value:
        return env_value
    with contextlib.suppress(OSError):
        saved = path.read_text().strip()
        if saved:
            return saved
    value = secrets.token_urlsafe(nbytes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def render_config(db_path: Path) -> str:
    """superset_config.py: SQLite metadata, no data cache (the scoreboard is live), local only."""
    return f'''"""Superset configuration of proctor's local scoreboard (written by proctor)."""
import os

SECRET_KEY = os.environ["{SECRET_ENV}"]
SQLALCHEMY_DATABASE_URI = "sqlite:///{db_path}?check_same_thread=false"
# The scoreboard shows grades as they land: never serve chart data from a cache.
DATA_CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
CACHE_CONFIG = {{"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 60}}
RATELIMIT_STORAGE_URI = "memory://"
SUPERSET_WEBSERVER_TIMEOUT = 120
SQLLAB_TIMEOUT = 120
FEATURE_FLAGS = {{"DASHBOARD_NATIVE_FILTERS": True}}
# The scoreboard refreshes itself every few seconds; allow short intervals.
SUPERSET_DASHBOARD_PERIODICAL_REFRESH_LIMIT = 0
'''


class SupersetComponent(Component):
    """The scoreboard's Superset, on 127.0.0.1:18088 (PROCTOR_SUPERSET_PORT)."""

    name = "superset"
    start_timeout = 300.0
    stop_timeout = 30.0
    requires = ("trino",)

    def __init__(
        self,
        config: StackConfig,
        settings: SupersetSettings | None = None,
        cache: Path = CACHE_DIR,
    ) -> None:
        super().__init__(config)
        self.settings = settings or SupersetSettings.from_env()
        self.venv = venv_dir(cache)

    # Addresses ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.settings.port

    @property
    def address(self) -> str:
        return f"http://{self.config.host}:{self.settings.port}"

    @property
    def db_path(self) -> Path:
        return self.dir / "superset.db"

    @property
    def config_path(self) -> Path:
        return self.dir / "superset_config.py"

    @property
    def password_file(self) -> Path:
        return self.dir / "admin-password"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    # Secrets -----------------------------------------------------------------------------
    def password(self) -> str:
        """The admin password: PROCTOR_SUPERSET_PASSWORD, else the one saved for this stack."""
        return _secret_file(self.password_file, os.environ.get(PASSWORD_ENV), 18)

    def password_source(self) -> str:
        if os.environ.get(PASSWORD_ENV):
            return f"env {PASSWORD_ENV}"
        return str(self.password_file)

    def secret_key(self) -> str:
        return _secret_file(self.dir / "secret-key", os.environ.get(SECRET_ENV), 42)

    # Installation ------------------------------------------------------------------------
    def installed(self) -> bool:
        return (self.venv / _COMPLETE).is_file()

    def install(self, progress: Progress) -> None:
        if self.installed():
            return
        with _locked(self.venv.with_name(self.venv.name + ".lock")):
            if self.installed():
                return
            started = time.monotonic()
            work = self.venv.with_name(self.venv.name + ".partial")
            shutil.rmtree(work, ignore_errors=True)
            python = base_python()
            progress(f"superset: building its venv with {python} in {self.venv} (once)")
            # Built in place under its final name (venv scripts hard-code their path);
            # the marker file written last says it is complete.
            shutil.rmtree(self.venv, ignore_errors=True)
            self._run([python, "-m", "venv", str(self.venv)], "create the venv", timeout=300)
            pip = [str(self.bin("python")), "-m", "pip", "--disable-pip-version-check", "-q"]
            self._run([*pip, "install", "--upgrade", "pip"], "upgrade pip", timeout=600)
            progress(f"superset: pip install -r {REQUIREMENTS.name} (several minutes, once)")
            self._run([*pip, "install", "-r", str(REQUIREMENTS)], "install Superset", timeout=3600)
            (self.venv / _COMPLETE).write_text(
                f"{SUPERSET_VERSION} {requirements_hash()} {time.monotonic() - started:.0f}s\n"
            )
            progress(f"superset: installed in {time.monotonic() - started:.0f}s")

    def _run(
        self,
        argv: Sequence[str],
        what: str,
        timeout: float = 600,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Run a setup command in the Superset directory (once it exists)."""
        cwd = self.dir if self.dir.is_dir() else None
        return run_setup(argv, "superset", what, timeout, env, cwd)

    # Preparation -------------------------------------------------------------------------
    def environment(self) -> Mapping[str, str]:
        return {
            "SUPERSET_CONFIG_PATH": str(self.config_path),
            "SUPERSET_HOME": str(self.dir / "home"),
            "FLASK_APP": "superset.app:create_app()",
            SECRET_ENV: self.secret_key(),
            # Superset's own Python must not see proctor's packages.
            "PYTHONPATH": "",
            "PYTHONNOUSERSITE": "1",
        }

    def _stamp(self, name: str) -> Path:
        return self.dir / f".done-{name}"

    def prepare(self, progress: Progress) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "home").mkdir(exist_ok=True)
        self.config_path.write_text(render_config(self.db_path))
        env = self.environment()
        superset = str(self.bin("superset"))
        upgraded = self._stamp(f"db-{SUPERSET_VERSION}")
        if not upgraded.is_file():
            progress("superset: superset db upgrade (metadata in SQLite)")
            self._run([superset, "db", "upgrade"], "upgrade its metadata database", env=env)
            progress("superset: superset init (roles and permissions)")
            self._run([superset, "init"], "initialise roles", env=env, timeout=900)
            upgraded.write_text(SUPERSET_VERSION + "\n")
        password = self.password()
        digest = hashlib.sha256(f"{self.settings.user}\0{password}".encode()).hexdigest()
        admin = self._stamp("admin")
        if not admin.is_file() or admin.read_text().strip() != digest:
            progress(
                f"superset: admin user {self.settings.user!r} (password from {self.password_source()})"
            )
            self._run(
                [str(self.bin("python")), "-I", str(ADMIN_SCRIPT)],  # -I: not this folder
                "create the admin user",
                env={**env, USER_ENV: self.settings.user, PASSWORD_ENV: password},
            )
            fd = os.open(admin, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(digest + "\n")

    def command(self) -> Sequence[str]:
        # One worker with threads: the machine has two cores and Trino does the heavy work.
        return [
            str(self.bin("gunicorn")),
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--timeout",
            "120",
            "--bind",
            f"{self.config.host}:{self.settings.port}",
            "--limit-request-line",
            "0",
            "--limit-request-field_size",
            "0",
            "superset.app:create_app()",
        ]

    def healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.address}/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def after_start(self, progress: Progress) -> None:
        self.import_bundle(progress)

    def import_bundle(self, progress: Progress) -> None:
        """Import the repository's bundle (database, datasets, charts, dashboard), overwriting."""
        from services.scoreboard.bundle import SupersetClient, import_bundle, load_bundle, render

        bundle = render(load_bundle(), trino_settings(self.config))
        with SupersetClient(self.address, self.settings.user, self.password()) as client:
            client.login()
            import_bundle(client, bundle)
            dashboard = client.dashboard()
        progress(
            f"superset: imported the scoreboard bundle ({len(bundle.charts)} charts) as "
            f"dashboard {dashboard.get('id')}"
        )

    def grant_candidate(self, candidate_id: str, password: str) -> str:
        """A login for one candidate that sees only their rows of the candidate page's
        datasets (role ``candidate:<id>``, a row-level security rule); Superset running."""
        from services.scoreboard.bundle import CANDIDATE_TABLES

        return self._run(
            [str(self.bin("python")), "-I", str(CANDIDATE_SCRIPT)],
            f"give candidate {candidate_id!r} a login",
            env={
                **self.environment(),
                "PROCTOR_SUPERSET_CANDIDATE": candidate_id,
                "PROCTOR_SUPERSET_CANDIDATE_PASSWORD": password,
                "PROCTOR_SUPERSET_CANDIDATE_TABLES": ",".join(CANDIDATE_TABLES),
            },
        ).strip()

    def dashboard_url(self, slug: str | None = None) -> str:
        from services.scoreboard.bundle import DASHBOARD_SLUG

        return f"{self.address}/superset/dashboard/{slug or DASHBOARD_SLUG}/"
