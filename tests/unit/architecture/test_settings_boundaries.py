"""Where settings come from: only services/settings.py reads the environment, and
production code never imports the dev stack (``services.stack``) to learn its defaults.

Both walk every module of ``services/`` with ast; a failure names the file and line.
"""

from __future__ import annotations

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

#: modules that may import services.stack: the stack itself and the command table
STACK_USERS = ("services.stack", "services.cli")

#: modules that may read the environment, each with why
ENVIRONMENT_READERS = {
    "services/settings.py": "the one settings model: load_settings and named secrets",
    "services/stack/": "the dev stack's own config (StackConfig) and the environments of "
    "the processes it starts",
    "services/scoreboard/superset_admin.py": "runs inside Superset's own virtualenv with "
    "python -I (it cannot import proctor); the stack hands it the admin user and password",
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
