"""Where settings come from: only services/settings.py reads the environment, and
production code never imports the dev stack (``services.stack``) to learn its defaults.

Both walk every module of ``services/`` with ast; a failure names the file and line.
"""

from __future__ import annotations

import ast

import pytest

from tests.unit.architecture.imports import (
    ROOT,
    environment_reads,
    imports_of,
    module_path,
    modules,
    parse_imports,
)

pytestmark = pytest.mark.unit

#: modules that may import services.stack: the stack itself, the command table, and the
#: dev tools that run on the local stack: the candidate's platform as local processes
#: (services.platform, built on the stack's Maven, JVM and PostgreSQL helpers) and the
#: rehearsal, which runs those on the stack the way the demo does
STACK_USERS = ("services.stack", "services.cli", "services.platform", "services.rehearsal")

#: modules that may read the environment, each with why
ENVIRONMENT_READERS = {
    "services/settings.py": "the one settings model: load_settings and named secrets",
    "services/stack/": "the dev stack's own config (StackConfig) and the environments of "
    "the processes it starts",
    "services/platform/": "the candidate's platform as local processes: the environments "
    "of the processes it starts (dbt, Kafka Connect, Flink, Trino, Superset)",
    "services/rehearsal/session.py": "the local stack's trust variables (keys made by "
    "ensure_local_trust), exported for the worker it starts, as the demo does",
    "services/scoreboard/superset_admin.py": "runs inside Superset's own virtualenv with "
    "python -I (it cannot import proctor); the stack hands it the admin user and password",
    "services/scoreboard/superset_candidate.py": "runs inside Superset's own virtualenv like "
    "superset_admin.py; `proctor scoreboard grant` hands it the candidate and password",
    "services/rehearsal/dashboards.py": "the rehearsal's candidate Superset password, handed "
    "to its Superset collector by variable name (collectors read secrets from the "
    "environment) and removed at stop",
}


def _is_stack_user(module: str) -> bool:
    return any(module == m or module.startswith(f"{m}.") for m in STACK_USERS)


def stack_imports(module: str) -> list[str]:
    return [
        f"{i.where} imports {i.target}"
        for i in imports_of(module)
        if i.target == "services.stack" or i.target.startswith("services.stack.")
    ]


def test_nothing_outside_the_stack_and_the_cli_wiring_imports_the_dev_stack() -> None:
    offenders = [o for m in modules() if not _is_stack_user(m) for o in stack_imports(m)]
    assert not offenders, "production code imports the dev stack:\n" + "\n".join(offenders)


def test_only_the_settings_module_reads_the_environment() -> None:
    offenders = []
    for module, path in modules().items():
        where = module_path(module)
        if any(
            where == p or (p.endswith("/") and where.startswith(p)) for p in ENVIRONMENT_READERS
        ):
            continue
        for line in environment_reads(path.read_text(encoding="utf-8")):
            offenders.append(f"{where}:{line}")
    assert not offenders, (
        "the environment is read outside services/settings.py (use load_settings at the "
        "entry point, or add the module to ENVIRONMENT_READERS with a reason):\n"
        + "\n".join(offenders)
    )


def test_every_allowed_reader_exists() -> None:
    for path in ENVIRONMENT_READERS:
        assert (ROOT / path).exists(), f"{path} is allowed but no longer exists"


# --- the checks catch what they are for -----------------------------------------------


def test_the_stack_check_sees_every_form_of_import() -> None:
    text = "\n".join(
        [
            "import services.stack.config",
            "from services.stack import catalog",
            "from services import stack",
            "def f():",
            "    from services.stack.config import StackConfig",
            "    importlib.import_module('services.stack.manager')",
            "if TYPE_CHECKING:",
            "    from services.stack.config import StackConfig",
        ]
    )
    found = [i.target for i in parse_imports("services.publisher.x", text)]
    assert found == [
        "services.stack.config",
        "services.stack.catalog",
        "services.stack",
        "services.stack.config",
        "services.stack.manager",
    ]  # the TYPE_CHECKING import is types only


def test_relative_imports_resolve_to_their_module() -> None:
    found = parse_imports(
        "services.scoreboard.cli", "from ..stack import config\nfrom . import watch"
    )
    assert [i.target for i in found] == ["services.stack.config", "services.scoreboard.watch"]


def test_the_environment_check_sees_every_form_of_read() -> None:
    text = "\n".join(
        [
            "import os",
            "a = os.environ['X']",
            "b = os.getenv('Y')",
            "from os import environ",
            "os.environ.setdefault('Z', '1')",
            "c = settings.environ.get('X')",  # the settings' snapshot is not a read
            "d = os.path.join('a', 'b')",
        ]
    )
    assert environment_reads(text) == [2, 3, 4, 5]


# --- one catalog factory, one Trino factory --------------------------------------------

#: (module, name) pairs that open a catalog or a Trino connection
OPENERS = {
    ("pyiceberg.catalog", "load_catalog"),
    ("pyiceberg.catalog.sql", "SqlCatalog"),
    ("pyiceberg.catalog.rest", "RestCatalog"),
    ("trino.dbapi", "connect"),
    ("trino.dbapi", "Connection"),
    ("trino", "dbapi"),
}
#: modules that may import an opener, each with why
OPENER_USERS = {
    "services.connections": "the one catalog factory and the one Trino connection factory",
    "services.stack.catalog": "SqlCatalog and Connection as types only (isinstance, annotations)",
    "services.stack.trino": "the stack's health probe of its own Trino: one attempt, 10 s, "
    "no catalog (one may not be loaded yet while the server starts)",
    "services.platform.trino": "the candidate's own Trino (not proctor's): the platform's "
    "users querying it under its access control",
    "services.platform.dbt": "the candidate's dbt project's source table on Trino, as the "
    "candidate's own user",
}


def openers_in(text: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [
                f"{node.lineno}: {node.module}.{a.name}"
                for a in node.names
                if (node.module, a.name) in OPENERS
            ]
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: {a.name}" for a in node.names if a.name.startswith("trino")]
    return found


def test_catalogs_and_trino_connections_are_opened_in_one_place() -> None:
    offenders = [
        f"{module_path(module)}:{hit}"
        for module, path in modules().items()
        if module not in OPENER_USERS
        for hit in openers_in(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, (
        "a catalog or a Trino connection is opened outside services/connections.py:\n"
        + "\n".join(offenders)
    )


def test_the_opener_check_sees_each_way_in() -> None:
    text = "\n".join(
        [
            "from pyiceberg.catalog import Catalog, load_catalog",
            "import trino",
            "from trino.dbapi import connect",
            "from pyiceberg.catalog.sql import SqlCatalog",
            "from pyiceberg.table import Table",
        ]
    )
    assert openers_in(text) == [
        "1: pyiceberg.catalog.load_catalog",
        "2: trino",
        "3: trino.dbapi.connect",
        "4: pyiceberg.catalog.sql.SqlCatalog",
    ]
