"""The candidate Superset's pure parts: its config and the admin written into a template.

The running instance is tested in tests/integration/collectors/test_superset_real.py;
these check, without starting it, that the config turns alerts on in this instance's own
files and that the seeded admin is in the form Flask-AppBuilder reads.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from services.platform.superset import CandidateSuperset, render_candidate_config

pytestmark = pytest.mark.unit


def test_config_turns_alerts_on_in_its_own_work_dir(tmp_path: Path) -> None:
    text = render_candidate_config(tmp_path / "superset.db", tmp_path, 41234)
    compile(text, "candidate_config.py", "exec")  # valid Python for Superset to load
    assert '"ALERT_REPORTS": True' in text
    assert "ALERT_REPORTS_NOTIFICATION_DRY_RUN = True" in text
    assert f"sqla+sqlite:///{tmp_path}/celery-broker.db" in text
    assert f"sqlite:///{tmp_path / 'superset.db'}" in text
    assert 'WEBDRIVER_BASEURL = "http://127.0.0.1:41234/"' in text
    assert "task_prerun" in text  # the SQLite eta shim (apache/superset#31625)


def test_two_instances_share_no_port_dir_or_secret(tmp_path: Path) -> None:
    a, b = CandidateSuperset(tmp_path / "a"), CandidateSuperset(tmp_path / "b")
    assert a.port != b.port and a.port != 18088
    assert a.server.dir != b.server.dir and a.server.dir.is_relative_to(tmp_path / "a")
    assert a.password != b.password and a.server.secret_key() != b.server.secret_key()
    assert a.worker.dir.is_relative_to(tmp_path / "a")


def test_seeded_admin_has_a_werkzeug_pbkdf2_hash_and_the_admin_role(tmp_path: Path) -> None:
    superset = CandidateSuperset(tmp_path)
    server = superset.server
    server.dir.mkdir(parents=True)
    with sqlite3.connect(server.db_path) as db:
        db.execute("CREATE TABLE ab_role (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute(
            "CREATE TABLE ab_user (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, "
            "username TEXT UNIQUE, password TEXT, active BOOLEAN, email TEXT, "
            "login_count INTEGER, fail_login_count INTEGER, created_on DATETIME, "
            "changed_on DATETIME)"
        )
        db.execute("CREATE TABLE ab_user_role (id INTEGER PRIMARY KEY, user_id INT, role_id INT)")
        db.execute("INSERT INTO ab_role (id, name) VALUES (1, 'Public'), (7, 'Admin')")
    server._seed_admin()
    with sqlite3.connect(server.db_path) as db:
        (uid, stored) = db.execute(
            "SELECT id, password FROM ab_user WHERE username = 'admin'"
        ).fetchone()
        assert db.execute(
            "SELECT role_id FROM ab_user_role WHERE user_id = ?", (uid,)
        ).fetchall() == [(7,)]
    method, salt, digest = stored.split("$", 2)
    assert method == "pbkdf2:sha256:600000"
    expected = hashlib.pbkdf2_hmac("sha256", superset.password.encode(), salt.encode(), 600000)
    assert digest == expected.hex()
    # the base class reads this stamp and does not load Superset to create the admin again
    stamp = (server.dir / ".done-admin").read_text().strip()
    assert stamp == hashlib.sha256(f"admin\0{superset.password}".encode()).hexdigest()
    assert (server.dir / ".done-admin").stat().st_mode & 0o077 == 0
