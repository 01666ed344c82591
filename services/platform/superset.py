"""A candidate's Superset 6.1: a separate instance with alerts & reports on, as exams ask for.

It is the scoreboard's Superset machinery (``services/scoreboard/superset.py``: the same
cached venv, ``db upgrade``, ``init``, the admin user, gunicorn) in a work directory of its
own, on a free port, with its own SQLite metadata and its own secrets, plus what a
candidate adds for alerts: the ``ALERT_REPORTS`` feature flag and a Celery worker with
an embedded beat (Superset's default SQLAlchemy broker, a SQLite file in the work dir),
which runs Superset's own ``reports.scheduler`` every minute and evaluates each active
alert whose crontab is due. Notifications are a dry run (nothing is mailed).

    with CandidateSuperset(workdir) as superset:
        api = SupersetApi(superset.address, superset.user, superset.password)

A fresh metadata database costs ``db upgrade`` + ``init`` (about 100 s on two busy
cores); the first one is kept, without users, as a template beside the venv, and later
starts copy it and write this instance's admin into it (about 40 s to a ready worker).

Superset 6.1's alerts fail on SQLite metadata (the eta Celery hands ``reports.execute``
is text; apache/superset#31625): the config converts it in a ``task_prerun`` signal.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from services.errors import StackError
from services.stack.component import Component, Progress
from services.stack.config import StackConfig
from services.stack.superset import (
    CACHE_DIR,
    SUPERSET_VERSION,
    SupersetComponent,
    SupersetSettings,
    _locked,
    render_config,
)

HOST = "127.0.0.1"
#: werkzeug's default pbkdf2 rounds for the seeded admin's password
_PBKDF2_ROUNDS = 600_000
#: a candidate's alerts are evaluated by Superset's beat once a minute (crontab * * * * *)
BEAT_PERIOD_S = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def render_candidate_config(db_path: Path, work: Path, port: int) -> str:
    """The scoreboard's config plus what alerts need: the flag, Celery with beat, dry runs."""
    return (
        render_config(db_path)
        + f"""
# ---- a candidate's Superset: alerts & reports (written by proctor's test platform)
from datetime import datetime as _datetime

from celery.schedules import crontab
from celery.signals import task_prerun

FEATURE_FLAGS = {{"DASHBOARD_NATIVE_FILTERS": True, "ALERT_REPORTS": True}}
ALERT_REPORTS_NOTIFICATION_DRY_RUN = True
WEBDRIVER_BASEURL = "http://{HOST}:{port}/"
WEBDRIVER_BASEURL_USER_FRIENDLY = WEBDRIVER_BASEURL


class CeleryConfig:
    broker_url = "sqla+sqlite:///{work}/celery-broker.db"
    result_backend = "db+sqlite:///{work}/celery-results.db"
    imports = ("superset.tasks.scheduler",)
    worker_prefetch_multiplier = 1
    task_acks_late = False
    beat_schedule = {{
        "reports.scheduler": {{
            "task": "reports.scheduler",
            "schedule": crontab(minute="*", hour="*"),
            "options": {{"expires": 7 * 24 * 3600}},
        }},
    }}


CELERY_CONFIG = CeleryConfig


# Celery hands reports.execute its eta as ISO text, which Superset writes to
# report_execution_log.scheduled_dttm; SQLite metadata refuses text there, so without
# this every alert run fails (apache/superset#31625; PostgreSQL metadata accepts it).
@task_prerun.connect
def _eta_as_datetime(task=None, **_kwargs):
    eta = getattr(getattr(task, "request", None), "eta", None)
    if isinstance(eta, str):
        task.request.eta = _datetime.fromisoformat(eta)
"""
    )


def template_db(venv: Path) -> Path:
    """Where a migrated, initialised metadata database (no users) is kept for reuse."""
    return venv.with_name(f"{venv.name}-candidate-metadata.db")


class CandidateServer(SupersetComponent):
    """The web server of a candidate's Superset (gunicorn), in ``workdir/superset``."""

    def __init__(self, config: StackConfig, port: int, password: str, secret: str) -> None:
        super().__init__(config, SupersetSettings(port=port, user="admin"), CACHE_DIR)
        self._password = password
        self._secret = secret
        self.start_timeout = 240.0

    def password(self) -> str:
        return self._password

    def password_source(self) -> str:
        return "generated for this test platform"

    def secret_key(self) -> str:
        return self._secret

    def environment(self) -> Mapping[str, str]:
        env = dict(super().environment())
        env["SUPERSET_CONFIG_PATH"] = str(self.dir / "candidate_config.py")
        return env

    def prepare(self, progress: Progress) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "candidate_config.py").write_text(
            render_candidate_config(self.db_path, self.dir, self.port)
        )
        template = template_db(self.venv)
        stamp = self._stamp(f"db-{SUPERSET_VERSION}")
        if template.is_file() and not self.db_path.exists():
            shutil.copyfile(template, self.db_path)
            stamp.write_text(SUPERSET_VERSION + "\n")
            self._seed_admin()
        fresh = not stamp.is_file()
        # the base class upgrades and initialises a fresh database with the config it is
        # given in the environment (ours), then creates the admin
        super().prepare(progress)
        if fresh and not template.is_file():
            with _locked(template.with_suffix(".lock")):
                if not template.is_file():
                    self._keep_template(template, progress)

    def _seed_admin(self) -> None:
        """The admin written straight into the copied template (what ``superset_admin.py``
        would do, without loading Superset for it: about 30 s on two busy cores)."""
        user, password = self.settings.user, self.password()
        salt = secrets.token_urlsafe(12)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), _PBKDF2_ROUNDS)
        # werkzeug's format, which Flask-AppBuilder's check_password_hash reads
        hashed = f"pbkdf2:sha256:{_PBKDF2_ROUNDS}${salt}${digest.hex()}"
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            (role,) = db.execute("SELECT id FROM ab_role WHERE name = 'Admin'").fetchone()
            cur = db.execute(
                "INSERT INTO ab_user (first_name, last_name, username, password, active, "
                "email, login_count, fail_login_count, created_on, changed_on) "
                "VALUES ('proctor', 'admin', ?, ?, 1, ?, 0, 0, ?, ?)",
                (user, hashed, f"{user}@localhost.invalid", now, now),
            )
            db.execute(
                "INSERT INTO ab_user_role (user_id, role_id) VALUES (?, ?)", (cur.lastrowid, role)
            )
            db.commit()
        stamp = hashlib.sha256(f"{user}\0{password}".encode()).hexdigest()
        fd = os.open(self._stamp("admin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(stamp + "\n")

    def _keep_template(self, template: Path, progress: Progress) -> None:
        partial = template.with_suffix(".partial")
        shutil.copyfile(self.db_path, partial)
        self._run(
            [str(self.bin("python")), "-I", "-c", _DROP_USERS, str(partial)],
            "strip users from the metadata template",
        )
        partial.replace(template)
        progress(f"superset: kept the initialised metadata as {template} for later starts")

    def after_start(self, progress: Progress) -> None:
        """Nothing to import: a candidate builds their own charts and alerts."""


#: run with Superset's interpreter: the template keeps roles and permissions, not users
_DROP_USERS = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("DELETE FROM ab_user_role")
db.execute("DELETE FROM ab_user")
db.commit()
db.close()
"""


class CeleryWorker(Component):
    """Superset's Celery worker with an embedded beat: evaluates alerts on their crontab."""

    name = "superset-worker"
    start_timeout = 180.0
    stop_timeout = 20.0

    def __init__(self, config: StackConfig, server: CandidateServer) -> None:
        super().__init__(config)
        self.server = server

    @property
    def port(self) -> int:
        return 0

    @property
    def address(self) -> str:
        return f"celery worker + beat for {self.server.address}"

    def ports(self) -> Sequence[int]:
        return ()

    def install(self, progress: Progress) -> None:
        self.server.install(progress)

    def environment(self) -> Mapping[str, str]:
        return self.server.environment()

    def command(self) -> Sequence[str]:
        return [
            str(self.server.bin("celery")),
            "--app=superset.tasks.celery_app:app",
            "worker",
            "--beat",
            "--schedule",
            str(self.dir / "celerybeat-schedule"),
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]

    def healthy(self) -> bool:
        """Ready when the worker says so and beat has started (both in its log)."""
        try:
            log = self.log_file.read_text(errors="replace")
        except OSError:
            return False
        return bool(re.search(r"celery@\S+ ready", log)) and "beat: Starting" in log


class CandidateSuperset:
    """A candidate's Superset (web server + Celery worker/beat) owned by pid, in ``workdir``.

    The admin password and secret key are generated per instance and never leave the
    work directory except through :attr:`password`; ports are free ones at start.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.user = "admin"
        self.password = secrets.token_urlsafe(18)
        config = StackConfig(state_dir=workdir, host=HOST)
        self.server = CandidateServer(
            config, port or free_port(), self.password, secrets.token_urlsafe(42)
        )
        self.worker = CeleryWorker(config, self.server)
        self.started_s: float | None = None

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def port(self) -> int:
        return self.server.port

    def start(self, progress: Progress = lambda _m: None) -> None:
        began = time.monotonic()
        try:
            self.server.start(progress)
            self.worker.start(progress)
        except StackError:
            self.stop()
            raise
        self.started_s = time.monotonic() - began

    def healthy(self) -> bool:
        return self.server.healthy() and self.worker.pid() is not None

    def stop(self, progress: Progress = lambda _m: None) -> None:
        """Stop the worker and the server: only the pids this instance started."""
        self.worker.stop(progress)
        self.server.stop(progress)

    def logs(self, lines: int = 40) -> str:
        return (
            f"--- {self.server.log_file}\n{self.server.tail(lines)}\n"
            f"--- {self.worker.log_file}\n{self.worker.tail(lines)}"
        )

    def __enter__(self) -> CandidateSuperset:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running(workdir: Path, progress: Progress = lambda _m: None) -> Iterator[CandidateSuperset]:
    """A started candidate Superset, stopped on exit."""
    superset = CandidateSuperset(workdir)
    superset.start(progress)
    try:
        yield superset
    finally:
        superset.stop(progress)


__all__ = ["BEAT_PERIOD_S", "CandidateSuperset", "running"]
